#!/usr/bin/env bash
# A spoofed SYN flood (hping3 --rand-source) next to a legitimate client.
# Every flood packet comes from a source the shield has not admitted: it is
# counted in new_sources, claims no slot, and passes while no limit is set.
# With the aggregate new-source limit (`klctl new-sources limit`) at least
# half of the flood is dropped at XDP while the client, a known source,
# keeps >= 95 % of its pings. Ns B has no default route: no reply to a
# random address ever leaves the lab.
. "$(dirname "$0")/lib.sh"
command -v hping3 >/dev/null || skip "needs hping3 (scripts/deps.sh)"
command -v jq >/dev/null || skip "needs jq"
setup_pair
[ -z "$(ip -n "$NS_B" route show default)" ] || fail "the victim namespace has a default route"
start_enforcer

jstat() { klctl --json stats | jq -r ".$1 // 0"; }
# wait_new N: polls until new_sources grew by N since $N0 (deadline 30 s).
wait_new() {
	for _ in $(seq 1 300); do
		[ $(($(jstat new_sources) - N0)) -ge "$1" ] && return 0
		sleep 0.1
	done
	fail "new_sources grew by $(($(jstat new_sources) - N0)), want >= $1 (is hping3 sending?)"
}

expect_eq "$(pings "$NS_A" $B4 5)" 5 "the client is known before the flood"
C0=$(jstat src_new)
N0=$(jstat new_sources)
# Not through in_a: a function would run in a subshell, and $! would be that
# subshell, not hping3 (which the cleanup must kill). ip netns exec execs.
ip netns exec "$NS_A" hping3 -S -p 80 -i u200 --rand-source -q $B4 >"$TMP/hping3.log" 2>&1 &
FLOOD=$!
PIDS+=("$FLOOD")

log "== no limit: the flood is seen as new sources, passes, and claims no slot"
wait_new 3000
claims=$(($(jstat src_new) - C0))
expect_le "$claims" 30 "slots claimed during 3000 spoofed packets"
expect_eq "$(jstat drop_new_sources)" 0 "nothing dropped without a limit"

log "== the limit: 100 pps for every source not yet admitted"
klctl new-sources limit --rate 100 --burst 100 --ttl 5m || fail "new-sources limit"
klctl status | grep -q 'new sources:.*limit 100 pps, burst 100' || fail "status: $(klctl status)"
N0=$(jstat new_sources)
D0=$(jstat drop_new_sources)
ok=$(pings "$NS_A" $B4 100)
wait_new 3000
N1=$(jstat new_sources)
D1=$(jstat drop_new_sources)
seen=$((N1 - N0)) dropped=$((D1 - D0))
log "window: $seen spoofed packets, $dropped dropped at XDP, client pings $ok/100"
expect_ge "$((dropped * 2))" "$seen" "at least half of the spoofed flood dropped at XDP"
expect_ge "$ok" 95 "the known client keeps >= 95 % of its pings"
expect_eq "$(src_field $A4 drop_rl)" 0 "the client is never limited"

log "== off: the flood passes again"
klctl new-sources off || fail "new-sources off"
D0=$(jstat drop_new_sources)
N0=$(jstat new_sources)
wait_new 1000
expect_eq "$(($(jstat drop_new_sources) - D0))" 0 "no drops once the limit is off"
kill "$FLOOD" 2>/dev/null
log "all good"
