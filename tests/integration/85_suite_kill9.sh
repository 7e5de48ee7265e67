#!/usr/bin/env bash
# Scenario 7 of the suite (docs/testing.md): during an attack each daemon in
# turn is killed with SIGKILL and started again. The others keep going (same
# PIDs), the restarted one reconciles (the attacker stays blocked, packets
# keep being dropped), nothing needs a manual reset, and once the decider is
# gone for good its BLOCK lapses at its TTL.
. "$(dirname "$0")/lab.sh"
command -v hping3 >/dev/null || skip "needs hping3 (scripts/deps.sh installs it)"
BLOCK_TTL=12
DEC_ARGS=("${LAB_DEC_ARGS[@]}" --block-ttl ${BLOCK_TTL}s)
start_suite
syn_flood 120 2000
wait_level $A4 BLOCK 40

others_same() { # ROLE: every other daemon still runs with its PID
	local r
	for r in enforcer sensor decider graphd; do
		[ "$r" = "$1" ] && continue
		kill -0 "${BEFORE[$r]}" 2>/dev/null && [ "${DPID[$r]}" = "${BEFORE[$r]}" ] ||
			fail "kl-$r did not survive the kill of kl-$1"
	done
	log "ok: the others kept running with the same PIDs"
}
still_blocking() { # the attacker is dropped right now, the client is not
	# (pings: klctl cannot ask a dead enforcer for its counters)
	[ "$(pings_from_ns "$NS_A" $B4 2)" = 0 ] || fail "the attacker's pings pass"
	[ "$(pings_from_ns "$NS_C" $B4 2)" = 2 ] || fail "the client's pings are dropped"
}
out=$(klctl status) || fail "klctl status: $out"
for r in enforcer sensor decider graphd; do
	echo "$out" | grep -qE "^kl-$r +up +${DPID[$r]} " || fail "klctl status lacks kl-$r: $out"
done
# The unprivileged ones run as their users with no capability and no_new_privs.
for r in sensor decider graphd; do
	echo "$out" | grep -qE "^kl-$r +up +[0-9]+ +$(lab_user $r) +[a-z?]+ +1 +0000000000000000 " ||
		fail "kl-$r not dropped per klctl status: $out"
done
log "ok: klctl status shows the four daemons: $(echo "$out" | tr -s ' ' | tr '\n' ';')"
# What each daemon says of itself: version, enforcing, ticks (the decider's
# last one recent), frames in and out.
st=$(klctl --json status)
echo "$st" | jq -e 'map({(.daemon): .}) | add |
	.["kl-decider"].mode == "enforcing" and .["kl-decider"].enforcing == true and
	.["kl-decider"].ticks > 0 and .["kl-decider"].last_tick_age_ms < 5000 and
	.["kl-decider"].frames_in > 0 and .["kl-decider"].frames_out > 0 and
	.["kl-graphd"].mode == "learn" and .["kl-graphd"].ticks > 0 and .["kl-graphd"].frames_in > 0 and
	.["kl-enforcer"].version == "0.1" and .["kl-enforcer"].frames_in > 0' >/dev/null ||
	fail "klctl --json status: $st"
echo "$out" | grep -qE "^kl-decider +up .* 0\.1 +enforcing +[0-9]+ +[0-9.]+s " ||
	fail "klctl status lacks the decider's version, mode and last tick: $out"
log "ok: each daemon's version, mode, ticks and frames in klctl status"
# klctl knocks on the control sockets with the whole SP header exchange, so
# nothing it does wedges a listener: over three self-check periods of
# klctl status, no daemon replaces one (nng 1.5.2, ipc/listen.h).
n=0 t_end=$((SECONDS + 6))
while [ $SECONDS -lt $t_end ]; do
	klctl status >/dev/null || fail "klctl status (round $n)"
	n=$((n + 1))
done
for r in enforcer sensor decider graphd; do
	! grep -q "listener stopped accepting" "$TMP/$r.log" ||
		fail "kl-$r replaced a listener without any attack: $(grep "listener stopped" "$TMP/$r.log" | head -n 3)"
done
log "ok: $n rounds of klctl status, no listener replaced"
# graphd's link to the enforcer in use before any kill: one approved edge
# pushed (another one after the enforcer's restart, below).
graphd_pushed() { # PORT
	klctl --json edge list | jq -e --arg ip $C4 --argjson p "$1" \
		'.entries[] | select(.kind == "allow" and .ip == $ip and .port == $p and .origin == "graphd")' \
		>/dev/null
}
out=$(klctl graph approve-ip $C4 --port 81 --proto tcp 2>&1) || fail "klctl graph approve-ip $C4: $out"
wait_for 20 "graphd pushes an approved edge" graphd_pushed 81
declare -A BEFORE
for role in sensor graphd decider enforcer; do
	log "== kill -9 kl-$role"
	for r in enforcer sensor decider graphd; do BEFORE[$r]=${DPID[$r]}; done
	kill -9 "${DPID[$role]}"
	wait "${DPID[$role]}" 2>/dev/null
	still_blocking
	log "ok: the attacker is still dropped while kl-$role is down"
	expect_fail "klctl status with kl-$role down" 1 klctl status
	echo "$LAST_OUT" | grep -qE "^kl-$role +down" || fail "klctl status: $LAST_OUT"
	# Left out of --expect (not deployed), it is off and the rest is fine.
	others=$(printf '%s\n' enforcer sensor decider graphd | grep -vx "$role" | paste -sd,)
	out=$(klctl status --expect "$others") || fail "klctl status --expect $others: $out"
	echo "$out" | grep -qE "^kl-$role +off " || fail "klctl status --expect $others: $out"
	case $role in
	sensor) lab_sensor ;;
	graphd) lab_graphd ;;
	decider)
		lab_decider
		wait_for 10 "the restarted decider reconciles" grep -q "reconciled with the enforcer" "$TMP/decider.log"
		log "ok: $(grep "reconciled with the enforcer" "$TMP/decider.log" | tail -n 1 | cut -d' ' -f4-)"
		;;
	enforcer) lab_enforcer ;;
	esac
	others_same "$role"
	out=$(klctl status) || fail "klctl status after the restart: $out"
	echo "$out" | grep -qE "^kl-$role +up +${DPID[$role]} " || fail "klctl status: $out"
	klctl status --json | jq -e '[.[] | select(.state == "up")] | length == 4' >/dev/null ||
		fail "klctl status --json: $(klctl --json status)"
	wait_level $A4 BLOCK 20
	still_blocking
	d=$(src_field $A4 drop_deny)
	wait_for 10 "deny drops go on" src_ge $A4 drop_deny $((d + 500))
	log "ok: after the restart of kl-$role the attacker is BLOCK and dropped"
done
# The decider found the new enforcer by itself (first start, its own
# restart, the enforcer's restart). graphd dials only when it has edge
# rules to push, which a learning graph has not.
wait_for 20 "the decider reconciled with the restarted enforcer" \
	log_count_ge "$TMP/decider.log" "reconciled with the enforcer" 3
expect_eq "$(decider_entries deny $A4)" 1 "one decider deny for the attacker"

log "== after the enforcer's restart the unprivileged decider and graphd reach it by themselves"
# The enforcer was the last one restarted; the decider and graphd (not
# root, no capability) kept their PIDs. A new attacker's decision must reach the
# new enforcer's maps, and graphd's next edge push must be applied.
A2=198.18.0.4
ip -n "$NS_A" addr add $A2/24 dev "$VA" || fail "addr add $A2"
ip netns exec "$NS_A" timeout 60 hping3 -S -p 80 -i u1000 -a $A2 -q $B4 >>"$TMP/hping3.log" 2>&1 &
PIDS+=("$!")
wait_for 40 "a new decision for $A2 reaches the restarted enforcer's maps" entries_eq rl $A2 1
log "ok: the decider's decision for $A2 is in the new enforcer's maps"
ok0=$(awk '$1 == "kernloom_graphd_rules_total{result=\"ok\"}" { print $2 }' "$(metrics_file graphd)")
out=$(klctl graph approve-ip $C4 --port 80 --proto tcp 2>&1) || fail "klctl graph approve-ip $C4: $out"
wait_for 20 "graphd's edge push reaches the restarted enforcer" graphd_pushed 80
log "ok: graphd pushed $C4's approved edges to the new enforcer (rules ok before: ${ok0:-0})"
for r in decider graphd sensor; do
	[ "${DPID[$r]}" = "${BEFORE[$r]}" ] && kill -0 "${DPID[$r]}" 2>/dev/null ||
		fail "kl-$r was restarted or died"
done
log "ok: without restarting the decider, graphd or sensor (same PIDs)"

log "== the decider dies for good: its BLOCK lapses at the TTL"
kill "$FLOOD_PID" 2>/dev/null
kill -9 "${DPID[decider]}"
T=$SECONDS
wait_for $((BLOCK_TTL + 10)) "the attacker's pings pass again" pings_pass "$NS_A" $B4
log "ok: the BLOCK lapsed $((SECONDS - T)) s after the decider died (TTL ${BLOCK_TTL} s)"
log "all good"
