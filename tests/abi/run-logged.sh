# Sourced by the packaging checks (consumer-pkgconfig.sh, subproject.sh),
# which set $me first.
# run LOG COMMAND...: run it, its output in LOG; on failure show both.
run() {
	log=$1
	shift
	status=0
	"$@" >"$log" 2>&1 || status=$?
	[ "$status" -ne 0 ] || return 0
	echo "$me: FAIL (exit status $status): $*" >&2
	sed 's/^/    /' "$log" >&2
	exit 1
}
