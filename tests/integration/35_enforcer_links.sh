#!/usr/bin/env bash
# The decider's and graphd's links to kl-enforcer, with real packets:
# levels, origins (an operator's entry is never theirs to remove), the
# protected list, TTLs, reconciliation state, release, edge rules under
# tuple enforcement, and the role each socket admits.
. "$(dirname "$0")/lib.sh"
setup_pair
# `nobody` stands in for kernloom-decider: the user the decider runs as.
start_enforcer --protect 198.18.0.200/32 --features graph-enforce --decider-user nobody

[ -S "$RUN/enforcer/enforcer-decider.sock" ] || fail "no enforcer-decider.sock"
[ -S "$RUN/enforcer/enforcer-graphd.sock" ] || fail "no enforcer-graphd.sock"
[ "$(command stat -c %a "$RUN/enforcer/enforcer-decider.sock")" = 660 ] || fail "enforcer-decider.sock is not 0660"

enfc() { "$TOOLS/kl-enfclient" --run-dir "$RUN" "$@"; }
# expect_out DESC RC-WANTED PATTERN CMD...: exit status and output
expect_out() {
	local desc=$1 want=$2 pat=$3 out rc
	shift 3
	out=$("$@" 2>&1)
	rc=$?
	[ $rc -eq "$want" ] || fail "$desc: expected exit $want, got $rc: $out"
	echo "$out" | grep -qE -- "$pat" || fail "$desc: output lacks /$pat/: $out"
	log "ok: $desc ($(echo "$out" | tail -n 1 | cut -c1-120))"
	LAST_OUT=$out
}
# measure SRC DST PORT: kl-pktgen sends 200 pps for 2 s; sets PASSED, DROPPED
# (rate limit + edge) and EDGE_DROPPED to what the shield counted for SRC
measure() {
	local src=$1 dst=$2 port=$3 p0 p1 r0 r1 e0 e1
	p0=$(src_field "$src" pass); r0=$(src_field "$src" drop_rl); e0=$(src_field "$src" drop_edge)
	in_a "$TOOLS/kl-pktgen" --src "$src" --dst "$dst" --udp --port "$port" --rate 200 \
		--duration 2s >/dev/null || fail "pktgen"
	wait_for 5 "the packets of $src settling" src_settled "$src"
	p1=$(src_field "$src" pass); r1=$(src_field "$src" drop_rl); e1=$(src_field "$src" drop_edge)
	DROPPED=$(( (${r1:-0} - ${r0:-0}) + (${e1:-0} - ${e0:-0}) ))
	EDGE_DROPPED=$(( ${e1:-0} - ${e0:-0} ))
	PASSED=$(( ${p1:-0} - ${p0:-0} ))
}

log "== levels from the decider"
expect_eq "$(pings "$NS_A" $B4 3)" 3 "pings pass before any decision"
expect_out "RATE_HARD 5/5 applied" 0 "198.18.0.1 RATE_HARD: OK" \
	enfc decide $A4 RATE_HARD --rate 5 --burst 5 --ttl 60s
klctl --json rl list | jq -e --arg ip $A4 '.entries[] | select(.ip == $ip and .origin == "decider" and .rate == 5)' \
	>/dev/null || fail "rl list lacks the decider's override: $(klctl rl list)"
measure $A4 $B4 9
expect_le "$PASSED" 30 "RATE_HARD 5 pps: at most burst + 2 s of rate passed"
expect_ge "$DROPPED" 350 "RATE_HARD 5 pps: the rest was dropped"

expect_out "BLOCK applied" 0 "BLOCK: OK" enfc decide $A4 BLOCK --ttl 60s
expect_eq "$(pings "$NS_A" $B4 3)" 0 "BLOCK drops every ping"
klctl --json rl list | jq -e --arg ip $A4 '[.entries[] | select(.ip == $ip)] | length == 0' >/dev/null ||
	fail "the decider's rate limit should have given way to the block"
klctl --json deny list | jq -e --arg ip $A4 '.entries[] | select(.ip == $ip and .origin == "decider" and .expires_in_ms > 50000)' \
	>/dev/null || fail "deny list lacks the decider's block with its expiry: $(klctl deny list)"

expect_out "OBSERVE applied" 0 "OBSERVE: OK" enfc decide $A4 OBSERVE
expect_eq "$(pings "$NS_A" $B4 3)" 3 "OBSERVE lets pings through again"

expect_out "v6 BLOCK" 0 "BLOCK: OK" enfc decide $A6 BLOCK --ttl 60s
expect_eq "$(pings "$NS_A" $B6 3)" 0 "v6 BLOCK drops pings"
expect_out "v6 OBSERVE" 0 "OBSERVE: OK" enfc decide $A6 OBSERVE
expect_eq "$(pings "$NS_A" $B6 3)" 3 "v6 passes after OBSERVE"

log "== an operator's entry is not the decider's"
klctl deny add $A4 || fail "deny add"
expect_out "OBSERVE does not lift the operator's deny" 1 "OBSERVE: REFUSED \(operator-entry\)" \
	enfc decide $A4 OBSERVE
expect_out "BLOCK does not overwrite it either" 1 "REFUSED \(operator-entry\)" \
	enfc decide $A4 BLOCK --ttl 5s
expect_out "RELEASE leaves it alone" 0 "removed 0 more 0" enfc release 198.18.0.0/24 --budget 100
expect_eq "$(pings "$NS_A" $B4 3)" 0 "the operator's deny still drops"
klctl --json deny list | jq -e --arg ip $A4 '.entries[] | select(.ip == $ip and .origin == "operator" and .expires_in_ms == null)' \
	>/dev/null || fail "the operator's permanent deny changed: $(klctl deny list)"
klctl deny del $A4 || fail "deny del"
expect_eq "$(pings "$NS_A" $B4 3)" 3 "passes after the operator's deny del"

log "== protected and invalid targets"
expect_out "a protected address is refused" 1 "198.18.0.200 BLOCK: REFUSED \(protected\)" \
	enfc decide 198.18.0.200 BLOCK --ttl 60s
expect_out "the unspecified address is refused" 1 "INVALID \(invalid\)" enfc decide 0.0.0.0 BLOCK
klctl deny list | grep -q 198.18.0.200 && fail "protected address ended up in the deny list"
expect_out "a TTL below 1 s refuses the whole message" 1 "field 'ttl_ms' is 500" \
	enfc decide $A4 BLOCK --ttl 500ms
expect_out "a decider may not make a permanent entry" 1 "field 'ttl_ms' is 0" \
	enfc decide $A4 RATE_SOFT --rate 1 --burst 1 --ttl 0

log "== TTL"
expect_out "BLOCK for 2 s" 0 "BLOCK: OK" enfc decide $A4 BLOCK --ttl 2s
expect_eq "$(pings "$NS_A" $B4 3)" 0 "dropped while the 2 s block lives"
wait_for 5 "the 2 s block of $A4 lapsing" pings_pass "$NS_A" $B4
expect_eq "$(pings "$NS_A" $B4 3)" 3 "the 2 s block lapsed by itself"

log "== reconciliation state"
enfc decide $A4 RATE_SOFT --rate 50 --burst 100 --ttl 10m >/dev/null || fail "RATE_SOFT"
enfc decide 198.18.0.50 BLOCK --ttl 10m >/dev/null || fail "BLOCK .50"
enfc decide fd00:6b6c::50 BLOCK --ttl 10m >/dev/null || fail "BLOCK v6 .50"
klctl deny add 198.18.0.77 || fail "operator deny .77"
enfc --role graphd edge allow 198.18.0.60 443 tcp --ttl 10m >/dev/null || fail "graphd edge"
expect_out "STATE lists the decider's entries" 0 "^3 entries$" enfc state
echo "$LAST_OUT" | grep -qE "^rl $A4 rate=50 burst=100 expires_in_ms=[0-9]+" || fail "state lacks the rl: $LAST_OUT"
echo "$LAST_OUT" | grep -q "^deny 198.18.0.50 " || fail "state lacks deny .50: $LAST_OUT"
echo "$LAST_OUT" | grep -q "^deny fd00:6b6c::50 " || fail "state lacks the v6 deny: $LAST_OUT"
echo "$LAST_OUT" | grep -q "198.18.0.77\|198.18.0.60" && fail "state shows entries of other origins: $LAST_OUT"
expect_out "STATE truncates at --max" 0 "^1 entries \(truncated\)$" enfc state --max 1
expect_out "graphd's STATE holds only its edge" 0 "^1 entries$" enfc --role graphd state
echo "$LAST_OUT" | grep -q "^edge-allow 198.18.0.60 443/6 " || fail "graphd state: $LAST_OUT"
expect_eq "$(klctl --json status enforcer | jq .links.decider.entries)" 3 "status counts the decider's entries"
expect_eq "$(klctl --json status enforcer | jq .links.graphd.entries)" 1 "status counts graphd's entries"
klctl status enforcer | grep -q "entries 3 of max 200000, quota 10000/s" || fail "status text: $(klctl status enforcer)"

log "== release"
expect_out "RELEASE with budget 1 stops early" 0 "removed 1 more 1" enfc release 198.18.0.0/24 --budget 1
expect_out "the next RELEASE finishes" 0 "removed 1 more 0" enfc release 198.18.0.0/24 --budget 1
expect_out "RELEASE of the v6 prefix" 0 "removed 1 more 0" enfc release fd00:6b6c::/48 --budget 10
expect_out "STATE is empty after the releases" 0 "^0 entries$" enfc state
klctl deny list | grep -q 198.18.0.77 || fail "RELEASE removed the operator's deny .77"
klctl deny del 198.18.0.77 || fail "deny del .77"

log "== the decider's quota"
sleep 1 # a full bucket: 10000 tokens
expect_out "12000 new blocks at once: the per-second quota stops at 10000" 1 "^applied 10000 of 12000$" \
	enfc decide 198.18.1.0 BLOCK --count 12000 --ttl 1m
echo "$LAST_OUT" | grep -q "REFUSED (rate-cap)" || fail "no rate-cap refusals listed"
expect_eq "$(klctl --json status enforcer | jq .links.decider.entries)" 10000 "10000 decider entries counted"
expect_ge "$(klctl --json status enforcer | jq '.links.decider.refused_by["rate-cap"]')" 2000 "rate-cap refusals counted"
expect_out "one RELEASE takes them all back" 0 "removed 10000 more 0" \
	enfc release 198.18.0.0/15 --budget 100000
expect_eq "$(klctl --json status enforcer | jq .links.decider.entries)" 0 "no decider entries left"

log "== edge rules from graphd under tuple enforcement"
klctl tuple-enforce allow || fail "tuple-enforce allow"
expect_out "graphd edge allow udp 5001" 0 "edge add-allow $A4 5001/udp: OK" \
	enfc --role graphd edge allow $A4 5001 udp --ttl 10m
klctl edge list | grep -q "$A4" || fail "edge list lacks the rule"
measure $A4 $B4 5001
expect_ge "$PASSED" 360 "allowed tuple (port 5001) passes"
expect_le "$EDGE_DROPPED" 5 "allowed tuple is not edge-dropped"
measure $A4 $B4 5002
expect_le "$PASSED" 5 "any other port is dropped"
expect_ge "$EDGE_DROPPED" 360 "drop_edge counts the other port"
klctl edge add-allow $A4 5003 udp || fail "operator edge add-allow"
expect_out "graphd may not delete the operator's edge" 1 "REFUSED \(operator-entry\)" \
	enfc --role graphd edge del-allow $A4 5003 udp
klctl edge list | grep -q 5003 || fail "the operator's edge rule was removed"
expect_out "graphd may not deny a protected source" 1 "REFUSED \(protected\)" \
	enfc --role graphd edge deny 198.18.0.200 22 tcp --ttl 1m
expect_out "graphd deletes its own edge" 0 "del-allow $A4 5001/udp: OK" \
	enfc --role graphd edge del-allow $A4 5001 udp
measure $A4 $B4 5001
expect_le "$PASSED" 5 "port 5001 is dropped once graphd withdrew its rule"
klctl tuple-enforce off || fail "tuple-enforce off"
expect_eq "$(pings "$NS_A" $B4 3)" 3 "pings pass with tuple enforcement off"

log "== each socket admits its role only"
expect_out "graphd HELLO on the decider's socket is refused" 1 "role graphd may not connect to this socket" \
	enfc --role graphd --socket "$RUN/enforcer/enforcer-decider.sock" state
expect_out "decider HELLO on graphd's socket is refused" 1 "role decider may not connect" \
	enfc --role decider --socket "$RUN/enforcer/enforcer-graphd.sock" state
expect_out "the decider may not send EDGE_RULES" 1 "decider may not send EDGE_RULES" \
	enfc --role decider edge allow $A4 80 tcp --ttl 1m
expect_out "graphd may not send DECISIONS" 1 "graphd may not send DECISIONS" \
	enfc --role graphd --socket "$RUN/enforcer/enforcer-graphd.sock" decide $A4 BLOCK
expect_out "ctl HELLO on the decider's socket is refused" 1 "role ctl may not connect" \
	enfc --role ctl --socket "$RUN/enforcer/enforcer-decider.sock" state
klctl status enforcer >/dev/null || fail "the control socket still serves klctl"

log "== peer uids"
chmod 711 "$TMP" # the run dir inside must be reachable for the peers below
expect_eq "$(command stat -c %G "$RUN/enforcer/enforcer-decider.sock")" nogroup \
	"the decider's socket belongs to the decider user's group"
expect_out "the configured decider user is admitted" 0 "^[0-9]+ entries" \
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$TOOLS/kl-enfclient" --run-dir "$RUN" state
# daemon in group nogroup passes the file mode but not the uid check.
expect_out "any other uid is turned away" 1 "." \
	setpriv --reuid=daemon --regid=daemon --groups=65534 "$TOOLS/kl-enfclient" --run-dir "$RUN" \
	--timeout 2s state
grep -q "enforcer-decider.sock: refused connection from uid 1 " "$TMP/enforcer.log" ||
	fail "no log line for the refused uid"
# (the enforcer itself runs as nobody here, so another uid asks)
expect_out "graphd's socket is for root and the enforcer only without its user" 1 "." \
	setpriv --reuid=daemon --regid=daemon --groups=65534 "$TOOLS/kl-enfclient" --run-dir "$RUN" \
	--timeout 2s --role graphd state
klctl --json status enforcer | jq -e '.links.decider.uid == 65534 and .links.graphd.uid == null' >/dev/null ||
	fail "status does not show the link users: $(klctl --json status enforcer | jq -c .links)"
grep -q "CHANGE who=decider(uid=0,pid=[0-9]*) action=decisions n=1 applied=1 refused=0" "$TMP/enforcer.log" ||
	fail "no CHANGE line per batch in the log"
log "all good"
