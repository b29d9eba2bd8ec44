#!/usr/bin/env bash
# Fuzzes the GGUF reader and the llama loader with libFuzzer for SECONDS (default 300), on one
# core. Builds the target with clang++ straight from the sources it needs (no CMake project under
# clang), writes the seed files into tests/fuzz/corpus/gguf/, keeps the growing corpus in the
# build folder, and copies every input that crashed into tests/fuzz/crashes/, where the
# engine_tests GgufCorpus test replays it from then on.
#   scripts/fuzz.sh [SECONDS]        environment: INFERGATE_FUZZ_DIR (build folder)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

seconds="${1:-300}"
out="${INFERGATE_FUZZ_DIR:-$IG_ROOT/build-fuzz/clang-fuzz}"
seeds="$IG_ROOT/tests/fuzz/corpus/gguf"
crashes="$IG_ROOT/tests/fuzz/crashes"
cxx="${CXX_FUZZ:-clang++}"
command -v "$cxx" >/dev/null || die "$cxx not found (apt-get install clang)"
mkdir -p "$out/obj" "$out/corpus" "$out/artifacts" "$seeds" "$crashes"

# The loader and what it pulls in: GGUF, model, tokenizer; weights.cpp for the FP16/Q8_0 helpers.
sources=(
  engine/src/gguf_reader.cpp engine/src/gguf_writer.cpp engine/src/model.cpp
  engine/src/tokenizer.cpp engine/src/tokenizer_data.cpp engine/src/stream_decoder.cpp
  engine/src/bpe_byte_level.cpp engine/src/bpe_sentencepiece.cpp engine/src/byte_level.cpp
  engine/src/pretokenizer.cpp engine/src/unicode_class.cpp engine/src/utf8.cpp
  kernels/cpu/weights.cpp
)
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer "-fsanitize=address,undefined"
  -fno-sanitize-recover=undefined -I"$IG_ROOT/engine/include" -I"$IG_ROOT/kernels/include"
  -I"$IG_ROOT/tests/fuzz")

say "building the fuzz target with $cxx in $out"
objs=()
for s in "${sources[@]}"; do
  o="$out/obj/$(basename "${s%.cpp}").o"
  if [ ! -f "$o" ] || [ "$IG_ROOT/$s" -nt "$o" ] || [ "$0" -nt "$o" ]; then
    "$cxx" "${flags[@]}" -fsanitize=fuzzer-no-link -c "$IG_ROOT/$s" -o "$o"
  fi
  objs+=("$o")
done
"$cxx" "${flags[@]}" -fsanitize=fuzzer "$IG_ROOT/tests/fuzz/gguf_fuzz.cpp" "${objs[@]}" -o "$out/gguf_fuzz"
"$cxx" "${flags[@]}" "$IG_ROOT/tests/fuzz/gguf_seeds.cpp" "${objs[@]}" -o "$out/gguf_seeds"

say "writing seeds into ${seeds#"$IG_ROOT"/}"
"$out/gguf_seeds" "$seeds"

say "fuzzing for ${seconds}s (corpus in $out/corpus)"
# One process, one core (what -jobs=1 -workers=1 amounts to, minus the fuzz-0.log it leaves in
# the working directory). New inputs go to the first folder only; the seeds and the kept
# crashes are read first, so a crash that is not fixed yet stops the run at once.
rc=0
"$out/gguf_fuzz" "$out/corpus" "$seeds" "$crashes" \
  -max_len=65536 -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -dict="$IG_ROOT/tests/fuzz/gguf.dict" -artifact_prefix="$out/artifacts/" \
  -print_final_stats=1 2>&1 | tee "$out/fuzz.log" || rc=$?

found=0
for f in "$out"/artifacts/*; do
  [ -f "$f" ] || continue
  cp -n "$f" "$crashes/"
  say "crash input kept: tests/fuzz/crashes/$(basename "$f")"
  found=1
done
[ "$found" = 0 ] || die "the fuzzer found crashes (inputs copied to tests/fuzz/crashes/); fix them, then rerun"
[ "$rc" = 0 ] || die "the fuzzer exited with status $rc (see $out/fuzz.log)"
say "no crashes"
