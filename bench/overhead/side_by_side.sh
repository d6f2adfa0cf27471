#!/usr/bin/env bash
# Switchyard as one more column of the side-by-side gateway benchmark that lives beside
# the project checkout (../shared/bench: mock upstream, LiteLLM, Portkey, measure.py).
#
# Starts a control plane (SQLite, pinned to UPSTREAM_CPU), applies a config that points
# at the side-by-side mock upstream ($MOCK_OPENAI_BASE, model mock-gpt), then runs
# ../shared/bench/run_side_by_side.sh with a `switchyard` target whose data plane that
# script starts (pinned to the proxy CPU) and stops. Chat scenarios only.
#
# Usage: bench/overhead/side_by_side.sh [extra options for run_side_by_side.sh]
#   e.g. bench/overhead/side_by_side.sh --duration 5 --no-litellm
# Environment: SHARED_BENCH (../shared/bench), MOCK_PORT MOCK_XCPU_PORT LITELLM_PORT
#   PORTKEY_PORT (free ports unless set), NATS_URL
#   (nats://127.0.0.1:4222), UPSTREAM_CPU (0), OUT (bench/results/side-by-side-<ts>).
# Results: $OUT/results.md (+ results.json, logs of every process).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$(cd "$ROOT/.." && pwd)/shared/bench}
BIN=$ROOT/.venv/bin
NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
UPSTREAM_CPU=${UPSTREAM_CPU:-0}
OUT=${OUT:-$ROOT/bench/results/side-by-side-$(date +%Y%m%d-%H%M%S)}

[ -f "$SHARED_BENCH/run_side_by_side.sh" ] || { echo "missing $SHARED_BENCH/run_side_by_side.sh" >&2; exit 1; }
[ -x "$BIN/switchyard" ] || { echo "missing $BIN/switchyard: run make install" >&2; exit 1; }
mkdir -p "$OUT"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

free_port() { "$BIN/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WORK=$(mktemp -d /tmp/switchyard-sbs-XXXXXX)
TAG=$("$BIN/python" -c 'import uuid; print(uuid.uuid4().hex[:10])')
SECRET_KEY=$("$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(32))')
ADMIN_PASSWORD=$("$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(18))')
APP_KEY=gk_$("$BIN/python" -c 'import secrets; print(secrets.token_hex(20))')
ADMIN_EMAIL=bench@switchyard.local
NATS_STREAM=SYBENCH_$TAG
SUBJECT_PREFIX=sybench.$TAG.usage
CP_PORT=$(free_port) GRPC_PORT=$(free_port) DP_PORT=$(free_port)
# Free ports unless given: other runs on this machine may hold the shared script's defaults.
export MOCK_PORT=${MOCK_PORT:-$(free_port)} MOCK_XCPU_PORT=${MOCK_XCPU_PORT:-$(free_port)}
export LITELLM_PORT=${LITELLM_PORT:-$(free_port)} PORTKEY_PORT=${PORTKEY_PORT:-$(free_port)}

CP_PID=
cleanup() {
  if [ -n "$CP_PID" ]; then
    kill -TERM -- "-$CP_PID" 2>/dev/null
    for _ in $(seq 1 25); do kill -0 "$CP_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$CP_PID" 2>/dev/null
    wait "$CP_PID" 2>/dev/null
    log "stopped control plane pid=$CP_PID"
  fi
  # The data plane created the run's usage stream; nothing consumed it.
  "$BIN/python" - "$NATS_URL" "$NATS_STREAM" <<'EOF' 2>/dev/null
import asyncio, contextlib, sys
import nats

async def main() -> None:
    client = await nats.connect(sys.argv[1], connect_timeout=3, max_reconnect_attempts=0)
    with contextlib.suppress(Exception):
        await client.jetstream().delete_stream(sys.argv[2])
    await client.close()

asyncio.run(asyncio.wait_for(main(), 10))
EOF
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- control plane + config
SWITCHYARD_DATABASE_URL="sqlite:///$WORK/cp.db" SWITCHYARD_SECRET_KEY="$SECRET_KEY" \
SWITCHYARD_ADMIN_EMAIL="$ADMIN_EMAIL" SWITCHYARD_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
SWITCHYARD_CONTROLPLANE_HOST=127.0.0.1 SWITCHYARD_CONTROLPLANE_PORT="$CP_PORT" \
SWITCHYARD_GRPC_HOST=127.0.0.1 SWITCHYARD_GRPC_PORT="$GRPC_PORT" \
  setsid taskset -c "$UPSTREAM_CPU" "$BIN/switchyard" serve controlplane > "$OUT/controlplane.log" 2>&1 < /dev/null &
CP_PID=$!
log "control plane pid=$CP_PID http=$CP_PORT grpc=$GRPC_PORT (cpu $UPSTREAM_CPU)"
for _ in $(seq 1 120); do
  kill -0 "$CP_PID" 2>/dev/null || { log "control plane exited:"; tail -n 20 "$OUT/controlplane.log" >&2; exit 1; }
  [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$CP_PORT/readyz")" = 200 ] && break
  sleep 0.5
done
[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$CP_PORT/readyz")" = 200 ] \
  || { log "control plane not ready after 60 s; log $OUT/controlplane.log"; exit 1; }

cat > "$WORK/switchyard.yaml" <<EOF
organizations:
  - name: bench
providers:
  - slug: mock
    api_format: openai
    base_url: http://127.0.0.1:$MOCK_PORT/v1
    api_key: sk-mock-upstream
    models: [mock-gpt]
models:
  - name: mock-gpt
    capability: llm
    targets:
      - {provider: mock, model: mock-gpt}
prices:
  - {model: mock-gpt, unit: input_token, per_million: 0.5}
  - {model: mock-gpt, unit: output_token, per_million: 1.5}
keys:
  - name: bench
    org: bench
    value_env: BENCH_APP_KEY
    scopes: [llm]
EOF
(cd "$WORK" && SWITCHYARD_CONTROLPLANE_URL="http://127.0.0.1:$CP_PORT" SWITCHYARD_ADMIN_EMAIL="$ADMIN_EMAIL" \
  SWITCHYARD_ADMIN_PASSWORD="$ADMIN_PASSWORD" BENCH_APP_KEY="$APP_KEY" \
  "$BIN/switchyard" apply -f "$WORK/switchyard.yaml") || { log "switchyard apply failed"; exit 1; }

# ---------------------------------------------------------------- the side-by-side run
DP_ENV="SWITCHYARD_DATAPLANE_HOST=127.0.0.1 SWITCHYARD_DATAPLANE_PORT=$DP_PORT"
DP_ENV+=" SWITCHYARD_CONTROLPLANE_GRPC=127.0.0.1:$GRPC_PORT SWITCHYARD_SECRET_KEY=$SECRET_KEY"
DP_ENV+=" SWITCHYARD_STATE_DIR=$WORK/dataplane-state SWITCHYARD_NATS_URL=$NATS_URL"
DP_ENV+=" SWITCHYARD_NATS_STREAM=$NATS_STREAM SWITCHYARD_USAGE_SUBJECT_PREFIX=$SUBJECT_PREFIX SWITCHYARD_REDIS_URL="
log "data plane will listen on 127.0.0.1:$DP_PORT; results in $OUT"
bash "$SHARED_BENCH/run_side_by_side.sh" \
  --scenarios chat,chat_stream --concurrency 1,32 --out "$OUT" \
  --target "name=switchyard,url=http://127.0.0.1:$DP_PORT/v1,key=$APP_KEY,model=mock-gpt" \
  --start "switchyard=exec env $DP_ENV $BIN/switchyard serve dataplane" \
  "$@"
