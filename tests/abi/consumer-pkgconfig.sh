#!/bin/sh
# consumer-pkgconfig.sh BUILDDIR SANITIZE VERSION CONSUMER_C CONSUMER_CPP
# consumer-pkgconfig.sh --installed VERSION CONSUMER_C CONSUMER_CPP
#
# Installs BUILDDIR (already built) into a temporary staging directory with
# `meson install --destdir`, then builds and runs, with nothing but what
# `pkg-config wsm` says about the staged files:
#   1. CONSUMER_C and CONSUMER_CPP against the shared library
#      (pkg-config --cflags --libs wsm);
#   2. CONSUMER_C against the static library, libwsm.a
#      (pkg-config --static --cflags --libs wsm), which only links if the
#      .pc's private part (Requires.private, Libs.private) names everything
#      libwsm.a needs.
# The staged wsm.pc must report VERSION. With --installed nothing is staged:
# the same checks run against the wsm.pc that pkg-config finds on its own
# (CI: the one of the installed libwsm-dev package), with no
# LD_LIBRARY_PATH. Everything is written under the
# temporary directory; even meson's install log goes to a shadow of
# BUILDDIR there, not into BUILDDIR/meson-logs.
#
# libwsm itself is linked statically in 2, its dependencies dynamically
# (-Wl,-Bstatic -lwsm -Wl,-Bdynamic): a fully static program cannot be
# linked from pkg-config's output on Debian 12, whose libwebsockets.pc
# gives -lwebsockets -lcap but not the -lssl -lcrypto -lz its
# libwebsockets.a needs.
#
# SANITIZE is meson's b_sanitize: an instrumented libwsm needs sanitizer
# flags the .pc does not carry, so sanitizer builds are skipped; the
# default build of the same tree (CI builds it first) runs this check.
# Set CC and CXX to choose the compilers (default cc and c++), MESON to
# choose meson.
# Exit status: 0 pass, 1 fail, 77 skip (a tool is missing, sanitizer
# build), 99 bad invocation.
set -eu

me=consumer-pkgconfig

usage() {
	echo "usage: $me BUILDDIR SANITIZE VERSION CONSUMER_C CONSUMER_CPP" >&2
	echo "       $me --installed VERSION CONSUMER_C CONSUMER_CPP" >&2
	exit 99
}
if [ "${1-}" = --installed ]; then
	[ "$#" -eq 4 ] || usage
	builddir=
	sanitize=none
	shift
else
	[ "$#" -eq 5 ] || usage
	builddir=$1
	sanitize=$2
	shift 2
fi
version=$1
consumer_c=$2
consumer_cpp=$3
cc=${CC:-cc}
cxx=${CXX:-c++}
meson=${MESON:-meson}

for f in ${builddir:+"$builddir/meson-private/install.dat"} "$consumer_c" \
    "$consumer_cpp"
do
	if [ ! -f "$f" ]; then
		echo "$me: ERROR: $f does not exist" >&2
		exit 99
	fi
done
if [ "$sanitize" != none ]; then
	echo "$me: SKIP: this build is instrumented (b_sanitize=$sanitize);" \
	    "its consumers would need sanitizer flags that wsm.pc does not" \
	    "give; the packaging is checked in a build without sanitizers"
	exit 77
fi
for tool in "$meson" pkg-config "$cc" "$cxx" readelf; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "$me: SKIP: $tool is not installed (Debian/Ubuntu:" \
		    "meson, pkg-config, build-essential, binutils)"
		exit 77
	fi
done

# meson test points LD_LIBRARY_PATH at the build tree: the programs here
# must find the library under test by themselves.
unset LD_LIBRARY_PATH
tmp=$(mktemp -d "${TMPDIR:-/tmp}/consumer-pkgconfig.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

. "$(dirname "$0")/run-logged.sh"

if [ -n "$builddir" ]; then
	. "$(dirname "$0")/stage-install.sh"
	stage_install "$builddir"
	pc=$(find "$stage" -name wsm.pc -path '*/pkgconfig/*' | head -n 1)
else
	stage=
	pc=$(pkg-config --variable=pcfiledir wsm 2>/dev/null || :)
	pc=${pc:+$pc/wsm.pc}
	case $pc in
	/usr/local/*)
		# It would shadow the installed package's.
		echo "$me: FAIL: pkg-config finds $pc, not the one of /usr" >&2
		exit 1 ;;
	esac
fi
if [ -z "$pc" ]; then
	if [ -z "$stage" ]; then
		echo "$me: FAIL: pkg-config finds no wsm.pc" >&2
		exit 1
	fi
	echo "$me: FAIL: meson install staged no pkgconfig/wsm.pc:" >&2
	(cd "$stage" && find . -type f) | sed 's/^/    /' >&2
	exit 1
fi
pcdir=$(dirname "$pc")
libdir=$(dirname "$pcdir")
for f in "$libdir/libwsm.so" "$libdir/libwsm.a"; do
	if [ ! -e "$f" ]; then
		echo "$me: FAIL: $f is not installed next to pkgconfig/" >&2
		exit 1
	fi
done
soname=$(readelf -d "$libdir/libwsm.so" |
    sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ -z "$soname" ] || [ ! -e "$libdir/$soname" ]; then
	echo "$me: FAIL: the SONAME link '$soname' is not installed" >&2
	exit 1
fi
if readelf -d "$libdir/$soname" | grep -Eq '\((RPATH|RUNPATH)\)'; then
	echo "$me: FAIL: the installed library keeps a run path:" >&2
	readelf -d "$libdir/$soname" | grep -E '\((RPATH|RUNPATH)\)' >&2
	exit 1
fi

# pkg-config sees the staged wsm.pc with its prefix moved into the stage,
# and the libwebsockets.pc of the lws the tree was built against
# (WSM_LWS_PCDIR, from meson test; that lws may live outside /usr).
if [ -n "$stage" ]; then
	mkdir "$tmp/pc"
	sed "s|^prefix=|prefix=$stage|" "$pc" >"$tmp/pc/wsm.pc"
	PKG_CONFIG_PATH=$tmp/pc${WSM_LWS_PCDIR:+:$WSM_LWS_PCDIR}
	export PKG_CONFIG_PATH
fi
# The loader finds that lws too (a no-op for the system's).
lwspath=${WSM_LWS_LIBDIR:-}
run "$tmp/pc.log" pkg-config --exists --print-errors wsm
got=$(pkg-config --modversion wsm)
if [ "$got" != "$version" ]; then
	echo "$me: FAIL: pkg-config --modversion wsm says $got, not $version" >&2
	exit 1
fi
cflags=$(pkg-config --cflags wsm)
libs=$(pkg-config --libs wsm)
static_libs=$(pkg-config --static --libs wsm)
# Installed in /usr, the -I is a system directory pkg-config leaves out.
case "$stage: $cflags " in
:*|*" -I$stage/"*) ;;
*)
	echo "$me: FAIL: pkg-config --cflags wsm does not point into the" \
	    "staged files: $cflags" >&2
	exit 1 ;;
esac
echo "$me: pkg-config --cflags --libs wsm: $cflags $libs"
echo "$me: pkg-config --static --libs wsm: $static_libs"

# 1. Shared: C and C++, run against the staged library (the installed one
# with --installed, found by the dynamic loader alone).
ldpath=${stage:+$libdir}${lwspath:+${stage:+:}$lwspath}
want=$(readlink -f "$libdir/$soname")
# shellcheck disable=SC2086 # pkg-config output is meant to be split
run "$tmp/c.log" "$cc" -Wall -Wextra -Werror $cflags "$consumer_c" \
    -o "$tmp/consumer-c" $libs
# shellcheck disable=SC2086
run "$tmp/cxx.log" "$cxx" -Wall -Wextra -Werror $cflags "$consumer_cpp" \
    -o "$tmp/consumer-cxx" $libs
for prog in consumer-c consumer-cxx; do
	run "$tmp/$prog.log" env ${ldpath:+LD_LIBRARY_PATH="$ldpath"} \
	    "$tmp/$prog"
	sed 's/^/    /' "$tmp/$prog.log"
	# Compared as real paths: the loader may name /lib for /usr/lib.
	got=$(env ${ldpath:+LD_LIBRARY_PATH="$ldpath"} ldd "$tmp/$prog" |
	    sed -n "s/^[[:space:]]*$soname => \([^ ]*\) .*/\1/p")
	if [ -z "$got" ] || [ "$(readlink -f "$got")" != "$want" ]; then
		echo "$me: FAIL: $prog does not load $want:" >&2
		env ${ldpath:+LD_LIBRARY_PATH="$ldpath"} ldd "$tmp/$prog" >&2
		exit 1
	fi
done
echo "$me: ok: C and C++ consumers built with pkg-config wsm run"

# 2. Static libwsm: every -lwsm becomes libwsm.a, the rest stays dynamic.
set --
for word in $static_libs; do
	if [ "$word" = -lwsm ]; then
		set -- "$@" -Wl,-Bstatic -lwsm -Wl,-Bdynamic
	else
		set -- "$@" "$word"
	fi
done
# shellcheck disable=SC2086
run "$tmp/static.log" "$cc" -Wall -Wextra -Werror $cflags "$consumer_c" \
    -o "$tmp/consumer-static" "$@"
if readelf -d "$tmp/consumer-static" | grep -q "(NEEDED).*\[libwsm\."; then
	echo "$me: FAIL: consumer-static was linked to the shared libwsm" >&2
	exit 1
fi
# No LD_LIBRARY_PATH but lws's: it must not need the staged libwsm.so.
run "$tmp/consumer-static.log" env ${lwspath:+LD_LIBRARY_PATH="$lwspath"} \
    "$tmp/consumer-static"
sed 's/^/    /' "$tmp/consumer-static.log"
echo "$me: ok: a C consumer linked with pkg-config --static wsm and" \
    "libwsm.a runs"
