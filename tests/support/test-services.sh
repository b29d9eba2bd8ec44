#!/usr/bin/env bash
# Throwaway PostgreSQL and Redis for the integration and e2e tests, on free ports.
#   test-services.sh start DIR     both, shared by a test run; writes DIR/env (PG_PORT=, REDIS_PORT=)
#   test-services.sh stop DIR      stops both and removes DIR
#   test-services.sh redis DIR PORT|0        a private Redis (prints its port)
#   test-services.sh stop-redis DIR PORT
#   test-services.sh postgres DIR PORT|0     a private Postgres (prints its port)
#   test-services.sh stop-postgres DIR
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib.sh"
# Throwaway data: no fsync, no snapshots; DEBUG SLEEP allowed (tests stall a server with it).
export PG_FSYNC=off REDIS_SAVE="" REDIS_EXTRA_ARGS="--enable-debug-command local"

# Below the kernel's ephemeral range (32768+), so no outgoing connection holds the port; a
# port another test takes at the same moment is retried by the callers.
free_port() {
  local p i
  for i in $(seq 1 500); do
    p=$(( (RANDOM % 12000) + 20000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  die "no free TCP port found"
}

cmd="${1:-}"; dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop|redis|stop-redis|postgres|stop-postgres DIR [PORT]" >&2; exit 2; }

case "$cmd" in
  start)
    "$0" stop "$dir" >/dev/null 2>&1 || true
    mkdir -p "$dir"
    for attempt in 1 2 3 4 5; do
      pg_port=$(free_port)
      start_postgres "$dir/postgres" "$pg_port" "$dir/postgres.log" && break
      [ "$attempt" = 5 ] && die "no free port for postgres"
    done
    for attempt in 1 2 3 4 5; do
      redis_port=$(free_port)
      start_redis "$dir/redis" "$redis_port" && break
      [ "$attempt" = 5 ] && die "no free port for redis"
    done
    printf 'PG_PORT=%s\nREDIS_PORT=%s\n' "$pg_port" "$redis_port" >"$dir/env"
    echo "test services: postgres on $pg_port, redis on $redis_port"
    ;;
  stop)
    if [ -f "$dir/env" ]; then
      # shellcheck disable=SC1091
      source "$dir/env"
      stop_redis "$dir/redis" "$REDIS_PORT"
    fi
    stop_postgres "$dir/postgres"
    rm -rf "$dir"
    ;;
  redis)
    if [ "${3:-0}" != 0 ]; then
      start_redis "$dir" "$3" || die "port $3 is taken"
      echo "$3"
    else
      for attempt in 1 2 3 4 5; do
        port=$(free_port)
        if start_redis "$dir" "$port"; then echo "$port"; exit 0; fi
      done
      die "no free port for redis"
    fi
    ;;
  stop-redis)
    stop_redis "$dir" "$3"
    ;;
  postgres)
    port="${3:-0}"; [ "$port" = 0 ] && port=$(free_port)
    mkdir -p "$(dirname "$dir")"
    start_postgres "$dir" "$port" "$dir.log" >/dev/null || die "port $port is taken"
    echo "$port"
    ;;
  stop-postgres)
    stop_postgres "$dir"
    ;;
  *)
    echo "unknown command $cmd" >&2; exit 2 ;;
esac
