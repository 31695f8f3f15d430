#!/usr/bin/env bash
# A real Argilla server on loopback, for the tests and for trying the review loop locally.
#
#   eval "$(scripts/argilla-server.sh start)"   # sets ARGILLA_API_URL and ARGILLA_API_KEY (owner)
#   scripts/argilla-server.sh status
#   scripts/argilla-server.sh stop
#
# `start` prints only `export ARGILLA_API_URL=...` and `export ARGILLA_API_KEY=...` on stdout;
# everything else (progress, how to sign in to the UI, errors) goes to stderr. It is a no-op
# printing the same lines when the server already runs.
#
# argilla-server 2.8.0 pins an old typer and needs click<8.2, so it gets its own virtual
# environment (ARGILLA_VENV, default ~/.cache/magpie-hub/argilla-venv, kept between runs).
# It runs with SQLite, Debian's redis-server (installed with apt-get when missing) and
# osmem-server (an in-memory OpenSearch-compatible search engine), through
# scripts/argilla_local.py, which migrates, creates the users, rebuilds the search indices
# after a restart and works around osmem's missing scripted updates (see its docstring).
#
# State lives in MAGPIE_HUB_ARGILLA_HOME (default ~/.cache/magpie-hub/argilla-home) and is
# kept across stop/start: the SQLite database (data/argilla.db), and per user <user>.key (API
# key) and <user>.password (UI password), generated once, mode 600. Users: the owner `owner`
# (its key is the one printed) and the annotators `annotator` and `annotator2`.
#
# The port is MAGPIE_HUB_ARGILLA_PORT, else the one of the previous start (kept in
# HOME/port), else 6900; the URL is http://127.0.0.1:PORT. A port taken by another program
# is an error (nothing is started then).
set -euo pipefail

SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HOME_DIR="${MAGPIE_HUB_ARGILLA_HOME:-$HOME/.cache/magpie-hub/argilla-home}"
VENV="${ARGILLA_VENV:-$HOME/.cache/magpie-hub/argilla-venv}"
PYTHON="${PYTHON:-python3}"
DEFAULT_PORT=6900
USERS=(owner annotator annotator2)
mkdir -p "$HOME_DIR"
HOME_DIR="$(cd "$HOME_DIR" && pwd)"
log() { echo "argilla-server.sh: $*" >&2; }

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Exit 0 when something listens on 127.0.0.1:$1 (binding as uvicorn does, SO_REUSEADDR).
port_in_use() {
  "$PYTHON" - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)
EOF
}
alive() { [ -f "$HOME_DIR/$1.pid" ] && kill -0 "$(cat "$HOME_DIR/$1.pid")" 2>/dev/null; }

requested_port() {
  local port="${MAGPIE_HUB_ARGILLA_PORT:-}"
  [ -n "$port" ] || { [ -f "$HOME_DIR/port" ] && port="$(cat "$HOME_DIR/port")"; } || true
  port="${port:-$DEFAULT_PORT}"
  if ! [[ "$port" =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
    log "MAGPIE_HUB_ARGILLA_PORT must be a port number (1-65535), got '$port'"
    exit 2
  fi
  echo "$port"
}

print_env() {
  printf 'export ARGILLA_API_URL=%q\n' "$(cat "$HOME_DIR/url")"
  printf 'export ARGILLA_API_KEY=%q\n' "$(cat "$HOME_DIR/owner.key")"
}

login_help() {
  log "Argilla UI: $(cat "$HOME_DIR/url")  (sign in with a user name and its password)"
  local user
  for user in "${USERS[@]}"; do
    printf '  %-11s password: cat %s\n' "$user" "$HOME_DIR/$user.password" >&2
  done
  log "owner's API key: $HOME_DIR/owner.key; logs: $HOME_DIR/*.log; stop: $0 stop"
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

# Each user's API key and password: generated once, then kept (the server is made to match).
ensure_secrets() {
  local user
  for user in "${USERS[@]}"; do
    (
      umask 077
      [ -s "$HOME_DIR/$user.key" ] ||
        "$PYTHON" -c 'import secrets; print("mh-" + secrets.token_hex(16))' >"$HOME_DIR/$user.key"
      [ -s "$HOME_DIR/$user.password" ] ||
        "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(12))' >"$HOME_DIR/$user.password"
    )
    chmod 600 "$HOME_DIR/$user.key" "$HOME_DIR/$user.password"
  done
}

wait_http() {  # url, seconds[, pid that must stay alive]
  local deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || return 1
    if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then return 1; fi
    sleep 0.5
  done
}

start() {
  local port url
  port="$(requested_port)"
  url="http://127.0.0.1:$port"
  if alive argilla; then
    local running
    running="$(cat "$HOME_DIR/url")"
    if [ "$running" != "$url" ]; then
      log "already running at $running (home $HOME_DIR); run '$0 stop' first to move it to port $port"
      exit 1
    fi
    if wait_http "$url/api/_status" 5; then
      login_help
      print_env
      return
    fi
  fi
  stop 2>/dev/null || true
  if port_in_use "$port"; then
    log "port $port on 127.0.0.1 is taken by another program (not the server of $HOME_DIR)."
    log "Stop that program, or choose a free port: MAGPIE_HUB_ARGILLA_PORT=$((port + 1)) $0 start"
    exit 1
  fi
  ensure_venv
  ensure_redis
  ensure_secrets

  local redis_port os_port osmem reindex=()
  redis_port=$(free_port)
  os_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize yes --pidfile "$HOME_DIR/redis.pid" --logfile "$HOME_DIR/redis.log" --dir "$HOME_DIR"
  osmem="$("$VENV/bin/python" -c 'import os, osmem_server; print(os.path.join(os.path.dirname(osmem_server.__file__), "bin", "osmem-server"))')"
  nohup "$osmem" --addr "127.0.0.1:$os_port" --no-stdin-watch >"$HOME_DIR/osmem.log" 2>&1 </dev/null &
  echo $! >"$HOME_DIR/osmem.pid"
  if ! wait_http "http://127.0.0.1:$os_port" 30; then
    log "osmem-server did not start; see $HOME_DIR/osmem.log"
    stop 2>/dev/null || true
    exit 1
  fi

  export ARGILLA_HOME_PATH="$HOME_DIR/data"
  export ARGILLA_DATABASE_URL="sqlite+aiosqlite:///$HOME_DIR/data/argilla.db?check_same_thread=False"
  export ARGILLA_SEARCH_ENGINE=opensearch
  export ARGILLA_ELASTICSEARCH="http://127.0.0.1:$os_port"
  export ARGILLA_REDIS_URL="redis://127.0.0.1:$redis_port/0"
  export HF_HUB_DISABLE_TELEMETRY=1
  mkdir -p "$ARGILLA_HOME_PATH"
  # osmem starts empty: a database from an earlier start needs its search indices rebuilt.
  if [ -s "$ARGILLA_HOME_PATH/argilla.db" ]; then
    reindex=(--reindex)
    log "starting on $url (existing database: rebuilding the search indices)"
  else
    log "starting on $url (new database)"
  fi
  nohup "$VENV/bin/python" "$SCRIPTS/argilla_local.py" --home "$HOME_DIR" --port "$port" \
    "${reindex[@]}" >"$HOME_DIR/server.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$HOME_DIR/argilla.pid"
  echo "$url" >"$HOME_DIR/url"
  echo "$port" >"$HOME_DIR/port"
  if ! wait_http "$url/api/_status" 180 "$pid"; then
    log "the server did not answer on $url; see $HOME_DIR/server.log:"
    tail -20 "$HOME_DIR/server.log" >&2
    stop 2>/dev/null || true
    exit 1
  fi
  login_help
  print_env
}

stop() {  # TERM to all three at once, wait up to 20 s each, then KILL
  local name pid pids=()
  for name in argilla osmem redis; do
    if alive "$name"; then
      pid="$(cat "$HOME_DIR/$name.pid")"
      kill "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
    rm -f "$HOME_DIR/$name.pid"
  done
  local deadline=$((SECONDS + 20))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  done
  log "stopped (state kept in $HOME_DIR)"
}

status() {
  if alive argilla && wait_http "$(cat "$HOME_DIR/url")/api/_status" 2; then
    echo "running at $(cat "$HOME_DIR/url")"
    log "home $HOME_DIR; passwords in <user>.password there"
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
