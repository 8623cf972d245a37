#!/usr/bin/env bash
# Starts the real services the toyseal-server tests can run against, on loopback only:
#   - PostgreSQL 15 on 127.0.0.1:${PG_PORT:-54329}, trust auth on loopback, run as user pgtest
#     (initdb/pg_ctl refuse root);
#   - an S3-protocol server (moto_server from PyPI) on 127.0.0.1:${S3_PORT:-9000}.
# Idempotent: re-running reuses the user, the cluster and running servers. For a fresh Debian
# machine, as root. Progress goes to stderr; stdout is only the `export …` lines, so:
#   eval "$(bash scripts/ci-services.sh)"
#   cargo test -p toyseal-server
set -euo pipefail

PG_PORT="${PG_PORT:-54329}"
S3_PORT="${S3_PORT:-9000}"
PG_USER="${PG_USER:-pgtest}"
PG_HOME="/home/${PG_USER}"
PG_DATA="${PG_HOME}/pgdata"
S3_BUCKET="${S3_BUCKET:-toyseal-test}"
MOTO_LOG="${MOTO_LOG:-/tmp/toyseal-moto.log}"

log() { printf 'ci-services: %s\n' "$*" >&2; }

find_pg_bin() {
    for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

# --- PostgreSQL ---
if ! PG_BIN="$(find_pg_bin)"; then
    log "installing PostgreSQL"
    if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ]; then
        apt-get update >&2
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2 ||
        { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2; }
    PG_BIN="$(find_pg_bin)"
fi
log "PostgreSQL binaries: $PG_BIN"

if ! id "$PG_USER" >/dev/null 2>&1; then
    log "creating user $PG_USER"
    useradd -m "$PG_USER"
fi
as_pg() { su -s /bin/sh "$PG_USER" -c "$*"; }

if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    log "initdb $PG_DATA"
    as_pg "'$PG_BIN/initdb' -D '$PG_DATA' -U postgres --auth=trust --encoding=UTF8 --no-instructions" >&2
fi
if ! as_pg "'$PG_BIN/pg_ctl' -D '$PG_DATA' status" >/dev/null 2>&1; then
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    as_pg "'$PG_BIN/pg_ctl' -D '$PG_DATA' -l '$PG_DATA/server.log' -w -t 60 \
        -o \"-h 127.0.0.1 -p $PG_PORT -k /tmp -c max_connections=300 -c fsync=off\" start" >&2
fi
for _ in $(seq 1 60); do
    if "$PG_BIN/pg_isready" -h 127.0.0.1 -p "$PG_PORT" -U postgres >/dev/null 2>&1; then break; fi
    sleep 1
done
"$PG_BIN/pg_isready" -h 127.0.0.1 -p "$PG_PORT" -U postgres >&2

# --- S3 (moto) ---
if ! command -v moto_server >/dev/null 2>&1; then
    log "installing moto[server]"
    pip install --quiet 'moto[server]' >&2 2>/dev/null ||
        pip install --quiet --break-system-packages 'moto[server]' >&2
    hash -r
fi
s3_up() { curl -s -o /dev/null "http://127.0.0.1:${S3_PORT}/" ; }
if ! s3_up; then
    log "starting moto_server on 127.0.0.1:$S3_PORT (log: $MOTO_LOG)"
    nohup moto_server -H 127.0.0.1 -p "$S3_PORT" >"$MOTO_LOG" 2>&1 </dev/null &
fi
for _ in $(seq 1 60); do
    if s3_up; then break; fi
    sleep 1
done
s3_up || { log "moto_server did not start; see $MOTO_LOG"; exit 1; }
log "both services answer"

cat <<EOF
export TOYSEAL_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:${PG_PORT}/postgres
export TOYSEAL_TEST_S3_ENDPOINT=http://127.0.0.1:${S3_PORT}
export TOYSEAL_TEST_S3_BUCKET=${S3_BUCKET}
export TOYSEAL_TEST_S3_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
EOF
