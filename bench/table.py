#!/usr/bin/env python3
"""Turns bench/run.sh's results.jsonl into the results table (markdown).

Each figure: median [min-max] over repetitions, per host variant, and the
ratio of the libwsm variant to its baseline (same loop, same 128-byte rx
buffer; and to lws defaults).

It also checks every run and lists what failed under "Problems", each
tagged with its check (README.md, "Checks"):
  host-exit        the host exited non-zero or was killed by a signal
  sanitizer        a sanitizer (or valgrind) report in the host's stderr
  loadgen          the loadgen failed: exit status, no result, protocol
                   errors, connections not opened, nothing delivered,
                   churn cycles missing, dead peers not closed with 4000
  connections-left the host's final report holds connections
  held-bytes       libwsm's held_bytes at the end differ from report 0
                   (before any client), or sessions are left; only for
                   runs that end idle (retention 0 or the smoke's short
                   retention, which run.sh waits out): "idle_end"
  seq-gaps         seq gaps in a run that may not lose messages
                   ("lossless": the rule is in run.sh)
  4004             a slow-consumer close seen by a reading client, or
                   counted by the host in a run without slow consumers
With --smoke=1 any of them fails (exit 1); speed is not checked.
"""
import json
import statistics
import sys
from collections import defaultdict

if sys.argv[1] == "--render":
    # bench/render.c's one JSON line, as a table.
    r = json.load(open(sys.argv[2]))
    print(f"\n### render (ns per call, median of {r['rounds']} rounds of "
          f"{r['calls']:,})\n")
    print("| figure | libwsm | jansson | libwsm/jansson |\n|---|---|---|---|")
    print(f"| progress broadcast | {r['progress_ns']} | "
          f"{r['jansson_progress_ns']} | "
          f"{r['progress_ns'] / r['jansson_progress_ns']:.2f} |")
    print(f"| error broadcast | {r['error_ns']} | - | - |")
    sys.exit(0)

path = sys.argv[1]
smoke = any(a == "--smoke=1" for a in sys.argv[2:])
recs = [json.loads(l) for l in open(path) if l.strip()]
problems = []
failed_checks = []


def problem(check, text):
    problems.append(f"[{check}] {text}")
    if check not in failed_checks:
        failed_checks.append(check)


def checks(r):
    """The checks common to every run (see the module docstring)."""
    s, v, lg = r["scenario"], r["variant"], r["loadgen"]
    name = f"{s} {v}"
    st = r.get("host_exit", 0)
    if st > 128:
        problem("host-exit", f"{name}: host killed by signal {st - 128}")
    elif st:
        problem("host-exit", f"{name}: host exited with status {st}")
    if r.get("host_sanitizer"):
        problem("sanitizer", f"{name}: sanitizer report in the host's stderr")
    if r.get("loadgen_exit", 0):
        problem("loadgen", f"{name}: loadgen exit status {r['loadgen_exit']}")
    if lg and lg.get("proto_errors", 0):
        problem("loadgen", f"{name}: {lg['proto_errors']} protocol errors")
    r0, last = rep(r, 0), final(r)
    if not r0 or not last or last is r0:
        problem("host-exit", f"{name}: the host's reports are missing")
        return
    if last.get("connections", 0) != 0:
        problem("connections-left",
                f"{name}: {last['connections']} connections at the end")
    if r.get("idle_end") and "held_bytes" in last:
        if last["held_bytes"] != r0["held_bytes"]:
            problem("held-bytes",
                    f"{name}: held_bytes {last['held_bytes']} at the end, "
                    f"{r0['held_bytes']} before any client "
                    f"({last['held_bytes'] - r0['held_bytes']:+d})")
        if last.get("sessions", 0) != 0:
            problem("held-bytes",
                    f"{name}: {last['sessions']} sessions at the end")
    if lg and r.get("lossless") and lg.get("seq_gaps", 0):
        problem("seq-gaps", f"{name}: {lg['seq_gaps']} seq gaps at a rate "
                "that may not lose any")
    if lg and lg.get("close_codes", {}).get("4004", 0):
        problem("4004", f"{name}: {lg['close_codes']['4004']} reading "
                "clients closed with 4004 (slow consumer)")
    if not r.get("slow_conns") and last.get("closed_slow", 0):
        problem("4004", f"{name}: the host closed {last['closed_slow']} "
                "connections as slow consumers, with none in the run")


def rep(r, n):
    for x in r["reports"]:
        if x.get("n") == n:
            return x
    return None


def final(r):
    return r["reports"][-1] if r["reports"] else None


def figures(r):
    """Figures of one run, by name."""
    s, lg, f = r["scenario"], r["loadgen"], {}
    checks(r)
    if not lg:
        problem("loadgen", f"{s} {r['variant']}: no loadgen result")
        return f
    r0, r1, r2 = rep(r, 0), rep(r, 1), rep(r, 2)
    if s.startswith("fanout") or s.startswith("slow") or s.startswith("maxrate"):
        f["msgs/s delivered"] = lg["msgs_per_s"]
        tot = lg["msgs"] + lg["seq_gaps"]
        f["delivered %"] = 100.0 * lg["msgs"] / tot if tot else 0.0
        f["p50 ms"] = lg["lat_us"]["p50"] / 1000
        f["p99 ms"] = lg["lat_us"]["p99"] / 1000
        f["max ms"] = lg["lat_us"]["max"] / 1000
        if r1 and r2 and lg["msgs"]:
            f["server CPU s / M msgs"] = (r2["cpu_s"] - r1["cpu_s"]) / lg["msgs"] * 1e6
            f["server CPU %"] = 100 * (r2["cpu_s"] - r1["cpu_s"]) / lg["window_s"]
            if "ctx_switches" in r2:
                f["context switches/s"] = (r2["ctx_switches"] - r1["ctx_switches"]) / lg["window_s"]
        if r0 and r2:
            f["server RSS MiB"] = r2["rss"] / 1048576
        if lg["opened"] != lg["conns"]:
            problem("loadgen", f"{s} {r['variant']}: opened {lg['opened']} of {lg['conns']}")
        if lg["msgs"] == 0:
            problem("loadgen", f"{s} {r['variant']}: no message delivered")
        if r.get("offered_per_s"):
            f["offered msgs/s"] = r["offered_per_s"]
        if r2 and "queued_bytes" in r2:
            f["lib queued bytes"] = r2["queued_bytes"]
            f["slow closes (4004)"] = r2.get("closed_slow", 0)
    elif s.startswith("idle") or s.startswith("timers"):
        if r0 and r1 and lg["opened"]:
            f["RSS bytes / conn"] = (r1["rss"] - r0["rss"]) / lg["opened"]
            if "held_bytes" in r1:
                f["lib held bytes / conn"] = (r1["held_bytes"] - r0["held_bytes"]) / lg["opened"]
        if lg["opened"] != lg["conns"]:
            problem("loadgen", f"{s} {r['variant']}: opened {lg['opened']} of {lg['conns']}")
        if s.startswith("timers"):
            pings = (r2 or {}).get("pings_sent", 0) - (r1 or {}).get("pings_sent", 0)
            f["pings in window"] = pings
            f["Ir in window"] = r.get("ir", 0)
            if pings > 0:
                f["Ir / conn / heartbeat"] = r.get("ir", 0) / pings
            elif lg["opened"]:
                f["Ir / conn / 5 s window"] = r.get("ir", 0) / lg["opened"]
    elif s == "churn":
        f["cycles/s"] = lg["cycles_per_s"]
        f["cycles done"] = lg["cycles"]
        last = final(r)
        if r1 and last:
            f["RSS growth after warm-up KiB"] = (last["rss"] - r1["rss"]) / 1024
        if r0 and last and "held_bytes" in last:
            f["held bytes end - start"] = last["held_bytes"] - r0["held_bytes"]
            f["connections left"] = last["connections"]
        if lg["cycles"] < r.get("cycles_target", 0):
            problem("loadgen", f"churn {r['variant']}: {lg['cycles']} of {r['cycles_target']} cycles")
    elif s == "dead":
        f["max open-to-close s"] = lg["dead_max_open_to_close_s"]
        f["all closed after s"] = lg["dead_all_closed_s"]
        f["target s"] = (r["ping_ms"] + r["stale_ms"]) / 1000 + 1
        f["closed with 4000"] = lg["close_codes"].get("4000", 0)
        if lg["close_codes"].get("4000", 0) != lg["opened"] or not lg["opened"]:
            problem("loadgen", f"dead {r['variant']}: {lg['close_codes']} for {lg['opened']} opened")
    return f


agg = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
order_s, order_v = [], defaultdict(list)
for r in recs:
    s, v = r["scenario"], r["variant"]
    if s not in order_s:
        order_s.append(s)
    if v not in order_v[s]:
        order_v[s].append(v)
    for k, x in figures(r).items():
        agg[s][k][v].append(x)


def fmt(x):
    if isinstance(x, float) and abs(x) < 10:
        return f"{x:.3g}"
    return f"{x:,.0f}"


def cell(xs):
    if not xs:
        return "-"
    m = statistics.median(xs)
    if len(xs) == 1:
        return fmt(m)
    return f"{fmt(m)} [{fmt(min(xs))}–{fmt(max(xs))}]"


PAIRS = [("wsm-loop", "base128-loop"), ("wsm-poll", "base128-poll"),
         ("wsm-poll", "base-poll"),
         ("wsm-uv", "base128-uv")]
out = []
for s in order_s:
    vs = order_v[s]
    pairs = [p for p in PAIRS if p[0] in vs and p[1] in vs]
    out.append(f"\n### {s}\n")
    out.append("| figure | " + " | ".join(vs) + "".join(
        f" | {a}/{b}" for a, b in pairs) + " |")
    out.append("|---" * (1 + len(vs) + len(pairs)) + "|")
    for k, byv in agg[s].items():
        row = [k] + [cell(byv.get(v, [])) for v in vs]
        for a, b in pairs:
            xa, xb = byv.get(a), byv.get(b)
            if xa and xb and statistics.median(xb):
                row.append(f"{statistics.median(xa) / statistics.median(xb):.2f}")
            else:
                row.append("-")
        out.append("| " + " | ".join(row) + " |")
print("\n".join(out))
if problems:
    print("\nProblems:")
    for p in problems:
        print("- " + p)
if smoke:
    if problems or not recs:
        print("SMOKE: FAIL (checks failed: "
              + (", ".join(failed_checks) or "no results") + ")")
        sys.exit(1)
    print("SMOKE: OK")
