#!/usr/bin/env bash
# spec.graph of a PDPConfig changes what kl-graphd learns: the same trace
# (tests/replay/graph/traces/learn4.jsonl: 61 one-second ticks, 7 windows,
# four steady edges of 198.18.0.1 and 198.18.0.3) replayed on a fresh
# database under different PDPConfig files, with graphd.yaml and a flag on
# top to show the precedence flag > graphd.yaml > PDPConfig.
#   BUILD=build bash tests/golden/graph_pdp.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "${BUILD:-build}/bin" && pwd)/kl-graphd
trace=$here/../replay/graph/traces/learn4.jsonl
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

pdp() { # NAME PROMOTION EXCLUDE
	cat >"$tmp/$1.yaml" <<YAML
apiVersion: kernloom.io/v1alpha1
kind: PDPConfig
metadata: {name: $1}
spec:
  graph:
    enabled: true
    mode: learn
    promotion: $2
    exclude: $3
YAML
}
pdp base '{min_seen_count: 5, min_windows: 3, min_age: 30s}' '{source_cidrs: []}'
pdp seen '{min_seen_count: 100, min_windows: 3, min_age: 30s}' '{source_cidrs: []}'
pdp windows '{min_seen_count: 5, min_windows: 8, min_age: 30s}' '{source_cidrs: []}'
pdp exclude '{min_seen_count: 5, min_windows: 3, min_age: 30s}' '{source_cidrs: [198.18.0.1/32]}'
printf 'graph_min_seen: 5\n' >"$tmp/graphd.yaml"

# run NAME WANT_LEARNED WANT_EDGES ARGS...: replay, then count the edges
run() {
	local name=$1 want_learned=$2 want_edges=$3
	shift 3
	local db=$tmp/$name.db
	if ! "$bin" --graph-store "$db" --graph-promote-interval 10s --graph-window 10s --log-level warn \
		"$@" --replay "$trace" >"$tmp/$name.replay" 2>"$tmp/$name.err"; then
		echo "FAIL: $name: replay failed: $(cat "$tmp/$name.err")"
		fail=$((fail + 1))
		return
	fi
	local json learned edges
	json=$("$bin" --config= --pdp-config= --graph-store "$db" export --format json)
	learned=$(jq '[.edges[] | select(.state == "learned")] | length' <<<"$json")
	edges=$(jq '.edges | length' <<<"$json")
	if [ "$learned" = "$want_learned" ] && [ "$edges" = "$want_edges" ]; then
		echo "ok: $name: $learned learned of $edges edges"
	else
		echo "FAIL: $name: $learned learned of $edges edges, want $want_learned of $want_edges"
		fail=$((fail + 1))
	fi
}

run base 4 5 --config= --pdp-config "$tmp/base.yaml"
run min_seen_count 0 5 --config= --pdp-config "$tmp/seen.yaml"
run min_windows 0 5 --config= --pdp-config "$tmp/windows.yaml"
run source_cidrs 1 2 --config= --pdp-config "$tmp/exclude.yaml"
run flag-over-pdp 4 5 --config= --pdp-config "$tmp/seen.yaml" --graph-min-seen 5
run file-over-pdp 4 5 --config "$tmp/graphd.yaml" --pdp-config "$tmp/seen.yaml"
[ "$fail" -eq 0 ]
