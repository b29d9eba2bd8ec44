// Chat prompt formats of the common model families: ChatML (Qwen, many fine-tunes), Llama-3 and
// Llama-2. Rendering is done natively here, not by a Jinja interpreter: the Jinja text exists only
// to be written into GGUF metadata and recognized when read back. Pure functions, thread-safe.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace infergate::engine {

enum class ChatStyle { chatml, llama3, llama2 };

struct ChatMessage {
  std::string role;  // system | user | assistant
  std::string content;
};

// "chatml" | "llama3" | "llama2"; nullopt for anything else.
std::optional<ChatStyle> parse_chat_style(std::string_view name);
std::string_view chat_style_name(ChatStyle style);

// Recognizes the well-known templates by their markers (<|im_start|>, <|start_header_id|>,
// [INST]); anything else is taken as ChatML.
ChatStyle detect_chat_style(std::string_view jinja_template);

// A Jinja template producing what render_chat produces, for tokenizer.chat_template.
std::string chat_template_text(ChatStyle style);

// The prompt text, to be encoded with add_bos = false and special tokens parsed. `bos_text` is
// the text of the BOS token when the model wants one ("" otherwise): it starts the prompt, and
// for llama2 it starts every [INST] turn, as in Meta's template. llama2 folds a leading system
// message into the first turn with <<SYS>>, closes assistant turns with "</s>", and ignores
// add_generation_prompt (its prompt always ends ready for the answer).
// Throws std::invalid_argument naming an unknown role or, for llama2, a broken user/assistant
// alternation or a system message that is not first.
std::string render_chat(ChatStyle style, std::span<const ChatMessage> messages,
                        std::string_view bos_text, bool add_generation_prompt);

// Texts that end the assistant's turn ("<|im_end|>", "<|eot_id|>", "</s>"). They are control
// tokens, which decode to "", so stop on their ids: Tokenizer::find(text).
std::vector<std::string> chat_stop_strings(ChatStyle style);

}  // namespace infergate::engine
