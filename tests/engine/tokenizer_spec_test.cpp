// A bad tokenizer spec (from a damaged or unsupported GGUF file) is refused with a message that
// says what is wrong.
#include <string>

#include <gtest/gtest.h>

#include "engine/test_vocab.h"
#include "infergate/engine/tokenizer.h"

namespace infergate::engine {
namespace {

using ::infergate::engine::test::generated_tokenizer;
using ::infergate::engine::test::llama_spec;

// The message of the TokenizerError that building a Tokenizer from `spec` throws.
std::string error_of(TokenizerSpec spec) {
  try {
    Tokenizer t(std::move(spec));
  } catch (const TokenizerError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no TokenizerError";
  return {};
}

TokenizerSpec gpt2_spec() {
  return generated_tokenizer().spec();
}

TEST(TokenizerSpec, MergeNamingAMissingTokenIsRefused) {
  TokenizerSpec spec = gpt2_spec();
  spec.merges.push_back("zzz qqq");
  EXPECT_NE(error_of(spec).find("refers to 'zzz', which is not in the vocabulary"),
            std::string::npos)
      << error_of(spec);

  spec = gpt2_spec();
  spec.merges.push_back("nospace");
  EXPECT_NE(error_of(spec).find("is not two tokens separated by a space"), std::string::npos);
}

TEST(TokenizerSpec, IdsOutOfRangeAreRefused) {
  TokenizerSpec spec = gpt2_spec();
  spec.bos_id = 600;
  EXPECT_EQ(error_of(spec),
            "tokenizer: tokenizer.ggml.bos_token_id = 600 is out of range: the vocabulary has "
            "512 tokens (ids 0..511)");
  spec = gpt2_spec();
  spec.eos_id = -7;
  EXPECT_NE(error_of(spec).find("eos_token_id = -7"), std::string::npos);
}

TEST(TokenizerSpec, MissingByteTokensAreRefused) {
  TokenizerSpec spec = gpt2_spec();
  spec.tokens[10] = "something else";  // the token for byte 0x0A, "Ċ"
  EXPECT_NE(error_of(spec).find("no token 'Ċ' for byte <0x0A>"), std::string::npos)
      << error_of(spec);

  spec = llama_spec();
  spec.tokens[3 + 0x41] = "A";
  spec.unknown_id = -1;
  spec.token_types[0] = token_normal;
  EXPECT_NE(error_of(spec).find("lacks the byte token <0x41> and has no unknown token"),
            std::string::npos)
      << error_of(spec);
}

TEST(TokenizerSpec, InconsistentTablesAreRefused) {
  TokenizerSpec spec = gpt2_spec();
  spec.model = "bert";
  EXPECT_NE(error_of(spec).find("unsupported tokenizer.ggml.model 'bert'"), std::string::npos);

  spec = gpt2_spec();
  spec.pre = "tekken";
  EXPECT_NE(error_of(spec).find("unsupported tokenizer.ggml.pre 'tekken'"), std::string::npos);

  spec = llama_spec();
  spec.scores.pop_back();
  EXPECT_NE(error_of(spec).find("scores has 288 entries but there are 289 tokens"),
            std::string::npos)
      << error_of(spec);

  spec = llama_spec();
  spec.scores.clear();
  EXPECT_NE(error_of(spec).find("needs tokenizer.ggml.scores"), std::string::npos);

  spec = gpt2_spec();
  spec.token_types[3] = 9;
  EXPECT_NE(error_of(spec).find("token_type[3] = 9 is not a token type"), std::string::npos);

  spec = gpt2_spec();
  spec.tokens.clear();
  EXPECT_NE(error_of(spec).find("tokens is empty"), std::string::npos);

  spec = llama_spec();
  spec.tokens[3] = "<0xZZ>";
  EXPECT_NE(error_of(spec).find("has type byte (6) but is not of the form <0xNN>"),
            std::string::npos)
      << error_of(spec);
}

TEST(TokenizerSpec, TypesAreInferredWhenAbsent) {
  TokenizerSpec spec = llama_spec();
  spec.token_types.clear();
  const Tokenizer t(spec);
  EXPECT_TRUE(t.is_control(t.bos()));
  EXPECT_EQ(t.token_bytes(*t.find("<0x41>")), "A");
  EXPECT_EQ(t.decode(t.encode("Hello", true), true), "Hello");
}

}  // namespace
}  // namespace infergate::engine
