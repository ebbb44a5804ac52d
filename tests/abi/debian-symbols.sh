#!/bin/sh
# debian-symbols.sh SRCDIR
#
# debian/libwsm1.symbols says what lib/libwsm.map says: it equals the output
# of debian/gen-symbols.sh. dpkg-gensymbols checks the file against the
# built library only when the package is built; this catches a map change
# without its symbols file at every test run. On failure it prints the
# difference and the command that regenerates the file.
# Exit status: 0 pass, 1 fail, 99 bad invocation.
set -eu

me=debian-symbols

if [ "$#" -ne 1 ]; then
	echo "usage: $me SRCDIR" >&2
	exit 99
fi
src=$1
for f in "$src/lib/libwsm.map" "$src/debian/gen-symbols.sh" \
    "$src/debian/libwsm1.symbols"; do
	if [ ! -f "$f" ]; then
		echo "$me: ERROR: $f does not exist" >&2
		exit 99
	fi
done

tmp=$(mktemp "${TMPDIR:-/tmp}/debian-symbols.XXXXXX")
trap 'rm -f "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

if ! sh "$src/debian/gen-symbols.sh" "$src/lib/libwsm.map" >"$tmp"; then
	echo "$me: FAIL: debian/gen-symbols.sh cannot read lib/libwsm.map" >&2
	exit 1
fi
if ! diff -u "$src/debian/libwsm1.symbols" "$tmp" >&2; then
	echo "$me: FAIL: debian/libwsm1.symbols is out of date with" \
	    "lib/libwsm.map (above: what it should become); run" \
	    "debian/gen-symbols.sh > debian/libwsm1.symbols" >&2
	exit 1
fi
nodes=$(grep -c '^ WSM_' "$tmp" || :)
syms=$(grep -c '^ wsm_' "$tmp" || :)
echo "$me: ok: debian/libwsm1.symbols lists the $syms functions and" \
    "$nodes version nodes of lib/libwsm.map"
