#!/usr/bin/env python3
"""Prints the summary table of a `scripts/bench.sh` run from its output file
(default target/bench-results.txt): every figure issue 11 names, its
baseline, the ratio, the goal and whether it is met. Figures come only from
the benches' own output; a bench that was not run shows "not measured".

Baselines of the outbound log and `audit verify` are the issue's figures for
the code before it (BENCHMARKS.md, "Final run on the merged code"); the
other rows show the baseline each bench measures in the same run.
"""
import re
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "target/bench-results.txt"
text = open(path, encoding="utf-8").read()
lines = text.splitlines()

# (figure, baseline, goal, higher is better) for the issue's targets.
ISSUE = {
    ("outbound_log", "sqlite"): (6236, 20000),
    ("outbound_log", "postgres"): (2094, 10000),
    ("audit_verify", "sqlite"): (60579, 1000000),
    ("audit_verify", "postgres"): (134048, None),
}


def fmt(n, unit=""):
    if n is None:
        return "-"
    if isinstance(n, float) and n < 100:
        return f"{n:.2f}{unit}"
    return f"{n:,.0f}{unit}"


rows = []


def row(figure, value, baseline, goal, met, ratio=None):
    if ratio is None:
        ratio = (
            f"{value / baseline:.2f}x"
            if isinstance(value, (int, float)) and isinstance(baseline, (int, float)) and baseline
            else "-"
        )
    rows.append((figure, value if isinstance(value, str) else fmt(value),
                 baseline if isinstance(baseline, str) else fmt(baseline), ratio, goal, met))


def last_match(pattern):
    found = [m for m in (re.search(pattern, l) for l in lines) if m]
    return found[-1] if found else None


# 3. Outbound log, 32 writers, records as the bench makes them by default (100 record ids).
outbound = {}
ids = 100
for l in lines:
    h = re.search(r"each record: (\d+) record ids", l)
    if h:
        ids = int(h.group(1))
    m = re.search(
        r"^(sqlite|postgres)\s+(\d+)\s+group commit \(max batch \d+\)\s+\d+\s+[\d.]+\s+(\d+)\s+([\d.]+)", l)
    if m and ids == 100 and int(m.group(2)) == 32:
        outbound[m.group(1)] = (int(m.group(3)), float(m.group(4)))
for backend in ("sqlite", "postgres"):
    base, goal = ISSUE[("outbound_log", backend)]
    if backend in outbound:
        rate, batch = outbound[backend]
        name = f"outbound log records/s, {backend}, 32 writers, 100 ids (mean batch {batch:.1f})"
        row(name, rate, base, f">= {goal:,}", "yes" if rate >= goal else "NO")
    else:
        row(f"outbound log records/s, {backend}, 32 writers", "not measured", base,
            f">= {goal:,}", "-")

# 4. audit verify over 1,000,000 records.
for backend in ("sqlite", "postgres"):
    found = [m for m in (re.search(
        rf"^{backend}\s+\d+\s+verify_all \(audit verify\)\s+(\d+)\s+([\d.]+)\s+(\d+)", l) for l in lines) if m]
    base, goal = ISSUE[("audit_verify", backend)]
    goal_text = f">= {goal:,}" if goal else "report"
    if found:
        best = max(int(m.group(3)) for m in found)
        records = int(found[-1].group(1))
        name = f"audit verify records/s, {backend}, {records:,} records (best of {len(found)} rounds)"
        met = "-" if not goal else ("yes" if best >= goal and records >= 1_000_000 else "NO")
        row(name, best, base, goal_text, met)
    else:
        row(f"audit verify records/s, {backend}", "not measured", base, goal_text, "-")

# Accounting poll: gateway / bare throughput, mean over rounds.
for backend in ("sqlite", "postgres"):
    ratios = [float(m.group(1)) for m in (re.search(
        rf"^{backend}\s+\d+\s+gateway / bare throughput = ([\d.]+)", l) for l in lines) if m]
    goal = 0.85 if backend == "sqlite" else 0.8
    if ratios:
        mean = sum(ratios) / len(ratios)
        row(f"accounting poll gateway/bare req/s, {backend} ({len(ratios)} rounds)",
            "gateway", "bare, same run", f">= {goal}", "yes" if mean >= goal else "NO",
            ratio=f"{mean:.2f}")
    else:
        row(f"accounting poll gateway/bare req/s, {backend}", "not measured", "-",
            f">= {goal}", "-")

# Tenancy tails and memory (scale).
m = last_match(r"cold first query against a target of < 20 ms: p99 ([\d.]+) ms, max ([\d.]+) ms")
w = last_match(r"cold/warm p50 = ([\d.]+)x")
if m:
    row("tenancy cold first query p99 / max (ms), 10,000 firms", f"{m.group(1)} / {m.group(2)}",
        "warm, same run", "< 20 ms (max)", "yes" if float(m.group(2)) < 20 else "NO",
        ratio=f"{w.group(1)}x p50" if w else "-")
else:
    row("tenancy cold first query p99 / max", "not measured", "-", "< 20 ms", "-")
m = last_match(r"peak RSS \(VmHWM\) ([\d.]+) MB")
row("tenancy peak RSS (MB), 10,000 firms", m.group(1) if m else "not measured", "-",
    "< 200 MB", ("yes" if float(m.group(1)) < 200 else "NO") if m else "-")

# Calendar sync.
m = last_match(r"initial sync: (\d+) events in ([\d.]+) s = (\d+) events/s")
c = last_match(r"gateway CPU: [\d.]+ s total = (\d+) us per event")
d = last_match(r"diary change -> event \(\d+ changes\): p50 (\d+) ms, p95 (\d+) ms")
if m:
    row(f"calendar sync events/s, {int(m.group(1)):,} entries (no quota in the emulator yet)",
        int(m.group(3)), "-", ">= 95% of the quota (not measurable yet)", "-")
    if c:
        row("calendar sync gateway CPU per event (us)", int(c.group(1)), "-", "<= 200",
            "yes" if int(c.group(1)) <= 200 else "NO")
    if d:
        row("calendar change -> event p50 / p95 (ms)", f"{d.group(1)} / {d.group(2)}", "-",
            "p95 <= 2,000", "yes" if int(d.group(2)) <= 2000 else "NO")
else:
    row("calendar sync events/s", "not measured", "-", ">= 95% of the quota", "-")

print()
print("## Summary (issue 11)")
header = ("figure", "measured", "baseline", "ratio", "goal", "met?")
widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
for r in [header, tuple("-" * w for w in widths)] + rows:
    print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")
