#!/usr/bin/env bash
# Fuzzes the reference server's HTTP API with schemathesis, every request signed by a real
# family device (toyseal_hooks.py beside this file; docs/spec/signed-requests.md).
#
#   bash scripts/schemathesis/run.sh            # from the repository root
#
# Starts its own `toyseal serve` (fresh SQLite + blob dir in a temp dir, loopback, rate limits
# off so the fuzzer is not throttled into 429s), installs the pinned schemathesis into a venv
# under the target dir, runs every phase (examples, coverage, fuzzing, stateful) within a time
# budget, and fails on any server error, response not matching openapi.json (status code,
# content type, headers, body schema), negative data accepted, or a request signed by a family
# device refused as unauthenticated. Afterwards the server's log must show no panic.
#
# Environment (all optional):
#   CARGO_TARGET_DIR        where the binaries are (default: ./target)
#   TOYSEAL_BIN             the `toyseal` binary   (default: built with cargo if missing)
#   TOYSEAL_FFI_LIB         libtoyseal_ffi.so      (default: built with cargo if missing)
#   SCHEMATHESIS_MAX_TIME   seconds for the whole run (default 150)
#   SCHEMATHESIS_EXAMPLES   max examples per operation and phase (default 100)
#   SCHEMATHESIS_SEED       a seed to replay a run (default: random, printed by schemathesis)
#   TOYSEAL_FUZZ_PORT       loopback port for the server (default 18788)
#   SCHEMATHESIS_SCHEMA     a schema file to test instead of the served /openapi.json (to try
#                           an edit of openapi.json without rebuilding the server)
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="${TOYSEAL_BIN:-$TARGET/debug/toyseal}"
LIB="${TOYSEAL_FFI_LIB:-$TARGET/debug/libtoyseal_ffi.so}"
PORT="${TOYSEAL_FUZZ_PORT:-18788}"
MAX_TIME="${SCHEMATHESIS_MAX_TIME:-150}"
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-100}"

log() { printf '[schemathesis %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

[ -x "$BIN" ] || cargo build -p toyseal-cli --bin toyseal
[ -f "$LIB" ] || cargo build -p toyseal-ffi

# The pinned schemathesis in its own venv (its dependencies stay out of the system Python).
VENV="$TARGET/schemathesis-venv"
ST=("$VENV/bin/python" -m schemathesis.cli)
if ! "${ST[@]}" --version 2>/dev/null | grep -qx ".*version $SCHEMATHESIS_VERSION"; then
    python3 -m venv --clear "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION"
fi
log "$("${ST[@]}" --version)"

DATA="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$DATA"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

ADDR="127.0.0.1:$PORT"
"$BIN" serve --listen "$ADDR" --data "$DATA/server" --rate-per-sec 0 --address-rate-per-sec 0 \
    >"$DATA/server.log" 2>&1 &
SERVER_PID=$!
up=""
for _ in $(seq 1 50); do
    if curl -fsS "http://$ADDR/v1/health" >/dev/null 2>&1; then
        up=1
        break
    fi
    sleep 0.2
done
if [ -z "$up" ]; then
    log "toyseal serve did not come up:"
    cat "$DATA/server.log"
    exit 1
fi
log "toyseal serve up at http://$ADDR (pid $SERVER_PID)"

seed=()
[ -n "${SCHEMATHESIS_SEED:-}" ] && seed=(--seed "$SCHEMATHESIS_SEED")
rc=0
# Checks: every conformance check, plus the hook's own. Left out, each for a reason:
# positive_data_acceptance (the schema cannot say which octets are a valid envelope or roster,
# so schema-valid bodies are rightly refused with 400), object_level_authorization (needs a
# second identity configured in schemathesis; cross-family access is the T07 matrix test in
# crates/toyseal-server/tests/auth.rs).
# Run from the temp dir: schemathesis keeps a cache in its working directory, and the hooks
# leave no bytecode beside themselves.
SCHEMA="${SCHEMATHESIS_SCHEMA:-http://$ADDR/openapi.json}"
[ -f "$SCHEMA" ] && SCHEMA="$(cd "$(dirname "$SCHEMA")" && pwd)/$(basename "$SCHEMA")"
cd "$DATA"
PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    SCHEMATHESIS_HOOKS=toyseal_hooks \
    TOYSEAL_FUZZ_SERVER="http://$ADDR" \
    TOYSEAL_FFI_LIB="$LIB" \
    "${ST[@]}" run "$SCHEMA" \
    --url "http://$ADDR" \
    --phases examples,coverage,fuzzing,stateful \
    --checks all \
    --exclude-checks positive_data_acceptance,object_level_authorization \
    --max-examples "$EXAMPLES" \
    --max-time "$MAX_TIME" \
    --workers 2 \
    --request-timeout 10 \
    --generation-database none \
    --no-color \
    "${seed[@]}" || rc=$?

if grep -n "panicked" "$DATA/server.log"; then
    log "the server panicked (log above)"
    rc=1
fi
errors="$(grep -c 'request failed' "$DATA/server.log" || true)"
log "server log: $(wc -l <"$DATA/server.log") lines, $errors logged request failures (5xx causes)"
if [ "$errors" != "0" ]; then
    grep 'request failed' "$DATA/server.log" | head -20
    rc=1
fi
if [ "$rc" -eq 0 ]; then
    log "PASS"
else
    log "FAIL (exit $rc)"
fi
exit "$rc"
