#!/usr/bin/env bash
# Runs every benchmark in release and tees the figures to target/bench-results.txt.
# Usage: scripts/bench.sh [bench ...]   (default: all of them)
# Sizes come from SCOPEGATE_BENCH_* variables (see each gateway/benches/*.rs header);
# PostgreSQL from SCOPEGATE_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres).
# audit_verify runs twice, once per registry backend, to keep each run under ~2 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
benches=("$@")
if [ ${#benches[@]} -eq 0 ]; then
  benches=(outbound_log audit_verify tenancy accounting_poll)
fi
out=target/bench-results.txt
mkdir -p target
{
  echo "# scopegate benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "# $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out"
cargo bench -p scopegate --no-run $(printf -- '--bench %s ' "${benches[@]}")

run() { # run <bench> [VAR=value ...]
  local bench=$1
  shift
  echo | tee -a "$out"
  echo "\$ $* cargo bench -p scopegate --bench $bench" | sed 's/^\$  /$ /' | tee -a "$out"
  env "$@" cargo bench -p scopegate --bench "$bench" 2>&1 \
    | grep -v -E '^\s*(Finished|Running|Compiling)' | tee -a "$out"
}

for bench in "${benches[@]}"; do
  if [ "$bench" = audit_verify ] && [ -z "${SCOPEGATE_BENCH_BACKENDS:-}" ]; then
    run audit_verify SCOPEGATE_BENCH_BACKENDS=sqlite
    run audit_verify SCOPEGATE_BENCH_BACKENDS=postgres
  else
    run "$bench"
  fi
done
echo
echo "figures written to $out"
