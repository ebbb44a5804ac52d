#!/bin/sh
# update-baseline.sh BUILDDIR
#
# Regenerates the committed ABI baseline, abi/libwsm.abi, from the library
# in BUILDDIR (a meson build directory of this source tree, configured with
# debug info and without sanitizers, as `meson setup build` is): rebuilds the
# library, dumps its ABI the way abi-compat.sh reads it, shows what changed
# against the old baseline and replaces it. Review the change, then commit
# abi/libwsm.abi with the change to the API.
#
# Exit status: 0 updated (or already current), 1 failure, 99 bad invocation.
set -eu

me=update-baseline

if [ "$#" -ne 1 ]; then
	echo "usage: $me BUILDDIR" >&2
	exit 99
fi
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
baseline=$src/abi/libwsm.abi
inc=$src/include

if [ ! -f "$1/build.ninja" ]; then
	echo "$me: ERROR: $1 is not a meson build directory (no build.ninja)" >&2
	exit 99
fi
builddir=$(cd "$1" && pwd)
for tool in meson abidw abidiff nm readlink; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "$me: ERROR: $tool is not installed (abidw and abidiff:" \
		    "apt-get install abigail-tools; nm: binutils)" >&2
		exit 1
	fi
done

# The build directory must be of this source tree.
info=$builddir/meson-info/meson-info.json
if [ -f "$info" ]; then
	tree=$(sed -n 's/.*"source": *"\([^"]*\)".*/\1/p' "$info" | head -n 1)
	if [ -n "$tree" ] && [ "$(cd "$tree" 2>/dev/null && pwd)" != "$src" ]
	then
		echo "$me: ERROR: $builddir builds $tree, not $src" >&2
		exit 1
	fi
fi

echo "$me: building the library in $builddir"
meson compile -C "$builddir" wsm:shared_library
lib=$(readlink -f "$builddir/libwsm.so")
if [ ! -f "$lib" ]; then
	echo "$me: ERROR: no libwsm.so in $builddir" >&2
	exit 1
fi
if nm -D --undefined-only "$lib" | grep -q '__[a-z]*san_'; then
	echo "$me: ERROR: $lib is built with sanitizers; use a build" \
	    "directory configured without -Db_sanitize" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/update-baseline.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

rc=0
sh "$here/abi-dump.sh" "$lib" "$inc" "$tmp/new.abi" || rc=$?
if [ "$rc" -ne 0 ]; then
	[ "$rc" -ne 2 ] || echo "$me: ERROR: reconfigure $builddir with" \
	    "-Ddebug=true" >&2
	exit 1
fi

if [ -f "$baseline" ]; then
	rc=0
	abidiff --harmless --headers-dir1 "$inc" --headers-dir2 "$inc" \
	    "$baseline" "$tmp/new.abi" >"$tmp/report" 2>&1 || rc=$?
	if [ $((rc & 3)) -ne 0 ]; then
		echo "$me: ERROR: abidiff failed (exit status $rc):" >&2
		cat "$tmp/report" >&2
		exit 1
	fi
	if [ "$rc" -eq 0 ] && cmp -s "$baseline" "$tmp/new.abi"; then
		echo "$me: $baseline is already current"
		exit 0
	fi
	if [ "$rc" -eq 0 ]; then
		echo "$me: no ABI change; refreshing $baseline (locations or" \
		    "internals moved)"
	else
		echo "$me: ABI changes accepted into the baseline" \
		    "(abidiff exit status $rc):"
		sed 's/^/    /' "$tmp/report"
		if [ $((rc & 8)) -ne 0 ]; then
			echo "$me: WARNING: these changes are INCOMPATIBLE; they" \
			    "need a new SONAME (wsm_soversion in meson.build)" >&2
		fi
	fi
fi
mkdir -p "$(dirname "$baseline")"
cp "$tmp/new.abi" "$baseline"
echo "$me: wrote $baseline; review it and commit it (git add abi/libwsm.abi)"
