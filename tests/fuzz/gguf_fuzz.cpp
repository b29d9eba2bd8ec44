// libFuzzer target for the GGUF reader and the llama loader (built by scripts/fuzz.sh). The
// documented errors are expected answers to malformed input; any other exception escapes and
// aborts, and sanitizer reports crash, so libFuzzer records the input.
#include <cstddef>
#include <cstdint>

#include "gguf_load_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace ie = infergate::engine;
  try {
    ie::fuzzing::load_and_touch({data, size});
  } catch (const ie::GgufError&) {
  } catch (const ie::ModelError&) {
  }
  return 0;
}
