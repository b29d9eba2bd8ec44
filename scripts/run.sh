#!/usr/bin/env bash
# Quick start, command 1: from a fresh clone to a running gateway.
# Installs dependencies, builds, starts the local Postgres and Redis, applies migrations,
# generates a demo model (.local/models/demo-small.gguf, ~15M parameters, Q8_0) unless it
# exists, creates the demo tenant and prints a new API key for it, then runs `infergate serve`
# in the foreground with the config plus the demo model (Ctrl-C stops it;
# scripts/services.sh stop stops the databases).
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
model="$IG_LOCAL/models/demo-small.gguf"
if [ ! -f "$model" ]; then
  say "generating the demo model"
  mkdir -p "$IG_LOCAL/models"
  "$IG_BUILD_DIR/app/infergate" make-model --preset small --type q8_0 --out "$model"
fi
# The config as given, plus the demo model (unless the config already serves models).
demo_config="$IG_LOCAL/demo.toml"
cp "$IG_CONFIG" "$demo_config"
if ! grep -q '^\[\[models\]\]' "$IG_CONFIG"; then
  printf '\n[[models]]\nname = "demo-small"\nfile = "%s"\ntier = "small"\naliases = ["demo"]\n' "$model" >> "$demo_config"
fi
say "demo tenant"
key=$("$IG_BUILD_DIR/app/infergate" demo-setup --config "$demo_config" | tee /dev/stderr | grep -o 'ig_live_[0-9a-f]*_[0-9a-f]*' | head -1)
port=$(config_value server port 8080)
say "starting infergate on http://127.0.0.1:$port; try:"
printf '  curl http://127.0.0.1:%s/v1/chat/completions -H "Authorization: Bearer %s" \\\n' "$port" "$key" >&2
printf '       -H "Content-Type: application/json" -d %s\n' \
  "'{\"model\":\"demo-small\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],\"max_tokens\":16}'" >&2
exec "$IG_BUILD_DIR/app/infergate" serve --config "$demo_config"
