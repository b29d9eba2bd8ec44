#!/usr/bin/env bash
# Starts, stops or shows the local PostgreSQL 15 and Redis 7 used by `infergate serve`.
# Their data lives in .local/ of this checkout (git-ignored) and is kept between runs;
# ports come from config/infergate.toml (or INFERGATE_POSTGRES__PORT / INFERGATE_REDIS__PORT).
#   scripts/services.sh start | stop | status
set -euo pipefail
source "$(dirname "$0")/lib.sh"

pg_port=$(config_value postgres port 54329)
redis_port=$(config_value redis port 63799)
mkdir -p "$IG_LOCAL/log"

case "${1:-}" in
  start)
    start_postgres "$IG_LOCAL/postgres" "$pg_port" "$IG_LOCAL/log/postgres.log" ||
      die "port $pg_port is in use by something else; set postgres.port in the config (or INFERGATE_POSTGRES__PORT)"
    start_redis "$IG_LOCAL/redis" "$redis_port" ||
      die "port $redis_port is in use by something else; set redis.port in the config (or INFERGATE_REDIS__PORT)"
    say "postgres on 127.0.0.1:$pg_port, redis on 127.0.0.1:$redis_port (data in .local/)"
    ;;
  stop)
    stop_redis "$IG_LOCAL/redis" "$redis_port"
    stop_postgres "$IG_LOCAL/postgres"
    say "services stopped"
    ;;
  status)
    rc=0
    if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; then echo "postgres: up on $pg_port"; else echo "postgres: down ($pg_port)"; rc=1; fi
    if redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1; then echo "redis: up on $redis_port"; else echo "redis: down ($redis_port)"; rc=1; fi
    exit $rc
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
