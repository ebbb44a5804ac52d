#!/bin/sh
# header-hpp.sh INCLUDE_DIR SOURCE
#
# SOURCE includes <wsm.hpp> first and uses all of it; it must compile at
# -std=c++17 and -std=c++20 with -Wall -Wextra -Wpedantic -Werror (and a
# few stricter warnings a host may use) under g++ and clang++: the wrapper
# is compiled by its users, with their flags.
# Exit status: 0 pass, 1 fail, 77 skip (a compiler is missing; the others
# are still checked first, and any failure wins; under CI=true a missing
# compiler fails), 99 bad invocation.
set -eu

me=cxx-header

if [ "$#" -ne 2 ]; then
	echo "usage: $me INCLUDE_DIR SOURCE" >&2
	exit 99
fi
inc=$1
src=$2
if [ ! -f "$inc/wsm.hpp" ] || [ ! -f "$src" ]; then
	echo "$me: ERROR: $inc/wsm.hpp or $src does not exist" >&2
	exit 99
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/header-hpp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# Not -Wshadow: g++ finds wsm_metrics() hiding struct wsm_metrics in <wsm.h>.
strict="-Wall -Wextra -Wpedantic -Werror -Wconversion -Wsign-conversion
  -Wold-style-cast -Wnon-virtual-dtor -Wzero-as-null-pointer-constant
  -Wcast-qual"
failed=0
missing=
for cxx in g++ clang++; do
	if ! command -v "$cxx" >/dev/null 2>&1; then
		missing="$missing $cxx"
		continue
	fi
	extra=
	[ "$cxx" = g++ ] && extra=-Wuseless-cast
	for std in c++17 c++20; do
		# -O2: some warnings come only from the optimizer's analyses.
		# shellcheck disable=SC2086 # the flags are words
		set -- "$cxx" "-std=$std" -O2 $strict $extra -I "$inc" \
		    -c "$src" -o "$tmp/out.o"
		if "$@" >"$tmp/log" 2>&1; then
			echo "$me: ok: $cxx -std=$std"
		else
			echo "$me: FAIL: <wsm.hpp> with $cxx -std=$std:" >&2
			echo "    $*" >&2
			sed 's/^/    /' "$tmp/log" >&2
			failed=1
		fi
	done
done
[ "$failed" -eq 0 ] || exit 1
if [ -n "$missing" ]; then
	if [ "${CI:-}" = true ]; then
		echo "$me: FAIL: not installed:$missing (CI=true: every" \
		    "compiler must be there)" >&2
		exit 1
	fi
	echo "$me: SKIP: not installed:$missing (Debian/Ubuntu: apt-get" \
	    "install g++ clang); the other compilers passed"
	exit 77
fi
