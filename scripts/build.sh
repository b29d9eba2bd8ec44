#!/usr/bin/env bash
# Configures and builds infergate (Release) into build/.
#   INFERGATE_CUDA=AUTO|ON|OFF (default AUTO)   INFERGATE_BUILD_DIR=path (default build/)
#   INFERGATE_CMAKE_ARGS="-D..." extra configure arguments
#   arguments: targets to build (default: everything, tests and benchmarks included)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

generator=()
if [ ! -f "$IG_BUILD_DIR/CMakeCache.txt" ] && command -v ninja >/dev/null; then
  generator=(-G Ninja)
fi
# shellcheck disable=SC2086
cmake -S "$IG_ROOT" -B "$IG_BUILD_DIR" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DINFERGATE_CUDA="${INFERGATE_CUDA:-AUTO}" ${INFERGATE_CMAKE_ARGS:-} >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$IG_BUILD_DIR" --parallel "$(nproc)" "${targets[@]}"
