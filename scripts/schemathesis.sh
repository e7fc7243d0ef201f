#!/usr/bin/env bash
# Schemathesis against the gateway's own /openapi.json, every operation it describes, with every check
# (`--checks all`): the vendor API with a vendor's bearer token, the admin API with a logged-in settings session
# and its X-CSRF-Token (scripts/schemathesis_hooks.py keeps both alive). Any failure fails the run.
# A gateway is built and started on loopback with a fresh data directory: one seeded firm with the accounting
# connector on, a vendor credential and an owner login. Nothing from this machine is used.
# Schemathesis (pinned) is installed with pip into a virtual environment under the target directory when missing.
# SCHEMATHESIS_SEED picks the seed (default 1, so a run is reproducible); SCHEMATHESIS_MAX_EXAMPLES the cases per
# operation and phase (default 50).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

die() { echo "schemathesis.sh: $*" >&2; exit 1; }

ST_VERSION=4.32.5
TARGET="${CARGO_TARGET_DIR:-target}"
case "$TARGET" in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac
VENV="$TARGET/schemathesis-venv"
ST="$VENV/bin/schemathesis"

command -v python3 >/dev/null || die "python3 is missing: apt-get install -y python3"
command -v curl >/dev/null || die "curl is missing: apt-get install -y curl"
if [ ! -x "$ST" ] || [ "$("$ST" --version 2>/dev/null)" != "schemathesis, version $ST_VERSION" ]; then
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
        echo "schemathesis.sh: installing python3-venv" >&2
        { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null; } \
            || die "python3 cannot make a virtual environment: apt-get install -y python3-venv"
    fi
    echo "schemathesis.sh: installing schemathesis $ST_VERSION into $VENV" >&2
    rm -rf "$VENV"
    { python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"; } \
        || die "could not install schemathesis $ST_VERSION with pip (is PyPI reachable?)"
fi

# The build of the test command's `cargo test --workspace` (nothing is rebuilt after it; a build of the binary
# alone would resolve other features and rebuild the tree), which includes the scopegate binary.
cargo test --workspace --locked --no-run --quiet
BIN="$TARGET/debug/scopegate"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

sg() { "$BIN" --data-dir "$WORK/data" "$@"; }
FIRM=schema-law
EMAIL=owner@schema-law.example
PASSWORD="$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')"
sg firm add --name "Schema Law" --id "$FIRM" >/dev/null
sg firm seed-demo "$FIRM" --transactions 50 --diary-entries 20 >/dev/null
sg grant enable --firm "$FIRM" --connector accounting --actor schemathesis.sh >/dev/null
sg grant enable --firm "$FIRM" --connector google-calendar --actor schemathesis.sh >/dev/null
ISSUED="$(sg credential issue --firm "$FIRM" --connector accounting 2>/dev/null)"
# Ids from the firm's own database: its matters and practice-system users (as TOML lists).
firm_ids() {
    python3 -c 'import json, sqlite3, sys; print(json.dumps([r[0] for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2])]))' \
        "$WORK/data/firms/$FIRM.db" "$1"
}
MATTER_IDS="$(firm_ids "SELECT id FROM matters ORDER BY id LIMIT 10")"
PRACTICE_USER_IDS="$(firm_ids "SELECT id FROM users ORDER BY id")"
# The owner is also a fee earner of the practice system, so the Google Calendar operations reach their logic.
PRACTICE_USER="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])[0])' "$PRACTICE_USER_IDS")"
printf '%s\n' "$PASSWORD" | sg user add --firm "$FIRM" --email "$EMAIL" --name "Schema Owner" --role owner \
    --firm-user-id "$PRACTICE_USER" --password-stdin >/dev/null
sg user add --firm "$FIRM" --email "books@schema-law.example" --name "Schema Books" --role bookkeeper >/dev/null
"$BIN" keys generate > "$WORK/master.key"

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
# The fuzzer sends thousands of requests from one address and fails logins on purpose: the throttles are opened
# wide for this run (their own tests are in tests/tests/e2e/throttling.rs), so every case reaches its handler.
# Google Calendar is configured with a placeholder client whose Google URLs are a closed loopback port: starting a
# consent only builds a URL, and nothing in this run may call out.
NOWHERE=http://127.0.0.1:9
SCOPEGATE_MASTER_KEY_FILE="$WORK/master.key" SCOPEGATE_GOOGLE_CLIENT_SECRET=placeholder \
    "$BIN" --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" \
    --api-rate-per-second 100000 --api-burst 100000 \
    --auth-failures-per-ip 100000 --auth-failures-per-client 100000 \
    --google-client-id schemathesis-placeholder --google-auth-url "$NOWHERE/auth" \
    --google-token-url "$NOWHERE/token" --google-revoke-url "$NOWHERE/revoke" --google-api-base "$NOWHERE/calendar/v3/" \
    serve 2> "$WORK/serve.log" &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -sf "$BASE/readyz" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; die "the gateway did not start"; }
    sleep 0.1
done
curl -sf "$BASE/readyz" >/dev/null || die "the gateway at $BASE is not ready"

export SG_BASE="$BASE" SG_FIRM="$FIRM" SG_EMAIL="$EMAIL" SG_PASSWORD="$PASSWORD"
SG_CLIENT_ID="$(printf '%s\n' "$ISSUED" | sed -n 's/^client_id=//p')"
SG_CLIENT_SECRET="$(printf '%s\n' "$ISSUED" | sed -n 's/^client_secret=//p')"
export SG_CLIENT_ID SG_CLIENT_SECRET
export SCHEMATHESIS_HOOKS="$ROOT/scripts/schemathesis_hooks.py"

# The settings: scripts/schemathesis.toml and this run's identifiers.
USER_IDS="$("$VENV/bin/python" - <<'PY'
import json, os, requests
base = os.environ["SG_BASE"]
session = requests.Session()
login = session.post(f"{base}/admin/v1/session", timeout=30, json={
    "firm": os.environ["SG_FIRM"], "email": os.environ["SG_EMAIL"], "password": os.environ["SG_PASSWORD"]})
login.raise_for_status()
users = session.get(f"{base}/admin/v1/users", timeout=30)
users.raise_for_status()
print(json.dumps([u["id"] for u in users.json()["data"]]))
PY
)" || die "could not log in to list the firm's users"
{
    cat "$ROOT/scripts/schemathesis.toml"
    echo
    echo "# This run's identifiers (scripts/schemathesis.sh)."
    echo "[dictionaries.user-ids]"
    echo "values = $USER_IDS"
    echo "[dictionaries.client-ids]"
    echo "values = [\"$SG_CLIENT_ID\"]"
    echo "[dictionaries.matter-ids]"
    echo "values = $MATTER_IDS"
    echo "[dictionaries.practice-user-ids]"
    echo "values = $PRACTICE_USER_IDS"
} > "$WORK/schemathesis.toml"

# Run from the scratch directory: schemathesis keeps its caches (and replays earlier crashes) in the working
# directory, and a run must not depend on an earlier one.
status=0
(cd "$WORK" && "$ST" --config-file "$WORK/schemathesis.toml" run "$BASE/openapi.json" \
    --checks all \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-50}" \
    --seed "${SCHEMATHESIS_SEED:-1}" \
    --workers 2 \
    --request-timeout 30 \
    --continue-on-failure \
    --no-color) || status=$?
if grep -q "panicked" "$WORK/serve.log"; then
    grep -B2 -A8 "panicked" "$WORK/serve.log" >&2
    die "the gateway panicked during the run"
fi
[ "$status" = 0 ] || die "schemathesis found failures (exit $status); each is listed above with a curl line to reproduce it"
