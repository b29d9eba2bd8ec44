#!/usr/bin/env bash
# Quick start, command 2: the whole test suite (unit, integration, e2e; gpu tests skip
# themselves without a GPU). Installs dependencies and builds first. The integration and e2e
# tests start their own throwaway Postgres and Redis on free ports.
#   extra arguments go to ctest, e.g. scripts/test.sh -L unit
set -euo pipefail
source "$(dirname "$0")/lib.sh"

"$IG_ROOT/scripts/install-deps.sh"
t0=$(date +%s)
INFERGATE_CMAKE_ARGS="${INFERGATE_CMAKE_ARGS:-} -DINFERGATE_WERROR=ON" "$IG_ROOT/scripts/build.sh"
say "build took $(( $(date +%s) - t0 ))s; running tests"
cd "$IG_BUILD_DIR"
ctest --output-on-failure --timeout 300 -j "$(nproc)" "$@"
