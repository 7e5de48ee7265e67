#!/usr/bin/env bash
# Scenarios 2, 3 and 4 of the suite (docs/testing.md): a real SYN flood
# (hping3) against nginx climbs RATE_SOFT -> RATE_HARD -> BLOCK and is
# dropped at XDP; meanwhile the legitimate client's requests all succeed;
# once the flood stops the attacker steps back down to OBSERVE and its
# entries are gone from the enforcer's maps (no reset, nothing by hand).
. "$(dirname "$0")/lab.sh"
command -v hping3 >/dev/null || skip "needs hping3 (scripts/deps.sh installs it)"
# Short TTLs and holds so that the way down fits in the test.
DEC_ARGS=("${LAB_DEC_ARGS[@]}" --block-ttl 6s --hard-ttl 30s --soft-ttl 30s --down-need 2
	--min-hold-soft 2s --min-hold-hard 2s)
start_suite
lab_client
wait_for 10 "the client gets answers" client_all_ok 0

log "== scenario 2: the flood climbs every level and is dropped at XDP"
T0=$(date +%s)
syn_flood 60 2000
wait_level $A4 BLOCK 40
expect_eq "$(moves_of $A4)" "OBSERVE->RATE_SOFT RATE_SOFT->RATE_HARD RATE_HARD->BLOCK" \
	"the attacker's level changes, in order"
expect_ge "$(src_field $A4 drop_rl)" 100 "attack packets dropped by the rate limit (RATE_*)"
wait_for 5 "deny drops" src_ge $A4 drop_deny 100
expect_eq "$(decider_entries deny $A4)" 1 "BLOCK is a decider-origin deny entry"
p1=$(src_field $A4 pass)
d1=$(src_field $A4 drop_deny)
wait_for 10 "more deny drops" src_ge $A4 drop_deny $((d1 + 1000))
expect_le "$(($(src_field $A4 pass) - p1))" 5 "nothing of the attacker passes once blocked"

log "== operations: klctl top and --json after the command"
out=$(klctl top --count 2 --interval 200ms) || fail "klctl top: $out"
expect_eq "$(echo "$out" | grep -c '^klctl top')" 2 "klctl top drew two frames"
echo "$out" | grep -qE "^$A4 +BLOCK" || fail "klctl top lacks the attacker at BLOCK: $out"
echo "$out" | grep -q "drop_deny=" || fail "klctl top lacks the shield's counters: $out"
klctl top --json --count 2 --interval 200ms | jq -se --arg ip $A4 'length == 2 and
	(.[1].sources[] | select(.ip == $ip) | .level == "BLOCK") and .[1].stats.drop_deny > 0' \
	>/dev/null || fail "klctl top --json: $(klctl top --json --count 1)"
log "ok: klctl top, also with --json"
klctl sources --json | jq -e --arg ip $A4 '.[] | select(.ip == $ip) | .level == "BLOCK"' >/dev/null ||
	fail "klctl sources --json"
klctl deny list --format json | jq -e '.entries | length >= 1' >/dev/null || fail "deny list --format json"
log "ok: --json and --format json after the command name"

# events --follow streams what arrives after it started: sampling is off
# until then, so whatever it prints it got while following.
klctl sampling 0 >/dev/null
# Not through the klctl function: $! must be klctl itself to get the SIGINT.
"$BIN/klctl" --run-dir "$RUN" events --follow --json >"$TMP/follow.jsonl" 2>"$TMP/follow.err" &
FOLLOW_PID=$!
PIDS+=("$FOLLOW_PID")
klctl sampling 63 >/dev/null || fail "klctl sampling 63"
followed() { jq -se --arg ip $A4 '[.[] | select(.ip == $ip and .kind == "drop_deny")] | length >= 2' \
	"$TMP/follow.jsonl" >/dev/null 2>&1; }
wait_for 10 "klctl events --follow streams the attacker's drops" followed
kill -0 $FOLLOW_PID 2>/dev/null || fail "klctl events --follow ended by itself"
kill -INT $FOLLOW_PID
wait $FOLLOW_PID
rc=$?
expect_eq "$rc" 0 "klctl events --follow ends cleanly on Ctrl+C"
klctl sampling 0 >/dev/null
log "ok: klctl events --follow streamed $(wc -l <"$TMP/follow.jsonl") events"

# The decider's Prometheus textfile, rewritten every tick.
prom_block() { grep -qx 'kernloom_decider_sources{level="block"} 1' "$(metrics_file decider)"; }
wait_for 5 "decider.prom shows the BLOCK" prom_block
grep -q '^# TYPE kernloom_decider_ticks_total counter$' "$(metrics_file decider)" || fail "no TYPE line"
f1=$(awk '$1 == "kernloom_decider_frames_total" { print $2 }' "$(metrics_file decider)")
frames_grew() { [ "$(awk '$1 == "kernloom_decider_frames_total" { print $2 }' "$(metrics_file decider)")" -gt "$f1" ]; }
wait_for 5 "decider.prom is rewritten every tick" frames_grew
log "ok: --metrics-file: $(grep -c '^kernloom_' "$(metrics_file decider)") samples, frames_total past $f1"
prom_val() { awk -v k="$2" '$1 == k { print $2 }' "$(metrics_file "${1%.prom}")"; }
t1=$(prom_val sensor.prom kernloom_sensor_ticks_total)
sensor_ticked() { [ "$(prom_val sensor.prom kernloom_sensor_ticks_total)" -gt "$t1" ]; }
wait_for 5 "sensor.prom is rewritten every tick" sensor_ticked
expect_ge "$(prom_val sensor.prom 'kernloom_sensor_frames_sent_total{stream="telemetry"}')" 10 \
	"the sensor's metrics count the telemetry frames"
awk '$1 == "kernloom_sensor_packets_total" { exit !($2 > 10000) }' "$(metrics_file sensor)" ||
	fail "sensor.prom: packets_total: $(grep packets_total "$(metrics_file sensor)")"
g1=$(prom_val graphd.prom kernloom_graphd_ticks_total)
graphd_ticked() { [ "$(prom_val graphd.prom kernloom_graphd_ticks_total)" -gt "$g1" ]; }
wait_for 5 "graphd.prom is rewritten every tick" graphd_ticked
grep -q '^kernloom_graphd_edges{state="frozen"} 0$' "$(metrics_file graphd)" ||
	fail "graphd.prom: $(grep edges "$(metrics_file graphd)")"
log "ok: sensor.prom and graphd.prom are rewritten every tick"

log "== scenario 3: the client is never touched"
client_all_ok "$T0" || fail "client requests failed during the flood: $(client_stats "$T0" 99999999999)"
log "ok: every client request during the flood succeeded ($(client_stats "$T0" 99999999999 | cut -d' ' -f1) requests)"
expect_eq "$(moves_of $C4)" "" "the client never changed level"
expect_eq "$(decider_entries rl $C4)$(decider_entries deny $C4)" 00 "no entry for the client"

log "== scenario 4: after the attack the attacker steps down and its entries go"
kill "$FLOOD_PID" 2>/dev/null
wait_level $A4 OBSERVE 60
expect_eq "$(decider_entries deny $A4)" 0 "no deny entry left"
expect_eq "$(decider_entries rl $A4)" 0 "no rate-limit entry left"
klctl --json deny list | jq -e --arg ip $A4 '[(.entries // [])[] | select(.ip == $ip)] | length == 0' \
	>/dev/null || fail "deny list still has $A4"
expect_eq "$(pings_from_ns "$NS_A" $B4 3)" 3 "the attacker's pings pass again"
client_all_ok "$T0" || fail "client requests failed: $(client_stats "$T0" 99999999999)"
log "all good"
