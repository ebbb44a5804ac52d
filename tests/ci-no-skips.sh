#!/bin/sh
# CI: fails when a meson test run skipped a test it is expected to run.
# A skip is not a pass: on CI's machine every tool a test needs is installed
# and it runs as root, so only the skips named here are by design.
# usage: ci-no-skips.sh TESTLOG_JSON [ALLOWED_TEST_NAME...]
set -eu
log=$1
shift
python3 - "$log" "$@" <<'PY'
import json, sys

log, allowed = sys.argv[1], set(sys.argv[2:])
bad = []
with open(log) as f:
    for line in f:
        t = json.loads(line)
        name = t["name"].split(" / ")[-1]
        if t["result"] == "SKIP" and name not in allowed:
            bad.append(t["name"])
for name in bad:
    print(f"ci-no-skips: {name} was skipped, but CI expects it to run",
          file=sys.stderr)
sys.exit(1 if bad else 0)
PY
