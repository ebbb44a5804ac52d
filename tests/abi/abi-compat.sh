#!/bin/sh
# abi-compat.sh BASELINE LIBRARY INCLUDE_DIR SANITIZE BUILDDIR
#
# The ABI of the freshly built LIBRARY must equal the committed BASELINE
# (abi/libwsm.abi): abidiff compares the two, considering only the types
# defined in the public headers of INCLUDE_DIR. abidiff's exit status is a
# bit field: 8 is an incompatible change (a removed symbol, a changed
# function type...), 4 any other ABI change (an added symbol, an appended
# struct member, an added enumerator...). Both fail: an incompatible change
# needs a new SONAME, and every change is recorded on purpose by
# regenerating the baseline with update-baseline.sh BUILDDIR. --harmless
# makes abidiff count the changes it calls harmless (added enumerators,
# typedef spelling) as changes too, so the baseline always describes the
# whole public API.
#
# SANITIZE is meson's b_sanitize. Sanitizer builds are skipped: they are
# not what is shipped, and the default build of the same tree (CI builds it
# first) already runs this check.
#
# Exit status: 0 pass, 1 fail, 77 skip (abidw or abidiff missing, sanitizer
# build, library without debug info, baseline for another architecture),
# 99 bad invocation.
set -eu

me=abi-compat

if [ "$#" -ne 5 ]; then
	echo "usage: $me BASELINE LIBRARY INCLUDE_DIR SANITIZE BUILDDIR" >&2
	exit 99
fi
baseline=$1
lib=$2
inc=$3
sanitize=$4
builddir=$5
here=$(cd "$(dirname "$0")" && pwd)
update="$here/update-baseline.sh $builddir"

if [ "$sanitize" != none ]; then
	echo "$me: SKIP: this build is instrumented (b_sanitize=$sanitize);" \
	    "the ABI is checked in a build without sanitizers"
	exit 77
fi
for tool in abidw abidiff; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "$me: SKIP: $tool(1) is not installed, so the ABI cannot" \
		    "be compared (Debian/Ubuntu: apt-get install abigail-tools)"
		exit 77
	fi
done
if [ ! -f "$baseline" ]; then
	echo "$me: FAIL: there is no ABI baseline $baseline; create it with" >&2
	echo "    $update" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/abi-compat.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

rc=0
sh "$here/abi-dump.sh" "$lib" "$inc" "$tmp/new.abi" || rc=$?
case $rc in
0) ;;
2)
	echo "$me: SKIP: $lib was built without debug info, which abidiff" \
	    "needs; configure with -Ddebug=true to run this check"
	exit 77 ;;
77) exit 77 ;;
*) exit 1 ;;
esac

# The baseline describes one architecture; elsewhere the sizes differ.
arch() {
	sed -n "s/^<abi-corpus [^>]*architecture='\([^']*\)'.*/\1/p" "$1" |
	    head -n 1
}
if [ "$(arch "$baseline")" != "$(arch "$tmp/new.abi")" ]; then
	echo "$me: SKIP: the baseline is for $(arch "$baseline"), this build" \
	    "is for $(arch "$tmp/new.abi")"
	exit 77
fi

rc=0
abidiff --harmless --headers-dir1 "$inc" --headers-dir2 "$inc" \
    "$baseline" "$tmp/new.abi" >"$tmp/report" 2>&1 || rc=$?
if [ "$rc" -eq 0 ]; then
	echo "$me: ok: $lib has the ABI of $baseline"
	exit 0
fi
if [ $((rc & 3)) -ne 0 ]; then
	echo "$me: ERROR: abidiff failed (exit status $rc):" >&2
	sed 's/^/    /' "$tmp/report" >&2
	exit 1
fi

if [ $((rc & 8)) -ne 0 ]; then
	soname=$(sed -n "s/^<abi-corpus [^>]*soname='\([^']*\)'.*/\1/p" \
	    "$baseline" | head -n 1)
	echo "$me: FAIL: INCOMPATIBLE ABI change: programs built against" \
	    "${soname:-the baseline} would break (abidiff exit status $rc)." >&2
	echo "Undo the change, or, if the break is deliberate, bump" \
	    "wsm_soversion in meson.build and regenerate the baseline." >&2
else
	echo "$me: FAIL: the ABI changed (abidiff exit status $rc): the" \
	    "baseline must be regenerated on purpose." >&2
	echo "If the change is intended (new symbols go in a new version" \
	    "node of lib/libwsm.map), regenerate and commit the baseline." >&2
fi
echo "abidiff report (baseline -> this build):" >&2
sed 's/^/    /' "$tmp/report" >&2
echo "To accept this ABI as the new baseline:" >&2
echo "    $update" >&2
echo "    git add abi/libwsm.abi" >&2
exit 1
