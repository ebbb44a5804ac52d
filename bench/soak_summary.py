#!/usr/bin/env python3
"""Summarises a `bench/soak.sh` run directory; soak.sh runs it at the end
(OUT/summary.txt). Every figure in bench/SOAK.md is a line of this output.

  mixed mode: per client kind, summed over the rounds, what was opened,
              refused and failed, messages and seq gaps;
  churn mode: the loadgen's result (cycles, rate, refusals, close codes);
  both:       the host's exit status, its first and last reports, held
              bytes and refusals (host against clients), and the server's
              RSS (5 s samples): per minute, after warm-up, per 5 minutes.

Usage: soak_summary.py DIR"""
import json
import os
import re
import statistics
import sys

KINDS = ["receive", "churn", "dead", "slow", "flood", "rateflood"]
FIELDS = ["opened", "failed", "timeouts", "proto_errors", "msgs_total",
          "seq_gaps"]
HOST_KEYS = ["t_s", "connections", "sessions", "held_bytes", "opened",
             "messages_sent", "bytes_sent", "pings_sent", "closed_peer",
             "closed_stale", "closed_slow", "closed_error", "coalesced",
             "refused", "refused_per_ip", "refused_rate", "eagain", "errors",
             "producer_overruns"]


def last_json(path):
    line = None
    with open(path) as f:
        for raw in f:
            if raw.startswith("{"):
                line = raw
    return json.loads(line) if line else None


def clients_mixed(out, rounds):
    """Per-kind sums; returns (errors, refused 429, refused 503, opened)."""
    print("kind       " + " ".join(f"{k:>12}" for k in FIELDS)
          + "  refused 429 / 503 / other  missing")
    errors = r429 = r503 = opened = 0
    gaps = {}
    for kind in KINDS:
        tot = dict.fromkeys(FIELDS, 0)
        refused = [0, 0, 0]
        missing = present = 0
        for r in rounds:
            path = os.path.join(out, f"r{r}.{kind}")
            if not os.path.exists(path):
                continue  # a kind not run (--no-floods)
            present += 1
            j = last_json(path)
            if not j:
                missing += 1  # killed by its timeout: counts as an error
                continue
            for k in FIELDS:
                tot[k] += j.get(k, 0)
            if j.get("seq_gaps", 0):
                gaps.setdefault(r, []).append(f"{kind} {j['seq_gaps']}")
            ref = j.get("refused", {})
            refused = [refused[0] + ref.get("429", 0),
                       refused[1] + ref.get("503", 0),
                       refused[2] + ref.get("other", 0)]
        if not present:
            print(f"{kind:<10} (not run)")
            continue
        errors += (tot["failed"] + tot["timeouts"] + tot["proto_errors"]
                   + refused[2] + missing)
        r429 += refused[0]
        r503 += refused[1]
        opened += tot["opened"]
        print(f"{kind:<10} " + " ".join(f"{tot[k]:>12}" for k in FIELDS)
              + f"  {refused[0]:>11} / {refused[1]} / {refused[2]}"
              + f"  {missing}")
    print(f"client errors (failed + timeouts + protocol errors + other "
          f"refusals + missing results): {errors}")
    print(f"rounds with seq gaps: {len(gaps)} of {len(rounds)}"
          + "".join(f"; r{r}: {', '.join(g)}" for r, g in sorted(gaps.items())))
    return errors, r429, r503, opened


def clients_churn(out):
    j = last_json(os.path.join(out, "loadgen.out"))
    if not j:
        print("loadgen: no result (killed by its timeout?)")
        print("client errors: 1")
        return 1, 0, 0, 0
    ref = j.get("refused", {})
    print(f"loadgen: {j['cycles']} cycles, {j['opened']} opened, "
          f"{j['failed']} failed, {j['timeouts']} timeouts, "
          f"{j['proto_errors']} protocol errors")
    print(f"loadgen: {j['cycles_per_s']:.0f} cycles/s over the "
          f"{j['window_s']:.1f} s after the first 10 % of cycles")
    print(f"loadgen: refused 429 {ref.get('429', 0)}, 503 "
          f"{ref.get('503', 0)}, other {ref.get('other', 0)} (retried)")
    print(f"loadgen: close codes {j['close_codes']}; messages "
          f"{j['msgs_total']}, seq gaps {j['seq_gaps']}")
    errors = (j["failed"] + j["timeouts"] + j["proto_errors"]
              + ref.get("other", 0))
    print(f"client errors (failed + timeouts + protocol errors + other "
          f"refusals): {errors}")
    return errors, ref.get("429", 0), ref.get("503", 0), j["opened"]


def host(out, c429, c503, copened):
    try:
        status = open(os.path.join(out, "host.status")).read().strip()
    except OSError:
        status = "unknown"
    print(f"host exit status: {status}")
    reports = []
    with open(os.path.join(out, "host.out")) as f:
        for raw in f:
            if raw.startswith("REPORT "):
                reports.append(json.loads(raw[7:]))
    if not reports:
        print("host: no report")
        return
    first, last = reports[0], reports[-1]
    for name, rep in (("first", first), ("last", last)):
        print(f"host {name} report: "
              + ", ".join(f"{k}={rep.get(k)}" for k in HOST_KEYS))
    print(f"held bytes: {first.get('held_bytes')} at start, "
          f"{last.get('held_bytes')} at the end "
          f"({last.get('held_bytes', 0) - first.get('held_bytes', 0):+d}); "
          f"{last.get('connections')} connections, "
          f"{last.get('sessions')} sessions at the end")
    print(f"connections: clients opened {copened}, host opened "
          f"{last.get('opened')}")
    print(f"refusals: clients counted 429 {c429}, host refused_per_ip "
          f"{last.get('refused_per_ip')}; clients counted 503 {c503}, host "
          f"refused_rate {last.get('refused_rate')}")
    print(f"messages sent {last.get('messages_sent')} "
          f"({last.get('bytes_sent', 0) / 1e9:.2f} GB), pings "
          f"{last.get('pings_sent')}, broadcast errors "
          f"{last.get('errors')}, EAGAIN {last.get('eagain')}")


def rss(out):
    samples = []
    with open(os.path.join(out, "rss.csv")) as f:
        next(f)
        for raw in f:
            t, kib = raw.strip().split(",")
            if kib:
                samples.append((int(t), int(kib)))
    if not samples:
        print("RSS: no sample")
        return
    print(f"RSS KiB: first sample {samples[0][1]} (t={samples[0][0]} s), "
          f"last {samples[-1][1]} (t={samples[-1][0]} s), "
          f"{len(samples)} samples")
    per_min = {}
    for t, kib in samples:
        per_min.setdefault(t // 60, []).append(kib)
    print("RSS KiB per minute (min-max of the 5 s samples):")
    for minute in sorted(per_min):
        v = per_min[minute]
        print(f"  {minute:>3}: {min(v)}-{max(v)}")
    for start in (10, 120):
        later = [kib for t, kib in samples if t >= start]
        if later:
            print(f"RSS from {start} s: {min(later)}-{max(later)} KiB")
    blocks = {}
    for t, kib in samples:
        if t >= 120:
            blocks.setdefault(t // 300, []).append((t, kib))
    if blocks:
        print("RSS KiB from minute 2, per 5 minutes (min / median / max, "
              "from t s to t s):")
        for b in sorted(blocks):
            ts = [t for t, _ in blocks[b]]
            v = [kib for _, kib in blocks[b]]
            print(f"  {min(ts)}-{max(ts)} s: {min(v)} / "
                  f"{statistics.median(v):.0f} / {max(v)}")


def main(out):
    try:
        mode = open(os.path.join(out, "mode")).read().strip()
    except OSError:
        mode = "unknown"
    rounds = sorted({int(m.group(1)) for p in os.listdir(out)
                     for m in [re.match(r"r(\d+)\.", p)] if m})
    if rounds:
        print(f"mode: {mode}; rounds: {len(rounds)}")
        _, c429, c503, copened = clients_mixed(out, rounds)
    else:
        print(f"mode: {mode}")
        _, c429, c503, copened = clients_churn(out)
    host(out, c429, c503, copened)
    rss(out)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
