#!/usr/bin/env bash
# Consistent backup of a SQLite deployment (registry and firm databases) while it runs,
# using SQLite's online backup; PostgreSQL deployments use pg_dump per database.
# The master key is NOT in the backup: keep it separately (without it, sealed
# third-party tokens cannot be opened). Restore: stop the service, copy the files
# back into SCOPEGATE_DATA_DIR, start, then run `scopegate audit verify`.
set -euo pipefail
DATA_DIR="${SCOPEGATE_DATA_DIR:-/var/lib/scopegate}"
OUT="${1:?usage: backup.sh OUTPUT_DIR}"
command -v sqlite3 >/dev/null || { echo "backup.sh: sqlite3 is missing: apt-get install -y sqlite3" >&2; exit 1; }
mkdir -p "$OUT/firms"
sqlite3 "$DATA_DIR/registry.db" ".backup '$OUT/registry.db'"
for db in "$DATA_DIR"/firms/*.db; do
    [ -e "$db" ] || continue
    sqlite3 "$db" ".backup '$OUT/firms/$(basename "$db")'"
done
echo "backed up $DATA_DIR to $OUT"
