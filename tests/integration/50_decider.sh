#!/usr/bin/env bash
# kl-decider end to end: kl-sensor's telemetry in, decisions to kl-enforcer
# out, real packets dropped. A SYN flood from 198.18.0.1 climbs
# RATE_SOFT -> RATE_HARD -> BLOCK while 198.18.0.3 (same namespace) keeps
# getting through; a restarted decider takes the BLOCK over from the
# enforcer; `klctl forgive` lets 198.18.0.1 back in; and a dry run decides
# the same way but enforces nothing. Sensor and decider run as `nobody`.
. "$(dirname "$0")/lib.sh"
[ -x "$BIN/kl-sensor" ] && [ -x "$BIN/kl-decider" ] || fail "missing kl-sensor / kl-decider (run make)"
[ -x "$TOOLS/kl-pktgen" ] || fail "missing $TOOLS/kl-pktgen"
id nobody >/dev/null 2>&1 || skip "no user nobody"
command -v jq >/dev/null || skip "no jq"

setup_pair
C4=198.18.0.3
ip -n "$NS_A" addr add $C4/24 dev "$VA" || fail "addr add $C4"
# The unprivileged daemons must reach the sockets in $RUN, and the decider
# must rewrite its feedback file in $DEC (klctl forgive) after its drop.
chmod 0755 "$TMP"
mkdir -p "$RUN" && chmod 0755 "$RUN"
DEC=$TMP/dec
mkdir -p "$DEC" && chown nobody "$DEC"
start_enforcer --decider-user nobody

"$BIN/kl-sensor" --run-dir "$RUN" --pin-dir "$PIN" --interval 1s --user nobody $(audit_args sensor) \
	>>"$TMP/sensor.log" 2>&1 &
PIDS+=("$!")

# ssh-bastion with a slower climb so that every level shows: +1 strike per
# high tick, RATE_SOFT at 1, RATE_HARD at 3, BLOCK at 9 once severity has
# stayed above the gate for 5 s (5 s cooldown between changes).
DEC_FLAGS=(--run-dir "$RUN" --profile ssh-bastion --whitelist= --user nobody --sensor-user nobody $(audit_args decider)
	--state-file "$DEC/state.json" --sev-delta2 1 --sev-delta3 1 --hard-at 3 --block-at 9
	--block-min-dur 5s)
start_decider() { # LOGNAME FEEDBACK-FILE EXTRA-FLAGS...
	local logf=$TMP/$1 fb=$2
	shift 2
	"$BIN/kl-decider" "${DEC_FLAGS[@]}" --feedback-file="$fb" "$@" >>"$logf" 2>&1 &
	DEC_PID=$!
	PIDS+=("$DEC_PID")
	for _ in $(seq 1 100); do
		[ -S "$RUN/decider/decider.sock" ] && klctl sources >/dev/null 2>&1 && return 0
		kill -0 "$DEC_PID" 2>/dev/null || fail "kl-decider exited early"
		sleep 0.1
	done
	fail "kl-decider did not come up"
}
stop_decider() {
	kill "$DEC_PID" 2>/dev/null
	wait "$DEC_PID" 2>/dev/null
}
flood() { # SECONDS: SYNs to a new port each packet, 3000 pps
	in_a "$TOOLS/kl-pktgen" --src $A4 --dst $B4 --syn --port 1000 --port-step 1 \
		--port-span 2000 --rate 3000 --duration "$1"s >/dev/null 2>&1 &
	FLOOD_PID=$!
	PIDS+=("$FLOOD_PID")
}
level_of() { # IP -> its level in `klctl sources`, or nothing
	klctl --json sources -n 1000 | jq -r --arg ip "$1" '.[] | select(.ip == $ip) | .level' |
		head -n 1
}
decider_entries() { # LIST (deny|rl) IP -> how many decider-origin entries
	klctl --json "$1" list | jq --arg ip "$2" \
		'[(.entries // [])[] | select(.ip == $ip and .origin == "decider")] | length'
}
pings_from() { # SRC-ADDR COUNT -> replies to pings from that address in ns A
	ip netns exec "$NS_A" ping -c "$2" -i 0.05 -W 1 -q -I "$1" $B4 2>/dev/null |
		awk '/received/ { for (i = 1; i <= NF; i++) if ($(i+1) ~ /^received/) print $i }'
}

log "== enforcing run"
start_decider decider.log "$DEC/feedback.json" --dry-run=false
grep -q "sandbox: role decider uid=$(id -u nobody)" "$TMP/decider.log" ||
	fail "the decider did not drop to nobody"
grep -q "connected to the enforcer" "$TMP/decider.log" || fail "no link to the enforcer"
# Every thread, nng's included, is nobody with no capability and no way back.
bad=$(for t in /proc/$DEC_PID/task/*; do
	awk -v uid="$(id -u nobody)" '/^Uid:/ && $2 != uid { print FILENAME ": " $0 }
	     /^CapEff:|^CapPrm:|^CapBnd:/ && $2 != "0000000000000000" { print FILENAME ": " $0 }
	     /^NoNewPrivs:/ && $2 != 1 { print FILENAME ": " $0 }' "$t/status"
done)
[ -z "$bad" ] || fail "a decider thread kept privileges: $bad"
log "ok: every decider thread is nobody, no capabilities, no_new_privs"
expect_eq "$(pings_from $A4 3)" 3 "198.18.0.1 pings before the flood"
flood 30
seen="" rl_seen=0
for _ in $(seq 1 60); do
	lvl=$(level_of $A4)
	case " $seen " in *" $lvl "*) ;; *) [ -n "$lvl" ] && seen="$seen $lvl" ;; esac
	case $lvl in RATE_SOFT | RATE_HARD)
		[ "$(decider_entries rl $A4)" -ge 1 ] 2>/dev/null && rl_seen=1 ;;
	esac
	[ "$lvl" = BLOCK ] && break
	sleep 0.5
done
log "levels seen: $seen"
expect_eq "$(echo $seen)" "OBSERVE RATE_SOFT RATE_HARD BLOCK" "the flood climbs every level in order"
expect_eq "$rl_seen" 1 "RATE_* was a decider-origin rate limit in the enforcer"
expect_eq "$(decider_entries deny $A4)" 1 "BLOCK is a decider-origin deny entry"
expect_eq "$(decider_entries rl $A4)" 0 "the rate limit gave way to the deny"
# Started as root, the decider dials the enforcer only after it dropped to
# its user: the enforcer's peer check and audit name that user, never root.
grep -q "CHANGE who=decider(uid=$(id -u nobody),pid=$DEC_PID) action=decisions" "$TMP/enforcer.log" ||
	fail "the enforcer did not see the decider's decisions from its user: $(grep -m1 'who=decider' "$TMP/enforcer.log")"
grep -q "who=decider(uid=0," "$TMP/enforcer.log" && fail "the decider talked to the enforcer as root"
expect_eq "$(pings_from $A4 3)" 0 "pings from 198.18.0.1 are dropped"
expect_eq "$(pings_from $C4 3)" 3 "pings from 198.18.0.3 still pass"
grep -q "ACTION ip=$A4 RATE_HARD->BLOCK dry_run=false action=block" "$TMP/decider.log" ||
	fail "no ACTION line for the BLOCK"
json=$(klctl --json sources)
echo "$json" | jq -e --arg ip $A4 '.[0] | .ip == $ip and .level == "BLOCK" and .strikes >= 9
	and .severity >= 2 and .pps > 1000 and .syn > 1000 and .ttl_left_s > 3000
	and (.in_level_s | type) == "number"' >/dev/null || fail "sources: $json"
klctl sources | grep -qE "^$A4 +BLOCK" || fail "sources table: $(klctl sources)"
# Per-source baselines: a flooding source learns nothing (every tick of it
# was above a trigger or suspicious), and klctl shows the global triggers.
json=$(klctl --json baseline show $A4) || fail "klctl baseline show: $json"
echo "$json" | jq -e --arg ip $A4 '.ip == $ip and .promoted == false and .observations == 0
	and .above_global == false and .effective_trigger.pps > 0' >/dev/null ||
	fail "baseline show: $json"
log "ok: klctl baseline show: the flooder has learned nothing"

log "== restart: the decider takes the BLOCK over from the enforcer"
stop_decider
grep -q "stopping:" "$TMP/decider.log" || fail "no clean stop"
# written at exit beside state.json, by the decider's own user
[ "$(command stat -c %U "$DEC/baselines.json" 2>/dev/null)" = nobody ] ||
	fail "no baselines.json beside state.json: $(ls -l "$DEC")"
jq -e '.version == 1 and (.integrity.sha256 | length) == 64 and (.sources | type) == "array"' \
	"$DEC/baselines.json" >/dev/null || fail "baselines.json: $(head -c 300 "$DEC/baselines.json")"
log "ok: baselines.json written at exit with its integrity hash"
start_decider decider2.log "$DEC/feedback.json" --dry-run=false
grep -q "baselines: [0-9]* sources loaded from $DEC/baselines.json" "$TMP/decider2.log" ||
	fail "the restarted decider did not load its baselines: $(grep baselines "$TMP/decider2.log")"
log "ok: the restarted decider loaded baselines.json"
grep -qE "reconciled with the enforcer: [0-9]+ entries of ours; adopted 1 \(soft=0 hard=0 block=1\)" \
	"$TMP/decider2.log" || fail "no adoption: $(grep reconciled "$TMP/decider2.log")"
expect_eq "$(level_of $A4)" BLOCK "198.18.0.1 is BLOCK right after the restart"
expect_eq "$(pings_from $A4 3)" 0 "and still dropped"

log "== forgive"
kill "$FLOOD_PID" 2>/dev/null
wait "$FLOOD_PID" 2>/dev/null
out=$(klctl forgive $A4) || fail "klctl forgive: $out"
echo "$out" | grep -q "forgave $A4 for 1h" || fail "forgive said: $out"
jq -e --arg ip $A4 '.[-1] | .target == $ip and .action == "forgive" and .ttl == "1h"
	and .notes == "klctl forgive by uid 0"' "$DEC/feedback.json" >/dev/null ||
	fail "feedback file: $(cat "$DEC/feedback.json")"
for _ in $(seq 1 30); do
	[ "$(decider_entries deny $A4)" = 0 ] && break
	sleep 0.2
done
expect_eq "$(decider_entries deny $A4)" 0 "the deny entry is gone"
grep -q "STATE $A4 BLOCK->OBSERVE strikes=0 .*reason=forgive" "$TMP/decider2.log" ||
	fail "no STATE BLOCK->OBSERVE for the forgive"
expect_eq "$(level_of $A4)" "" "198.18.0.1 is exempt (not scored) while forgiven"
expect_eq "$(pings_from $A4 3)" 3 "pings from 198.18.0.1 pass again"
stop_decider

log "== dry run: decides, enforces nothing"
start_decider decider3.log "$DEC/feedback2.json" --dry-run=true
grep -q "decisions logged only" "$TMP/decider3.log" || fail "not in dry-run"
flood 12
for _ in $(seq 1 40); do
	lvl=$(level_of $A4)
	[ "$lvl" = RATE_HARD ] || [ "$lvl" = BLOCK ] && break
	sleep 0.5
done
expect_eq "$lvl" RATE_HARD "the dry run escalates the same way"
grep -q "ACTION ip=$A4 OBSERVE->RATE_SOFT dry_run=true" "$TMP/decider3.log" ||
	fail "no ACTION ... dry_run=true line"
expect_eq "$(decider_entries rl $A4)" 0 "no rate limit in the enforcer"
expect_eq "$(decider_entries deny $A4)" 0 "no deny in the enforcer"
expect_eq "$(pings_from $A4 3)" 3 "pings from 198.18.0.1 pass during the dry run"
grep -q "enforcer-decider" "$TMP/decider3.log" && fail "the dry run talked to the enforcer"
kill "$FLOOD_PID" 2>/dev/null
log "all good"
