#!/usr/bin/env bash
# Autotune end to end: live traffic through kl-sensor into
# kl-decider with a bootstrap squeezed into seconds. Ordinary traffic from
# three sources in ns A teaches the decider this host's normal: a trigger
# moves (AUTOTUNE applied in the log, klctl tune shows it), state.json is
# written with its integrity hash by the unprivileged decider, and a
# restarted decider resumes from it instead of starting over.
. "$(dirname "$0")/lib.sh"
[ -x "$BIN/kl-sensor" ] && [ -x "$BIN/kl-decider" ] || fail "missing kl-sensor / kl-decider (run make)"
[ -x "$TOOLS/kl-pktgen" ] || fail "missing $TOOLS/kl-pktgen"
id nobody >/dev/null 2>&1 || skip "no user nobody"
command -v jq >/dev/null || skip "no jq"

setup_pair
C4=198.18.0.3 D4=198.18.0.4
ip -n "$NS_A" addr add $C4/24 dev "$VA" || fail "addr add $C4"
ip -n "$NS_A" addr add $D4/24 dev "$VA" || fail "addr add $D4"
chmod 0755 "$TMP"
mkdir -p "$RUN" && chmod 0755 "$RUN"
DEC=$TMP/dec
mkdir -p "$DEC" && chown nobody "$DEC"
STATE=$DEC/state.json
start_enforcer --decider-user nobody

"$BIN/kl-sensor" --run-dir "$RUN" --pin-dir "$PIN" --interval 1s --user nobody $(audit_args sensor) \
	>>"$TMP/sensor.log" 2>&1 &
PIDS+=("$!")

# Phases end at 4 s / 8 s / 16 s of clean observed time, tunes every
# 2 s / 2 s / 4 s, then every 6 s; 5 samples are enough. Dry run: this is
# about learning, not enforcing.
DEC_FLAGS=(--run-dir "$RUN" --profile generic --whitelist= --feedback-file= --user nobody $(audit_args decider)
	--sensor-user nobody --dry-run=true --state-file "$STATE"
	--bootstrap-phase1-end 4s --bootstrap-phase2-end 8s --bootstrap-window 16s
	--bootstrap-every1 2s --bootstrap-every2 2s --bootstrap-every3 4s --steady-every 6s
	--autotune-min-samples 5)
start_decider() { # LOGNAME
	"$BIN/kl-decider" "${DEC_FLAGS[@]}" >>"$TMP/$1" 2>&1 &
	DEC_PID=$!
	PIDS+=("$DEC_PID")
	for _ in $(seq 1 100); do
		[ -S "$RUN/decider/decider.sock" ] && klctl tune >/dev/null 2>&1 && return 0
		kill -0 "$DEC_PID" 2>/dev/null || fail "kl-decider exited early"
		sleep 0.1
	done
	fail "kl-decider did not come up"
}
stop_decider() {
	kill "$DEC_PID" 2>/dev/null
	wait "$DEC_PID" 2>/dev/null
}
traffic() { # SECONDS: ~100-200 pps of UDP from three sources
	for s in "$A4:100" "$C4:150" "$D4:200"; do
		in_a "$TOOLS/kl-pktgen" --src "${s%%:*}" --dst $B4 --port 5000 --rate "${s##*:}" \
			--duration "$1"s >/dev/null 2>&1 &
		PIDS+=("$!")
	done
}

log "== learning"
start_decider decider.log
grep -q "autotune: fresh bootstrap phase=1" "$TMP/decider.log" ||
	fail "no fresh bootstrap line: $(grep autotune "$TMP/decider.log")"
traffic 40
# Wait for an applied tune (phase 1 tunes every 2 s of clean time).
for _ in $(seq 1 60); do
	grep -q "AUTOTUNE applied" "$TMP/decider.log" && break
	sleep 0.5
done
line=$(grep -m1 "AUTOTUNE applied" "$TMP/decider.log") || fail "no AUTOTUNE applied line"
log "first tune: ${line#*INFO }"
# generic starts at trig_pps 5000; ~150 pps of normal traffic pulls it down,
# by at most 2 % per phase-1 step.
echo "$line" | grep -qE "trig_pps 5000\.0->4900\.0 .*\(median\+MAD k=[0-9.]+\) samples=[0-9]+ phase=1" ||
	fail "unexpected first tune: $line"

j=$(klctl --json tune) || fail "klctl --json tune: $j"
echo "$j" | jq -e '.samples.n > 0 and .samples.seen > 0 and .ticks.clean > 0
	and .trig.pps < 5000 and .trig.pps >= 100 and .last.applied == true
	and (.last.pps.median | type) == "number"' >/dev/null || fail "klctl --json tune: $j"
log "ok: klctl --json tune: samples $(echo "$j" | jq .samples.n), trig_pps $(echo "$j" | jq .trig.pps)"
j2=$(klctl tune --json) || fail "klctl tune --json"
echo "$j2" | jq -e '.phase | type == "string"' >/dev/null || fail "klctl tune --json: $j2"
txt=$(klctl tune) || fail "klctl tune: $txt"
echo "$txt" | grep -qE "^samples +[1-9][0-9]* of " || fail "klctl tune text: $txt"
echo "$txt" | grep -qE "^last +applied" || fail "klctl tune text: $txt"

# state.json: written after the applied tune by the decider as nobody.
[ -f "$STATE" ] || fail "no $STATE after an applied tune"
expect_eq "$(command stat -c %U "$STATE")" nobody "state.json is written by the unprivileged decider"
jq -e '(.integrity.sha256 | test("^[0-9a-f]{64}$")) and .profile == "generic"
	and .active.trig.pps < 5000 and (.history | length) >= 1' "$STATE" >/dev/null ||
	fail "state.json: $(jq -c 'del(.reservoir)' "$STATE")"
log "ok: state.json has integrity.sha256 and the tuned trig_pps $(jq .active.trig.pps "$STATE")"

# Let the bootstrap go on into phase 2 before the restart.
for _ in $(seq 1 40); do
	grep -q "AUTOTUNE applied.*phase=2" "$TMP/decider.log" && break
	sleep 0.5
done
grep -q "AUTOTUNE applied.*phase=2" "$TMP/decider.log" || fail "no tune in phase 2"
log "ok: phase 2 reached: $(grep -c 'AUTOTUNE applied' "$TMP/decider.log") tunes applied"

log "== restart resumes"
stop_decider
grep -q "stopping:" "$TMP/decider.log" || fail "no clean stop"
saved=$(jq .active.trig.pps "$STATE")
obs=$(jq .bootstrap.observed_s "$STATE")
[ -f "$STATE.bak" ] || fail "no state.json.bak after several checkpoints"
start_decider decider2.log
grep -q "autotune: resumed phase=" "$TMP/decider2.log" ||
	fail "the restarted decider did not resume: $(grep autotune "$TMP/decider2.log")"
j=$(klctl --json tune)
expect_eq "$(echo "$j" | jq .trig.pps)" "$saved" "the restarted decider starts from the saved trig_pps"
echo "$j" | jq -e --argjson o "$obs" '.bootstrap.observed_s >= $o and .history >= 2' >/dev/null ||
	fail "observed time or history lost across the restart: $j (saved observed_s $obs)"
log "ok: observed time and history carried over"
stop_decider
log "all good"
