#!/usr/bin/env python3
"""Summarises a `bench/soak.sh --mixed` run directory: per client kind
(summed over rounds) what was opened, refused and failed; the host's first
and last reports; the server RSS once a minute. Usage: soak_summary.py DIR"""
import json
import os
import re
import sys

KINDS = ["receive", "churn", "dead", "slow", "flood", "rateflood"]
FIELDS = ["opened", "failed", "timeouts", "proto_errors", "seq_gaps",
          "msgs_total"]


def last_json(path):
    line = None
    with open(path) as f:
        for raw in f:
            if raw.startswith("{"):
                line = raw
    return json.loads(line) if line else None


def main(out):
    rounds = sorted({int(m.group(1)) for p in os.listdir(out)
                     for m in [re.match(r"r(\d+)\.", p)] if m})
    print(f"rounds: {len(rounds)}")
    print("kind       " + " ".join(f"{k:>12}" for k in FIELDS)
          + "  refused 429 / 503 / other  missing")
    errors = 0
    for kind in KINDS:
        tot = dict.fromkeys(FIELDS, 0)
        refused = [0, 0, 0]
        missing = 0
        for r in rounds:
            path = os.path.join(out, f"r{r}.{kind}")
            j = last_json(path) if os.path.exists(path) else None
            if not j:
                missing += 1  # killed by its timeout: counts as an error
                continue
            for k in FIELDS:
                tot[k] += j.get(k, 0)
            ref = j.get("refused", {})
            refused = [refused[0] + ref.get("429", 0),
                       refused[1] + ref.get("503", 0),
                       refused[2] + ref.get("other", 0)]
        errors += (tot["failed"] + tot["timeouts"] + tot["proto_errors"]
                   + refused[2] + missing)
        print(f"{kind:<10} " + " ".join(f"{tot[k]:>12}" for k in FIELDS)
              + f"  {refused[0]:>11} / {refused[1]} / {refused[2]}"
              + f"  {missing}")
    print(f"client errors (failed + timeouts + protocol errors + other "
          f"refusals + missing results): {errors}")

    reports = []
    with open(os.path.join(out, "host.out")) as f:
        for raw in f:
            if raw.startswith("REPORT "):
                reports.append(json.loads(raw[7:]))
    if reports:
        for name, rep in (("first", reports[0]), ("last", reports[-1])):
            keys = ["t_s", "connections", "sessions", "held_bytes", "opened",
                    "messages_sent", "closed_peer", "closed_stale",
                    "closed_slow", "closed_error", "refused_per_ip",
                    "refused_rate", "eagain", "errors"]
            print(f"host {name} report: "
                  + ", ".join(f"{k}={rep.get(k)}" for k in keys))

    rss = []
    with open(os.path.join(out, "rss.csv")) as f:
        next(f)
        for raw in f:
            t, kib = raw.strip().split(",")
            if kib:
                rss.append((int(t), int(kib)))
    if rss:
        per_min = {}
        for t, kib in rss:
            per_min.setdefault(t // 60, []).append(kib)
        print("RSS KiB per minute (min-max of the 5 s samples):")
        for minute in sorted(per_min):
            v = per_min[minute]
            print(f"  {minute:>3}: {min(v)}-{max(v)}")
        later = [kib for t, kib in rss if t >= 120]
        if later:
            print(f"RSS after 2 min: {min(later)}-{max(later)} KiB")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
