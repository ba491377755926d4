#include "data/chat_template.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace loom::data {
namespace {

std::vector<std::string> SpecialTokens(ChatTemplate t) {
  if (t == ChatTemplate::kLlama3) {
    return {"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"};
  }
  return {"<|im_start|>", "<|im_end|>"};
}

const char* Name(ChatTemplate t) { return t == ChatTemplate::kLlama3 ? "llama3" : "chatml"; }

}  // namespace

std::string CanonicalRole(const std::string& role) {
  if (role == "human") return "user";
  if (role == "gpt" || role == "model") return "assistant";
  return role;
}

absl::StatusOr<ChatTemplate> ResolveChatTemplate(const std::string& name,
                                                 const Tokenizer& tokenizer) {
  ChatTemplate t;
  if (name == "llama3") {
    t = ChatTemplate::kLlama3;
  } else if (name == "chatml") {
    t = ChatTemplate::kChatMl;
  } else if (name == "tokenizer_default") {
    const std::string jinja = tokenizer.chat_template();
    if (jinja.find("<|start_header_id|>") != std::string::npos) {
      t = ChatTemplate::kLlama3;
    } else if (jinja.find("<|im_start|>") != std::string::npos) {
      t = ChatTemplate::kChatMl;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "chat_template: tokenizer_default needs a tokenizer_config.json chat_template that is "
          "Llama-3 or ChatML (the built-in templates); ",
          jinja.empty() ? "the tokenizer has none" : "this one is neither",
          "; set chat_template: llama3 or chatml"));
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("chat_template: unknown template '", name,
                     "' (built in: llama3, chatml, tokenizer_default)"));
  }
  for (const std::string& tok : SpecialTokens(t)) {
    if (!tokenizer.TokenId(tok).has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "chat_template ", Name(t), " needs the special token ", tok,
          " as one token of the tokenizer, which does not have it (use a Hugging Face tokenizer "
          "with the template's tokens)"));
    }
  }
  return t;
}

RenderedChat RenderChat(ChatTemplate t, const std::vector<ChatMessage>& messages) {
  RenderedChat r;
  if (t == ChatTemplate::kLlama3) r.text = "<|begin_of_text|>";
  for (const ChatMessage& m : messages) {
    RenderedChat::Turn turn;
    if (t == ChatTemplate::kLlama3) {
      absl::StrAppend(&r.text, "<|start_header_id|>", m.role, "<|end_header_id|>\n\n");
      turn.content_begin = r.text.size();
      r.text += std::string(absl::StripAsciiWhitespace(m.content));  // Jinja's | trim
      turn.content_end = turn.eot_begin = r.text.size();
      r.text += "<|eot_id|>";
      turn.eot_end = r.text.size();
    } else {
      absl::StrAppend(&r.text, "<|im_start|>", m.role, "\n");
      turn.content_begin = r.text.size();
      r.text += m.content;
      turn.content_end = turn.eot_begin = r.text.size();
      r.text += "<|im_end|>";
      turn.eot_end = r.text.size();
      r.text += "\n";
    }
    r.turns.push_back(turn);
  }
  return r;
}

absl::StatusOr<Example> TokenizeChat(ChatTemplate t, const std::vector<ChatMessage>& messages,
                                     const Tokenizer& tokenizer, const ChatMasking& masking) {
  static const std::vector<std::string> kModes = {"all", "turn", "last", "none"};
  if (std::find(kModes.begin(), kModes.end(), masking.train_on_eos) == kModes.end()) {
    return absl::InvalidArgumentError(absl::StrCat("train_on_eos must be one of ",
                                                   absl::StrJoin(kModes, ", "), ", got '",
                                                   masking.train_on_eos, "'"));
  }
  const RenderedChat r = RenderChat(t, messages);
  // Byte spans to train.
  std::vector<std::pair<size_t, size_t>> spans;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const bool trained =
        m.training.has_value()
            ? *m.training
            : masking.train_on_inputs ||
                  std::find(masking.roles_to_train.begin(), masking.roles_to_train.end(), m.role) !=
                      masking.roles_to_train.end();
    const RenderedChat::Turn& turn = r.turns[i];
    if (trained) spans.emplace_back(turn.content_begin, turn.content_end);
    const std::string& eos = masking.train_on_eos;
    if (eos == "all" || (eos == "turn" && trained) || (eos == "last" && i + 1 == messages.size())) {
      spans.emplace_back(turn.eot_begin, turn.eot_end);
    }
  }
  Example e;
  std::vector<std::pair<size_t, size_t>> offsets;
  e.input_ids = tokenizer.EncodeWithOffsets(r.text, &offsets);
  e.labels.assign(e.input_ids.size(), kIgnoreIndex);
  for (size_t k = 0; k < e.input_ids.size(); ++k) {
    for (const auto& [lo, hi] : spans) {
      if (offsets[k].first < hi && offsets[k].second > lo) {
        e.labels[k] = e.input_ids[k];
        break;
      }
    }
  }
  return e;
}

}  // namespace loom::data
