#!/bin/sh
# header-cxx.sh INCLUDE_DIR SOURCE LIBRARY SANITIZE CC_ID
#
# SOURCE, a C++ program using libwsm with <wsm.h> as its first include,
# must compile with -std=c++11 -pedantic -Wall -Wextra -Werror under g++
# and clang++, link against LIBRARY (the libwsm.so just built) and run.
#
# SANITIZE is meson's b_sanitize and CC_ID the id of the C compiler that
# built LIBRARY. An instrumented LIBRARY needs its own compiler's sanitizer
# runtime in the program: then only the C++ compiler of the same family
# links and runs the program (with -fsanitize=SANITIZE); the other one
# still compiles it.
# Exit status: 0 pass, 1 fail, 77 skip (a compiler is missing; the others
# are still checked first, and any failure wins), 99 bad invocation.
set -eu

me=header-cxx

if [ "$#" -ne 5 ]; then
	echo "usage: $me INCLUDE_DIR SOURCE LIBRARY SANITIZE CC_ID" >&2
	exit 99
fi
inc=$1
src=$2
lib=$3
sanitize=$4
cc_id=$5
for f in "$inc/wsm.h" "$src" "$lib"; do
	if [ ! -f "$f" ]; then
		echo "$me: ERROR: $f does not exist" >&2
		exit 99
	fi
done
libdir=$(cd "$(dirname "$lib")" && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/header-cxx.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

failed=0
missing=
for cxx in g++ clang++; do
	if ! command -v "$cxx" >/dev/null 2>&1; then
		missing="$missing $cxx"
		continue
	fi
	family=$(echo "$cxx" | sed 's/++$//; s/^g$/gcc/')
	prog=$tmp/consumer-$family
	link=yes
	san=
	if [ "$sanitize" != none ]; then
		if [ "$family" = "$cc_id" ]; then
			san=-fsanitize=$sanitize
		else
			link=no
		fi
	fi
	set -- "$cxx" -std=c++11 -pedantic -Wall -Wextra -Werror ${san:+"$san"} \
	    -I "$inc"
	if [ "$link" = yes ]; then
		set -- "$@" "$src" -o "$prog" -L "$libdir" -lwsm \
		    "-Wl,-rpath,$libdir"
	else
		set -- "$@" -c "$src" -o "$prog.o"
	fi
	if ! "$@" >"$tmp/log" 2>&1; then
		echo "$me: FAIL: <wsm.h> does not build as C++11 with $cxx:" >&2
		echo "    $*" >&2
		sed 's/^/    /' "$tmp/log" >&2
		failed=1
		continue
	fi
	echo "$me: ok: $*"
	if [ "$link" = no ]; then
		echo "$me: $cxx compiled only: $lib is built with" \
		    "-fsanitize=$sanitize by $cc_id, whose runtime a $family" \
		    "program cannot provide"
		continue
	fi
	if "$prog" >"$tmp/log" 2>&1; then
		sed 's/^/    /' "$tmp/log"
	else
		echo "$me: FAIL: the program built by $cxx failed" \
		    "(exit status $?):" >&2
		sed 's/^/    /' "$tmp/log" >&2
		failed=1
	fi
done
[ "$failed" -eq 0 ] || exit 1
if [ -n "$missing" ]; then
	echo "$me: SKIP: not installed:$missing (Debian/Ubuntu: apt-get" \
	    "install g++ clang); the other compilers passed"
	exit 77
fi
