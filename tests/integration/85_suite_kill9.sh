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
out=$(klctl status --all) || fail "klctl status --all: $out"
for r in enforcer sensor decider graphd; do
	echo "$out" | grep -qE "^kl-$r +up +${DPID[$r]} " || fail "status --all lacks kl-$r: $out"
done
# The dropped ones are nobody with no capability and no_new_privs.
for r in sensor decider graphd; do
	echo "$out" | grep -qE "^kl-$r +up +[0-9]+ +nobody +[a-z?]+ +1 +0000000000000000$" ||
		fail "kl-$r not dropped per status --all: $out"
done
log "ok: klctl status --all shows the four daemons: $(echo "$out" | tr -s ' ' | tr '\n' ';')"
declare -A BEFORE
for role in sensor graphd decider enforcer; do
	log "== kill -9 kl-$role"
	for r in enforcer sensor decider graphd; do BEFORE[$r]=${DPID[$r]}; done
	kill -9 "${DPID[$role]}"
	wait "${DPID[$role]}" 2>/dev/null
	still_blocking
	log "ok: the attacker is still dropped while kl-$role is down"
	expect_fail "klctl status --all with kl-$role down" 1 klctl status --all
	echo "$LAST_OUT" | grep -qE "^kl-$role +down" || fail "status --all: $LAST_OUT"
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
	out=$(klctl status --all) || fail "klctl status --all after the restart: $out"
	echo "$out" | grep -qE "^kl-$role +up +${DPID[$role]} " || fail "status --all: $out"
	klctl --json status --all | jq -e '[.[] | select(.up)] | length == 4' >/dev/null ||
		fail "status --all --json: $(klctl --json status --all)"
	wait_level $A4 BLOCK 20
	still_blocking
	d=$(src_field $A4 drop_deny)
	wait_for 10 "deny drops go on" src_ge $A4 drop_deny $((d + 500))
	log "ok: after the restart of kl-$role the attacker is BLOCK and dropped"
done
# The decider found the new enforcer by itself (first start, its own
# restart, the enforcer's restart). graphd dials only when it has edge
# rules to push, which a learning graph has not.
expect_ge "$(grep -c "reconciled with the enforcer" "$TMP/decider.log")" 3 \
	"the decider reconciled with the restarted enforcer"
expect_eq "$(decider_entries deny $A4)" 1 "one decider deny for the attacker"

log "== the decider dies for good: its BLOCK lapses at the TTL"
kill "$FLOOD_PID" 2>/dev/null
kill -9 "${DPID[decider]}"
T=$SECONDS
wait_for $((BLOCK_TTL + 10)) "the attacker's pings pass again" pings_pass "$NS_A" $B4
log "ok: the BLOCK lapsed $((SECONDS - T)) s after the decider died (TTL ${BLOCK_TTL} s)"
log "all good"
