#!/usr/bin/env bash
# A real Ray cluster on loopback (a head plus workers), for the tests and for trying
# `--ray ADDRESS` locally.
#
#   eval "$(scripts/ray-cluster.sh start)"   # sets MAGPIE_HUB_RAY_ADDRESS=127.0.0.1:PORT
#   magpie-hub generate --ray "$MAGPIE_HUB_RAY_ADDRESS"
#   scripts/ray-cluster.sh status
#   scripts/ray-cluster.sh stop
#
# `start` prints only `export MAGPIE_HUB_RAY_ADDRESS=...` on stdout (progress and errors go
# to stderr); it is a no-op printing the same line when the cluster already runs. The head
# runs no steps (0 CPUs); each of MAGPIE_HUB_RAY_WORKERS workers (default 2) offers
# MAGPIE_HUB_RAY_WORKER_CPUS CPUs (default 1). The port is MAGPIE_HUB_RAY_PORT (default
# 6380); Ray's session files live in MAGPIE_HUB_RAY_HOME (default ~/.cache/magpie-hub/ray).
# The workers start no log monitor of their own: the head's reads every node's logs on
# this host (Ray's advice: one per host, or each line reaches a driver once per node).
# Ray comes from the `ray` extra of the project's .venv (RAY, default .venv/bin/ray).
# Token authentication is off (RAY_AUTH_MODE=disabled) for this loopback-only cluster: since
# Ray 2.59 `ray start --head` turns it on whenever ~/.ray/auth_token exists (any earlier
# `ray.init()` writes one), and the workers started next do not send that token.
set -euo pipefail
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RAY="${RAY:-$ROOT/.venv/bin/ray}"
HOME_DIR="${MAGPIE_HUB_RAY_HOME:-$HOME/.cache/magpie-hub/ray}"
PORT="${MAGPIE_HUB_RAY_PORT:-6380}"
WORKERS="${MAGPIE_HUB_RAY_WORKERS:-2}"
WORKER_CPUS="${MAGPIE_HUB_RAY_WORKER_CPUS:-1}"
ADDRESS="127.0.0.1:$PORT"
log() { echo "ray-cluster.sh: $*" >&2; }

[ -x "$RAY" ] || { log "no Ray at $RAY: pip install 'magpie-hub[ray]' (or bash scripts/install.sh dev)"; exit 1; }
mkdir -p "$HOME_DIR"

nodes() {  # alive nodes of the cluster at ADDRESS, or nothing when none answers
  "$ROOT/.venv/bin/python" - "$ADDRESS" <<'EOF' 2>/dev/null
import socket, sys
host, port = sys.argv[1].split(":")
try:
    socket.create_connection((host, int(port)), timeout=2).close()
except OSError:
    sys.exit(1)  # nothing listens: ray.init would wait for a minute
import ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
print(sum(1 for n in ray.nodes() if n["Alive"]))
EOF
}

case "${1:-}" in
  start)
    if [ "$(nodes || true)" = "$((WORKERS + 1))" ]; then
      log "already running at $ADDRESS"
      echo "export MAGPIE_HUB_RAY_ADDRESS=$ADDRESS"
      exit 0
    fi
    log "starting a Ray head on $ADDRESS and $WORKERS worker(s) of $WORKER_CPUS CPU(s)"
    export RAY_USAGE_STATS_ENABLED=0
    "$RAY" start --head --node-ip-address=127.0.0.1 --port="$PORT" --num-cpus=0 \
      --include-dashboard=false --temp-dir="$HOME_DIR" --disable-usage-stats >&2
    for _ in $(seq "$WORKERS"); do
      "$RAY" start --address="$ADDRESS" --node-ip-address=127.0.0.1 \
        --num-cpus="$WORKER_CPUS" --disable-usage-stats --include-log-monitor=false >&2
    done
    count="$(nodes || true)"
    [ "$count" = "$((WORKERS + 1))" ] || { log "expected $((WORKERS + 1)) nodes, found '${count:-none}'"; exit 1; }
    log "ready: $count nodes; stop with scripts/ray-cluster.sh stop"
    echo "export MAGPIE_HUB_RAY_ADDRESS=$ADDRESS"
    ;;
  status)
    count="$(nodes || true)"
    if [ -n "$count" ]; then log "running at $ADDRESS with $count node(s)"; else log "not running at $ADDRESS"; exit 1; fi
    ;;
  stop)
    "$RAY" stop --force >&2 || true
    log "stopped"
    ;;
  *)
    echo "usage: $0 start|status|stop" >&2
    exit 2
    ;;
esac
