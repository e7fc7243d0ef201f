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
    rates = {side: [int(m.group(1)) for m in (re.search(
        rf"^{backend}\s+\d+\s+{label}\s+\d+\s+[\d.]+\s+(\d+)", l) for l in lines) if m]
        for side, label in (("bare", r"bare axum handler \(baseline\)"),
                            ("gateway", r"gateway \(auth, projection, log\)"))}
    if ratios:
        mean = sum(ratios) / len(ratios)
        mean_of = lambda side: (f"{sum(rates[side]) / len(rates[side]):,.0f} req/s"
                                if rates[side] else "-")
        row(f"accounting poll gateway/bare req/s, {backend} (mean ratio of {len(ratios)} rounds)",
            mean_of("gateway"), f"bare {mean_of('bare')}", f">= {goal}",
            "yes" if mean >= goal else "NO", ratio=f"{mean:.2f}")
    else:
        row(f"accounting poll gateway/bare req/s, {backend}", "not measured", "-",
            f">= {goal}", "-")

# 2. Tails at half load, open loop (poll_tails).
for backend in ("sqlite", "postgres"):
    m = last_match(
        rf"^tails \({backend}\): rate (\d+)/s .*gateway p50 ([\d.]+) p99 ([\d.]+) p999 ([\d.]+) max [\d.]+ ms; "
        r"bare p50 ([\d.]+) p99 ([\d.]+) p999 ([\d.]+)")
    if m:
        g99, b99 = float(m.group(3)), float(m.group(6))
        row(f"open-loop p50 / p99 / p999 (ms) at {m.group(1)}/s, {backend}, gateway",
            f"{m.group(2)} / {m.group(3)} / {m.group(4)}",
            f"bare {m.group(5)} / {m.group(6)} / {m.group(7)}",
            "p99 <= 5 ms", "yes" if g99 <= 5 else "NO",
            ratio=f"{g99 / b99:.2f}x p99" if b99 else "-")
    else:
        row(f"open-loop p99 at 50% of max, {backend}", "not measured", "-", "p99 <= 5 ms", "-")

# 6. Scale: 1k / 10k / 100k registered firms (tenancy).
sizes = {}
for l in lines:
    m = re.search(
        r"^tenancy scale: (\d+) firms \((\d+) active\): peak RSS ([\d.]+) MB; cold first query p50 ([\d.]+) "
        r"p99 ([\d.]+) max ([\d.]+) ms; token resolution p50 ([\d.]+) ms \(([\d.]+)x\), p99 ([\d.]+) ms", l)
    if m:
        sizes[int(m.group(1))] = m
if sizes:
    largest = sizes[max(sizes)]
    firms = int(largest.group(1))
    rss, cold99 = float(largest.group(3)), float(largest.group(5))
    row(f"peak RSS (MB), {firms:,} firms ({int(largest.group(2)):,} active)", rss, "-", "< 200 MB",
        "yes" if rss < 200 else "NO")
    row(f"cold first query p99 (ms), {firms:,} firms", cold99, "-", "< 20 ms",
        "yes" if cold99 < 20 else "NO")
    base_size = min(sizes)
    for size in sorted(sizes):
        if size == base_size:
            continue
        m = sizes[size]
        ratio = float(m.group(8))
        row(f"token resolution p50 (ms), {size:,} vs {base_size:,} firms", m.group(7),
            sizes[base_size].group(7), "flat (<= 1.5x, as the bench)", "yes" if ratio <= 1.5 else "NO",
            ratio=f"{ratio:.2f}x")
else:
    row("tenancy at 1k / 10k / 100k firms", "not measured", "-", "RSS < 200 MB, p99 < 20 ms", "-")

# 5. Calendar sync with the emulator enforcing Google's quotas.
q = last_match(r"^calendar_sync quota run: .* = (\d+) calls/min, quota (\d+) calls/min .*ratio ([\d.]+) "
               r"\(goal >= 0.95\), throttled answers \(403/429\) (\d+)")
c = last_match(r"^calendar_sync gateway CPU: ([\d.]+) s = (\d+) us per event")
d = last_match(r"^calendar_sync diary change -> event \((\d+) changes, interval (\d+) ms\): p50 (\d+) ms, p95 (\d+) ms")
if q:
    ratio = float(q.group(3))
    row(f"calendar initial sync calls/min ({q.group(4)} throttled)", int(q.group(1)),
        f"quota {int(q.group(2)):,}", ">= 0.95 of quota", "yes" if ratio >= 0.95 else "NO",
        ratio=f"{ratio:.3f}")
else:
    row("calendar initial sync against the quota", "not measured", "-", ">= 0.95 of quota", "-")
if c:
    row("calendar gateway CPU per event (us)", int(c.group(2)), "-", "<= 200",
        "yes" if int(c.group(2)) <= 200 else "NO")
if d:
    row(f"calendar change -> event p50 / p95 (ms), interval {d.group(2)} ms",
        f"{d.group(3)} / {d.group(4)}", "-", "p95 <= 2,000", "yes" if int(d.group(4)) <= 2000 else "NO")

# 7. Two instances on one PostgreSQL registry.
m = last_match(r"^two_instances: one instance (\d+) req/s, two instances (\d+) req/s \(([\d.]+)\), "
               r"p50 ([\d.]+) / ([\d.]+) ms, p99 ([\d.]+) / ([\d.]+) ms")
if m:
    row("two instances on one PostgreSQL registry, req/s", int(m.group(2)),
        f"one instance {int(m.group(1)):,}", "measured (README capacity)", "-",
        ratio=f"{float(m.group(3)):.2f}x")
else:
    row("two instances on one PostgreSQL registry", "not measured", "-", "measured", "-")

print()
print("## Summary (issue 11)")
header = ("figure", "measured", "baseline", "ratio", "goal", "met?")
widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
for r in [header, tuple("-" * w for w in widths)] + rows:
    print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")
