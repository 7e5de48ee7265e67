#!/usr/bin/env bash
# kl-sensor against a live shield: known traffic from namespace A, recorded
# trace, rates within 10 %, the scan signal for a scanner, an unprivileged
# sensor (uid != 0, CapEff 0) that needs no receiver, and re-acquiring the
# maps after the enforcer comes back with new ones.
. "$(dirname "$0")/lib.sh"
[ -x "$BIN/kl-sensor" ] || fail "missing $BIN/kl-sensor (run make first)"
command -v jq >/dev/null || skip "needs jq"
setup_pair
start_enforcer --features graph-learning --sensor-user nobody

SENSOR_GROUP=$(id -gn nobody)
TELEMETRY_PINS="kernloom_src4_stats kernloom_src6_stats kernloom_flow4_stats kernloom_flow6_stats kernloom_totals"
# The enforcer opens exactly the telemetry pins to the sensor's group:
# pin dir 0750 and the totals 0640, the source and flow slot arrays 0660
# (mmap takes a read-write fd; they are frozen, so it writes nothing);
# every other pin stays 0600 root.
open_pins_to_sensor() {
	[ "$(command stat -c %a:%G "$PIN")" = "750:$SENSOR_GROUP" ] || fail "pin dir is $(command stat -c %a:%G "$PIN")"
	for p in $TELEMETRY_PINS; do
		want=640
		case $p in kernloom_src[46]_stats | kernloom_flow[46]_stats) want=660 ;; esac
		[ "$(command stat -c %a:%G "$PIN/$p")" = "$want:$SENSOR_GROUP" ] ||
			fail "$p is $(command stat -c %a:%G "$PIN/$p")"
	done
	[ "$(command stat -c %a "$PIN/kernloom_deny4_hash")" = 600 ] || fail "deny pin is not 0600"
	log "ok: telemetry pins readable by group $SENSOR_GROUP only"
}
open_pins_to_sensor

TRACE=$TMP/sensor.trace
"$BIN/kl-sensor" --pin-dir "$PIN" --run-dir "$RUN" --user nobody --interval 1s $(audit_args sensor) \
	--record "$TRACE" --reacquire-every 2 --summary-every 1 >>"$TMP/sensor.log" 2>&1 &
SENSOR_PID=$!
PIDS+=("$SENSOR_PID")
wait_for 10 "kl-sensor drops root" dropped_root "$SENSOR_PID"
trace_ticks() { "$BIN/klctl" trace dump "$TRACE" --json 2>/dev/null | wc -l; }
ticks_ge() { [ "$(trace_ticks)" -ge "$1" ]; }
# A first tick before any traffic: the scanner must be absent from it.
wait_for 10 "the sensor's first tick in the trace" ticks_ge 1
kill -0 "$SENSOR_PID" 2>/dev/null || fail "kl-sensor exited early"

log "== the sensor runs unprivileged"
uid=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' /proc/$SENSOR_PID/status)
capeff=$(awk '/^CapEff:/ { print $2 }' /proc/$SENSOR_PID/status)
capprm=$(awk '/^CapPrm:/ { print $2 }' /proc/$SENSOR_PID/status)
for u in $uid; do [ "$u" -ne 0 ] || fail "sensor has uid 0 in 'Uid: $uid'"; done
log "ok: Uid: $uid"
expect_eq "$capeff" 0000000000000000 "sensor CapEff"
expect_eq "$capprm" 0000000000000000 "sensor CapPrm"
# No receiver listens: that must not be an error.
[ -S "$RUN/decider/telemetry.sock" ] && fail "a telemetry receiver exists; this test wants none"

log "== known traffic: 200 pps UDP from .1, SYNs to 100 new ports/s from .3"
# 58 bytes of payload: 14 + 20 + 8 + 58 = 100-byte frames, so 20000 bytes/s.
in_a "$TOOLS/kl-pktgen" --src 198.18.0.1 --dst $B4 --udp --port 9 --payload 58 --rate 200 --duration 5.5s \
	>"$TMP/gen1.log" 2>&1 &
G1=$!
in_a "$TOOLS/kl-pktgen" --src 198.18.0.3 --dst $B4 --syn --port 1000 --port-step 1 \
	--port-span 20000 --rate 100 --duration 5.5s >"$TMP/gen3.log" 2>&1 &
G3=$!
wait $G1 || fail "pktgen .1 failed: $(cat "$TMP/gen1.log")"
wait $G3 || fail "pktgen .3 failed: $(cat "$TMP/gen3.log")"
# Two ticks after the traffic: the last one with it is complete.
wait_for 10 "two more ticks in the trace" ticks_ge $(($(trace_ticks) + 2))

DUMP=$TMP/dump1.jsonl
"$BIN/klctl" trace dump "$TRACE" --json >"$DUMP" 2>"$TMP/dump.err" || fail "trace dump: $(cat "$TMP/dump.err")"
lines=$(wc -l <"$DUMP")
expect_ge "$lines" 6 "ticks in the trace"
jq -e . "$DUMP" >/dev/null || fail "trace dump --json is not JSON lines"

# The per-tick values of one field of one source, in order; the first and
# the last tick it appears in are partial (traffic started/stopped inside).
series() { jq -r --arg ip "$1" --arg f "$2" '.sources[] | select(.ip == $ip) | .[$f]' "$DUMP"; }
full_ticks() { series "$1" "$2" | sed '1d;$d'; }
check_rate() { # IP FIELD WANT
	local ip=$1 f=$2 want=$3 n=0 v
	for v in $(full_ticks "$ip" "$f"); do
		n=$((n + 1))
		awk -v v="$v" -v w="$want" 'BEGIN { exit !(v >= 0.9 * w && v <= 1.1 * w) }' ||
			fail "$ip $f = $v in a full tick, want $want +-10% (series: $(series "$ip" "$f" | tr '\n' ' '))"
	done
	[ $n -ge 3 ] || fail "$ip: only $n full ticks (series: $(series "$ip" "$f" | tr '\n' ' '))"
	log "ok: $ip $f within 10% of $want in $n full ticks: $(full_ticks "$ip" "$f" | tr '\n' ' ')"
}
check_rate 198.18.0.1 pps 200
check_rate 198.18.0.3 pps 100
check_rate 198.18.0.3 syn 100
check_rate 198.18.0.1 bps 20000
# Every SYN goes to a new port: the scanner's distinct-port rate follows
# its packet rate, while the UDP sender (one port) stays near zero.
check_rate 198.18.0.3 scan 100
for v in $(full_ticks 198.18.0.1 scan); do
	awk -v v="$v" 'BEGIN { exit !(v <= 2) }' || fail "198.18.0.1 scan = $v, want <= 2 (one port)"
done
# Rising: absent (0) before the scan, ~100/s while it runs.
jq -e '.sources[] | select(.ip == "198.18.0.3")' <(head -1 "$DUMP") >/dev/null &&
	fail "the scanner shows up before it started"
peak_scan=$(series 198.18.0.3 scan | sort -g | tail -1)
awk -v b="$peak_scan" 'BEGIN { exit !(b >= 90) }' || fail "scanner's scan signal peaked at $peak_scan"
log "ok: scan signal rose from 0 to $peak_scan for the scanner"
# Flows: the UDP sender's (source, 9, udp) edge with its packets.
fl=$(jq -r '.flows[]? | select(.src == "198.18.0.1" and .port == 9 and .proto == "udp") | .pkts' "$DUMP" | sed '1d;$d' | head -1)
awk -v v="$fl" 'BEGIN { exit !(v >= 180 && v <= 220) }' || fail "flow 198.18.0.1:9/udp pkts per tick $fl, want ~200"
log "ok: flow 198.18.0.1 -> 9/udp with $fl pkts in a tick"
# t advances by the interval.
jq -r .t "$DUMP" | awk 'NR > 1 { d = $1 - p; if (d < 0.9 || d > 1.1) { print "step " d; exit 1 } } { p = $1 }' ||
	fail "t does not advance by ~1 s per tick: $(jq -r .t "$DUMP" | tr '\n' ' ')"

log "== the human table reads the same trace"
"$BIN/klctl" trace dump "$TRACE" >"$TMP/table.txt" || fail "trace dump (table)"
grep -q "^tick " "$TMP/table.txt" || fail "table has no tick lines"
grep -q "198.18.0.3" "$TMP/table.txt" || fail "table misses the scanner"

log "== frames are dropped and counted while no receiver listens"
grep -q "telemetry_dropped=[1-9]" "$TMP/sensor.log" || fail "no TICK line counts dropped frames"
grep -q "telemetry_sent=0 " "$TMP/sensor.log" || fail "TICK line claims frames were sent"

log "== enforcer restart with other telemetry map sizes: new maps, the sensor re-acquires them"
stop_enforcer
SIZES=(--map-size-src 4096 --map-size-flow 4096)
start_enforcer --features graph-learning --sensor-user nobody "${SIZES[@]}"
open_pins_to_sensor
for m in src4 flow6; do
	grep -q "pinned telemetry map $PIN/kernloom_${m}_stats does not fit this build or map_sizes" \
		"$TMP/enforcer.log" || fail "kernloom_${m}_stats was not replaced: $(grep -m1 "${m}_stats" "$TMP/enforcer.log")"
	expect_eq "$(bpftool -j map show pinned "$PIN/kernloom_${m}_stats" | jq .max_entries)" 8192 \
		"kernloom_${m}_stats slots for 4096 entries"
done
in_a "$TOOLS/kl-pktgen" --src 198.18.0.4 --dst $B4 --udp --port 53 --rate 100 --duration 5.5s \
	>"$TMP/gen4.log" 2>&1 || fail "pktgen .4"
wait_for 10 "two more ticks in the trace" ticks_ge $(($(trace_ticks) + 2))
kill -0 "$SENSOR_PID" 2>/dev/null || fail "kl-sensor died across the enforcer restart"
for m in src4 flow4; do
	grep -q "re-acquired kernloom_${m}_stats" "$TMP/sensor.log" || fail "sensor did not re-acquire kernloom_${m}_stats"
done
# Read through a read-only mapping, before and after the restart (not the
# batch-lookup fallback).
for m in src4 flow4; do
	expect_eq "$(grep -c "mapped kernloom_${m}_stats read-only" "$TMP/sensor.log")" 2 \
		"$m slots mapped read-only, again after the restart"
done
grep -q "cannot map it read-only" "$TMP/sensor.log" && fail "sensor fell back to batch lookups"
"$BIN/klctl" trace dump "$TRACE" --json >"$DUMP" || fail "trace dump"
check_rate 198.18.0.4 pps 100

log "== a policy map that does not fit is refused, never replaced"
stop_enforcer
allowid=$(bpftool -j map show pinned "$PIN/kernloom_allow4_lpm" | jq .id)
rc=0
timeout 30 nsenter --net=/run/netns/"$NS_B" "$BIN/kl-enforcer" --iface "$VB" --pin-dir "$PIN" \
	--run-dir "$RUN" --user "$KL_USER" --features graph-learning "${SIZES[@]}" --map-size-allow 1024 \
	>"$TMP/refused.log" 2>&1 || rc=$?
expect_eq "$rc" 1 "kl-enforcer exit status with a policy pin of another size"
grep -q "pinned map $PIN/kernloom_allow4_lpm cannot be reused" "$TMP/refused.log" ||
	fail "no refusal naming the allow pin: $(grep -m2 -i 'pin' "$TMP/refused.log")"
expect_eq "$(bpftool -j map show pinned "$PIN/kernloom_allow4_lpm" | jq .id)" "$allowid" \
	"the allow map's pin is kept"
start_enforcer --features graph-learning --sensor-user nobody "${SIZES[@]}"
open_pins_to_sensor

log "== started as the sensor user itself, it just runs"
mkdir -p "$TMP/nobody" && chown nobody "$TMP/nobody" && chmod 0755 "$TMP"
setpriv --reuid=nobody --regid="$SENSOR_GROUP" --clear-groups "$BIN/kl-sensor" --pin-dir "$PIN" \
	--run-dir "$TMP/nobody" --interval 200ms --ticks 3 --record "$TMP/nobody/t.trace" \
	--audit-dir "$TMP/nobody/audit" --audit-key "$TMP/nobody/audit.key" \
	>"$TMP/nobody.log" 2>&1 || fail "kl-sensor as nobody: $(cat "$TMP/nobody.log")"
expect_eq "$("$BIN/klctl" trace dump "$TMP/nobody/t.trace" --json | wc -l)" 3 "ticks recorded by a sensor started as nobody"

log "== SIGTERM: clean exit, and the trace stays readable"
kill -TERM "$SENSOR_PID"
wait "$SENSOR_PID"
rc=$?
expect_eq "$rc" 0 "sensor exit status"
"$BIN/klctl" trace dump "$TRACE" --json >/dev/null 2>"$TMP/dump.err" || fail "dump after exit"
[ -s "$TMP/dump.err" ] && fail "dump of a cleanly closed trace complains: $(cat "$TMP/dump.err")"
# A torn tail (a crash mid-write) is reported and ignored.
truncate -s -5 "$TRACE"
"$BIN/klctl" trace dump "$TRACE" --json >"$TMP/torn.jsonl" 2>"$TMP/dump.err" || fail "dump of a torn trace failed"
grep -q "torn last record" "$TMP/dump.err" || fail "torn tail not reported: $(cat "$TMP/dump.err")"
[ "$(wc -l <"$TMP/torn.jsonl")" -ge $((lines)) ] || fail "torn trace lost more than its tail"
log "all good"
