#!/bin/bash
# Cluster mode against a single node, in one run, through one redis-server
# this script starts (a unix socket in OUT, no persistence):
#   single   one host_wsm node: SESSIONS sessions x 2 clients, its producer
#            broadcasting RATE progress/s to each session;
#   cluster  the same clients split over nodes A and B (half the sessions
#            each), the producer on node C, which serves no client.
# For each: CPU per delivered message of the nodes serving clients, the
# producer's and Redis's CPU per broadcast, the clients' latency from the
# broadcast call to the message (p50, p99). Then the highest broadcast rate
# one redis-server carries with every message delivered (rates MAXRATES per
# session per second), and redis-benchmark's PUBLISH rate on the same
# socket as the physical reference.
#
# usage: bench/cluster.sh [--build-dir B] [--out DIR] [--reps N]
#   env: SESSIONS (1000), RATE (10), WARM (3), WIN (5), MAXRATES ("10 25 50 100"),
#        PUBRATES ("25 50 75 100", the producer alone),
#        HISTORY (0: WSM_OPT_CLUSTER_HISTORY of every cluster node)
# Every process is bounded in time and stopped by its pid.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
BUILD=/tmp/wsm-bench-build
OUT=$(mktemp -d /tmp/wsm-cluster-bench.XXXXXX)
REPS=3
while [ $# -gt 0 ]; do
	case $1 in
	--build-dir) BUILD=$2; shift 2 ;;
	--out) OUT=$2; mkdir -p "$OUT"; shift 2 ;;
	--reps) REPS=$2; shift 2 ;;
	*) echo "usage: $0 [--build-dir B] [--out DIR] [--reps N]" >&2; exit 2 ;;
	esac
done
SESSIONS=${SESSIONS:-1000}
RATE=${RATE:-10}
WARM=${WARM:-3}
WIN=${WIN:-5}
MAXRATES=${MAXRATES:-"10 25 50 100"}
PUBRATES=${PUBRATES:-"25 50 75 100"}
HISTORY=${HISTORY:-0}
# Configured again each time: a build made before hiredis was installed
# would have no cluster mode.
if [ -d "$BUILD" ]; then
	meson setup --reconfigure "$BUILD" "$here/.." >/dev/null
else
	meson setup "$BUILD" "$here/.." -Dbuildtype=release -Dtests=false \
		-Dexamples=false >/dev/null
fi
ninja -C "$BUILD" bench/host_wsm bench/loadgen >/dev/null
B=$BUILD/bench
ulimit -n "$(ulimit -Hn)"
RES=$OUT/results.jsonl
: >"$RES"
SOCK=$OUT/redis.sock
REDIS=""
REDIS_PID=""
PIDS=""

cleanup() {
	# The server itself too: timeout(1), killed with -9, passes nothing on.
	for p in $PIDS $REDIS_PID $REDIS; do kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

start_redis() {
	rm -f "$SOCK"
	timeout 3600 redis-server --port 0 --unixsocket "$SOCK" --save "" \
		--appendonly no --daemonize no --dir "$OUT" \
		--logfile "$OUT/redis.log" &
	REDIS=$!
	for _ in $(seq 1 100); do
		if redis-cli -s "$SOCK" ping 2>/dev/null | grep -q PONG; then
			# Its CPU is read from /proc: the server, not timeout(1).
			REDIS_PID=$(pgrep -P "$REDIS" redis-server)
			return 0
		fi
		sleep 0.05
	done
	echo "cluster.sh: redis-server did not start" >&2
	exit 1
}

# node NAME ARGS...: starts a host_wsm, waits for its port; sets PORT_NAME.
node() {
	local name=$1 out=$OUT/host.$1; shift
	"$B/host_wsm" --loop poll --duration 120 "$@" >"$out" 2>"$out.err" &
	eval "PID_$name=$!"
	PIDS="$PIDS $!"
	for _ in $(seq 1 300); do
		if grep -q '^READY port=' "$out"; then
			eval "PORT_$name=$(sed -n 's/^READY port=\([0-9]*\).*/\1/p' "$out")"
			return 0
		fi
		sleep 0.05
	done
	echo "cluster.sh: node $name did not start" >&2
	cat "$out.err" >&2
	exit 1
}

ticks() { # pid: utime + stime, in clock ticks
	awk '{print $14 + $15}' "/proc/$1/stat"
}

stop_all() {
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
	PIDS=""
}

# snapshot PRODUCER_PID "NODE_PIDS": the wall time, then the CPU ticks of
# the nodes together, of Redis and of the producer (0 for "-").
snapshot() {
	local c
	c=$(for p in $2; do ticks "$p"; done | awk '{s += $1} END {print s}')
	echo "$(date +%s.%N) $c $(ticks "$REDIS_PID") $([ "$1" = - ] && echo 0 || ticks "$1")"
}

# measure LABEL REP RATE PRODUCER_PID "NODE_PIDS" LOADGEN_SPECS...
# Each spec is "port:base:conns". CPU of each process over the window,
# read from /proc between the loadgens' warmup and the end of their window.
measure() {
	local label=$1 rep=$2 rate=$3 prod=$4 nodes=$5; shift 5
	local lgs="" i=0 spec p
	for spec in "$@"; do
		IFS=: read -r port base conns <<<"$spec"
		timeout 120 "$B/loadgen" --port "$port" --mode receive \
			--conns "$conns" --per-session 2 --session-base "$base" \
			--procs 2 --warmup "$WARM" --duration "$WIN" \
			>"$OUT/lg.$label.$rep.$rate.$i" 2>>"$OUT/lg.err" &
		lgs="$lgs $!"
		i=$((i + 1))
	done
	sleep "$WARM"
	local t0 c0 r0 n0 t1 c1 r1 n1
	read -r t0 c0 r0 n0 <<<"$(snapshot "$prod" "$nodes")"
	sleep "$WIN"
	read -r t1 c1 r1 n1 <<<"$(snapshot "$prod" "$nodes")"
	for p in $lgs; do wait "$p" || true; done
	python3 - "$label" "$rep" "$rate" "$t0" "$t1" "$c0" "$c1" "$r0" "$r1" \
		"$n0" "$n1" "$(getconf CLK_TCK)" "$SESSIONS" \
		"$OUT"/lg."$label"."$rep"."$rate".* >>"$RES" <<'EOF'
import json, sys
(label, rep, rate, t0, t1, c0, c1, r0, r1, n0, n1, hz, sessions), files = \
    sys.argv[1:14], sys.argv[14:]
hz = float(hz)
lg = [json.loads([l for l in open(f) if l.startswith('{')][-1]) for f in files]
msgs = sum(x['msgs'] for x in lg)
window = max(x['window_s'] for x in lg)
offered = 2 * int(sessions) * float(rate) * window
print(json.dumps({
    'label': label, 'rep': int(rep), 'rate': float(rate),
    'wall_s': float(t1) - float(t0),
    'node_cpu_s': (float(c1) - float(c0)) / hz,
    'redis_cpu_s': (float(r1) - float(r0)) / hz,
    'producer_cpu_s': (float(n1) - float(n0)) / hz,
    'msgs': msgs, 'window_s': window, 'delivered': msgs / offered,
    'broadcasts_per_s': int(sessions) * float(rate),
    'p50_us': max(x['lat_us']['p50'] for x in lg),
    'p99_us': max(x['lat_us']['p99'] for x in lg),
    'max_us': max(x['lat_us']['max'] for x in lg),
    'seq_gaps': sum(x['seq_gaps'] for x in lg),
    'opened': sum(x['opened'] for x in lg)}))
EOF
}

# cluster_run LABEL REP RATE: nodes A and B serve half the sessions each,
# C broadcasts to all of them at RATE, from an empty Redis.
cluster_run() {
	redis-cli -s "$SOCK" flushall >/dev/null
	node a --redis "$URL" --cluster-history "$HISTORY" --node-id a --rate 0
	node b --redis "$URL" --cluster-history "$HISTORY" --node-id b --rate 0
	node c --redis "$URL" --cluster-history "$HISTORY" --node-id c \
		--sessions "$SESSIONS" --rate "$3" --subticks 10
	measure "$1" "$2" "$3" "$PID_c" "$PID_a $PID_b" \
		"$PORT_a:0:$SESSIONS" "$PORT_b:$HALF:$SESSIONS"
	stop_all
}

start_redis
URL=unix:$SOCK
HALF=$((SESSIONS / 2))
for rep in $(seq 1 "$REPS"); do
	echo "single rep $rep" >&2
	node single --sessions "$SESSIONS" --rate "$RATE" --subticks 10
	measure single "$rep" "$RATE" - "$PID_single" "$PORT_single:0:$((SESSIONS * 2))"
	stop_all

	echo "cluster rep $rep" >&2
	cluster_run cluster "$rep" "$RATE"
done

for rate in $MAXRATES; do
	echo "maxrate $rate" >&2
	cluster_run maxrate 1 "$rate"
done

# What one redis-server takes: the producer node alone, no subscriber, so
# that the 2 cores are not spent on delivering; every broadcast must be
# confirmed by Redis (the outbox stays empty, producer calls keep up).
for rate in $PUBRATES; do
	echo "publish-only $rate" >&2
	redis-cli -s "$SOCK" flushall >/dev/null
	node c --redis "$URL" --cluster-history "$HISTORY" --node-id c \
		--sessions "$SESSIONS" --rate "$rate" --subticks 10
	sleep "$WARM"
	kill -USR1 "$PID_c"
	r0=$(ticks "$REDIS_PID")
	sleep "$WIN"
	kill -USR1 "$PID_c"
	r1=$(ticks "$REDIS_PID")
	sleep 0.2
	python3 "$here/cluster_publish.py" "$rate" "$r0" "$r1" \
		"$(getconf CLK_TCK)" "$SESSIONS" "$OUT/host.c" >>"$RES"
	stop_all
done

# The physical reference: PUBLISH alone, pipelined, on the same socket.
payload=$(head -c 160 /dev/zero | tr '\0' x)
redis-benchmark -s "$SOCK" -n 400000 -P 32 -q PUBLISH bench "$payload" \
	2>/dev/null | tr '\r' '\n' | grep -i 'requests per second' | tail -1 \
	>"$OUT/redis-benchmark.txt" || true
echo "redis-benchmark PUBLISH: $(cat "$OUT/redis-benchmark.txt")" >&2

python3 "$here/cluster_table.py" "$RES" "$OUT/redis-benchmark.txt" \
	| tee "$OUT/table.md"
