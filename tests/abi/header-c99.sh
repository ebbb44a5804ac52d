#!/bin/sh
# header-c99.sh INCLUDE_DIR SOURCE
#
# SOURCE includes nothing but <wsm.h>; it must compile with
# -std=c99 -pedantic -Wall -Wextra -Werror under both gcc and clang: the
# public header is self-contained and asks nothing of its users beyond C99.
# Exit status: 0 pass, 1 fail, 77 skip (a compiler is missing; the others
# are still checked first, and any failure wins), 99 bad invocation.
set -eu

me=header-c99-pedantic

if [ "$#" -ne 2 ]; then
	echo "usage: $me INCLUDE_DIR SOURCE" >&2
	exit 99
fi
inc=$1
src=$2
if [ ! -f "$inc/wsm.h" ] || [ ! -f "$src" ]; then
	echo "$me: ERROR: $inc/wsm.h or $src does not exist" >&2
	exit 99
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/header-c99.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

failed=0
missing=
for cc in gcc clang; do
	if ! command -v "$cc" >/dev/null 2>&1; then
		missing="$missing $cc"
		continue
	fi
	set -- "$cc" -std=c99 -pedantic -Wall -Wextra -Werror -I "$inc" \
	    -c "$src" -o "$tmp/header-$cc.o"
	if "$@" >"$tmp/log" 2>&1; then
		echo "$me: ok: $*"
	else
		echo "$me: FAIL: <wsm.h> is not clean C99 for $cc:" >&2
		echo "    $*" >&2
		sed 's/^/    /' "$tmp/log" >&2
		failed=1
	fi
done
[ "$failed" -eq 0 ] || exit 1
if [ -n "$missing" ]; then
	echo "$me: SKIP: not installed:$missing (Debian/Ubuntu: apt-get" \
	    "install gcc clang); the other compilers passed"
	exit 77
fi
