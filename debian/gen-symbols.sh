#!/bin/sh
# gen-symbols.sh [MAP]: prints debian/libwsm1.symbols, made from the linker
# version script (default lib/libwsm.map, from the source root), so that the
# Debian symbols file cannot say anything the library's ABI does not.
#
# Each version node WSM_X.Y names the upstream release X.Y.0 that brought
# its symbols; a symbol's line says so (sym@WSM_X.Y X.Y.0), which is what
# dpkg-shlibdeps turns into a package's minimal dependency. The nodes
# themselves are symbols of the library too (WSM_X.Y@WSM_X.Y), and
# dpkg-gensymbols lists them, so they are listed here.
#
# Regenerate after a change to the map:
#   debian/gen-symbols.sh > debian/libwsm1.symbols
# The 'debian-symbols' test (suite 'packaging') fails while they differ.
# Exit status: 0, or 1 when the map has something this script cannot read.
set -eu
map=${1:-$(dirname "$0")/../lib/libwsm.map}

# Comments out, then one token per line: node names, braces, ';',
# "global:", "local:" and symbol names.
body=$(sed -e 's,/\*.*\*/,,g' "$map" |
    sed -e 's/[{};]/\n&\n/g' -e 's/:/:\n/g' | awk '
function fail(what) {
	print "gen-symbols: " what > "/dev/stderr"
	failed = 1
	exit 1
}
{ gsub(/[ \t]+/, "") }
$0 == "" { next }
# Outside a node: a name, then "{" opens it or ";" ends the parent named
# after the previous node'"'"'s closing brace.
state == "" || state == "closed" {
	if ($0 == ";" && state == "closed") { state = ""; next }
	if ($0 !~ /^WSM_[0-9]+\.[0-9]+$/)
		fail("unexpected \"" $0 "\" outside a version node")
	pending = $0; state = "named"; next
}
state == "named" && $0 == ";" {
	if (!(pending in nodes))
		fail("parent " pending " is not a node defined before")
	state = ""; next
}
state == "named" && $0 == "{" {
	node = pending
	if (node in nodes)
		fail("node " node " defined twice")
	nodes[node] = 1
	ver = substr(node, 5) ".0"
	print " " node "@" node " " ver
	state = "in"; scope = ""; next
}
state == "named" { fail("unexpected \"" $0 "\" after " pending) }
$0 == "}" { state = "closed"; next }
$0 == ";" { next }
$0 == "global:" || $0 == "local:" { scope = $0; next }
scope == "global:" && /^[A-Za-z_][A-Za-z0-9_]*$/ {
	print " " $0 "@" node " " ver; next
}
scope == "local:" && $0 == "*" { next }
{ fail("unexpected \"" $0 "\" in node " node " (" scope ")") }
END {
	if (!failed && (state == "in" || state == "named"))
		fail("unterminated node")
}
')
printf '%s\n' 'libwsm.so.1 libwsm1 #MINVER#' \
    '* Build-Depends-Package: libwsm-dev'
printf '%s\n' "$body" | LC_ALL=C sort
