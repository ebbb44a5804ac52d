#!/bin/sh
# subproject.sh SRCDIR FIXTURE
#
# libwsm works as a meson subproject: FIXTURE, a small project whose
# meson.build asks for dependency('wsm', fallback: 'libwsm'), is copied to
# a temporary directory, SRCDIR (this source tree) becomes its
# subprojects/libwsm through a symbolic link made there, and the fixture is
# configured (libwsm's tests, examples and benchmarks off), built and its
# program run. Nothing is written outside the temporary directory; meson
# does not write into a subproject's source tree.
# Set MESON to choose meson. Exit status: 0 pass, 1 fail, 77 skip (meson,
# ninja or a C compiler is missing), 99 bad invocation.
set -eu

me=subproject

if [ "$#" -ne 2 ]; then
	echo "usage: $me SRCDIR FIXTURE" >&2
	exit 99
fi
meson=${MESON:-meson}
for f in "$1/meson.build" "$2/meson.build"; do
	if [ ! -f "$f" ]; then
		echo "$me: ERROR: $f does not exist" >&2
		exit 99
	fi
done
for tool in "$meson" ninja cc; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "$me: SKIP: $tool is not installed (Debian/Ubuntu: meson," \
		    "ninja-build, build-essential)"
		exit 77
	fi
done
src=$(cd "$1" && pwd)
fixture=$(cd "$2" && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/subproject.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

. "$(dirname "$0")/run-logged.sh"

cp -R "$fixture" "$tmp/project"
mkdir "$tmp/project/subprojects"
ln -s "$src" "$tmp/project/subprojects/libwsm"

set -- -Dlibwsm:tests=false -Dlibwsm:examples=false
if grep -q "option('bench'" "$src/meson_options.txt" 2>/dev/null; then
	set -- "$@" -Dlibwsm:bench=false
fi
# The lws the tree was built against (WSM_LWS_PCDIR, from meson test),
# which may live outside /usr.
if [ -n "${WSM_LWS_PCDIR:-}" ]; then
	PKG_CONFIG_PATH=$WSM_LWS_PCDIR${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
	export PKG_CONFIG_PATH
fi
run "$tmp/setup.log" "$meson" setup --force-fallback-for=wsm "$@" \
    "$tmp/build" "$tmp/project"
run "$tmp/build.log" ninja -C "$tmp/build"
run "$tmp/run.log" "$tmp/build/fixture"
sed 's/^/    /' "$tmp/run.log"
echo "$me: ok: a project using dependency('wsm', fallback: 'libwsm')" \
    "builds libwsm as its subproject and runs"
