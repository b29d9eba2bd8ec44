#include <string>

#include "infergate/engine/bpe_trainer.h"

// Defined in the file cmake/EmbedText.cmake generates from engine/data/corpus/*.txt. The text is
// in parts because a compiler need not accept string literals longer than 64 KiB.
namespace infergate::engine::corpus_text {
std::string_view part_1();
std::string_view part_2();
std::string_view part_3();
}  // namespace infergate::engine::corpus_text

namespace infergate::engine {

std::string_view builtin_corpus() {
  static const std::string text = [] {
    std::string t;
    for (std::string_view part :
         {corpus_text::part_1(), corpus_text::part_2(), corpus_text::part_3()})
      t.append(part);
    return t;
  }();
  return text;
}

}  // namespace infergate::engine
