#!/bin/sh
# check-man.sh MANDIR HEADER VERSION_SCRIPT
#
# Checks the manual pages in MANDIR against the public header and the linker
# version script:
#   1. every page is clean under `mandoc -Tlint -Wwarning`; a `.so` alias page
#      is one `.so manN/<page>.N` line naming a real page in MANDIR, linted
#      through that line (mandoc's ".so is fragile" note is expected there);
#   2. each real page's .Dt matches its file name, and a section 3 page has
#      the sections every libwsm function page carries;
#   3. every global symbol of the version script has a page, <symbol>.3, real
#      or alias, and the page's NAME and SYNOPSIS document it;
#   4. each SYNOPSIS prototype (.Ft with .Fn, or .Fo/.Fa/.Fc) and each
#      `.Vt typedef` equals the header's declaration after whitespace
#      normalization, and every WSM_EXTERN function of the header is in some
#      page's SYNOPSIS.
# Exit status: 0 pass, 1 fail, 77 skip (no mandoc), 99 bad invocation.
set -eu

me=check-man

if [ "$#" -ne 3 ]; then
	echo "usage: $me MANROOT HEADER VERSION_SCRIPT" >&2
	exit 99
fi
mandir=$1
header=$2
map=$3

for f in "$mandir" "$header" "$map"; do
	if [ ! -e "$f" ]; then
		echo "$me: ERROR: $f does not exist" >&2
		exit 99
	fi
done

if ! command -v mandoc >/dev/null 2>&1; then
	echo "$me: SKIP: mandoc(1) is not installed, so the manual pages" \
	    "cannot be linted (Debian/Ubuntu: apt-get install mandoc)"
	exit 77
fi

root=$(cd "$mandir" && pwd -P)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-man.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

failures=0
fail() {
	printf '%s: FAIL: %s\n' "$me" "$*" >&2
	failures=$((failures + 1))
}

# The pages live in MANROOT/man<N>/, each in the directory of its section,
# as man(1) expects; the checks below read them from one flat directory.
mandir=$tmp/flat
mkdir "$mandir"
for page in "$root"/*.[1-9]; do
	[ -f "$page" ] && fail "${page##*/}: not in a man<N>/ directory"
done
for page in "$root"/man[1-9]/*; do
	[ -f "$page" ] || continue
	sec=${page%/*}
	sec=${sec##*/man}
	case ${page##*/} in
	*."$sec") ln -s "$page" "$mandir/${page##*/}" ;;
	*) fail "${page#"$root"/}: a page of another section than man$sec/" ;;
	esac
done

# ---------------------------------------------------------------------------
# Classify the pages: a real page, or a one-line `.so` alias.
: >"$tmp/real"
: >"$tmp/alias"		# alias-file <TAB> target-file
npages=0
for page in "$mandir"/*.[1-9]; do
	[ -f "$page" ] || continue
	npages=$((npages + 1))
	base=${page##*/}
	if grep -q '^\.so[ 	]' "$page"; then
		lines=$(grep -c '[^ 	]' "$page" || :)
		target=$(sed -n 's/^\.so[ 	][ 	]*//p' "$page" | sed 's/[ 	]*$//')
		tsec=${target##*.}
		case $target in
		man"$tsec"/*.*) ;;
		*)
			fail "$base: .so target '$target' is not of the form man<N>/<page>.<N>"
			continue ;;
		esac
		tfile=${target#man"$tsec"/}
		if [ "$lines" -ne 1 ]; then
			fail "$base: an alias page must hold only its .so line"
		elif [ ! -f "$mandir/$tfile" ]; then
			fail "$base: .so target $target has no page $tfile in $mandir"
		elif grep -q '^\.so[ 	]' "$mandir/$tfile"; then
			fail "$base: .so target $tfile is itself an alias"
		else
			printf '%s\t%s\n' "$base" "$tfile" >>"$tmp/alias"
		fi
	else
		printf '%s\n' "$base" >>"$tmp/real"
	fi
done
if [ "$npages" -eq 0 ]; then
	echo "$me: ERROR: no manual pages in $mandir" >&2
	exit 99
fi

# ---------------------------------------------------------------------------
# 1. mandoc lint.
while read -r base; do
	if mandoc -Tlint -Wwarning "$mandir/$base" >"$tmp/lint" 2>&1; then
		st=0
	else
		st=$?
	fi
	if [ "$st" -ne 0 ] || [ -s "$tmp/lint" ]; then
		fail "$base: mandoc -Tlint -Wwarning (status $st):"
		sed 's/^/    /' "$tmp/lint" >&2
	fi
done <"$tmp/real"

# Aliases are linted from a scratch manual tree where man<N>/ is MANDIR, so
# the .so line resolves the way man(1) resolves it once installed.
mkdir "$tmp/root"
for sec in 1 2 3 4 5 6 7 8 9; do
	ln -s "$mandir" "$tmp/root/man$sec"
done
while IFS='	' read -r base tfile; do
	sec=${base##*.}
	if (cd "$tmp/root" && mandoc -Tlint -Wwarning "man$sec/$base") \
	    >"$tmp/lint" 2>&1; then
		:
	fi
	if grep -v 'WARNING: \.so is fragile, better use ln(1)' "$tmp/lint" \
	    >"$tmp/lint2"; then
		fail "$base: mandoc -Tlint -Wwarning through its .so line:"
		sed 's/^/    /' "$tmp/lint2" >&2
	fi
done <"$tmp/alias"

# ---------------------------------------------------------------------------
# The header: one line per declaration, "F<TAB>name<TAB>prototype" for
# WSM_EXTERN functions and "T<TAB>name<TAB>typedef" for typedefs, with
# comments and preprocessor lines removed and whitespace collapsed.
awk '
{
	# Drop preprocessor lines, with their continuations.
	if (cont || $0 ~ /^[ \t]*#/) {
		cont = ($0 ~ /\\$/)
		next
	}
	text = text $0 "\n"
}
END {
	out = ""; st = 0
	n = length(text)
	for (i = 1; i <= n; i++) {
		c = substr(text, i, 1); d = substr(text, i, 2)
		if (st == 0) {
			if (d == "/*") { st = 1; i++; out = out " "; continue }
			if (d == "//") { st = 2; i++; continue }
			if (c == "\"") st = 3
			out = out c
		} else if (st == 1) {
			if (d == "*/") { st = 0; i++ }
		} else if (st == 2) {
			if (c == "\n") { st = 0; out = out c }
		} else {
			out = out c
			if (c == "\\") { i++; out = out substr(text, i, 1) }
			else if (c == "\"") st = 0
		}
	}
	gsub(/[{}]/, ";", out)
	ns = split(out, stmt, ";")
	for (k = 1; k <= ns; k++) {
		s = stmt[k]
		gsub(/[ \t\n]+/, " ", s); sub(/^ /, "", s); sub(/ $/, "", s)
		if (s ~ /^WSM_EXTERN /) {
			sub(/^WSM_EXTERN /, "", s)
			kind = "F"
		} else if (s ~ /^typedef .*\(/) {
			kind = "T"
		} else
			continue
		if (kind == "F") {
			pre = substr(s, 1, index(s, "(") - 1)
			sub(/ $/, "", pre)
			match(pre, /[A-Za-z_][A-Za-z0-9_]*$/)
			name = substr(pre, RSTART, RLENGTH)
		} else {
			match(s, /\([ ]*\*[ ]*[A-Za-z_][A-Za-z0-9_]*/)
			name = substr(s, RSTART, RLENGTH)
			gsub(/[( *]/, "", name)
		}
		printf "%s\t%s\t%s\n", kind, name, s
	}
}' "$header" >"$tmp/header"

if ! grep -q '^F' "$tmp/header"; then
	echo "$me: ERROR: no WSM_EXTERN declarations found in $header" >&2
	exit 99
fi

# ---------------------------------------------------------------------------
# The version script's global symbols, one per line.
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
	depth = 0; mode = ""
	for (k = 1; k <= nt; k++) {
		t = tok[k]
		if (t == "") continue
		if (t == "{") { depth++; if (depth == 1) mode = "global"; continue }
		if (t == "}") { depth--; continue }
		if (t == ";" || t == ":") continue
		if (depth != 1) continue
		if ((t == "global" || t == "local") && tok[k + 1] == ":") {
			mode = t; continue
		}
		if (mode == "global") print t
	}
}' "$map" | sort -u >"$tmp/symbols"

if [ ! -s "$tmp/symbols" ]; then
	echo "$me: ERROR: no global symbols found in $map" >&2
	exit 99
fi
if grep -n '[*?[]' "$tmp/symbols" >"$tmp/wild"; then
	fail "$map: wildcard in the global list, cannot map symbols to pages:"
	sed 's/^/    /' "$tmp/wild" >&2
fi

# ---------------------------------------------------------------------------
# The pages: "N<TAB>page<TAB>name" for NAME entries, "S<TAB>page<TAB>section"
# for .Sh lines, "D<TAB>page<TAB>title<TAB>sec" for .Dt, and for SYNOPSIS
# "F<TAB>page<TAB>name<TAB>prototype" and "T<TAB>page<TAB>name<TAB>typedef".
: >"$tmp/pages"
while read -r base; do
	awk -v page="$base" '
	# Split a macro line into arguments the way mdoc does: blanks separate,
	# double quotes group, "" inside quotes is a quote; \& and \e unescaped.
	function args(line, a,    n, i, c, cur, inq, have) {
		n = 0; cur = ""; inq = 0; have = 0
		for (i = 1; i <= length(line); i++) {
			c = substr(line, i, 1)
			if (c == "\\" && i < length(line)) {
				d = substr(line, i + 1, 1)
				if (d == "&") { i++; have = 1; continue }
				if (d == "e") { cur = cur "\\"; i++; have = 1; continue }
				cur = cur c d; i++; have = 1; continue
			}
			if (inq) {
				if (c == "\"") {
					if (substr(line, i + 1, 1) == "\"") { cur = cur c; i++ }
					else inq = 0
				} else cur = cur c
				continue
			}
			if (c == "\"") { inq = 1; have = 1; continue }
			if (c == " " || c == "\t") {
				if (have) { a[++n] = cur; cur = ""; have = 0 }
				continue
			}
			cur = cur c; have = 1
		}
		if (have) a[++n] = cur
		return n
	}
	function join(a, from, to, sep,    s, i) {
		s = ""
		for (i = from; i <= to; i++) s = s (i > from ? sep : "") a[i]
		return s
	}
	function emit(kind, name, proto) {
		printf "%s\t%s\t%s\t%s\n", kind, page, name, proto
	}
	/^\.Dt[ \t]/ {
		n = args(substr($0, 4), a)
		printf "D\t%s\t%s\t%s\n", page, a[1], a[2]
		next
	}
	/^\.Sh[ \t]/ {
		n = args(substr($0, 4), a)
		sec = join(a, 1, n, " ")
		printf "S\t%s\t%s\n", page, sec
		next
	}
	sec == "NAME" && /^\.Nm[ \t]/ {
		n = args(substr($0, 4), a)
		# C identifiers only: wsm.hpp(3) is named after its header.
		for (i = 1; i <= n; i++)
			if (a[i] ~ /^[A-Za-z_][A-Za-z0-9_]*$/)
				printf "N\t%s\t%s\n", page, a[i]
		next
	}
	sec != "SYNOPSIS" { next }
	/^\.Ft[ \t]/ {
		n = args(substr($0, 4), a); ft = join(a, 1, n, " "); next
	}
	/^\.Fn[ \t]/ {
		n = args(substr($0, 4), a)
		emit("F", a[1], ft " " a[1] "(" join(a, 2, n, ", ") ")")
		ft = ""; next
	}
	/^\.Fo[ \t]/ {
		n = args(substr($0, 4), a); fo = a[1]; fa = ""; nfa = 0; next
	}
	/^\.Fa[ \t]/ && fo != "" {
		n = args(substr($0, 4), a)
		for (i = 1; i <= n; i++) fa = fa (nfa++ ? ", " : "") a[i]
		next
	}
	/^\.Fc/ && fo != "" {
		emit("F", fo, ft " " fo "(" fa ")")
		fo = ""; ft = ""; next
	}
	/^\.Vt[ \t]+typedef[ \t]/ {
		n = args(substr($0, 4), a); s = join(a, 1, n, " ")
		sub(/[ \t]*;[ \t]*$/, "", s)
		if (match(s, /\([ ]*\*[ ]*[A-Za-z_][A-Za-z0-9_]*/)) {
			name = substr(s, RSTART, RLENGTH); gsub(/[( *]/, "", name)
			emit("T", name, s)
		}
		next
	}
	' "$mandir/$base" >>"$tmp/pages"
done <"$tmp/real"

# Normalized form for comparisons: single blanks, none around ( ) , *.
norm() {
	sed -e 's/[ 	][ 	]*/ /g' -e 's/^ //' -e 's/ $//' \
	    -e 's/ *\([(),*]\) */\1/g'
}

# ---------------------------------------------------------------------------
# 2. .Dt and sections of real pages.
while read -r base; do
	sec=${base##*.}
	title=$(echo "${base%.*}" | tr '[:lower:]' '[:upper:]')
	dt=$(awk -F '\t' -v p="$base" '$1 == "D" && $2 == p { print $3 " " $4 }' \
	    "$tmp/pages")
	if [ "$dt" != "$title $sec" ]; then
		fail "$base: .Dt is '$dt', expected '$title $sec'"
	fi
	if [ "$sec" = 3 ]; then
		for want in NAME LIBRARY SYNOPSIS DESCRIPTION "RETURN VALUE" \
		    EXAMPLES ATTRIBUTES "SEE ALSO" HISTORY; do
			if ! awk -F '\t' -v p="$base" -v w="$want" '
			    $1 == "S" && $2 == p && $3 == w { f = 1 }
			    END { exit !f }' "$tmp/pages"; then
				fail "$base: no '$want' section"
			fi
		done
	fi
done <"$tmp/real"

# ---------------------------------------------------------------------------
# 3. Every exported symbol has a page that documents it.
while read -r sym; do
	if [ -f "$mandir/$sym.3" ]; then
		if grep -q "^$sym.3	" "$tmp/alias"; then
			doc=$(awk -F '\t' -v s="$sym.3" '$1 == s { print $2 }' \
			    "$tmp/alias")
		elif grep -qx "$sym.3" "$tmp/real"; then
			doc=$sym.3
		else
			continue	# a broken alias, already reported
		fi
	else
		fail "$sym: exported, but there is no page $sym.3"
		continue
	fi
	for kind in N F; do
		if ! awk -F '\t' -v k="$kind" -v p="$doc" -v s="$sym" '
		    $1 == k && $2 == p && $3 == s { f = 1 } END { exit !f }' \
		    "$tmp/pages"; then
			case $kind in
			N) where=NAME ;;
			F) where=SYNOPSIS ;;
			esac
			fail "$sym: $doc does not list it in its $where"
		fi
	done
done <"$tmp/symbols"

# Names in NAME and functions in SYNOPSIS of a section 3 page must be the
# same set.
awk -F '\t' '($1 == "N" || $1 == "F") && $2 ~ /\.3$/ { print $1 "\t" $2 "\t" $3 }' \
    "$tmp/pages" | sort -u >"$tmp/nf"
awk -F '\t' '
	{ seen[$2 "\t" $3] = seen[$2 "\t" $3] $1 }
	END {
		for (k in seen) if (seen[k] != "NF" && seen[k] != "FN") {
			split(k, p, "\t")
			printf "%s: %s is in its %s only\n", p[1], p[2],
			    seen[k] == "N" ? "NAME" : "SYNOPSIS"
		}
	}' "$tmp/nf" | sort >"$tmp/nfdiff"
while read -r line; do
	fail "$line"
done <"$tmp/nfdiff"

# ---------------------------------------------------------------------------
# 4. SYNOPSIS prototypes and typedefs against the header.
awk -F '\t' '$1 == "F" || $1 == "T" { print $1 "\t" $2 "\t" $3 "\t" $4 }' \
    "$tmp/pages" >"$tmp/protos"
nchecked=0
while IFS='	' read -r kind base name proto; do
	nchecked=$((nchecked + 1))
	hdr=$(awk -F '\t' -v k="$kind" -v n="$name" '$1 == k && $2 == n { print $3 }' \
	    "$tmp/header")
	what=function
	[ "$kind" = T ] && what=typedef
	if [ -z "$hdr" ]; then
		fail "$base: SYNOPSIS shows $what $name, which $header does not declare"
		continue
	fi
	if [ "$(printf '%s\n' "$proto" | norm)" != "$(printf '%s\n' "$hdr" | norm)" ]
	then
		fail "$base: SYNOPSIS of $name differs from the header:
    page:   $proto
    header: $hdr"
	fi
done <"$tmp/protos"

awk -F '\t' '$1 == "F" { print $2 }' "$tmp/header" | sort -u >"$tmp/hfuncs"
awk -F '\t' '$1 == "F" { print $3 }' "$tmp/protos" | sort -u >"$tmp/pfuncs"
comm -23 "$tmp/hfuncs" "$tmp/pfuncs" >"$tmp/undoc"
while read -r fn; do
	fail "$fn: declared in $header but in no page's SYNOPSIS"
done <"$tmp/undoc"

# ---------------------------------------------------------------------------
nreal=$(wc -l <"$tmp/real")
nalias=$(wc -l <"$tmp/alias")
nsym=$(wc -l <"$tmp/symbols")
if [ "$failures" -ne 0 ]; then
	echo "$me: $failures problem(s) in $root" >&2
	exit 1
fi
echo "$me: ok: $((nreal + 0)) pages and $((nalias + 0)) aliases lint clean;" \
    "$((nsym + 0)) exported symbols documented; $nchecked SYNOPSIS" \
    "declarations match $header"
