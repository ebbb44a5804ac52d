#!/bin/sh
# other-compiler.sh CXX_ID INCLUDE_DIR SUPPORT_DIR LIBRARY SUPPORT_LIB
#                   SANITIZE CC_ID SOURCE...
#
# Meson builds the C++ tests with one compiler (CXX_ID, gcc or clang);
# this builds each SOURCE with the other one (clang++ or g++), at
# -std=c++17 -Wall -Wextra -Werror, links it against LIBRARY (libwsm.so)
# and SUPPORT_LIB (the tests' C support code, for wsclient.h from
# SUPPORT_DIR), and runs it: the wrapper must work with both.
#
# SANITIZE is meson's b_sanitize and CC_ID the id of the C compiler that
# built both libraries. An instrumented library needs its own compiler's
# sanitizer runtime in the program: when that is not the other compiler's,
# the sources are only compiled.
# Exit status: 0 pass, 1 fail, 77 skip (the other compiler or pkg-config
# is missing; under CI=true that fails), 99 bad invocation.
set -eu

me=cxx-other-compiler

if [ "$#" -lt 8 ]; then
	echo "usage: $me CXX_ID INCLUDE_DIR SUPPORT_DIR LIBRARY SUPPORT_LIB" \
	    "SANITIZE CC_ID SOURCE..." >&2
	exit 99
fi
cxx_id=$1
inc=$2
support_dir=$3
lib=$4
support_lib=$5
sanitize=$6
cc_id=$7
shift 7
for f in "$inc/wsm.hpp" "$support_dir/wsclient.h" "$lib" "$support_lib" "$@"
do
	if [ ! -f "$f" ]; then
		echo "$me: ERROR: $f does not exist" >&2
		exit 99
	fi
done
case $cxx_id in
gcc) other=clang++ family=clang ;;
clang) other=g++ family=gcc ;;
*)
	echo "$me: SKIP: meson's C++ compiler is $cxx_id, neither g++ nor" \
	    "clang++"
	exit 77 ;;
esac

missing() {
	if [ "${CI:-}" = true ]; then
		echo "$me: FAIL: $1 is not installed (CI=true)" >&2
		exit 1
	fi
	echo "$me: SKIP: $1 is not installed (Debian/Ubuntu: apt-get install" \
	    "g++ clang pkg-config)"
	exit 77
}
command -v "$other" >/dev/null 2>&1 || missing "$other"
command -v pkg-config >/dev/null 2>&1 || missing pkg-config
deps=$(pkg-config --cflags --libs libwebsockets jansson)
libdir=$(cd "$(dirname "$lib")" && pwd)

link=yes
san=
if [ "$sanitize" != none ]; then
	if [ "$family" = "$cc_id" ]; then
		san=-fsanitize=$sanitize
	else
		link=no
	fi
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cxx-other.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

failed=0
for src in "$@"; do
	name=$(basename "$src" .cpp)
	set -- "$other" -std=c++17 -g -O1 -Wall -Wextra -Werror \
	    ${san:+"$san"} -I "$inc" -I "$support_dir"
	if [ "$link" = yes ]; then
		# shellcheck disable=SC2086 # pkg-config's flags are words
		set -- "$@" "$src" -o "$tmp/$name" "$support_lib" -L "$libdir" \
		    -lwsm "-Wl,-rpath,$libdir" $deps -pthread
	else
		# shellcheck disable=SC2086
		set -- "$@" $deps -c "$src" -o "$tmp/$name.o"
	fi
	if ! "$@" >"$tmp/log" 2>&1; then
		echo "$me: FAIL: $name does not build with $other:" >&2
		echo "    $*" >&2
		sed 's/^/    /' "$tmp/log" >&2
		failed=1
		continue
	fi
	if [ "$link" = no ]; then
		echo "$me: $name: compiled only with $other: the libraries" \
		    "are built with -fsanitize=$sanitize by $cc_id"
		continue
	fi
	if "$tmp/$name" >"$tmp/log" 2>&1; then
		echo "$me: ok: $name built by $other passed"
	else
		echo "$me: FAIL: $name built by $other failed (exit status" \
		    "$?):" >&2
		sed 's/^/    /' "$tmp/log" >&2
		failed=1
	fi
done
exit "$failed"
