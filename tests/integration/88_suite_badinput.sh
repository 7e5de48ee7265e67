#!/usr/bin/env bash
# Scenario 11 of the suite (docs/testing.md): bad input on every channel.
# Malformed, short and oversized IPC messages on every listening socket of
# the four daemons (tests/tools/nngpoke.py speaks nng's framing by hand, so
# the bytes reach our decoders), a corrupt state.json, a corrupt trace and
# broken configuration files (at start, and at `klctl reload`): each is
# refused with a clear error, and no
# daemon dies (same PIDs, still answering, still stopping a flood).
. "$(dirname "$0")/lab.sh"
command -v python3 >/dev/null || skip "needs python3"
command -v hping3 >/dev/null || skip "needs hping3 (scripts/deps.sh installs it)"
POKE=$(dirname "$0")/../tools/nngpoke.py
start_suite
declare -A BEFORE
for r in enforcer sensor decider graphd; do BEFORE[$r]=${DPID[$r]}; done
all_alive() {
	local r
	for r in enforcer sensor decider graphd; do
		kill -0 "${DPID[$r]}" 2>/dev/null || fail "kl-$r died ($1)"
	done
}

log "== IPC: garbage, short and oversized messages on every socket"
for s in enforcer/enforcer.sock enforcer/enforcer-decider.sock enforcer/enforcer-graphd.sock \
	decider/telemetry.sock decider/decider.sock decider/violations.sock \
	graphd/flows.sock graphd/graphd.sock; do
	for kind in garbage short oversized; do
		python3 "$POKE" "$RUN/$s" $kind || fail "nngpoke $s $kind could not send"
	done
	all_alive "after the pokes at $s"
	log "ok: $s: garbage, short and oversized sent; every daemon runs"
done
# Each daemon said why it refused (the logs name the socket).
for s in enforcer/enforcer.sock decider/telemetry.sock decider/decider.sock graphd/flows.sock graphd/graphd.sock; do
	grep -E "$RUN/$s: (malformed message|.*before HELLO|closing connection|refused)" "$TMP"/*.log >/dev/null ||
		fail "no refusal logged for $s"
done
log "ok: a refusal naming the socket was logged for each"
klctl status enforcer >/dev/null || fail "the enforcer no longer answers klctl"
klctl sources >/dev/null || fail "the decider no longer answers klctl"
klctl graph export >/dev/null || fail "graphd no longer answers klctl"
for r in enforcer sensor decider graphd; do
	[ "${DPID[$r]}" = "${BEFORE[$r]}" ] || fail "kl-$r was restarted"
done
syn_flood 30 2000
wait_level $A4 RATE_SOFT 30
log "ok: a flood after the hostile peers is still stopped"
kill "$FLOOD_PID" 2>/dev/null

log "== a corrupt state.json: rejected with the reason, a fresh start"
kill "${DPID[decider]}"
wait "${DPID[decider]}" 2>/dev/null
printf '{"version": 1, "trig' >"$DEC/state.json"
printf 'not json either' >"$DEC/state.json.bak"
lab_decider --autotune=true # the state file holds autotune's learning
grep -q "state.json: rejected: parse error at line 1" "$TMP/decider.log" ||
	fail "no clear refusal of the corrupt state: $(grep state.json "$TMP/decider.log" | tail -n 3)"
grep -q "no usable state; starting a fresh bootstrap" "$TMP/decider.log" || fail "no fresh start"
all_alive "after the corrupt state.json"
log "ok: corrupt state.json refused, the decider runs"

log "== a corrupt trace"
printf 'garbage trace' >"$TMP/bad.trace"
expect_fail "klctl trace dump of a corrupt trace" 1 klctl trace dump "$TMP/bad.trace"
echo "$LAST_OUT" | grep -q "bad.trace: too short for a Kernloom trace header" || fail "unclear: $LAST_OUT"
head -c 4096 /dev/urandom >"$TMP/rand.trace"
expect_fail "klctl trace dump of random bytes" 1 klctl trace dump "$TMP/rand.trace"
echo "$LAST_OUT" | grep -q "rand.trace" || fail "the error does not name the file: $LAST_OUT"
out=$("$BIN/kl-decider" --replay "$TMP/bad.trace" --state-file= --whitelist= --feedback-file= 2>&1) &&
	fail "kl-decider --replay accepted a corrupt trace: $out"
echo "$out" | grep -q "bad.trace:1: " || fail "replay error does not name file and line: $out"
log "ok: kl-decider --replay refused it: $(echo "$out" | grep -m1 'bad.trace:1')"

log "== broken configuration files"
printf 'iface: [eth0\n' >"$TMP/enforcer.yaml"
expect_fail "kl-enforcer -n with a broken YAML" 2 "$BIN/kl-enforcer" --config "$TMP/enforcer.yaml" -n
echo "$LAST_OUT" | grep -qE "enforcer.yaml:2:[0-9]+: YAML error" || fail "unclear: $LAST_OUT"
printf 'apiVersion: kernloom.io/v1alpha1\nkind: PDPConfig\nmetadata: {name: x}\nspec:\n  signal_engine:\n    pps_trigger: "lots"\n' \
	>"$TMP/pdp.yaml"
out=$("$BIN/kl-decider" --pdp-config "$TMP/pdp.yaml" --replay "$TMP/bad.trace" --state-file= --whitelist= \
	--feedback-file= 2>&1) && fail "a PDPConfig with a string trigger was accepted"
echo "$out" | grep -q "pdp.yaml:6" || fail "the PDPConfig error does not name file and line: $out"
log "ok: PDPConfig refused: $(echo "$out" | grep -m1 pdp.yaml)"
log "== klctl reload with a broken feedback file: refused, the old entries kept"
klctl forgive 198.18.0.77 --ttl 1h >/dev/null || fail "klctl forgive"
out=$(klctl reload) || fail "klctl reload: $out"
echo "$out" | grep -q "reloaded the whitelist" || fail "klctl reload said: $out"
grep -q "feedback $DEC/feedback.json: 1 entries" "$TMP/decider.log" || fail "no reload of the feedback"
printf '[{"target": "198.18.0.77", "action": ' >"$DEC/feedback.json"
out=$(klctl reload) || fail "klctl reload with a broken file: $out"
wait_for 5 "the broken feedback file is named in the log" \
	grep -qE "feedback.json.*\(keeping the previous feedback\)" "$TMP/decider.log"
log "ok: $(grep -m1 "keeping the previous feedback" "$TMP/decider.log" | cut -d' ' -f4-)"
all_alive "after the broken files"
log "all good"
