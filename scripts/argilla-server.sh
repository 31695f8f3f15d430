#!/usr/bin/env bash
# A real Argilla server on loopback, for the tests and for trying the review loop locally.
#
#   scripts/argilla-server.sh start    # prints ARGILLA_API_URL=... and ARGILLA_API_KEY=... (owner)
#   scripts/argilla-server.sh status
#   scripts/argilla-server.sh stop
#
# argilla-server 2.8.0 pins an old typer and needs click<8.2, so it gets its own virtual
# environment (ARGILLA_VENV, default ~/.cache/magpie-hub/argilla-venv, kept between runs).
# It runs with SQLite, Debian's redis-server (installed with apt-get when missing) and
# osmem-server (an in-memory OpenSearch-compatible search engine). State, logs and the
# API keys live in MAGPIE_HUB_ARGILLA_HOME (default ~/.cache/magpie-hub/argilla-home).
# Users: owner `owner` (its key is printed) and annotators `annotator` and `annotator2`.
set -euo pipefail

HOME_DIR="${MAGPIE_HUB_ARGILLA_HOME:-$HOME/.cache/magpie-hub/argilla-home}"
VENV="${ARGILLA_VENV:-$HOME/.cache/magpie-hub/argilla-venv}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$HOME_DIR"
log() { echo "argilla-server.sh: $*" >&2; }

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
alive() { [ -f "$HOME_DIR/$1.pid" ] && kill -0 "$(cat "$HOME_DIR/$1.pid")" 2>/dev/null; }

print_env() {
  echo "ARGILLA_API_URL=$(cat "$HOME_DIR/url")"
  echo "ARGILLA_API_KEY=$(cat "$HOME_DIR/owner.key")"
}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import argilla_server, osmem_server" 2>/dev/null; then
    log "creating $VENV (argilla-server 2.8.0, osmem-server, click<8.2)"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q "argilla-server==2.8.0" "osmem-server==0.1.6" "click<8.2" >&2
  fi
}

ensure_redis() {
  if ! command -v redis-server >/dev/null; then
    log "installing Debian's redis-server"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >&2
  fi
}

wait_http() {  # url, seconds
  local deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
}

start() {
  if alive argilla && wait_http "$(cat "$HOME_DIR/url")/api/_status" 5; then
    print_env
    return
  fi
  stop >/dev/null 2>&1 || true
  ensure_venv
  ensure_redis
  local redis_port os_port port
  redis_port=$(free_port); os_port=$(free_port); port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize yes --pidfile "$HOME_DIR/redis.pid" --logfile "$HOME_DIR/redis.log" --dir "$HOME_DIR"
  local osmem
  osmem="$("$VENV/bin/python" -c 'import os, osmem_server; print(os.path.join(os.path.dirname(osmem_server.__file__), "bin", "osmem-server"))')"
  nohup "$osmem" --addr "127.0.0.1:$os_port" --no-stdin-watch >"$HOME_DIR/osmem.log" 2>&1 </dev/null &
  echo $! >"$HOME_DIR/osmem.pid"
  wait_http "http://127.0.0.1:$os_port" 30 || { log "osmem-server did not start"; exit 1; }

  export ARGILLA_HOME_PATH="$HOME_DIR/data"
  export ARGILLA_DATABASE_URL="sqlite+aiosqlite:///$HOME_DIR/data/argilla.db?check_same_thread=False"
  export ARGILLA_SEARCH_ENGINE=opensearch
  export ARGILLA_ELASTICSEARCH="http://127.0.0.1:$os_port"
  export ARGILLA_REDIS_URL="redis://127.0.0.1:$redis_port/0"
  export ARGILLA_ENABLE_TELEMETRY=0
  mkdir -p "$ARGILLA_HOME_PATH"
  local py="$VENV/bin/python"
  log "migrating the database"
  "$py" -m argilla_server database migrate >"$HOME_DIR/migrate.log" 2>&1
  for user in owner annotator annotator2; do
    local role=annotator
    [ "$user" = owner ] && role=owner
    if [ ! -f "$HOME_DIR/$user.key" ]; then
      "$PYTHON" -c 'import secrets; print("mh-" + secrets.token_hex(16))' >"$HOME_DIR/$user.key"
    fi
    if ! "$py" -m argilla_server database users create --username "$user" --role "$role" \
      --first-name "$user" --password "password-$user" --api-key "$(cat "$HOME_DIR/$user.key")" \
      >"$HOME_DIR/user-$user.log" 2>&1; then
      grep -q "already exists" "$HOME_DIR/user-$user.log" || {
        log "could not create user $user; see $HOME_DIR/user-$user.log"
        exit 1
      }
    fi
  done
  chmod 600 "$HOME_DIR"/*.key
  nohup "$py" -m uvicorn argilla_server:app --host 127.0.0.1 --port "$port" \
    >"$HOME_DIR/server.log" 2>&1 </dev/null &
  echo $! >"$HOME_DIR/argilla.pid"
  echo "http://127.0.0.1:$port" >"$HOME_DIR/url"
  if ! wait_http "http://127.0.0.1:$port/api/_status" 120; then
    log "the server did not answer; see $HOME_DIR/server.log"
    tail -20 "$HOME_DIR/server.log" >&2
    exit 1
  fi
  print_env
}

stop() {
  for name in argilla osmem; do
    if alive "$name"; then kill "$(cat "$HOME_DIR/$name.pid")" 2>/dev/null || true; fi
    rm -f "$HOME_DIR/$name.pid"
  done
  if alive redis; then kill "$(cat "$HOME_DIR/redis.pid")" 2>/dev/null || true; fi
  rm -f "$HOME_DIR/redis.pid"
  log "stopped"
}

status() {
  if alive argilla && wait_http "$(cat "$HOME_DIR/url")/api/_status" 2; then
    echo "running at $(cat "$HOME_DIR/url")"
  else
    echo "not running"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
