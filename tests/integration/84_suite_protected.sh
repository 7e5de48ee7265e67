#!/usr/bin/env bash
# Scenario 8 of the suite (docs/testing.md): a flood from an address in the
# enforcer's protect list (the operator's own, anti-lockout) is seen and
# decided on, but never denied or rate-limited: the enforcer refuses, the
# decider logs the refusal, and both keep running.
. "$(dirname "$0")/lab.sh"
command -v hping3 >/dev/null || skip "needs hping3 (scripts/deps.sh installs it)"
ENF_ARGS=(--protect $A4/32)
start_suite
syn_flood 40 2000
wait_for 30 "the decider's decision on $A4 refused" \
	grep -qE "ACTION ip=$A4 [A-Z_]+->[A-Z_]+ refused" "$TMP/decider.log"
log "ok: $(grep -m1 -E "ACTION ip=$A4 .*refused" "$TMP/decider.log" | cut -d' ' -f4-)"
wait_for 20 "the flood reaches RATE_HARD in the decider's view" \
	grep -q "STATE $A4 RATE_SOFT->RATE_HARD" "$TMP/decider.log"
expect_eq "$(src_field $A4 drop_rl)$(src_field $A4 drop_deny)" 00 "no packet of $A4 dropped"
expect_eq "$(klctl --json rl list | jq --arg ip $A4 '[(.entries // [])[] | select(.ip == $ip)] | length')" 0 \
	"no rate limit for $A4"
expect_eq "$(klctl --json deny list | jq --arg ip $A4 '[(.entries // [])[] | select(.ip == $ip)] | length')" 0 \
	"no deny for $A4"
expect_eq "$(pings_from_ns "$NS_A" $B4 3)" 3 "the protected address's pings pass"
for r in enforcer decider sensor graphd; do
	kill -0 "${DPID[$r]}" 2>/dev/null || fail "kl-$r died"
done
log "ok: every daemon still runs"
log "all good"
