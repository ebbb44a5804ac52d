#!/bin/sh
# check-symbols.sh LIBRARY VERSION_SCRIPT
#
# The dynamic symbols LIBRARY defines (functions and data, as listed by
# `nm -D --defined-only`) must be exactly the global symbols of the linker
# VERSION_SCRIPT: nothing missing, nothing leaked. The absolute symbols that
# name the script's version nodes (WSM_1.0, ...) are not symbols of the API;
# they must be present, which proves the script was applied, and every
# exported symbol must carry one of those versions.
# Set NM to use another nm. Exit status: 0 pass, 1 fail, 77 skip (no nm),
# 99 bad invocation.
set -eu

me=check-symbols

if [ "$#" -ne 2 ]; then
	echo "usage: $me LIBRARY VERSION_SCRIPT" >&2
	exit 99
fi
lib=$1
map=$2
nm=${NM:-nm}

for f in "$lib" "$map"; do
	if [ ! -f "$f" ]; then
		echo "$me: ERROR: $f does not exist" >&2
		exit 99
	fi
done
if ! command -v "$nm" >/dev/null 2>&1; then
	echo "$me: SKIP: $nm(1) is not installed (binutils), so the exported" \
	    "symbols cannot be listed"
	exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-symbols.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# The version script: "N<TAB>node" for each version node and "G<TAB>symbol"
# for each global symbol. Comments are /* */ or # to the end of the line.
awk '
{ text = text $0 "\n" }
END {
	out = ""; st = 0
	n = length(text)
	for (i = 1; i <= n; i++) {
		c = substr(text, i, 1); d = substr(text, i, 2)
		if (st == 0) {
			if (d == "/*") { st = 1; i++; out = out " "; continue }
			if (c == "#") { st = 2; continue }
			out = out c
		} else if (st == 1) {
			if (d == "*/") { st = 0; i++ }
		} else if (c == "\n") {
			st = 0; out = out c
		}
	}
	gsub(/[{};:]/, " & ", out)
	nt = split(out, tok, /[ \t\n]+/)
	depth = 0; mode = ""; last = ""
	for (k = 1; k <= nt; k++) {
		t = tok[k]
		if (t == "") continue
		if (t == "{") {
			depth++
			if (depth == 1) {
				mode = "global"
				if (last != "") print "N\t" last
			}
			continue
		}
		if (t == "}") { depth--; last = ""; continue }
		if (t == ";" || t == ":") { if (depth == 0) last = ""; continue }
		if (depth == 0) { last = t; continue }
		if (depth != 1) continue
		if ((t == "global" || t == "local") && tok[k + 1] == ":") {
			mode = t; continue
		}
		if (mode == "global") print "G\t" t
	}
}' "$map" >"$tmp/map"

sed -n 's/^G	//p' "$tmp/map" | sort -u >"$tmp/expected"
sed -n 's/^N	//p' "$tmp/map" | sort -u >"$tmp/nodes"
if [ ! -s "$tmp/expected" ]; then
	echo "$me: ERROR: no global symbols found in $map" >&2
	exit 99
fi
if grep '[*?[]' "$tmp/expected" >"$tmp/wild"; then
	echo "$me: ERROR: $map exports by wildcard; list every symbol:" >&2
	sed 's/^/    /' "$tmp/wild" >&2
	exit 99
fi

# The library: "type<TAB>name<TAB>version" per defined dynamic symbol.
if ! "$nm" -D --defined-only "$lib" >"$tmp/nm" 2>"$tmp/nm.err"; then
	echo "$me: ERROR: $nm -D --defined-only $lib failed:" >&2
	sed 's/^/    /' "$tmp/nm.err" >&2
	exit 99
fi
awk '
NF >= 2 {
	type = $(NF - 1); name = $NF; ver = ""
	if ((i = index(name, "@")) > 0) {
		ver = substr(name, i); name = substr(name, 1, i - 1)
		sub(/^@+/, "", ver)
	}
	printf "%s\t%s\t%s\n", type, name, ver
}' "$tmp/nm" >"$tmp/defined"

# Absolute symbols named after a version node are the nodes themselves.
awk -F '\t' 'NR == FNR { node[$1] = 1; next }
    $1 == "A" && ($2 in node) { print $2 }' "$tmp/nodes" "$tmp/defined" |
    sort -u >"$tmp/nodes_found"

# Functions and data: text, data, bss, read-only, small data, weak,
# indirect and unique symbols. That leaves out the absolute symbols of the
# version nodes (and any other non-function, non-data symbol).
awk -F '\t' '$1 ~ /^[TDBRGSVWiu]$/ { print $2 }' "$tmp/defined" | sort -u \
    >"$tmp/actual"

failed=0
comm -23 "$tmp/expected" "$tmp/actual" >"$tmp/missing"
comm -13 "$tmp/expected" "$tmp/actual" >"$tmp/extra"
if [ -s "$tmp/missing" ]; then
	echo "$me: FAIL: in $map but not exported by $lib:" >&2
	sed 's/^/    - /' "$tmp/missing" >&2
	failed=1
fi
if [ -s "$tmp/extra" ]; then
	echo "$me: FAIL: exported by $lib but not in $map (leaked):" >&2
	while read -r sym; do
		awk -F '\t' -v s="$sym" '$2 == s {
		    printf "    + %s (type %s%s)\n", s, $1,
		    $3 == "" ? "" : ", version " $3 }' "$tmp/defined" >&2
	done <"$tmp/extra"
	failed=1
fi

comm -23 "$tmp/nodes" "$tmp/nodes_found" >"$tmp/nodes_missing"
if [ -s "$tmp/nodes_missing" ]; then
	echo "$me: FAIL: $lib defines no version node" \
	    "$(tr '\n' ' ' <"$tmp/nodes_missing")- was it linked with" \
	    "-Wl,--version-script=$map?" >&2
	failed=1
fi

# nm shows versions as name@@NODE (binutils >= 2.35); an exported symbol
# with a version that is not a node of the script, or none at all while
# others have one, is a linking mistake.
if grep -q '	[^	]*	[^	]' "$tmp/defined"; then
	awk -F '\t' 'NR == FNR { node[$1] = 1; next }
	    $1 ~ /^[TDBRGSVWiu]$/ && !($3 in node) {
		printf "    %s (version %s)\n", $2, $3 == "" ? "none" : $3 }' \
	    "$tmp/nodes" "$tmp/defined" >"$tmp/badver"
	if [ -s "$tmp/badver" ]; then
		echo "$me: FAIL: exported without a version node of $map:" >&2
		cat "$tmp/badver" >&2
		failed=1
	fi
fi

if [ "$failed" -ne 0 ]; then
	exit 1
fi
echo "$me: ok: $lib exports exactly the $(wc -l <"$tmp/expected" |
    tr -d ' ') symbols of $map, versioned $(tr '\n' ' ' <"$tmp/nodes" |
    sed 's/ $//')"
