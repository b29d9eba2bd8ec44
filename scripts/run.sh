#!/usr/bin/env bash
# Quick start, command 1: from a fresh clone to a running gateway.
# Installs dependencies, builds, starts the local Postgres and Redis, applies migrations,
# creates the demo tenant and prints a new API key for it, then runs `infergate serve` in the
# foreground (Ctrl-C stops it; scripts/services.sh stop stops the databases).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

cd "$IG_ROOT"  # relative paths in the config (journal.dir) are relative to the checkout
say "installing dependencies"
"$IG_ROOT/scripts/install-deps.sh"
say "building"
"$IG_ROOT/scripts/build.sh" infergate
say "starting postgres and redis"
"$IG_ROOT/scripts/services.sh" start
say "applying migrations"
"$IG_BUILD_DIR/app/infergate" migrate --config "$IG_CONFIG"
say "demo tenant"
"$IG_BUILD_DIR/app/infergate" demo-setup --config "$IG_CONFIG"
port=$(config_value server port 8080)
say "starting infergate on http://127.0.0.1:$port  (try: curl http://127.0.0.1:$port/readyz)"
exec "$IG_BUILD_DIR/app/infergate" serve --config "$IG_CONFIG"
