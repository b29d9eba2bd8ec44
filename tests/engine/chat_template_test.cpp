// Chat prompt formats: the exact text of each family, role validation, recognition of templates
// read from GGUF metadata, and that the generated vocabulary turns the markers into single ids.
#include "infergate/engine/chat_template.h"

#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

#include "engine/test_vocab.h"

namespace infergate::engine {
namespace {

const std::vector<ChatMessage> conversation = {
    {"system", "You are terse."},
    {"user", "Hi there. "},
    {"assistant", " Hello."},
    {"user", "What is 2+2?"},
};

TEST(ChatTemplate, RendersChatml) {
  EXPECT_EQ(render_chat(ChatStyle::chatml, conversation, "", true),
            "<|im_start|>system\nYou are terse.<|im_end|>\n"
            "<|im_start|>user\nHi there. <|im_end|>\n"
            "<|im_start|>assistant\n Hello.<|im_end|>\n"
            "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(render_chat(ChatStyle::chatml, std::span(conversation).first(2), "<s>", false),
            "<s><|im_start|>system\nYou are terse.<|im_end|>\n"
            "<|im_start|>user\nHi there. <|im_end|>\n");
}

TEST(ChatTemplate, RendersLlama3) {
  EXPECT_EQ(render_chat(ChatStyle::llama3, conversation, "<|begin_of_text|>", true),
            "<|begin_of_text|>"
            "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi there.<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, RendersLlama2WithTheSystemPromptFoldedIn) {
  EXPECT_EQ(render_chat(ChatStyle::llama2, conversation, "<s>", true),
            "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi there. [/INST] Hello. </s>"
            "<s>[INST] What is 2+2? [/INST]");
  const std::vector<ChatMessage> no_system = {{"user", "Hi"}};
  EXPECT_EQ(render_chat(ChatStyle::llama2, no_system, "<s>", true), "<s>[INST] Hi [/INST]");
}

// The std::invalid_argument message render_chat throws for `messages`.
std::string error_of(ChatStyle style, const std::vector<ChatMessage>& messages) {
  try {
    render_chat(style, messages, "", true);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return {};
}

TEST(ChatTemplate, RefusesBadRolesAndOrder) {
  for (ChatStyle s : {ChatStyle::chatml, ChatStyle::llama3, ChatStyle::llama2})
    EXPECT_EQ(error_of(s, {{"user", "a"}, {"tool", "b"}}),
              "chat message 1 has role 'tool': expected system, user or assistant");
  EXPECT_EQ(error_of(ChatStyle::llama2, {{"user", "a"}, {"user", "b"}}),
            "llama2 chat: message 1 has role 'user' but roles must alternate "
            "user/assistant/user/...");
  EXPECT_EQ(error_of(ChatStyle::llama2, {{"assistant", "a"}}),
            "llama2 chat: message 0 has role 'assistant' but roles must alternate "
            "user/assistant/user/...");
  EXPECT_EQ(error_of(ChatStyle::llama2, {{"user", "a"}, {"system", "b"}}),
            "llama2 chat: message 1 is a system message; only the first message may be one");
  EXPECT_EQ(error_of(ChatStyle::llama2, {{"system", "a"}}),
            "llama2 chat: needs at least one user message");
}

TEST(ChatTemplate, RecognizesTemplatesByTheirMarkers) {
  for (ChatStyle s : {ChatStyle::chatml, ChatStyle::llama3, ChatStyle::llama2}) {
    EXPECT_EQ(detect_chat_style(chat_template_text(s)), s);
    EXPECT_EQ(parse_chat_style(chat_style_name(s)), s);
  }
  EXPECT_EQ(detect_chat_style(""), ChatStyle::chatml);
  EXPECT_EQ(detect_chat_style("{{ something unknown }}"), ChatStyle::chatml);
  EXPECT_FALSE(parse_chat_style("vicuna").has_value());
}

TEST(ChatTemplate, StopStringsAreTheEndOfTurnMarkers) {
  EXPECT_EQ(chat_stop_strings(ChatStyle::chatml), (std::vector<std::string>{"<|im_end|>"}));
  EXPECT_EQ(chat_stop_strings(ChatStyle::llama3),
            (std::vector<std::string>{"<|eot_id|>", "<|end_of_text|>"}));
  EXPECT_EQ(chat_stop_strings(ChatStyle::llama2), (std::vector<std::string>{"</s>"}));
}

TEST(ChatTemplate, GeneratedVocabularyEncodesTheMarkersAsSingleTokens) {
  const Tokenizer& t = test::generated_tokenizer();
  const std::string prompt = render_chat(ChatStyle::chatml, conversation, "<s>", true);
  const auto ids = t.encode(prompt, false);
  EXPECT_EQ(ids.front(), t.bos());
  std::size_t starts = 0, ends = 0;
  for (std::int32_t id : ids) {
    starts += id == *t.find("<|im_start|>");
    ends += id == *t.find(chat_stop_strings(ChatStyle::chatml)[0]);
  }
  EXPECT_EQ(starts, 5u);
  EXPECT_EQ(ends, 4u);
}

}  // namespace
}  // namespace infergate::engine
