#include "data/chat_template.h"

#include "data/bpe_tokenizer.h"
#include "gtest/gtest.h"
#include "runtime/status.h"

namespace loom::data {
namespace {

const char kLlama3[] = "data/testdata/tokenizers/llama3_style";
const char kGpt2[] = "data/testdata/tokenizers/gpt2_style";  // has ChatML tokens

std::unique_ptr<BpeTokenizer> Load(const char* dir) {
  auto t = LoadBpeTokenizer(dir);
  LOOM_CHECK_OK(t.status());
  return *std::move(t);
}

const std::vector<ChatMessage> kChat = {{.role = "system", .content = "Be brief."},
                                        {.role = "user", .content = " Hi there "},
                                        {.role = "assistant", .content = "Hello!"},
                                        {.role = "user", .content = "Sort 3 1 2"},
                                        {.role = "assistant", .content = "1 2 3"}};

// The trained tokens, decoded (special tokens are skipped), and how many
// end-of-turn tokens are trained.
std::pair<std::string, int> Trained(const Example& e, const Tokenizer& tok, int32_t eot) {
  std::vector<int32_t> ids;
  int eots = 0;
  for (size_t i = 0; i < e.labels.size(); ++i) {
    if (e.labels[i] == kIgnoreIndex) continue;
    EXPECT_EQ(e.labels[i], e.input_ids[i]);
    ids.push_back(e.labels[i]);
    eots += e.labels[i] == eot;
  }
  return {tok.Decode(ids), eots};
}

TEST(ChatTemplateTest, Llama3RendersLikeTheJinjaTemplate) {
  const RenderedChat r = RenderChat(ChatTemplate::kLlama3, {kChat[0], kChat[1]});
  EXPECT_EQ(r.text,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>");
  EXPECT_EQ(
      r.text.substr(r.turns[1].content_begin, r.turns[1].content_end - r.turns[1].content_begin),
      "Hi there");
}

TEST(ChatTemplateTest, ChatMlRendersLikeTheJinjaTemplate) {
  EXPECT_EQ(RenderChat(ChatTemplate::kChatMl, {kChat[1], kChat[2]}).text,
            "<|im_start|>user\n Hi there <|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n");
}

TEST(ChatTemplateTest, MasksAllButAssistantTurnsAndTheirEot) {
  auto tok = Load(kLlama3);
  const int32_t eot = *tok->TokenId("<|eot_id|>");
  auto e = TokenizeChat(ChatTemplate::kLlama3, kChat, *tok, {});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->input_ids, tok->Encode(RenderChat(ChatTemplate::kLlama3, kChat).text));
  EXPECT_EQ(e->input_ids[0], tok->bos_id());
  EXPECT_EQ(Trained(*e, *tok, eot), (std::pair<std::string, int>{"Hello!1 2 3", 2}));
}

TEST(ChatTemplateTest, TrainOnEosModesAndTrainingFlags) {
  auto tok = Load(kLlama3);
  const int32_t eot = *tok->TokenId("<|eot_id|>");
  auto trained = [&](ChatMasking m, std::vector<ChatMessage> chat = kChat) {
    auto e = TokenizeChat(ChatTemplate::kLlama3, chat, *tok, m);
    LOOM_CHECK_OK(e.status());
    return Trained(*e, *tok, eot);
  };
  EXPECT_EQ(trained({.train_on_eos = "none"}).second, 0);
  EXPECT_EQ(trained({.train_on_eos = "all"}).second, 5);
  EXPECT_EQ(trained({.train_on_eos = "last"}).second, 1);
  EXPECT_EQ(trained({.roles_to_train = {"user"}}),
            (std::pair<std::string, int>{"Hi thereSort 3 1 2", 2}));
  EXPECT_EQ(trained({.train_on_inputs = true}).first, "Be brief.Hi thereHello!Sort 3 1 21 2 3");
  std::vector<ChatMessage> flagged = kChat;
  flagged[2].training = false;  // the first answer is not trained
  flagged[0].training = true;
  EXPECT_EQ(trained({}, flagged), (std::pair<std::string, int>{"Be brief.1 2 3", 2}));
  auto bad = TokenizeChat(ChatTemplate::kLlama3, kChat, *tok, {.train_on_eos = "sometimes"});
  EXPECT_FALSE(bad.ok());
}

TEST(ChatTemplateTest, ChatMlWithTheGpt2StyleTokenizer) {
  auto tok = Load(kGpt2);
  const int32_t eot = *tok->TokenId("<|im_end|>");
  auto e = TokenizeChat(ChatTemplate::kChatMl, kChat, *tok, {});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(Trained(*e, *tok, eot), (std::pair<std::string, int>{"Hello!1 2 3", 2}));
}

TEST(ChatTemplateTest, ResolvesNamesAndChecksTheTokenizer) {
  auto llama = Load(kLlama3);
  auto gpt2 = Load(kGpt2);
  EXPECT_EQ(*ResolveChatTemplate("tokenizer_default", *llama), ChatTemplate::kLlama3);
  EXPECT_EQ(*ResolveChatTemplate("tokenizer_default", *gpt2), ChatTemplate::kChatMl);
  EXPECT_EQ(*ResolveChatTemplate("llama3", *llama), ChatTemplate::kLlama3);
  auto unknown = ResolveChatTemplate("vicuna", *llama);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown template 'vicuna' (built in: llama3, chatml"),
            std::string::npos);
  auto missing = ResolveChatTemplate("chatml", *llama);  // no <|im_start|> in this vocabulary
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("needs the special token <|im_start|>"),
            std::string::npos)
      << missing.status();
  auto bytes = ResolveChatTemplate("tokenizer_default", ByteTokenizer());
  ASSERT_FALSE(bytes.ok());
  EXPECT_NE(bytes.status().message().find("the tokenizer has none"), std::string::npos);
}

}  // namespace
}  // namespace loom::data
