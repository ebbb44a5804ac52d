#!/bin/sh
# The Prometheus text of a real server, checked by Prometheus's own parser:
# `promtool check metrics` (Debian package prometheus). Skips (77) without it.
set -eu
dump=$1
if ! command -v promtool >/dev/null 2>&1; then
	echo "check-prometheus: no promtool (apt-get install prometheus)" >&2
	exit 77
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$dump" >"$out"
grep -q '^wsm_connections_refused_total{reason="bad_id"} 1$' "$out" || {
	echo "check-prometheus: the refusal is not counted:" >&2
	cat "$out" >&2
	exit 1
}
grep -q '^wsm_broadcasts_total 1$' "$out"
# promtool prints its findings and exits nonzero on any problem.
promtool check metrics <"$out"
