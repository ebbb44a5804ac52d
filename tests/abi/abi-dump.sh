#!/bin/sh
# abi-dump.sh LIBRARY INCLUDE_DIR OUTPUT
#
# Writes the ABI of LIBRARY (a shared object built with debug info) to OUTPUT
# as libabigail XML. The one place that says how abi/libwsm.abi is made:
# abi-compat.sh and update-baseline.sh both call it.
#
# The flags keep out what varies between two builds of the same source:
#   --no-corpus-path      the path of LIBRARY
#   --no-comp-dir-path    the build directory
#   --short-locs          source paths, relative to the build directory
#                         (file names stay, so --headers-dir still works)
#   --drop-private-types  types not defined under INCLUDE_DIR (the internal
#                         definitions behind the opaque handles; lws, libc)
# What remains (exported symbols with their versions, SONAME, DT_NEEDED, the
# public types) is the same for gcc and clang, -O0 and -O2, with or without
# LTO, in any build directory; line numbers may differ, abidiff ignores them.
#
# Exit status: 0 written, 1 abidw failed, 2 LIBRARY has no debug info (DWARF),
# 77 abidw is not installed, 99 bad invocation.
set -eu

me=abi-dump

if [ "$#" -ne 3 ]; then
	echo "usage: $me LIBRARY INCLUDE_DIR OUTPUT" >&2
	exit 99
fi
lib=$1
inc=$2
out=$3

if [ ! -f "$lib" ] || [ -h "$lib" ]; then
	# abidw refuses symbolic links; give it the real file.
	echo "$me: ERROR: $lib is not a regular file (pass the real" \
	    "libwsm.so.X.Y.Z, not a symbolic link to it)" >&2
	exit 99
fi
if [ ! -f "$inc/wsm.h" ]; then
	echo "$me: ERROR: $inc/wsm.h does not exist" >&2
	exit 99
fi
if ! command -v abidw >/dev/null 2>&1; then
	echo "$me: SKIP: abidw(1) is not installed, so the ABI cannot be" \
	    "read (Debian/Ubuntu: apt-get install abigail-tools)"
	exit 77
fi

if ! abidw --no-corpus-path --no-comp-dir-path --short-locs \
    --drop-private-types --headers-dir "$inc" --out-file "$out" "$lib"; then
	echo "$me: ERROR: abidw failed on $lib" >&2
	exit 1
fi
# Without DWARF abidw still succeeds, with the symbol list only: the types
# would go unchecked, so say so instead of comparing half an ABI.
if ! grep -q '<abi-instr' "$out"; then
	echo "$me: $lib has no debug info; the ABI of its types cannot be" \
	    "read (build with -Ddebug=true, as buildtype debugoptimized and" \
	    "debug do)" >&2
	exit 2
fi
