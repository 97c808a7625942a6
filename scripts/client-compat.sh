#!/usr/bin/env bash
# Starts `steward sim` on free loopback ports and drives it with widely used third-party
# clients (py-consul, hvac, python-nomad), unchanged. Fails if any call fails.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/py-venv
[ -x "$VENV/bin/python" ] || scripts/install-test-deps.sh
STEWARD=${STEWARD:-${CARGO_TARGET_DIR:-target}/debug/steward}
[ -x "$STEWARD" ] || cargo build --locked -p steward-cli

read -r CONSUL_PORT NOMAD_PORT VAULT_PORT < <("$VENV/bin/python" - <<'PY'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
PY
)
LOG=target/client-compat-sim.log
"$STEWARD" sim --consul "127.0.0.1:$CONSUL_PORT" --nomad "127.0.0.1:$NOMAD_PORT" \
  --vault "127.0.0.1:$VAULT_PORT" >"$LOG" 2>&1 &
SIM_PID=$!
trap 'kill "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true' EXIT

export CONSUL_PORT NOMAD_PORT VAULT_PORT
if ! timeout 300 "$VENV/bin/python" scripts/client_compat.py; then
  echo "--- simulator log" >&2
  cat "$LOG" >&2
  exit 1
fi
