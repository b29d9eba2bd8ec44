#!/usr/bin/env bash
# Quick start, command 1: from a fresh clone to a running gateway.
# Installs dependencies, builds, starts the local Postgres and Redis, applies migrations,
# and runs `infergate serve` in the foreground (Ctrl-C stops it; scripts/services.sh stop
# stops the databases).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

say "installing dependencies"
"$IG_ROOT/scripts/install-deps.sh"
say "building"
"$IG_ROOT/scripts/build.sh"
say "starting postgres and redis"
"$IG_ROOT/scripts/services.sh" start
say "applying migrations"
"$IG_BUILD_DIR/app/infergate" migrate --config "$IG_CONFIG"
say "starting infergate on port $(config_value server port 8080)"
exec "$IG_BUILD_DIR/app/infergate" serve --config "$IG_CONFIG"
