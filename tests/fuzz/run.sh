#!/bin/sh
# Runs every fuzz target under libFuzzer for a bounded time; see README.md.
#
#   tests/fuzz/run.sh [BUILD_DIR]
#
# BUILD_DIR (default build-fuzz) must be a clang build of the project; it is
# set up (CC=clang) if it does not exist. Environment:
#   FUZZ_SECONDS   time per target, default 30
#   FUZZ_TARGETS   targets to run, default "ids broadcast config status frames upgrade redis"
#   FUZZ_JOBS      parallel libFuzzer jobs per target (-fork=N), default 1
#   FUZZ_OUT       directory for the working corpora, logs and crash inputs;
#                  default a new one from mktemp -d (printed either way)
# The committed seeds in tests/fuzz/corpus/<target> are read, never written:
# what libFuzzer finds goes to FUZZ_OUT/<target>/corpus. Any crash, leak,
# timeout or failed check fails the run (after all targets ran) and leaves
# its input in FUZZ_OUT/<target>/; reproduce it with
#   BUILD_DIR/tests/fuzz/fuzz-<target> FILE      (or fuzz-replay-<target> FILE)
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build-fuzz}
seconds=${FUZZ_SECONDS:-30}
targets=${FUZZ_TARGETS:-"ids broadcast config status frames upgrade redis"}
jobs=${FUZZ_JOBS:-1}
out=${FUZZ_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/libwsm-fuzz.XXXXXX")}
mkdir -p "$out"
echo "fuzz: $seconds s per target; corpora, logs and crash inputs in $out"

if [ ! -d "$build" ]; then
	CC=clang meson setup "$build" -Dexamples=false -Dbench=false \
		>"$out/setup.log" 2>&1 || { cat "$out/setup.log"; exit 1; }
fi
names=
for t in $targets; do names="$names fuzz-$t"; done
# shellcheck disable=SC2086 # one word per target
if ! meson compile -C "$build" $names >"$out/build.log" 2>&1; then
	cat "$out/build.log"
	echo "fuzz: could not build the libFuzzer targets in $build" \
	     "(a clang build is needed; see tests/fuzz/README.md)" >&2
	exit 1
fi

# Leaks, ASan and UBSan findings all abort with a report. The server
# targets' lws thread keeps its own reachable memory: no false leaks.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS UBSAN_OPTIONS

failed=
for t in $targets; do
	bin=$build/tests/fuzz/fuzz-$t
	dir=$out/$t
	mkdir -p "$dir/corpus"
	# Per input: 25 s (the network targets wait up to 10 s for a close);
	# the whole run: the budget plus a margin for start and merge.
	set -- -max_total_time="$seconds" -timeout=25 -rss_limit_mb=4096 \
		-print_final_stats=1 -artifact_prefix="$dir/"
	[ "$jobs" -gt 1 ] && set -- "$@" -fork="$jobs"
	echo "fuzz: $t ..."
	rc=0
	timeout -k 10 $((seconds + 120)) "$bin" "$@" "$dir/corpus" \
		"$src/tests/fuzz/corpus/$t" >"$dir/log" 2>&1 || rc=$?
	# The figures of the run: executions, speed, coverage.
	grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' \
		"$dir/log" | sed "s/^/fuzz: $t: /" || true
	if [ "$rc" -ne 0 ]; then
		echo "fuzz: $t FAILED (exit $rc); the last lines of $dir/log:" >&2
		tail -n 40 "$dir/log" >&2
		ls "$dir" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' |
			sed "s|^|fuzz: $t: input: $dir/|" >&2 || true
		failed="$failed $t"
	fi
done
if [ -n "$failed" ]; then
	echo "fuzz: FAILED:$failed (inputs and logs in $out)" >&2
	exit 1
fi
echo "fuzz: all targets ran $seconds s without a finding"
