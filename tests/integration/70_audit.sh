#!/usr/bin/env bash
# The audit trail end to end: a SYN flood from 198.18.0.1 is
# seen (kl-sensor), decided (kl-decider: signed receipts), enforced
# (kl-enforcer: map changes with the decider's uid and pid); the operator
# forgives it (klctl forgive) and approves an edge for it in kl-graphd.
# Every daemon writes its own chain; `klctl audit show --source` puts the
# address's history together in time order, `klctl audit verify` passes on
# all four logs with the public keys, and fails, naming file and line, once
# a record is edited.
. "$(dirname "$0")/lib.sh"
for b in kl-sensor kl-decider kl-graphd klctl; do
	[ -x "$BIN/$b" ] || fail "missing $BIN/$b (run make)"
done
[ -x "$TOOLS/kl-pktgen" ] || fail "missing $TOOLS/kl-pktgen"
id nobody >/dev/null 2>&1 || skip "no user nobody"
command -v jq >/dev/null || skip "no jq"

setup_pair
chmod 0755 "$TMP"
mkdir -p "$RUN" && chmod 0755 "$RUN"
DEC=$TMP/dec GDIR=$TMP/graph
mkdir -p "$DEC" "$GDIR" && chown nobody: "$DEC" "$GDIR"
start_enforcer --features graph-enforce --decider-user nobody --sensor-user nobody --graph-user nobody

"$BIN/kl-graphd" --graph-store "$GDIR/kliq.db" --run-dir "$RUN" --user nobody --sensor-user nobody \
	$(audit_args graphd) --summary-every 0 >>"$TMP/graphd.log" 2>&1 &
GRAPHD_PID=$!
PIDS+=("$GRAPHD_PID")
"$BIN/kl-sensor" --run-dir "$RUN" --pin-dir "$PIN" --interval 1s --user nobody $(audit_args sensor) \
	>>"$TMP/sensor.log" 2>&1 &
SENSOR_PID=$!
PIDS+=("$SENSOR_PID")
"$BIN/kl-decider" --run-dir "$RUN" --profile ssh-bastion --whitelist= --user nobody --dry-run=false \
	--sensor-user nobody $(audit_args decider) --state-file "$DEC/state.json" \
	--feedback-file="$DEC/feedback.json" >>"$TMP/decider.log" 2>&1 &
DEC_PID=$!
PIDS+=("$DEC_PID")
for _ in $(seq 1 100); do
	[ -S "$RUN/decider.sock" ] && [ -S "$RUN/graphd.sock" ] && klctl sources >/dev/null 2>&1 && break
	kill -0 "$DEC_PID" 2>/dev/null || fail "kl-decider exited early"
	kill -0 "$GRAPHD_PID" 2>/dev/null || fail "kl-graphd exited early"
	sleep 0.1
done

level_of() {
	klctl --json sources -n 1000 | jq -r --arg ip "$1" '.[] | select(.ip == $ip) | .level' |
		head -n 1
}

log "== flood: decided and enforced"
in_a "$TOOLS/kl-pktgen" --src $A4 --dst $B4 --syn --port 1000 --port-step 1 \
	--port-span 2000 --rate 3000 --duration 30s >/dev/null 2>&1 &
FLOOD_PID=$!
PIDS+=("$FLOOD_PID")
lvl=""
for _ in $(seq 1 60); do
	lvl=$(level_of $A4)
	case $lvl in RATE_SOFT | RATE_HARD | BLOCK) break ;; esac
	sleep 0.5
done
case $lvl in RATE_SOFT | RATE_HARD | BLOCK) log "ok: $A4 is $lvl" ;; *) fail "$A4 never left OBSERVE ($lvl)" ;; esac
kill "$FLOOD_PID" 2>/dev/null
wait "$FLOOD_PID" 2>/dev/null

log "== operator: forgive, approve an edge"
out=$(klctl forgive $A4) || fail "klctl forgive: $out"
for _ in $(seq 1 30); do
	[ -z "$(level_of $A4)" ] && break
	sleep 0.2
done
expect_eq "$(level_of $A4)" "" "$A4 is exempt after the forgive"
klctl graph approve-ip $A4 --port 22 --proto tcp >"$TMP/approve.txt" 2>&1 ||
	fail "klctl graph approve-ip: $(cat "$TMP/approve.txt")"
# graphd pushes the approved edge to the enforcer: wait for its record.
for _ in $(seq 1 50); do
	grep -qs "\"subject\":\"$A4\".*\"what\":\"add-allow\"" "$TMP"/audit/enforcer/audit-*.jsonl && break
	sleep 0.2
done

log "== stop every daemon (each signs its audit_stop)"
for p in $DEC_PID $GRAPHD_PID $SENSOR_PID $ENF_PID; do kill "$p" 2>/dev/null; done
for p in $DEC_PID $GRAPHD_PID $SENSOR_PID $ENF_PID; do wait "$p" 2>/dev/null; done

DIRS=("$TMP"/audit/enforcer "$TMP"/audit/sensor "$TMP"/audit/decider "$TMP"/audit/graphd)
KEYS=()
for r in enforcer sensor decider graphd; do
	[ -f "$TMP/keys/$r/audit.key.pub" ] || fail "no public key $TMP/keys/$r/audit.key.pub"
	expect_eq "$(command stat -c %a "$TMP/keys/$r/audit.key")" 600 "$r's key is private"
	KEYS+=(--key "$TMP/keys/$r/audit.key.pub")
done
expect_eq "$(command stat -c %U "$TMP/keys/decider/audit.key")" nobody "the decider's key belongs to its user"

log "== klctl audit verify"
"$BIN/klctl" audit verify "${KEYS[@]}" "${DIRS[@]}" >"$TMP/verify.txt" 2>&1 ||
	fail "audit verify: $(cat "$TMP/verify.txt")"
cat "$TMP/verify.txt"
expect_eq "$(grep -c ': ok: ' "$TMP/verify.txt")" 4 "all four chains verify"

log "== klctl audit show --source $A4"
"$BIN/klctl" --json audit show --source $A4 "${DIRS[@]}" >"$TMP/show.jsonl" ||
	fail "audit show failed"
"$BIN/klctl" audit show --source $A4 "${DIRS[@]}" | head -n 40
jq -s -e 'map(.wall_ns) as $t | $t == ($t | sort)' "$TMP/show.jsonl" >/dev/null ||
	fail "audit show is not in time order"
# The story, in order: decided, enforced (for the decider, by its uid),
# forgiven by the operator, decided back, enforced back; graphd's approval.
first() { # JQ-FILTER -> the index of the first record that matches, or -1
	jq -s "[to_entries[] | select(.value | $1) | .key] | (first // -1)" "$TMP/show.jsonl"
}
d_up=$(first '.proc == "decider" and .event == "decision" and .details.to != "OBSERVE"')
e_up=$(first '.proc == "enforcer" and .event == "map_change" and .details.what != "OBSERVE"
	and .details.peer.role == "decider"')
fg=$(first '.proc == "decider" and .event == "forgive" and .details.operator_uid == 0')
d_fg=$(first '.proc == "decider" and .event == "decision" and .details.rule == "forgive"')
ap=$(first '.proc == "graphd" and .event == "approve" and .result == "OK"')
for v in d_up e_up fg d_fg ap; do
	[ "${!v}" -ge 0 ] || fail "audit show lacks the $v record: $(cat "$TMP/show.jsonl")"
done
[ "$d_up" -lt "$e_up" ] || fail "enforced ($e_up) before decided ($d_up)"
[ "$e_up" -lt "$fg" ] && [ "$fg" -lt "$d_fg" ] ||
	fail "order: enforced $e_up, forgive $fg, decision after forgive $d_fg"
log "ok: decided #$d_up < enforced #$e_up < forgiven #$fg < decided back #$d_fg; approved #$ap"
jq -s -e '[.[] | select(.proc == "decider" and .event == "decision")][0].details |
	.features.pps > 0 and .severity > 0 and .strikes >= 1 and .profile == "ssh-bastion"
	and (.thresholds.trig_syn > 0) and (.rule | length > 0)' "$TMP/show.jsonl" >/dev/null ||
	fail "a receipt lacks its inputs"
jq -s -e '[.[] | select(.proc == "decider" and .event == "decision")] |
	length > 0 and all(.sig | type == "string" and length == 128)' "$TMP/show.jsonl" >/dev/null ||
	fail "a receipt without its own signature"
log "ok: receipts carry features, severity, strikes, thresholds, profile and rule, each signed"
# The same history through a CIDR holding the address, and --since: an hour
# back keeps all of it, a millisecond back (the daemons are stopped) none.
n_src=$(jq -s length "$TMP/show.jsonl")
n_cidr=$("$BIN/klctl" --json audit show --source "${A4%.*}.0/24" "${DIRS[@]}" |
	jq -s --arg ip $A4 '[.[] | select(.subject == $ip)] | length')
expect_eq "$n_cidr" "$n_src" "audit show --source ${A4%.*}.0/24 holds $A4's records"
expect_eq "$("$BIN/klctl" --json audit show --source $A4 --since 1h "${DIRS[@]}" | jq -s length)" \
	"$n_src" "audit show --since 1h keeps the run's records"
expect_eq "$("$BIN/klctl" --json audit show --source $A4 --since 1ms "${DIRS[@]}" | jq -s length)" \
	0 "audit show --since 1ms leaves out what is older"
"$BIN/klctl" --json audit show "$TMP/audit/sensor" | jq -s -e 'any(.event == "start")' >/dev/null ||
	fail "the sensor did not record its start"

log "== a changed record is caught, by file and line"
cp -r "$TMP/audit/decider" "$TMP/tampered"
f=$(ls "$TMP"/tampered/audit-*.jsonl | head -n 1)
n=$(grep -n '"event":"decision"' "$f" | head -n 1 | cut -d: -f1)
sed -i "${n}s/\"strikes\":\([0-9]*\)/\"strikes\":0\1/" "$f"
if "$BIN/klctl" audit verify "${KEYS[@]}" "$TMP/tampered" >"$TMP/tverify.txt" 2>&1; then
	fail "audit verify passed a changed record"
fi
grep -q "$(basename "$f") line $n:" "$TMP/tverify.txt" || fail "verify did not name line $n: $(cat "$TMP/tverify.txt")"
log "ok: $(grep FAILED "$TMP/tverify.txt")"
tamper() { # DESCRIPTION EXPECTED-LINE SED-SCRIPT: on a fresh copy of the decider's log
	rm -rf "$TMP/tampered" && cp -r "$TMP/audit/decider" "$TMP/tampered"
	sed -i "$3" "$TMP/tampered/audit-000001.jsonl"
	if "$BIN/klctl" audit verify "${KEYS[@]}" "$TMP/tampered" >"$TMP/tverify.txt" 2>&1; then
		fail "audit verify passed: $1"
	fi
	grep -q "audit-000001.jsonl line $2:" "$TMP/tverify.txt" ||
		fail "$1: not named at line $2: $(cat "$TMP/tverify.txt")"
	log "ok: $1: $(grep -o 'line .*' "$TMP/tverify.txt")"
}
tamper "a deleted line" 3 '3d'
tamper "two lines swapped" 3 '3{h;d};4G'
tamper "a line repeated" 4 '3p'
rm -rf "$TMP/tampered" && cp -r "$TMP/audit/decider" "$TMP/tampered"
if "$BIN/klctl" audit verify --key "$TMP/keys/sensor/audit.key.pub" "$TMP/tampered" >"$TMP/tverify.txt" 2>&1; then
	fail "the decider's log verified with the sensor's key"
fi
grep -q "line 1: signed by key .* not among the public keys given" "$TMP/tverify.txt" ||
	fail "wrong key: $(cat "$TMP/tverify.txt")"
log "ok: another daemon's key is refused"
log "PASS"
