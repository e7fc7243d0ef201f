#!/usr/bin/env bash
# Nightly encrypted backup of a scopegate deployment (registry and every firm
# database, SQLite or PostgreSQL) while it runs, e.g. from a systemd timer or cron:
#   SCOPEGATE_BACKUP_KEY_FILE=/etc/scopegate/backup.key deploy/backup.sh /var/backups/scopegate
# `scopegate backup` takes consistent online copies (SQLite VACUUM INTO, pg_dump),
# encrypts them with the backup key (XChaCha20-Poly1305 STREAM; create the key with
# `scopegate keys generate` and keep it apart from the master key and from the
# backups), writes the file atomically and keeps the newest SCOPEGATE_BACKUP_GENERATIONS
# (default 7). The master key is NOT in the backup: keep it separately (without it,
# the keyed outbound log cannot be verified and sealed third-party tokens cannot be opened).
# Restore into an empty data directory (or an empty PostgreSQL database):
#   scopegate --data-dir /var/lib/scopegate-restored restore --from FILE
#   scopegate --data-dir /var/lib/scopegate-restored audit verify
set -euo pipefail
OUT="${1:?usage: backup.sh OUTPUT_DIR}"
exec scopegate backup --out "$OUT"
