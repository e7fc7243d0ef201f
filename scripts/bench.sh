#!/usr/bin/env bash
# Runs every benchmark in release and tees the figures to target/bench-results.txt.
# Usage: scripts/bench.sh [bench ...]   (default: all of them)
# Sizes come from SCOPEGATE_BENCH_* variables (see each gateway/benches/*.rs header);
# PostgreSQL from SCOPEGATE_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres).
# audit_verify runs twice, once per registry backend, to keep each run under ~2 minutes;
# accounting_poll and poll_tails run on both registries (SQLite and PostgreSQL).
# calendar_sync lives in the e2e package (tests/benches). The run ends with the
# summary table of issue 11 (scripts/bench_summary.py): figure, baseline, ratio, goal, met?
set -euo pipefail
cd "$(dirname "$0")/.."
benches=("$@")
if [ ${#benches[@]} -eq 0 ]; then
  benches=(outbound_log audit_verify tenancy accounting_poll poll_tails two_instances calendar_sync)
fi
out=target/bench-results.txt
mkdir -p target
{
  echo "# scopegate benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "# $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out"
package_of() { # the package that holds bench $1
  if [ "$1" = calendar_sync ]; then echo scopegate-e2e; else echo scopegate; fi
}
for bench in "${benches[@]}"; do
  cargo bench -p "$(package_of "$bench")" --no-run --bench "$bench"
done

run() { # run <bench> [VAR=value ...]
  local bench=$1 package
  package=$(package_of "$bench")
  shift
  echo | tee -a "$out"
  echo "\$ $* cargo bench -p $package --bench $bench" | sed 's/^\$  /$ /' | tee -a "$out"
  echo "# load average $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out"
  env "$@" cargo bench -p "$package" --bench "$bench" 2>&1 \
    | grep -v -E '^\s*(Finished|Running|Compiling)' | tee -a "$out"
}

for bench in "${benches[@]}"; do
  if [ "$bench" = audit_verify ] && [ -z "${SCOPEGATE_BENCH_BACKENDS:-}" ]; then
    run audit_verify SCOPEGATE_BENCH_BACKENDS=sqlite
    run audit_verify SCOPEGATE_BENCH_BACKENDS=postgres
  elif [[ $bench =~ ^(accounting_poll|poll_tails)$ ]] && [ -z "${SCOPEGATE_BENCH_BACKENDS:-}" ]; then
    run "$bench" SCOPEGATE_BENCH_BACKENDS=sqlite,postgres
  else
    run "$bench"
  fi
done
python3 scripts/bench_summary.py "$out" | tee -a "$out"
echo
echo "figures written to $out"
