#!/usr/bin/env bash
# The whole test suite: SQLite and PostgreSQL halves, process-level and browser tests, then schemathesis against
# the OpenAPI document (scripts/schemathesis.sh).
# Installs what is missing (Chromium, ChromeDriver, the PostgreSQL client tools and nginx via apt-get, schemathesis
# via pip) or stops with one line naming it.
# PostgreSQL: SCOPEGATE_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres);
# Redis: SCOPEGATE_TEST_REDIS_URL (default redis://127.0.0.1:6379/, for the shared-limit tests);
# with CI=true an unreachable PostgreSQL or Redis fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "test.sh: $*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo is missing: install Rust (https://rustup.rs)"
command -v curl >/dev/null || die "curl is missing: apt-get install -y curl"

PG_URL="${SCOPEGATE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export SCOPEGATE_TEST_POSTGRES_URL="$PG_URL"
if command -v pg_isready >/dev/null && ! pg_isready -q -d "$PG_URL"; then
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
        echo "test.sh: PostgreSQL is down; starting it" >&2
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
        for _ in $(seq 1 30); do pg_isready -q -d "$PG_URL" && break; sleep 1; done
    fi
fi
if command -v pg_isready >/dev/null && ! pg_isready -q -d "$PG_URL"; then
    if [ "${CI:-}" = "true" ]; then die "PostgreSQL at $PG_URL is unreachable (CI=true makes this a failure)"; fi
    echo "test.sh: PostgreSQL at $PG_URL is unreachable; its half of the suite will be skipped" >&2
fi

# Redis for the limits shared across instances (their tests skip, saying so, without it outside CI).
REDIS_URL="${SCOPEGATE_TEST_REDIS_URL:-redis://127.0.0.1:6379/}"
export SCOPEGATE_TEST_REDIS_URL="$REDIS_URL"
redis_answers() {
    local hostport="${REDIS_URL#*://}"; hostport="${hostport#*@}"; hostport="${hostport%%/*}"
    local host="${hostport%:*}" port="${hostport##*:}"
    [ "$host" = "$hostport" ] && port=6379
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "PING\r\n" >&3 && head -c 5 <&3' "$host" "$port" 2>/dev/null | grep -q PONG
}
if ! redis_answers; then
    if [ "${CI:-}" = "true" ]; then die "Redis at $REDIS_URL is unreachable (CI=true makes this a failure)"; fi
    echo "test.sh: Redis at $REDIS_URL is unreachable; the shared-limit tests will be skipped" >&2
fi

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null; then
    echo "test.sh: installing chromium and chromium-driver for the browser tests" >&2
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; } \
        || die "could not install chromium and chromium-driver: install them with apt-get"
fi

# pg_dump and pg_restore for the PostgreSQL backup test (it skips, saying so, without them outside CI).
if ! command -v pg_dump >/dev/null || ! command -v pg_restore >/dev/null; then
    echo "test.sh: installing postgresql-client (pg_dump, pg_restore) for the backup tests" >&2
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql-client >/dev/null; } \
        || die "could not install postgresql-client (pg_dump, pg_restore): install it with apt-get"
fi

# nginx for the TLS proxy test (deploy/nginx-scopegate.conf in front of two gateways); nginx-light where Debian has it.
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    NGINX_PACKAGE=nginx
    if apt-cache show nginx-light >/dev/null 2>&1; then NGINX_PACKAGE=nginx-light; fi
    echo "test.sh: installing $NGINX_PACKAGE for the TLS proxy test" >&2
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$NGINX_PACKAGE" >/dev/null; } \
        || die "could not install $NGINX_PACKAGE: install it with apt-get"
fi

# Databases left behind by an interrupted earlier run. Without FORCE, a database that another run on this
# machine is still connected to stays.
drop_test_databases() {
    command -v psql >/dev/null || return 0
    psql "$PG_URL" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'sgtest\_%'" 2>/dev/null | while read -r db; do
        psql "$PG_URL" -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true
    done
}
drop_test_databases
trap drop_test_databases EXIT

# Dependencies between modules point one way (a cycle fails the run, naming it).
command -v python3 >/dev/null || die "python3 is missing: apt-get install -y python3"
python3 scripts/module-cycles.py gateway/src core/src connectors/*/src

mkdir -p tests/artifacts
cargo test --workspace --locked "$@"

# The OpenAPI document against the gateway: every operation, every schemathesis check, zero failures.
scripts/schemathesis.sh
