// The hand-written pre-tokenizer regexes (an internal unit of the engine, tested through its
// private header): where words are cut decides which merges can ever apply.
#include "../../engine/src/pretokenizer.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace infergate::engine {
namespace {

std::vector<std::string> split(PreTokenizer kind, std::string_view text) {
  std::vector<std::string_view> pieces;
  pre_tokenize(kind, text, pieces);
  return {pieces.begin(), pieces.end()};
}

using V = std::vector<std::string>;

TEST(PreTokenizer, Gpt2SplitsWordsNumbersPunctuationAndSpaces) {
  EXPECT_EQ(split(PreTokenizer::gpt2, "Hello, world! It's 2024..."),
            (V{"Hello", ",", " world", "!", " It", "'s", " 2024", "..."}));
  // \s+(?!\S) leaves the last whitespace character to the next word, even a newline.
  EXPECT_EQ(split(PreTokenizer::gpt2, "a   b\n\nc  "), (V{"a", "  ", " b", "\n", "\n", "c", "  "}));
  EXPECT_EQ(split(PreTokenizer::gpt2, "x\ty"), (V{"x", "\t", "y"}));
  EXPECT_EQ(split(PreTokenizer::gpt2, "DON'T"), (V{"DON", "'", "T"}));  // case-sensitive
  EXPECT_EQ(split(PreTokenizer::gpt2, "123456"), (V{"123456"}));
}

TEST(PreTokenizer, Llama3GroupsDigitsInThreesAndTakesOnePrefixCharacter) {
  EXPECT_EQ(split(PreTokenizer::llama3, "1234567 items"), (V{"123", "456", "7", " items"}));
  EXPECT_EQ(split(PreTokenizer::llama3, "DON'T (stop)"), (V{"DON", "'T", " (", "stop", ")"}));
  EXPECT_EQ(split(PreTokenizer::llama3, "end.\n\nNext"), (V{"end", ".\n\n", "Next"}));
  EXPECT_EQ(split(PreTokenizer::llama3, "a  \n  b"), (V{"a", "  \n", " ", " b"}));
  EXPECT_EQ(split(PreTokenizer::llama3, "\"quoted\""), (V{"\"quoted", "\""}));
  EXPECT_EQ(split(PreTokenizer::qwen2, "2024"), (V{"2", "0", "2", "4"}));
}

TEST(PreTokenizer, KnowsLettersOfOtherScripts) {
  EXPECT_EQ(split(PreTokenizer::llama3, "café Ελληνικά русский 日本語"),
            (V{"café", " Ελληνικά", " русский", " 日本語"}));
  EXPECT_EQ(split(PreTokenizer::gpt2, "naïve ½ ²"), (V{"naïve", " ½", " ²"}));
}

TEST(PreTokenizer, InvalidBytesArePunctuationAndNothingIsLost) {
  const std::string text = "ab\xff\xfe cd\xc3";
  EXPECT_EQ(split(PreTokenizer::gpt2, text), (V{"ab", "\xff\xfe", " cd", "\xc3"}));
  EXPECT_TRUE(split(PreTokenizer::llama3, "").empty());
}

TEST(PreTokenizer, KnowsTheGgufNames) {
  EXPECT_EQ(parse_pre_tokenizer(""), PreTokenizer::gpt2);
  EXPECT_EQ(parse_pre_tokenizer("default"), PreTokenizer::gpt2);
  EXPECT_EQ(parse_pre_tokenizer("llama-bpe"), PreTokenizer::llama3);
  EXPECT_EQ(parse_pre_tokenizer("qwen2"), PreTokenizer::qwen2);
  EXPECT_FALSE(parse_pre_tokenizer("tekken").has_value());
}

}  // namespace
}  // namespace infergate::engine
