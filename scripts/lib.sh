# Shared helpers for the scripts in this folder. Source it; do not run it.
# shellcheck shell=bash

IG_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IG_BUILD_DIR="${INFERGATE_BUILD_DIR:-$IG_ROOT/build}"
IG_LOCAL="$IG_ROOT/.local"            # git-ignored: local service data and logs
IG_CONFIG="${INFERGATE_CONFIG:-$IG_ROOT/config/infergate.toml}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# config_value SECTION KEY DEFAULT: the environment override INFERGATE_<SECTION>__<KEY> if set,
# else the value in the config file, else DEFAULT. Handles the simple `key = value` lines that
# config/infergate.toml uses (the server itself parses the full TOML).
config_value() {
  local section="$1" key="$2" default="$3" env_name v
  env_name="INFERGATE_${section^^}__${key^^}"
  if [ -n "${!env_name:-}" ]; then printf '%s' "${!env_name}"; return; fi
  v=""
  if [ -f "$IG_CONFIG" ]; then
    v=$(awk -v s="[$section]" -v k="$key" '
      /^[[:space:]]*\[/ { gsub(/[[:space:]]/, ""); cur = $0; next }
      cur == s {
        line = $0; sub(/#.*/, "", line)
        n = index(line, "=")
        if (n == 0) next
        name = substr(line, 1, n - 1); gsub(/[[:space:]]/, "", name)
        if (name != k) next
        val = substr(line, n + 1); gsub(/^[[:space:]]+|[[:space:]]+$/, "", val); gsub(/^"|"$/, "", val)
        print val; exit
      }' "$IG_CONFIG")
  fi
  printf '%s' "${v:-$default}"
}

# Postgres refuses to run as root: as root, run its tools as the `postgres` system user.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Makes a directory that the Postgres server user can own and use.
pg_dir() {
  mkdir -p "$1"
  if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$1"
    as_pg test -w "$1" ||
      die "the postgres user cannot write $1 (a parent folder is not world-traversable); clone the repo under a readable path such as /work or /srv"
  fi
  chmod 700 "$1"
}

# wait_for DESCRIPTION SECONDS COMMAND...: retries COMMAND until it succeeds.
wait_for() {
  local what="$1" secs="$2"; shift 2
  local i
  for ((i = 0; i < secs * 10; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  die "$what did not come up within ${secs}s"
}

# start_postgres DATADIR PORT LOGFILE: initializes (first time) and starts a PostgreSQL 15
# cluster listening on 127.0.0.1:PORT, with a trusted `infergate` role and database.
start_postgres() {
  local data="$1" port="$2" logfile="$3" fresh=0
  if [ ! -f "$data/PG_VERSION" ]; then
    pg_dir "$data"
    as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
      >"$logfile.initdb" 2>&1 || { cat "$logfile.initdb" >&2; die "initdb failed"; }
    fresh=1
  fi
  touch "$logfile"; [ "$(id -u)" = 0 ] && chown postgres:postgres "$logfile"
  if ! as_pg "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    if ! as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$logfile" -w -t 30 start \
      -o "-p $port -c listen_addresses=127.0.0.1 -k $data -c fsync=${PG_FSYNC:-on} -c max_connections=200" \
      >/dev/null; then
      if grep -q "Address already in use" "$logfile"; then return 1; fi
      tail -20 "$logfile" >&2
      die "postgres failed to start on port $port"
    fi
  fi
  wait_for "postgres on port $port" 30 "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port"
  if [ "$fresh" = 1 ]; then
    "$PG_BIN/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
      -c "CREATE ROLE infergate LOGIN SUPERUSER" -c "CREATE DATABASE infergate OWNER infergate" \
      >/dev/null || die "could not create the infergate role and database"
  fi
}

stop_postgres() {
  local data="$1"
  [ -f "$data/PG_VERSION" ] || return 0
  if as_pg "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    as_pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null
  fi
}

# start_redis DIR PORT: a Redis 7 on 127.0.0.1:PORT, data and log in DIR, daemonized.
# Returns 1 (without exiting) when the port is taken, so callers can pick another.
start_redis() {
  local dir="$1" port="$2" i
  mkdir -p "$dir"
  if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then return 0; fi
  : >"$dir/redis.log"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --save "${REDIS_SAVE:-60 1}" \
    --appendonly no --protected-mode no ${REDIS_EXTRA_ARGS:-} >/dev/null ||
    die "redis failed to start on port $port"
  for ((i = 0; i < 150; i++)); do
    if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then return 0; fi
    if grep -q "Address already in use\|Could not create server TCP listening socket" \
      "$dir/redis.log" 2>/dev/null; then
      return 1
    fi
    sleep 0.1
  done
  die "redis on port $port did not come up within 15s (see $dir/redis.log)"
}

stop_redis() {
  local dir="$1" port="$2"
  if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then
    redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
  fi
  if [ -f "$dir/redis.pid" ]; then
    local pid; pid=$(cat "$dir/redis.pid")
    kill "$pid" 2>/dev/null || true
    rm -f "$dir/redis.pid"
  fi
}
