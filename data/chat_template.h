// Chat templates built in C++ (no Jinja engine): Llama-3 and ChatML, with
// Axolotl's chat_template masking (roles_to_train, train_on_eos, a message's
// own `training` flag).
//
//   LOOM_ASSIGN_OR_RETURN(ChatTemplate t, ResolveChatTemplate("tokenizer_default", tokenizer));
//   LOOM_ASSIGN_OR_RETURN(Example e, TokenizeChat(t, messages, tokenizer, masking));
//
// Rendering (what the templates in Hugging Face's tokenizer_config.json produce):
//   llama3: <|begin_of_text|> then per message
//           <|start_header_id|>{role}<|end_header_id|>\n\n{content, trimmed}<|eot_id|>
//   chatml: per message <|im_start|>{role}\n{content}<|im_end|>\n
// The whole conversation is tokenized at once; a token is trained when its
// bytes overlap the content of a trained message, or its end-of-turn token
// when train_on_eos says so (turn: after trained messages; all; last: only the
// conversation's last; none).
#ifndef LOOM_DATA_CHAT_TEMPLATE_H_
#define LOOM_DATA_CHAT_TEMPLATE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/example.h"
#include "data/tokenizer.h"

namespace loom::data {

enum class ChatTemplate { kLlama3, kChatMl };

struct ChatMessage {
  std::string role;  // system | user | assistant | tool
  std::string content;
  std::optional<bool> training;  // overrides roles_to_train
};

struct ChatMasking {
  std::vector<std::string> roles_to_train = {"assistant"};
  std::string train_on_eos = "turn";  // all | turn | last | none
  bool train_on_inputs = false;       // every message trained
};

// "llama3", "chatml", or "tokenizer_default" (recognizes the tokenizer's own
// Jinja template as one of these). Errors name what was expected, and check
// that the template's special tokens are single tokens of `tokenizer`.
absl::StatusOr<ChatTemplate> ResolveChatTemplate(const std::string& name,
                                                 const Tokenizer& tokenizer);

// The rendered text and, per message, the byte spans of its content and of
// its end-of-turn token.
struct RenderedChat {
  struct Turn {
    size_t content_begin, content_end, eot_begin, eot_end;
  };
  std::string text;
  std::vector<Turn> turns;
};
RenderedChat RenderChat(ChatTemplate t, const std::vector<ChatMessage>& messages);

absl::StatusOr<Example> TokenizeChat(ChatTemplate t, const std::vector<ChatMessage>& messages,
                                     const Tokenizer& tokenizer, const ChatMasking& masking);

// Axolotl's role aliases: human -> user, gpt -> assistant (others as given).
std::string CanonicalRole(const std::string& role);

}  // namespace loom::data

#endif  // LOOM_DATA_CHAT_TEMPLATE_H_
