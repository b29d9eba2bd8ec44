// BPE training on the builtin corpus: the layout make-model relies on, determinism, speed, and
// the arguments it refuses.
#include "infergate/engine/bpe_trainer.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include <gtest/gtest.h>

#include "engine/test_vocab.h"

namespace infergate::engine {
namespace {

using ::infergate::engine::test::is_valid_utf8;

TEST(BuiltinCorpus, IsSizedProseWithSomeNonAscii) {
  const std::string_view c = builtin_corpus();
  EXPECT_GE(c.size(), 100u * 1024);
  EXPECT_LE(c.size(), 300u * 1024);
  EXPECT_TRUE(is_valid_utf8(c));
  for (const char* s : {"café", "naïve", "Ελληνικά", "русский", "日本語"})
    EXPECT_NE(c.find(s), std::string_view::npos) << s;
}

TEST(BpeTrainer, ProducesTheLayoutMakeModelWrites) {
  const auto specials = default_special_tokens();
  ASSERT_EQ(specials, (std::vector<std::string>{"<s>", "</s>", "<|im_start|>", "<|im_end|>"}));
  const TokenizerSpec spec = train_byte_level_bpe(builtin_corpus(), 512, specials);
  EXPECT_EQ(spec.model, "gpt2");
  EXPECT_EQ(spec.pre, "llama-bpe");
  ASSERT_EQ(spec.tokens.size(), 512u);
  ASSERT_EQ(spec.token_types.size(), 512u);
  EXPECT_EQ(spec.tokens[0], "Ā");   // byte 0x00 in the byte-level alphabet
  EXPECT_EQ(spec.tokens[32], "Ġ");  // space
  EXPECT_EQ(spec.tokens[65], "A");
  for (std::size_t i = 0; i < 508; ++i)
    EXPECT_EQ(spec.token_types[i], token_normal);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(spec.tokens[508 + i], specials[i]);
    EXPECT_EQ(spec.token_types[508 + i], token_control);
  }
  EXPECT_EQ(spec.bos_id, 508);
  EXPECT_EQ(spec.eos_id, 509);
  EXPECT_GE(spec.merges.size(), 512u - 256 - 4);
  const Tokenizer t(spec);  // validates: merges refer to tokens, byte tokens present
  // Every learned token is reachable: encoding its bytes gives that one token.
  for (std::int32_t id = 256; id < 508; ++id) {
    const std::string bytes = t.token_bytes(id);
    EXPECT_EQ(t.encode(bytes, false, false), (std::vector<std::int32_t>{id})) << spec.tokens[id];
  }
}

TEST(BpeTrainer, IsDeterministic) {
  const auto specials = default_special_tokens();
  const TokenizerSpec a = train_byte_level_bpe(builtin_corpus(), 700, specials);
  const TokenizerSpec b = train_byte_level_bpe(builtin_corpus(), 700, specials);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.merges, b.merges);
}

TEST(BpeTrainer, CompressesTheText) {
  const Tokenizer small(train_byte_level_bpe(builtin_corpus(), 512, default_special_tokens()));
  const Tokenizer large(train_byte_level_bpe(builtin_corpus(), 4096, default_special_tokens()));
  const std::string_view text = builtin_corpus().substr(0, 20000);
  const std::size_t n_small = small.encode(text, false).size();
  const std::size_t n_large = large.encode(text, false).size();
  EXPECT_LT(n_small, text.size() / 2);
  EXPECT_LT(n_large, n_small * 3 / 4);
  EXPECT_EQ(large.decode(large.encode(text, false)), text);
}

TEST(BpeTrainer, TrainsTheToyVocabularyQuickly) {
  // The toy model is built inside unit tests; its vocabulary must cost a fraction of a second
  // (a loose bound here, as the test machine may be busy).
  const auto start = std::chrono::steady_clock::now();
  const TokenizerSpec spec = train_byte_level_bpe(builtin_corpus(), 512, default_special_tokens());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(spec.tokens.size(), 512u);
  EXPECT_LT(elapsed, std::chrono::seconds(2));
}

TEST(BpeTrainer, LearnedTokensNeverSpellASpecialToken) {
  // A special token that is also a frequent word must not be learned as a normal token too, or
  // find() and the special-token split would be ambiguous. Here the merge that would complete
  // "strike" comes fifth; training skips it and goes on with "banana".
  std::string corpus;
  for (int i = 0; i < 100; ++i)
    corpus += "strike\nstrike\nbanana\n";
  const std::vector<std::string> specials = {"strike"};
  const TokenizerSpec spec = train_byte_level_bpe(corpus, 264, specials);
  EXPECT_EQ(std::count(spec.tokens.begin(), spec.tokens.end(), "strike"), 1);
  EXPECT_EQ(spec.tokens.back(), "strike");
  const Tokenizer t(spec);
  EXPECT_EQ(t.encode("strike", false), (std::vector<std::int32_t>{263}));
  EXPECT_GT(t.encode("strike", false, /*parse_special=*/false).size(), 1u);
}

TEST(BpeTrainer, RefusesImpossibleArguments) {
  const auto specials = default_special_tokens();
  EXPECT_THROW(train_byte_level_bpe(builtin_corpus(), 259, specials), std::invalid_argument);
  EXPECT_THROW(train_byte_level_bpe("tiny text", 1000, specials), std::invalid_argument);
  const std::vector<std::string> twice = {"<s>", "<s>"};
  EXPECT_THROW(train_byte_level_bpe(builtin_corpus(), 512, twice), std::invalid_argument);
  const std::vector<std::string> empty = {""};
  EXPECT_THROW(train_byte_level_bpe(builtin_corpus(), 512, empty), std::invalid_argument);
  const std::vector<std::string> byte = {"A"};
  EXPECT_THROW(train_byte_level_bpe(builtin_corpus(), 512, byte), std::invalid_argument);
}

}  // namespace
}  // namespace infergate::engine
