#!/usr/bin/env bash
# Soak test, not part of CI: N minutes (default 30) of mixed load on loopback
# against a real `scopegate serve` (release build) on the default SQLite registry:
# 50 firms' accounting vendors (polls, fees, tokens refreshed as they expire),
# Google Calendar sync for 100 fee earners against the Google emulator with about
# 10% of its answers faulted, diary entries changing, grants switched off and on.
# Prints a sample line every minute (gateway RSS, open fds, OS threads, tokio
# tasks, requests done/failed by kind), then `scopegate audit verify` and a summary.
# Exits non-zero if the audit does not verify or the gateway died.
# Usage: scripts/soak.sh [--minutes N]     (run it under `nice -n 19` on a shared machine)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=30
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes=${2:?--minutes takes a number}; shift 2 ;;
    --minutes=*) minutes=${1#--minutes=}; shift ;;
    *) echo "usage: scripts/soak.sh [--minutes N]" >&2; exit 2 ;;
  esac
done
case "$minutes" in
  ''|*[!0-9]*|0) echo "error: --minutes takes a whole number above 0, not '$minutes'" >&2; exit 2 ;;
esac
# One build for both (the same feature set as `cargo build --release -p scopegate -p scopegate-e2e`).
cargo build --release -p scopegate -p scopegate-e2e --bin scopegate --example soak
target=${CARGO_TARGET_DIR:-target}
exec "$target/release/examples/soak" --minutes "$minutes" --bin "$target/release/scopegate"
