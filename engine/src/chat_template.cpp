// The three prompt formats, written out natively. Each render function follows its family's
// reference Jinja template (the one chat_template_text returns) character for character.
#include "infergate/engine/chat_template.h"

#include <stdexcept>

namespace infergate::engine {
namespace {

void check_role(const ChatMessage& m, std::size_t i) {
  if (m.role != "system" && m.role != "user" && m.role != "assistant")
    throw std::invalid_argument("chat message " + std::to_string(i) + " has role '" + m.role +
                                "': expected system, user or assistant");
}

// Jinja's trim / Python's str.strip(): leading and trailing whitespace.
std::string_view trim(std::string_view s) {
  constexpr std::string_view ws = " \t\n\r\f\v";
  const std::size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

std::string render_chatml(std::span<const ChatMessage> messages, std::string_view bos,
                          bool add_generation_prompt) {
  std::string out(bos);
  for (const ChatMessage& m : messages)
    out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

std::string render_llama3(std::span<const ChatMessage> messages, std::string_view bos,
                          bool add_generation_prompt) {
  std::string out(bos);
  for (const ChatMessage& m : messages) {
    out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n";
    out += trim(m.content);
    out += "<|eot_id|>";
  }
  if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

std::string render_llama2(std::span<const ChatMessage> messages, std::string_view bos) {
  std::string system;
  bool has_system = false;
  if (!messages.empty() && messages.front().role == "system") {
    system = messages.front().content;
    has_system = true;
    messages = messages.subspan(1);
  }
  if (messages.empty()) throw std::invalid_argument("llama2 chat: needs at least one user message");
  std::string out;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const std::size_t n = i + (has_system ? 1 : 0);
    if (m.role == "system")
      throw std::invalid_argument("llama2 chat: message " + std::to_string(n) +
                                  " is a system message; only the first message may be one");
    const std::string_view expected = i % 2 == 0 ? "user" : "assistant";
    if (m.role != expected)
      throw std::invalid_argument("llama2 chat: message " + std::to_string(n) + " has role '" +
                                  m.role + "' but roles must alternate user/assistant/user/...");
    if (m.role == "user") {
      std::string content = m.content;
      if (i == 0 && has_system) content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content;
      out += bos;
      out += "[INST] ";
      out += trim(content);
      out += " [/INST]";
    } else {
      out += " ";
      out += trim(m.content);
      out += " </s>";
    }
  }
  return out;
}

}  // namespace

std::optional<ChatStyle> parse_chat_style(std::string_view name) {
  if (name == "chatml") return ChatStyle::chatml;
  if (name == "llama3") return ChatStyle::llama3;
  if (name == "llama2") return ChatStyle::llama2;
  return std::nullopt;
}

std::string_view chat_style_name(ChatStyle style) {
  switch (style) {
    case ChatStyle::chatml:
      return "chatml";
    case ChatStyle::llama3:
      return "llama3";
    case ChatStyle::llama2:
      return "llama2";
  }
  return "chatml";
}

ChatStyle detect_chat_style(std::string_view jinja_template) {
  if (jinja_template.find("<|im_start|>") != std::string_view::npos) return ChatStyle::chatml;
  if (jinja_template.find("<|start_header_id|>") != std::string_view::npos)
    return ChatStyle::llama3;
  if (jinja_template.find("[INST]") != std::string_view::npos) return ChatStyle::llama2;
  return ChatStyle::chatml;
}

std::string chat_template_text(ChatStyle style) {
  switch (style) {
    case ChatStyle::chatml:
      return "{{ bos_token }}{% for message in messages %}"
             "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
             "'\\n' }}{% endfor %}"
             "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    case ChatStyle::llama3:
      return "{{ bos_token }}{% for message in messages %}"
             "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + "
             "message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
             "{% if add_generation_prompt %}"
             "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
    case ChatStyle::llama2:
      return "{% if messages[0]['role'] == 'system' %}"
             "{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] "
             "%}"
             "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif "
             "%}"
             "{% for message in loop_messages %}"
             "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
             "{{ raise_exception('Conversation roles must alternate user/assistant/user/...') }}"
             "{% endif %}"
             "{% if loop.index0 == 0 and system_message != false %}"
             "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + "
             "message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}"
             "{% if message['role'] == 'user' %}"
             "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
             "{% elif message['role'] == 'assistant' %}"
             "{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";
  }
  return {};
}

std::string render_chat(ChatStyle style, std::span<const ChatMessage> messages,
                        std::string_view bos_text, bool add_generation_prompt) {
  for (std::size_t i = 0; i < messages.size(); ++i)
    check_role(messages[i], i);
  switch (style) {
    case ChatStyle::chatml:
      return render_chatml(messages, bos_text, add_generation_prompt);
    case ChatStyle::llama3:
      return render_llama3(messages, bos_text, add_generation_prompt);
    case ChatStyle::llama2:
      return render_llama2(messages, bos_text);
  }
  return {};
}

std::vector<std::string> chat_stop_strings(ChatStyle style) {
  switch (style) {
    case ChatStyle::chatml:
      return {"<|im_end|>"};
    case ChatStyle::llama3:
      return {"<|eot_id|>", "<|end_of_text|>"};
    case ChatStyle::llama2:
      return {"</s>"};
  }
  return {};
}

}  // namespace infergate::engine
