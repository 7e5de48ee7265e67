#!/usr/bin/env bash
# Scenario 6 of the suite (docs/testing.md): an IPv6 attacker is handled like
# an IPv4 one: its SYN flood climbs RATE_SOFT -> RATE_HARD -> BLOCK, is
# dropped at XDP, and the client (over IPv6 too) keeps working.
. "$(dirname "$0")/lab.sh"
[ -x "$TOOLS/kl-pktgen" ] || fail "missing $TOOLS/kl-pktgen (make build/tools/kl-pktgen)"
start_suite
lab_client "http://[$B6]/"
wait_for 10 "the client gets answers over IPv6" client_all_ok 0
T0=$(date +%s)
# hping3 has no IPv6: the project's paced generator sends the SYNs.
ip netns exec "$NS_A" "$TOOLS/kl-pktgen" --src $A6 --dst $B6 --syn --port 80 --rate 2000 \
	--duration 60s >>"$TMP/pktgen.log" 2>&1 &
PIDS+=("$!")
wait_level $A6 BLOCK 40
expect_eq "$(moves_of $A6)" "OBSERVE->RATE_SOFT RATE_SOFT->RATE_HARD RATE_HARD->BLOCK" \
	"the IPv6 attacker's level changes, in order"
expect_ge "$(src_field $A6 drop_rl)" 100 "IPv6 attack packets dropped by the rate limit"
wait_for 5 "IPv6 deny drops" src_ge $A6 drop_deny 100
expect_eq "$(decider_entries deny $A6)" 1 "BLOCK is a decider-origin deny entry for $A6"
expect_eq "$(ip netns exec "$NS_A" ping -6 -c 2 -i 0.2 -W 1 -q $B6 >/dev/null 2>&1 && echo pass || echo dropped)" \
	dropped "the attacker's IPv6 pings are dropped"
client_all_ok "$T0" || fail "IPv6 client requests failed: $(client_stats "$T0" 99999999999)"
log "ok: every IPv6 client request succeeded"
expect_eq "$(moves_of $C6)" "" "the IPv6 client never changed level"
log "all good"
