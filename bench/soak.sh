#!/bin/sh
# Soak (not in CI): one long churn run against host_wsm — connect, receive,
# close, CYCLES times — sampling the server's RSS every 5 s, then comparing
# libwsm's held bytes at the end with the idle figure. Bounded: the host and
# the load generator both stop by themselves.
#   bench/soak.sh [--build-dir B] [--cycles N] [--out DIR]
#   bench/soak.sh --mixed MINUTES [--no-floods] [--build-dir B] [--out DIR]
# --mixed runs, for MINUTES, rounds of receivers, churn (reconnects), dead
# peers that never answer pings and never-reading clients side by side,
# with the host's producer broadcasting throughout; once the receivers are
# connected, two floods join each round: one address opening far more
# upgrades than its per-IP cap (429) and eight addresses reconnecting as
# fast as they can, past the upgrade rate limit (503). --no-floods leaves
# the floods out. Legitimate clients use 127.0.0.1-9, the floods 127.0.0.20
# and 127.0.0.30-37.
#
# The host runs with --max-per-ip 300 --max-upgrade-rate 4000 in both
# modes, so churn cannot go above 4,000 admitted upgrades/s; the rest are
# refused with 503 and retried by the loadgen.
#
# At the end it prints bench/soak_summary.py's summary (OUT/summary.txt):
# every figure in bench/SOAK.md comes from that output.
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
B=$SRC/build
CYCLES=1000000
MIXED=0
FLOODS=1
OUT=""
while [ $# -gt 0 ]; do
	case $1 in
	--build-dir) B=$2; shift 2 ;;
	--cycles) CYCLES=$2; shift 2 ;;
	--mixed) MIXED=$2; shift 2 ;;
	--no-floods) FLOODS=0; shift ;;
	--out) OUT=$2; shift 2 ;;
	*) echo "usage: $0 [--build-dir B] [--cycles N] [--out DIR]" >&2
	   echo "       $0 --mixed MINUTES [--no-floods] [--build-dir B] [--out DIR]" >&2
	   exit 2 ;;
	esac
done
[ -n "$OUT" ] || OUT=$(mktemp -d /tmp/wsm-soak.XXXXXX)
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)"
# Bounds: churn at most 4,000 cycles/s (the upgrade cap), so twice the
# expected time plus 2 minutes; mixed: its minutes plus one.
LIMIT_S=$((CYCLES / 2000 + 120))
[ "$MIXED" -gt 0 ] && LIMIT_S=$((MIXED * 60 + 60))
if [ "$MIXED" -gt 0 ]; then
	echo "mixed minutes=$MIXED floods=$FLOODS" >"$OUT/mode"
else
	echo "churn cycles=$CYCLES" >"$OUT/mode"
fi

"$B/bench/host_wsm" --loop poll --sessions 500 --rate 10 --subticks 10 \
	--ping 2000 --stale 6000 --retention 0 --duration "$LIMIT_S" \
	--max-per-ip 300 --max-upgrade-rate 4000 \
	>"$OUT/host.out" 2>"$OUT/host.err" &
HP=$!
trap 'kill -TERM $HP 2>/dev/null; exit 130' INT TERM
for _ in $(seq 1 100); do
	PORT=$(sed -n 's/^READY port=\([0-9]*\).*/\1/p' "$OUT/host.out")
	[ -n "$PORT" ] && break
	sleep 0.1
done
[ -n "${PORT:-}" ] || { echo "soak: host did not start" >&2; exit 1; }

echo "t_s,rss_kib" >"$OUT/rss.csv"
T0=$(date +%s)
( while kill -0 $HP 2>/dev/null; do
	echo "$(( $(date +%s) - T0 )),$(awk '/^VmRSS/ {print $2}' /proc/$HP/status)"
	sleep 5
  done >>"$OUT/rss.csv" ) &
SP=$!

LG="$B/bench/loadgen --port $PORT"
if [ "$MIXED" -gt 0 ]; then
	END=$((T0 + MIXED * 60))
	round=0
	while [ "$(date +%s)" -lt "$END" ]; do
		round=$((round + 1))
		timeout 120 $LG --mode receive --conns 400 --per-session 2 --duration 60 >"$OUT/r$round.receive" 2>"$OUT/r$round.receive.err" &
		p1=$!
		timeout 120 $LG --mode churn --conns 100 --per-session 2 --cycles 100000 --duration 60 >"$OUT/r$round.churn" 2>>"$OUT/loadgen.err" &
		p2=$!
		timeout 120 $LG --mode dead --conns 100 --per-session 1 --session-base 300 --duration 20 >"$OUT/r$round.dead" 2>>"$OUT/loadgen.err" &
		p3=$!
		timeout 120 $LG --mode slow --conns 20 --per-session 1 --session-base 450 --duration 30 >"$OUT/r$round.slow" 2>>"$OUT/loadgen.err" &
		p4=$!
		if [ $FLOODS = 1 ]; then
			# The floods start once the receivers are in (at most 30 s).
			for _ in $(seq 1 300); do
				grep -q connected "$OUT/r$round.receive.err" 2>/dev/null && break
				sleep 0.1
			done
			timeout 60 $LG --mode flood --conns 800 --src 1 --src-base 20 --session-base 460 --cycles 100000000 --duration 30 >"$OUT/r$round.flood" 2>>"$OUT/loadgen.err" &
			p5=$!
			timeout 60 $LG --mode churn --conns 200 --src 8 --src-base 30 --session-base 480 --cycles 100000000 --connect-timeout 0 --duration 30 >"$OUT/r$round.rateflood" 2>>"$OUT/loadgen.err" &
			p6=$!
			wait $p1 $p2 $p3 $p4 $p5 $p6 || true
		else
			wait $p1 $p2 $p3 $p4 || true
		fi
	done
else
	timeout "$LIMIT_S" $LG --procs 2 --src 4 --mode churn --conns 200 \
		--per-session 2 --cycles "$CYCLES" --duration "$LIMIT_S" \
		--signal-pid $HP >"$OUT/loadgen.out" 2>"$OUT/loadgen.err" || true
fi
sleep 2 # let the last closes finish before the final report
kill -TERM $HP 2>/dev/null || true
HS=0
wait $HP 2>/dev/null || HS=$?
echo "$HS" >"$OUT/host.status"
kill $SP 2>/dev/null || true
python3 "$SRC/bench/soak_summary.py" "$OUT" | tee "$OUT/summary.txt" || true
echo "soak: results in $OUT (summary.txt, rss.csv, host.out, loadgen output)"
