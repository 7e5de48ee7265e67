#!/usr/bin/env bash
# Scenario 5 of the suite (docs/testing.md): a real port scan (nmap SYN scan)
# is seen by the shield's scan signal (distinct destination ports) and
# escalates on it alone: the pps and SYN triggers are out of reach here, the
# scan's weight is 1.
. "$(dirname "$0")/lab.sh"
command -v nmap >/dev/null || skip "needs nmap (scripts/deps.sh installs it)"
DEC_ARGS=("${LAB_DEC_ARGS[@]}" --trig-pps 100000 --trig-syn 100000 --w-pps 0.001 --w-syn 0.001 --w-scan 1)
start_suite
port_scan $B4
scan_ge() { klctl --json sources | jq -e --arg ip $A4 '.[] | select(.ip == $ip) | .scan >= 100' >/dev/null; }
wait_for 20 "the decider sees >= 100 distinct ports/s from $A4" scan_ge
log "ok: $(klctl sources | grep -E "^$A4 ")"
wait_for 20 "the scan escalates $A4" grep -q "STATE $A4 OBSERVE->RATE_SOFT" "$TMP/decider.log"
log "ok: $(grep -m1 "STATE $A4 OBSERVE->RATE_SOFT" "$TMP/decider.log" | cut -d' ' -f4-)"
expect_ge "$(src_field $A4 ports)" 100 "the shield counted the distinct ports"
wait_for 5 "a decider rate limit on the scanner" entries_eq rl $A4 1
log "ok: the scanner is rate-limited"
wait_for 10 "scan packets dropped" src_ge $A4 drop_rl 1
log "all good"
