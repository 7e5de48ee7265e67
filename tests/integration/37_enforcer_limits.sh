#!/usr/bin/env bash
# What a compromised decider or graphd cannot take from the operator
# (docs/security.md, "The operator keeps room in every map"):
#  - `kl-enforcer -n` refuses a graph_max that one edge map cannot hold
#    after the operator's reserve (the report: graph_max 100000, edge maps
#    smaller), naming both keys;
#  - graphd at its quota in an edge deny map: the operator's
#    `klctl edge add-deny` still succeeds;
#  - with no protect list, -n and the start-up log say what is protected,
#    and the decider's or graphd's requests against the enforcer's own
#    addresses (v4, v6, and one added while it runs) are refused as
#    `protected`, while a neighbour can still be blocked.
. "$(dirname "$0")/lib.sh"
[ -x "$TOOLS/kl-enfclient" ] || fail "missing $TOOLS/kl-enfclient"
id nobody >/dev/null 2>&1 || skip "no user nobody"
enfc() { "$TOOLS/kl-enfclient" --run-dir "$RUN" "$@"; }
# expect_out DESC RC-WANTED PATTERN CMD...: exit status and output
expect_out() {
	local desc=$1 want=$2 pat=$3 out rc
	shift 3
	out=$("$@" 2>&1)
	rc=$?
	[ $rc -eq "$want" ] || fail "$desc: expected exit $want, got $rc: $out"
	echo "$out" | grep -qE -- "$pat" || fail "$desc: output lacks /$pat/: $out"
	log "ok: $desc ($(echo "$out" | tail -n 1 | cut -c1-140))"
}

log "== -n: quotas against map capacities"
printf 'map_sizes:\n  edge: 256\n' >"$TMP/bad.yaml"
expect_out "-n refuses graph_max 60000 against edge maps of 256" 2 \
	"graph-max=60000 \(default\) does not fit in one map: map-size-edge=256 \(file $TMP/bad.yaml:2\) minus the operator's reserve 16 leaves 240" \
	"$BIN/kl-enforcer" --config "$TMP/bad.yaml" -n
printf 'graph_max: 100000\n' >"$TMP/report.yaml"
expect_out "-n refuses the report's graph_max 100000" 2 "graph-max=100000 \(file $TMP/report.yaml:1\) does not fit" \
	"$BIN/kl-enforcer" --config "$TMP/report.yaml" -n
printf 'map_sizes:\n  edge: 256\ngraph_max: 240\ngraph_rate: 100000\n' >"$TMP/enf.yaml"
expect_out "-n with no protect list says what is protected" 0 \
	"only this host's own addresses and loopback are protected" \
	"$BIN/kl-enforcer" --config "$TMP/enf.yaml" -n

setup_pair
start_enforcer --config "$TMP/enf.yaml" --features graph-enforce --decider-user nobody --graph-user nobody
grep -q "protect is empty: only this host's own addresses and loopback are protected" "$TMP/enforcer.log" ||
	fail "no start-up warning about the empty protect list"
grep -q "own addresses protected from the decider and graphd.*$B4" "$TMP/enforcer.log" ||
	fail "the start-up log does not list $B4 as protected"

log "== graphd at its quota; the operator keeps room"
expect_out "graphd fills its quota (240) in edge4_deny" 0 "applied 240 of 240" \
	enfc --role graphd edge deny 198.18.0.1 1 tcp --ttl 10m --count 240
expect_out "graphd's next rule is refused" 1 "refused|failed|REFUSED|FAILED" \
	enfc --role graphd edge deny 198.18.0.1 1000 tcp --ttl 10m
for p in $(seq 2000 2015); do
	klctl edge add-deny 198.18.0.1 $p tcp >"$TMP/op.txt" 2>&1 ||
		fail "the operator's edge add-deny $p failed: $(cat "$TMP/op.txt")"
done
log "ok: the operator added 16 edge denies next to graphd's 240 (map of 256)"
n=$(klctl --json edge list | jq '[.entries[] | select(.kind == "deny" and .ip == "198.18.0.1")] | length')
expect_eq "$n" 256 "edge deny entries for 198.18.0.1"

log "== no protect list: the enforcer's own addresses are no daemon's target"
expect_out "decider BLOCK of $B4 is refused" 1 "protected" enfc decide $B4 BLOCK --ttl 60s
expect_out "decider RATE_SOFT of $B6 is refused" 1 "protected" \
	enfc decide $B6 RATE_SOFT --rate 20 --burst 40 --ttl 60s
expect_out "graphd edge deny from $B4 is refused" 1 "protected" \
	enfc --role graphd edge deny $B4 22 tcp --ttl 10m
expect_out "decider BLOCK of loopback is refused" 1 "invalid" enfc decide 127.0.0.1 BLOCK --ttl 60s
expect_out "decider BLOCK of the neighbour $A4 is applied" 0 "applied 1 of 1" enfc decide $A4 BLOCK --ttl 60s
klctl --json deny list | jq -e --arg ip $B4 '[.entries[] | select(.ip == $ip)] | length == 0' >/dev/null ||
	fail "a deny entry for $B4: $(klctl deny list)"

NEW4=198.18.0.77
ip -n "$NS_B" addr add $NEW4/24 dev "$VB" || fail "addr add $NEW4"
# Re-read every second: within a few seconds the decider's BLOCK of it is
# refused (one that slipped in before the re-read is taken back).
out=
for _ in $(seq 1 50); do
	out=$(enfc decide $NEW4 BLOCK --ttl 60s 2>&1)
	echo "$out" | grep -q protected && break
	enfc decide $NEW4 OBSERVE >/dev/null 2>&1
	sleep 0.2
done
echo "$out" | grep -q protected || fail "BLOCK of the new own address $NEW4: $out"
log "ok: an address added while running is protected ($out)"
log "PASS"
