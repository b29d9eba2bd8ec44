#!/usr/bin/env bash
# Runs bench/gateway_bench against a real `infergate serve`: local Postgres and Redis
# (scripts/services.sh), the toy model answering 4 tokens, a tenant on an unlimited plan, access
# log off. Usage: bench/gateway_bench.sh [gateway_bench options, e.g. --connections 32]
# GATEWAY_BENCH_NO_BUILD=1 skips the build (INFERGATE_BUILD_DIR names the build to use); the
# option --target-only 1 measures infergate alone (for profiling it).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$IG_ROOT"
[ -n "${GATEWAY_BENCH_NO_BUILD:-}" ] || "$IG_ROOT/scripts/build.sh" infergate gateway_bench
"$IG_ROOT/scripts/services.sh" start >/dev/null
bin="$IG_BUILD_DIR/app/infergate"
work="$IG_LOCAL/gateway-bench"
mkdir -p "$work"
[ -f "$work/toy.gguf" ] || "$bin" make-model --preset toy --out "$work/toy.gguf" >/dev/null
# A database and a journal of the benchmark's own, made anew each run: Postgres' cost per
# usage record depends on what the ledger already holds (indexes, cache), so figures taken
# against a development database drift as it grows (and it would grow by every run).
db=infergate_bench
pg_port=$(config_value postgres port 54329)
"$PG_BIN/psql" -q -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
  -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db OWNER infergate" >/dev/null ||
  die "could not create the benchmark's database $db"
rm -rf "$work/journal"
port=18091
{
  sed -e "s/^port = 8080 /port = $port /" -e 's/^access_log = true /access_log = false/' \
      -e "s/^database = \"infergate\"/database = \"$db\"/" \
      -e "s#^dir = \".local/journal\"#dir = \"$work/journal\"#" "$IG_CONFIG"
  printf '\n[[models]]\nname = "toy"\nfile = "%s"\ntier = "small"\n' "$work/toy.gguf"
} > "$work/config.toml"
grep -q "^port = $port" "$work/config.toml" || die "could not set the port in $work/config.toml"
grep -q "^database = \"$db\"" "$work/config.toml" || die "could not set the database in $work/config.toml"
"$bin" migrate --config "$work/config.toml" >/dev/null
suffix=$(date +%s%N)
"$bin" plans create --config "$work/config.toml" --name "bench-$suffix" >/dev/null
"$bin" tenants create --config "$work/config.toml" --name "bench-$suffix" --plan "bench-$suffix" >/dev/null
key=$("$bin" keys create --config "$work/config.toml" --tenant "bench-$suffix" | grep -o 'ig_live_[0-9a-f]*_[0-9a-f]*' | head -1)
"$bin" serve --config "$work/config.toml" 2> "$work/serve.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
body='{"model":"toy","messages":[{"role":"user","content":"Hello"}],"max_tokens":4,"temperature":0}'
"$IG_BUILD_DIR/bench/gateway_bench" --target "http://127.0.0.1:$port/v1/chat/completions" --key "$key" \
  --body "$body" "$@"
