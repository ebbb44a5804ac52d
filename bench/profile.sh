#!/bin/bash
# bench/profile.sh: where a host's CPU goes in the fan-out burst, by
# component and by symbol (perf, CPU-clock sampling), plus its context
# switches. One run per host; every process bounded in time.
#
#   bench/profile.sh BUILD_DIR VARIANT [OUT_DIR]
#
# VARIANT: wsm-loop, wsm-poll, base128-loop or base128-poll (as in run.sh).
# BUILD_DIR holds bench/{host_wsm,host_baseline,loadgen}; build it
# release (run.sh does). Prints the two perf tables; keeps perf.data in
# OUT_DIR (default: a new temporary directory). RATE (per session per
# second, default 10) and SUBTICKS (default 1, a burst) set the producer.
set -eu
B=$1/bench
V=$2
OUT=${3:-$(mktemp -d /tmp/wsm-profile.XXXXXX)}
mkdir -p "$OUT"
command -v perf >/dev/null || { echo "profile.sh: no perf (apt-get install linux-perf)" >&2; exit 1; }
case $V in
wsm-loop) bin=host_wsm; args="--loop poll --producer loop" ;;
wsm-poll) bin=host_wsm; args="--loop poll" ;;
base128-loop) bin=host_baseline; args="--loop poll --rx 128 --producer loop" ;;
base128-poll) bin=host_baseline; args="--loop poll --rx 128" ;;
*) echo "profile.sh: unknown variant $V" >&2; exit 2 ;;
esac
ulimit -n "$(ulimit -Hn)"
"$B/$bin" $args --sessions 2000 --rate ${RATE:-10} --subticks ${SUBTICKS:-1} --duration 60 >"$OUT/host.out" 2>"$OUT/host.err" &
HP=$!
trap 'kill $HP 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
	PORT=$(sed -n 's/^READY port=\([0-9]*\).*/\1/p' "$OUT/host.out")
	[ -n "$PORT" ] && break
	sleep 0.1
done
[ -n "$PORT" ] || { echo "profile.sh: host did not start" >&2; exit 1; }
# 4,000 receiving clients; 3 s to connect and settle, then 10 s profiled.
timeout 60 "$B/loadgen" --port "$PORT" --procs 4 --mode receive --conns 4000 \
	--per-session 2 --warmup 3 --duration 12 >"$OUT/loadgen.out" 2>&1 &
LG=$!
sleep 4
perf record -q -F 999 -g -o "$OUT/perf.data" -p $HP -- sleep 10 2>/dev/null
wait $LG || true
kill -TERM $HP; wait $HP || true
trap - EXIT
echo "## $V: by component"
perf report -i "$OUT/perf.data" --no-children --sort dso --stdio 2>/dev/null |
	grep -E '^ +[0-9.]+%' | head -8
echo "## $V: top symbols"
perf report -i "$OUT/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null |
	grep -E '^ +[0-9.]+%' | head -25
echo "## $V: context switches, loadgen result"
grep -h '^REPORT' "$OUT/host.out" | tail -1 | sed 's/.*"ctx_switches":\([0-9]*\).*/ctx_switches_total \1/'
grep -h '^{' "$OUT/loadgen.out" | tail -1
echo "perf data: $OUT/perf.data"
