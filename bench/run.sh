#!/bin/bash
# bench/run.sh: libwsm against a bare-lws baseline. See bench/README.md.
#
#   bench/run.sh [--smoke] [--build-dir DIR] [--reps N] [--out DIR]
#                [--only "render fanout idle churn dead timers slow maxrate"]
#                [--churn-cycles N] [--lws PREFIX]
#
# Without --build-dir it configures and builds a release build in
# /tmp/wsm-bench-build, or, with --lws, against the lws installed in PREFIX
# (.ci/build-lws builds Debian 13's 4.3.5) in /tmp/wsm-bench-build-lws-
# followed by PREFIX's last component; libwsm's host and the bare-lws
# baseline then both run on that lws. Every process it starts is bounded in time and is
# stopped (by its pid) before the script ends. Raw results: OUT/results.jsonl;
# the table is printed at the end and written to OUT/table.md.
#
# After each run the host is brought back to idle (its producer stopped,
# its clients gone, short retention expired) and stopped with SIGTERM, on
# which it exits 0; its exit status is collected with `wait`. table.py then
# checks each run (README.md, "Checks"): host exit status and sanitizer
# reports, connections left, libwsm's held bytes back to their idle value,
# seq gaps where none may occur, 4004 closes without a slow consumer. With
# --smoke a failed check fails the run (exit 1, the check named).
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=""
SMOKE=0
REPS=3
OUT=""
ONLY="render fanout idle churn dead timers slow maxrate"
ONLY_SET=0
CHURN_CYCLES=100000
LWS_PREFIX=""

while [ $# -gt 0 ]; do
	case "$1" in
	--smoke) SMOKE=1 ;;
	--build-dir) BUILD=$2; shift ;;
	--reps) REPS=$2; shift ;;
	--out) OUT=$2; shift ;;
	--only) ONLY=$2; ONLY_SET=1; shift ;;
	--churn-cycles) CHURN_CYCLES=$2; shift ;;
	--lws) LWS_PREFIX=$2; shift ;;
	*) echo "usage: $0 [--smoke] [--build-dir DIR] [--reps N] [--out DIR] [--only LIST] [--churn-cycles N] [--lws PREFIX]" >&2; exit 2 ;;
	esac
	shift
done

if [ -n "$LWS_PREFIX" ]; then
	[ -f "$LWS_PREFIX/lib/pkgconfig/libwebsockets.pc" ] ||
		{ echo "run.sh: no lws in $LWS_PREFIX" >&2; exit 1; }
	export PKG_CONFIG_PATH=$LWS_PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
fi
if [ -z "$BUILD" ]; then
	BUILD=/tmp/wsm-bench-build${LWS_PREFIX:+-lws-$(basename "$LWS_PREFIX")}
	if [ ! -d "$BUILD" ]; then
		meson setup "$BUILD" "$SRC" -Dbuildtype=release -Dtests=false \
			-Dexamples=false >/dev/null || exit 1
	fi
	meson compile -C "$BUILD" >/dev/null || exit 1
fi
B=$BUILD/bench
for t in loadgen host_wsm host_baseline render; do
	[ -x "$B/$t" ] || { echo "run.sh: $B/$t missing (build first)" >&2; exit 1; }
done
[ -n "$OUT" ] || OUT=$(mktemp -d /tmp/wsm-bench.XXXXXX)
mkdir -p "$OUT"
RES=$OUT/results.jsonl
: >"$RES"

ulimit -n "$(ulimit -Hn)" 2>/dev/null

# A host built with sanitizers must exit non-zero on a report (meson test
# sets these too). UBSan alone would print and go on: halt instead.
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

# SMOKE_RET: libwsm's retention in the smoke (ms), short so that the end of
# each run is idle again: no connection, no session, held bytes exactly as
# before the first client. Scenarios may pass their own --retention.
SMOKE_RET=300
if [ $SMOKE = 1 ]; then
	REPS=1
	[ $ONLY_SET = 1 ] || ONLY="render fanout idle churn dead slow timers"
	FAN_SESS=50; FAN_WIN=1; WARM=0.5; IDLE_SIZES="200"; CHURN_CYCLES=500
	DEAD_N=50; SLOW_N=10; SLOW_SESS=50; TIMER_SIZES=""
	SLOW_DUR=4
	PROCS=2
else
	FAN_SESS=2000; FAN_WIN=${FAN_WIN:-5}; WARM=2; IDLE_SIZES=${IDLE_SIZES:-"5000 15000"}
	DEAD_N=1000; SLOW_N=100; SLOW_SESS=1000; TIMER_SIZES="1000 15000"
	SLOW_DUR=$((FAN_WIN + 6))
	PROCS=4
fi

# Seq gaps. libwsm (and the baseline's pending slot) replace an unsent
# progress message by a newer one ("latest wins"): a gap is legitimate only
# when a connection's queue still holds the older message as the next one
# comes, i.e. a reader slower than the producer or a host saturated by the
# offered rate. The receiving clients here all read as fast as they can,
# so the rule is by offered rate: a run offering at most LOSSLESS_MAX msgs/s
# to its receivers (every smoke run: 1,000-2,000/s; churn: 200 x 10/s;
# idle, dead, timers: no producer) must show 0 gaps; the full fan-out and
# slow runs (40,000 and 20,000/s, near saturation on 2 cores: their
# "delivered %" is the figure) and maxrate (beyond it by design) may show
# gaps. Both hosts deliver well over 5,000/s here (RESULTS.md).
LOSSLESS_MAX=5000
lossless() { [ "$1" -le $LOSSLESS_MAX ] && echo true || echo false; }

HP=""
HOST_OUT=""
HOST_KIND=""
HOST_LABEL=""
IDLE_END=false
HOST_RC=0
HOST_SAN=false
LG_RC=0
QUICK=0
FAILED=0

# start_host VARIANT [host args...]: sets HP, PORT, HOST_OUT.
start_host() {
	local variant=$1; shift
	local bin args
	case $variant in
	wsm-poll) bin=host_wsm; args="--loop poll" ;;
	wsm-uv) bin=host_wsm; args="--loop uv" ;;
	base-poll) bin=host_baseline; args="--loop poll" ;;
	base-uv) bin=host_baseline; args="--loop uv" ;;
	base128-poll) bin=host_baseline; args="--loop poll --rx 128" ;;
	base128-uv) bin=host_baseline; args="--loop uv --rx 128" ;;
	# The producer on the service thread (an lws timer): the thinnest
	# baseline, and libwsm called from the loop as a host's timer would.
	wsm-loop) bin=host_wsm; args="--loop poll --producer loop" ;;
	base128-loop) bin=host_baseline; args="--loop poll --rx 128 --producer loop" ;;
	*) echo "unknown variant $variant" >&2; exit 1 ;;
	esac
	# IDLE_END: the run must end idle (no session, held bytes back to the
	# start): libwsm with retention 0 or the smoke's short retention, which
	# stop_host waits out. Default retention (60 s) is not waited for.
	local ret=""
	HOST_KIND=${bin#host_}
	if [ $HOST_KIND = wsm ] && [ $SMOKE = 1 ]; then
		args="$args --retention $SMOKE_RET"
		ret=$SMOKE_RET
	fi
	# The scenario's own --retention, if any, comes after: it wins.
	local a prev=""
	for a in "$@"; do
		[ "$prev" = --retention ] && ret=$a
		prev=$a
	done
	IDLE_END=false
	[ $HOST_KIND = wsm ] && [ -n "$ret" ] && [ "$ret" -le $SMOKE_RET ] && IDLE_END=true
	HOST_OUT=$(mktemp "$OUT/host.XXXXXX")
	$HOST_WRAP "$B/$bin" $args --duration 300 "$@" >"$HOST_OUT" 2>"$HOST_OUT.err" &
	HP=$!
	HOST_LABEL="$variant ($bin, pid $HP)"
	PORT=""
	for _ in $(seq 1 600); do
		PORT=$(sed -n 's/^READY port=\([0-9]*\).*/\1/p' "$HOST_OUT")
		[ -n "$PORT" ] && break
		kill -0 $HP 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$PORT" ]; then
		echo "run.sh: $variant did not start" >&2
		cat "$HOST_OUT.err" >&2
		stop_host
		return 1
	fi
	# The pid to signal: under valgrind the wrapper execs, so it is HP.
	return 0
}

# quiesce: called once the clients are done. Stops the producer (SIGUSR2)
# and asks for reports (SIGUSR1) until the host holds no connection and,
# when the run must end idle, no session; at most 10 s, then goes on (the
# checks will say what was left).
quiesce() {
	local last c s
	kill -USR2 $HP 2>/dev/null || return 0
	for _ in $(seq 1 100); do
		kill -USR1 $HP 2>/dev/null || return 0
		sleep 0.1
		last=$(grep '^REPORT ' "$HOST_OUT" | tail -n 1)
		c=$(printf '%s' "$last" | sed -n 's/.*"connections":\([0-9]*\).*/\1/p')
		s=$(printf '%s' "$last" | sed -n 's/.*"sessions":\([0-9]*\).*/\1/p')
		[ "${c:-1}" = 0 ] || continue
		[ $IDLE_END = true ] && [ "${s:-0}" != 0 ] && continue
		return 0
	done
}

# stop_host: quiesces the host, then SIGTERM, on which a host exits 0; if
# it is still there after 30 s, SIGKILL. Its exit status, collected with
# `wait`, goes into HOST_RC; a sanitizer report in its stderr sets HOST_SAN
# (both are checks: a crash, a hang, an ASan/UBSan/LSan/valgrind report
# fail the run).
stop_host() {
	local st
	[ -n "$HP" ] || return 0
	[ $QUICK = 1 ] || quiesce
	kill -TERM $HP 2>/dev/null
	for _ in $(seq 1 300); do
		kill -0 $HP 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 $HP 2>/dev/null; then
		echo "run.sh: CHECK host-exit: $HOST_LABEL did not stop within 30 s of SIGTERM; killing it" >&2
		kill -KILL $HP 2>/dev/null
	fi
	wait $HP 2>/dev/null
	st=$?
	HOST_RC=$st
	HOST_SAN=false
	if grep -Eq 'ERROR: (Address|Leak|Memory|Thread)Sanitizer|WARNING: ThreadSanitizer|runtime error:|SUMMARY: [A-Za-z]*Sanitizer|ERROR SUMMARY: [1-9]' \
		"$HOST_OUT.err" 2>/dev/null; then
		HOST_SAN=true
		echo "run.sh: CHECK sanitizer FAILED: $HOST_LABEL: a sanitizer/valgrind report in $HOST_OUT.err" >&2
		FAILED=1
	fi
	if [ $st -ne 0 ]; then
		if [ $st -gt 128 ]; then
			echo "run.sh: CHECK host-exit FAILED: $HOST_LABEL was killed by SIG$(kill -l $((st - 128)) 2>/dev/null) (status $st)" >&2
		else
			echo "run.sh: CHECK host-exit FAILED: $HOST_LABEL exited with status $st" >&2
		fi
		FAILED=1
	fi
	if [ $st -ne 0 ] || [ $HOST_SAN = true ]; then
		tail -n 40 "$HOST_OUT.err" >&2
	fi
	HP=""
}

# record SCENARIO VARIANT REP LOADGEN_OUT EXTRA_JSON LOSSLESS SLOW_CONNS:
# one line of results.jsonl, with what the checks need (table.py).
record() {
	local st="{\"host_exit\": $HOST_RC, \"host_sanitizer\": $HOST_SAN, \"loadgen_exit\": $LG_RC, \"idle_end\": $IDLE_END, \"host_kind\": \"$HOST_KIND\", \"lossless\": $6, \"slow_conns\": $7}"
	python3 - "$1" "$2" "$3" "$4" "$5" "$HOST_OUT" "$st" >>"$RES" <<'EOF'
import json, sys
scen, var, rep, lg, extra, host, st = sys.argv[1:8]
def last_json(path):
    try:
        lines = [l for l in open(path) if l.startswith('{')]
        return json.loads(lines[-1]) if lines else None
    except Exception:
        return None
reports = []
for l in open(host):
    if l.startswith('REPORT '):
        try: reports.append(json.loads(l[7:]))
        except Exception: pass
rec = {"scenario": scen, "variant": var, "rep": int(rep),
       "loadgen": last_json(lg), "reports": reports}
if extra:
    rec.update(json.loads(extra))
rec.update(json.loads(st))
print(json.dumps(rec))
EOF
}

# lg ARGS: the loadgen, bounded; its exit status goes into LG_RC.
lg() {
	timeout 400 "$B/loadgen" --port "$PORT" --procs $PROCS "$@"
	LG_RC=$?
}

check_lg() { # file label
	if ! grep -q '^{' "$1"; then
		echo "run.sh: loadgen produced no result ($2)" >&2
		FAILED=1
	fi
}

HOST_WRAP=""
# FANOUT_VARIANTS and IDLE_SIZES may be set from outside, to run fewer.
FANOUT_VARIANTS=${FANOUT_VARIANTS:-"wsm-loop base128-loop wsm-poll base128-poll base-poll wsm-uv base128-uv"}
FANOUT_MODES="burst spread"
CHURN_VARIANTS="wsm-poll base128-poll base-poll"
if [ $SMOKE = 1 ]; then
	FANOUT_VARIANTS="wsm-poll base128-poll wsm-uv wsm-loop base128-loop"
	FANOUT_MODES="burst"
	CHURN_VARIANTS="wsm-poll base128-poll"
fi

scen_fanout() {
	local mode sub rep v f
	for mode in $FANOUT_MODES; do
		[ $mode = burst ] && sub=1 || sub=10
		for rep in $(seq 1 $REPS); do
			for v in $FANOUT_VARIANTS; do
				echo "fanout-$mode $v rep $rep" >&2
				start_host $v --sessions $FAN_SESS --rate 10 --subticks $sub || { FAILED=1; continue; }
				f=$OUT/lg.fanout.$mode.$v.$rep
				lg --mode receive --conns $((FAN_SESS * 2)) --per-session 2 \
					--warmup $WARM --duration $FAN_WIN --signal-pid $HP >"$f" 2>>"$OUT/lg.err"
				stop_host
				check_lg "$f" "fanout $v"
				record fanout-$mode $v $rep "$f" "" $(lossless $((FAN_SESS * 2 * 10))) 0
			done
		done
	done
}

scen_maxrate() {
	local rate v f
	for rate in 20 40 80; do
		for v in wsm-loop base128-loop wsm-poll base128-poll; do
			echo "maxrate $rate $v" >&2
			start_host $v --sessions 2000 --rate $rate --subticks 10 || { FAILED=1; continue; }
			f=$OUT/lg.maxrate.$rate.$v
			lg --mode receive --conns 4000 --per-session 2 --warmup 2 \
				--duration 5 --signal-pid $HP >"$f" 2>>"$OUT/lg.err"
			stop_host
			check_lg "$f" "maxrate $v"
			record maxrate-$rate $v 1 "$f" "{\"offered_per_s\": $((rate * 4000))}" false 0
		done
	done
}

scen_idle() {
	local n rep v f
	for n in $IDLE_SIZES; do
		for rep in $(seq 1 $REPS); do
			for v in wsm-poll base-poll base128-poll; do
				echo "idle-$n $v rep $rep" >&2
				start_host $v --sessions $((n / 2)) --rate 0 || { FAILED=1; continue; }
				f=$OUT/lg.idle.$n.$v.$rep
				lg --mode idle --conns $n --per-session 2 --warmup $WARM \
					--duration 1 --connect-timeout 120 --signal-pid $HP \
					>"$f" 2>>"$OUT/lg.err"
				stop_host
				check_lg "$f" "idle $v"
				record idle-$n $v $rep "$f" "" true 0
			done
		done
	done
}

scen_churn() {
	local rep v f
	for rep in $(seq 1 $REPS); do
		for v in $CHURN_VARIANTS; do
			echo "churn $v rep $rep ($CHURN_CYCLES cycles)" >&2
			# Retention off: the held-bytes check needs no replay state.
			start_host $v --sessions 500 --rate 10 --subticks 10 --retention 0 || { FAILED=1; continue; }
			f=$OUT/lg.churn.$v.$rep
			lg --mode churn --conns 200 --per-session 2 --cycles $CHURN_CYCLES \
				--duration 300 --signal-pid $HP >"$f" 2>>"$OUT/lg.err"
			stop_host
			check_lg "$f" "churn $v"
			record churn $v $rep "$f" "{\"cycles_target\": $CHURN_CYCLES}" $(lossless $((200 * 10))) 0
		done
	done
}

scen_dead() {
	local rep v f ping=1000 stale=3000
	[ $SMOKE = 1 ] && { ping=200; stale=600; }
	for rep in $(seq 1 $REPS); do
		for v in wsm-poll wsm-uv; do
			echo "dead $v rep $rep" >&2
			start_host $v --sessions $DEAD_N --rate 0 --ping $ping --stale $stale || { FAILED=1; continue; }
			f=$OUT/lg.dead.$v.$rep
			lg --mode dead --conns $DEAD_N --per-session 1 --duration 30 \
				>"$f" 2>>"$OUT/lg.err"
			stop_host
			check_lg "$f" "dead $v"
			record dead $v $rep "$f" "{\"ping_ms\": $ping, \"stale_ms\": $stale}" true 0
		done
	done
}

scen_slow() {
	local rep v f fs with SP
	for rep in $(seq 1 $REPS); do
		for v in wsm-poll base128-poll; do
			for with in 0 1; do
				echo "slow(with=$with) $v rep $rep" >&2
				start_host $v --sessions $SLOW_SESS --rate 10 --subticks 10 || { FAILED=1; continue; }
				SP=""
				fs=$OUT/lg.slowonly.$v.$rep.$with
				if [ $with = 1 ]; then
					# The never-reading clients, in sessions of the others;
					# they outlast the others' window and stop by
					# themselves, before the host is stopped.
					timeout 400 "$B/loadgen" --port "$PORT" --procs 1 --mode slow \
						--conns $SLOW_N --per-session 2 --rcvbuf 4096 \
						--warmup 0 --duration $SLOW_DUR >"$fs" 2>>"$OUT/lg.err" &
					SP=$!
					sleep 0.5
				fi
				f=$OUT/lg.slow.$v.$rep.$with
				lg --mode receive --conns $((SLOW_SESS * 2)) --per-session 2 \
					--warmup $WARM --duration $FAN_WIN --signal-pid $HP >"$f" 2>>"$OUT/lg.err"
				[ -n "$SP" ] && wait $SP 2>/dev/null
				stop_host
				check_lg "$f" "slow $v"
				# The receiving clients read fast: 4004 is never theirs.
				record slow-$with $v $rep "$f" "" $(lossless $((SLOW_SESS * 2 * 10))) $((with * SLOW_N))
			done
		done
	done
}

scen_timers() {
	local n v f cg
	command -v valgrind >/dev/null || { echo "run.sh: no valgrind, timers skipped" >&2; return; }
	for n in $TIMER_SIZES; do
		for v in wsm-poll wsm-uv base128-poll; do
			echo "timers-$n $v (callgrind)" >&2
			cg=$OUT/callgrind.$n.$v.out
			HOST_WRAP="env BENCH_CALLGRIND=1 valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file=$cg"
			start_host $v --sessions $((n / 2)) --rate 0 --ping 1000 --stale 30000 || { HOST_WRAP=""; FAILED=1; continue; }
			HOST_WRAP=""
			f=$OUT/lg.timers.$n.$v
			lg --mode idle --conns $n --per-session 2 --warmup 3 --duration 5 \
				--connect-timeout 200 --inflight 16 --signal-pid $HP >"$f" 2>>"$OUT/lg.err"
			stop_host
			check_lg "$f" "timers $v"
			ir=$(callgrind_annotate "$cg" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
			record timers-$n $v 1 "$f" "{\"ir\": ${ir:-0}, \"callgrind\": \"$cg\"}" true 0
		done
	done
}

# The cost of building one broadcast on the calling thread, against
# jansson building the same object (bench/render.c); no sockets.
scen_render() {
	local calls=200000
	[ $SMOKE = 1 ] && calls=20000
	echo "render" >&2
	if ! "$B/render" --calls $calls --rounds 7 >"$OUT/render.json"; then
		echo "run.sh: render failed" >&2
		FAILED=1
	fi
}

T0=$(date +%s)
trap 'QUICK=1; stop_host; exit 130' INT TERM
for s in $ONLY; do
	case $s in
	fanout) scen_fanout ;;
	render) scen_render ;;
	idle) scen_idle ;;
	churn) scen_churn ;;
	dead) scen_dead ;;
	slow) scen_slow ;;
	timers) [ -n "$TIMER_SIZES" ] && scen_timers ;;
	maxrate) [ $SMOKE = 0 ] && scen_maxrate ;;
	esac
done
echo "run.sh: finished in $(( $(date +%s) - T0 )) s; raw results in $RES" >&2

# Which lws both hosts ran on, as the loader resolved it.
lws_so=$(ldd "$B/host_wsm" | sed -n 's/^[[:space:]]*\(libwebsockets\.so[^ ]*\) => \([^ ]*\).*/\2/p')
echo "lws: $(readlink -f "$lws_so")" | tee "$OUT/table.md"
python3 "$SRC/bench/table.py" "$RES" ${SMOKE:+--smoke=$SMOKE} | tee -a "$OUT/table.md"
rc=${PIPESTATUS[0]}
if [ -s "$OUT/render.json" ]; then
	python3 "$SRC/bench/table.py" --render "$OUT/render.json" | tee -a "$OUT/table.md"
fi
[ $FAILED = 0 ] && [ $rc = 0 ] || exit 1
exit 0
