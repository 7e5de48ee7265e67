#!/usr/bin/env bash
# Scenario 1 of the suite (docs/testing.md): in a dry run the decider sees the
# SYN flood and logs every decision, and nothing is enforced: no entry in
# the enforcer's maps, no packet dropped, the attacker still answered.
. "$(dirname "$0")/lab.sh"
command -v hping3 >/dev/null || skip "needs hping3 (scripts/deps.sh installs it)"
DEC_ARGS=("${LAB_DEC_ARGS[@]}" --dry-run=true)
start_suite
grep -q "decisions logged only" "$TMP/decider.log" || fail "the decider is not in a dry run"
syn_flood 40 2000
wait_level $A4 RATE_HARD 30
grep -q "ACTION ip=$A4 OBSERVE->RATE_SOFT dry_run=true" "$TMP/decider.log" ||
	fail "no ACTION ... dry_run=true line"
grep -q "ACTION ip=$A4 RATE_SOFT->RATE_HARD dry_run=true" "$TMP/decider.log" ||
	fail "no dry-run RATE_HARD line"
expect_eq "$(decider_entries rl $A4)$(decider_entries deny $A4)" 00 "no entry in the enforcer"
expect_eq "$(klctl --json stats | jq '.drop_rl + .drop_deny + .drop_edge + .drop_allow')" 0 \
	"no packet dropped at XDP"
expect_eq "$(pings_from_ns "$NS_A" $B4 3)" 3 "the attacker's pings pass"
grep -q "enforcer-decider" "$TMP/decider.log" && fail "the dry run talked to the enforcer"
grep -q "who=decider" "$TMP/enforcer.log" && fail "the enforcer got something from the decider"
log "all good"
