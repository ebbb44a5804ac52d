#!/bin/sh
# consumer-cmake.sh BUILDDIR SANITIZE VERSION PROJECT
# consumer-cmake.sh --installed VERSION PROJECT
#
# libwsm's CMake package configuration works for a CMake user. BUILDDIR
# (already built) is installed into a temporary staging directory with
# `meson install --destdir`; PROJECT (cmake-consumer/) is configured with
# CMAKE_PREFIX_PATH at the staged prefix, which only works if
# wsmConfig.cmake finds its files relative to itself. Then:
#   1. find_package(wsm 2.0), (wsm MAJOR.MINOR+1) and (wsm 0.9) must fail
#      for want of a compatible version (SameMajorVersion: a 1.x program
#      needs 1.y with y >= x), find_package(wsm VERSION) must succeed;
#   2. with find_package(wsm 1.0), the project, linked with wsm::wsm alone
#      (lws included), builds, loads the staged libwsm and runs: it starts
#      an lws server with libwsm's protocol, drains and stops it.
# With --installed nothing is staged and CMAKE_PREFIX_PATH is not set: the
# same checks run against what CMake finds by itself (CI: the installed
# libwsm-dev package), and the program runs with no LD_LIBRARY_PATH.
# Everything is written under a temporary directory.
#
# SANITIZE is meson's b_sanitize: an instrumented libwsm needs sanitizer
# flags its CMake target does not carry, so sanitizer builds are skipped.
# Set MESON to choose meson. Exit status: 0 pass, 1 fail, 77 skip (a tool
# is missing, a sanitizer build), 99 bad invocation.
set -eu

me=consumer-cmake

usage() {
	echo "usage: $me BUILDDIR SANITIZE VERSION PROJECT" >&2
	echo "       $me --installed VERSION PROJECT" >&2
	exit 99
}
if [ "${1-}" = --installed ]; then
	[ "$#" -eq 3 ] || usage
	builddir=
	sanitize=none
	shift
else
	[ "$#" -eq 4 ] || usage
	builddir=$1
	sanitize=$2
	shift 2
fi
version=$1
project=$2

for f in ${builddir:+"$builddir/meson-info/intro-buildoptions.json"} \
    "$project/CMakeLists.txt"; do
	if [ ! -f "$f" ]; then
		echo "$me: ERROR: $f does not exist" >&2
		exit 99
	fi
done
if [ "$sanitize" != none ]; then
	echo "$me: SKIP: this build is instrumented (b_sanitize=$sanitize);" \
	    "its consumers would need sanitizer flags that wsm::wsm does not" \
	    "carry; the packaging is checked in a build without sanitizers"
	exit 77
fi
for tool in cmake cc ${builddir:+"${MESON:-meson}" python3}; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "$me: SKIP: $tool is not installed (Debian/Ubuntu:" \
		    "cmake, build-essential, meson, python3)"
		exit 77
	fi
done

# meson test points LD_LIBRARY_PATH at the build tree: the programs here
# must find the library under test by themselves.
unset LD_LIBRARY_PATH
tmp=$(mktemp -d "${TMPDIR:-/tmp}/consumer-cmake.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

. "$(dirname "$0")/run-logged.sh"

set --
if [ -n "$builddir" ]; then
	prefix=$(python3 -c '
import json, sys
opts = json.load(open(sys.argv[1]))
print(next(o["value"] for o in opts if o["name"] == "prefix"))
' "$builddir/meson-info/intro-buildoptions.json")
	. "$(dirname "$0")/stage-install.sh"
	stage_install "$builddir"
	root=$stage$prefix
	if [ -z "$(find "$root" -name wsmConfig.cmake)" ]; then
		echo "$me: FAIL: meson install staged no wsmConfig.cmake" \
		    "(is cmake_config disabled?)" >&2
		exit 1
	fi
	# And the lws the tree was built against (WSM_LWS_LIBDIR, from meson
	# test), which may live outside /usr.
	set -- -DCMAKE_PREFIX_PATH="$root${WSM_LWS_LIBDIR:+;$WSM_LWS_LIBDIR/cmake}"
	where="the staged $root"
else
	root=/usr
	where="the system"
fi

cp -R "$project" "$tmp/project"
bld=$tmp/cmake-build
# configure LOG REQUEST: find_package(wsm REQUEST), in one build directory
# (the compiler is detected once).
configure() {
	status=0
	cmake -S "$tmp/project" -B "$bld" "$@" -DWSM_REQUEST="$req" \
	    >"$tmp/$log" 2>&1 || status=$?
	return "$status"
}

major=${version%%.*}
minor=${version#*.}
minor=${minor%%.*}
for req in "$((major + 1)).0" "$major.$((minor + 1))" 0.9; do
	log=refuse-$req.log
	if configure "$@"; then
		echo "$me: FAIL: find_package(wsm $req) accepted libwsm" \
		    "$version from $where:" >&2
		sed 's/^/    /' "$tmp/$log" >&2
		exit 1
	fi
	# CMake names the versions it saw and refused.
	if ! grep -q "requested version \"$req\"" "$tmp/$log" ||
	    ! grep -q "wsmConfig.cmake, version: $version\$" "$tmp/$log"; then
		echo "$me: FAIL: find_package(wsm $req) failed, but not for" \
		    "the version:" >&2
		sed 's/^/    /' "$tmp/$log" >&2
		exit 1
	fi
done
echo "$me: ok: find_package(wsm $((major + 1)).0 | $major.$((minor + 1))" \
    "| 0.9) refuse libwsm $version"

for req in "$version" 1.0; do
	log=accept-$req.log
	if ! configure "$@"; then
		echo "$me: FAIL: find_package(wsm $req) failed:" >&2
		sed 's/^/    /' "$tmp/$log" >&2
		exit 1
	fi
done
# The package found must be the one under test: with --installed, one in
# /usr/local would shadow the one of /usr.
dir=$(sed -n 's/^-- wsm [^ ]* from //p' "$tmp/$log")
case $dir in
/usr/local/*)
	[ -n "$builddir" ] || {
		echo "$me: FAIL: find_package(wsm) found $dir, not in /usr" >&2
		exit 1
	} ;;
esac
case $dir in
"$root"/*) ;;
*)
	echo "$me: FAIL: find_package(wsm) found $dir, not in $root" >&2
	exit 1 ;;
esac
echo "$me: ok: find_package(wsm $version | 1.0) finds $dir"

run "$tmp/build.log" cmake --build "$bld"
run "$tmp/run.log" "$bld/consumer"
sed 's/^/    /' "$tmp/run.log"
# CMake gives the build a run path to the staged library; with --installed
# the loader finds it alone. Either way it must be the one of $root.
lib=$(ldd "$bld/consumer" | sed -n 's/^[[:space:]]*libwsm\.so\.[0-9]* => \([^ ]*\) .*/\1/p')
real=$(readlink -f "${lib:-/nonexistent}")
[ -n "$builddir" ] || case $real in /usr/local/*) real=/nonexistent ;; esac
case $real in
"$(readlink -f "$root")"/*) ;;
*)
	echo "$me: FAIL: the consumer loads libwsm from '${lib}', not $root:" >&2
	ldd "$bld/consumer" >&2
	exit 1 ;;
esac
echo "$me: ok: a CMake project linked with wsm::wsm builds, loads $lib" \
    "and runs"
