#!/usr/bin/env bash
# Restarting kl-enforcer keeps rules and counters; detach/attach keeps
# counters; the shield really sits in the packet path (XDP attached).
. "$(dirname "$0")/lib.sh"
setup_pair
start_enforcer

in_b ip link show "$VB" | grep -q xdp || fail "no XDP program on $VB"
# Every thread (nng starts a dozen) holds at most CAP_BPF, CAP_PERFMON,
# CAP_NET_ADMIN and (nng's threads only, until seccomp) CAP_CHOWN.
for st in /proc/$ENF_PID/task/*/status; do
	eff=$(awk '/^CapEff/ { print $2 }' "$st")
	[ $((0x$eff & ~0xc000001001)) -eq 0 ] || fail "thread $st has CapEff $eff"
	grep -q '^NoNewPrivs:[[:space:]]*1' "$st" || fail "thread $st lacks no_new_privs"
done
log "ok: every enforcer thread is capped and has no_new_privs"
# Only the enforcer runs here: `klctl status` counts the three others as
# down (exit 1) unless told they are not deployed (--expect).
expect_fail "klctl status with the enforcer alone" 1 klctl status
echo "$LAST_OUT" | grep -qE "^kl-enforcer +up +$ENF_PID +[a-z0-9]+ +filter +1 " ||
	fail "klctl status does not show the enforcer up, sandboxed: $LAST_OUT"
for r in sensor decider graphd; do
	echo "$LAST_OUT" | grep -qE "^kl-$r +down\$" || fail "klctl status: kl-$r not down: $LAST_OUT"
done
out=$(klctl status --expect enforcer) || fail "klctl status --expect enforcer: $out"
for r in sensor decider graphd; do
	echo "$out" | grep -qE "^kl-$r +off " || fail "klctl status --expect enforcer: kl-$r not off: $out"
done
klctl status --json --expect enforcer | jq -e --argjson pid "$ENF_PID" '
	(map(select(.state == "up")) | length == 1 and .[0].daemon == "kl-enforcer" and
	 .[0].pid == $pid and .[0].enforcing == true and .[0].version == "0.1") and
	(map(select(.state == "off" and .expected == false and .up == false)) | length == 3)' \
	>/dev/null || fail "klctl status --json --expect enforcer: $(klctl status --json --expect enforcer)"
expect_fail "klctl status --expect with a typo" 2 klctl status --expect enforcer,graph
log "ok: klctl status: the enforcer up, the others down, or off when not expected"
expect_eq "$(pings "$NS_A" $B4 4)" 4 "pings pass"
# Resolve the v6 neighbour first: the deny drops NDP too, and a FAILED
# neighbour entry would outlive the rule and fail the "detached" check.
expect_eq "$(pings "$NS_A" $B6 2)" 2 "v6 passes before the deny"
klctl deny add $A6 || fail "deny add v6"
klctl rl set-ip $A4 --rate 1000 --burst 100 || fail "rl set-ip"
pk=$(src_field $A4 pkts)
# 4 pings, less the first: it came before the source was admitted to a slot
# (counted in new_sources).
expect_ge "$pk" 3 "packets counted before restart"
klctl --json stats | jq -e '.new_sources >= 1' >/dev/null || fail "stats: no new_sources: $(klctl stats)"
# klctl status knocked on the control socket as nng does: the listener's
# self-check (every 2 s, seconds have passed) found nothing to replace.
grep -q "listener stopped accepting" "$TMP/enforcer.log" &&
	fail "klctl status wedged the enforcer's listener: $(grep "listener stopped" "$TMP/enforcer.log")"

log "== restart"
stop_enforcer
# The link stays pinned: the shield keeps enforcing while the daemon is down.
expect_eq "$(pings "$NS_A" $B6 3)" 0 "v6 deny still enforced while kl-enforcer is down"
# The object file in place of the built-in one reuses the same pins.
start_enforcer --obj "$OBJ"
grep -q "loaded $OBJ" "$TMP/enforcer.log" || fail "--obj $OBJ was not the object loaded"
klctl deny list | grep -q "$A6" || fail "deny rule lost across restart"
klctl rl list | grep -q "$A4" || fail "rl rule lost across restart"
expect_ge "$(src_field $A4 pkts)" "$pk" "counters kept across restart"
expect_eq "$(pings "$NS_A" $B6 3)" 0 "v6 deny enforced after restart"

log "== detach / attach"
pk=$(src_field $A4 pkts)
klctl detach "$VB" || fail "detach"
in_b ip link show "$VB" | grep -q xdp && fail "XDP still attached after detach"
expect_eq "$(pings "$NS_A" $B6 3)" 3 "nothing enforced while detached"
klctl detach "$VB" || fail "second detach is not idempotent"
klctl attach "$VB" || fail "attach"
klctl attach "$VB" || fail "second attach is not idempotent"
in_b ip link show "$VB" | grep -q xdp || fail "XDP not attached after attach"
expect_eq "$(pings "$NS_A" $B6 3)" 0 "deny enforced again after attach"
expect_ge "$(src_field $A4 pkts)" "$pk" "counters kept across detach/attach"
expect_eq "$(pings "$NS_A" $B4 3)" 3 "v4 passes"

log "== stats and reset"
klctl stats | grep -q 'pkts=[0-9]* .*drop_deny=[1-9]' || fail "stats lacks drop_deny: $(klctl stats)"
klctl --json stats | jq -e '.pkts > 0 and .pass > 0' >/dev/null || fail "stats --json"
klctl reset || fail "reset"
expect_eq "$(pings "$NS_A" $B6 3)" 3 "v6 passes after reset"
[ -z "$(klctl --json deny list | jq -r '.entries[]?.ip' 2>/dev/null)" ] || fail "deny list not empty after reset"

log "== --obj with another layout"
# An object without the shield's maps is refused before anything is loaded.
FOREIGN=$BUILD/bpf/floor.bpf.o
[ -f "$FOREIGN" ] || fail "no $FOREIGN (make test-stages builds it)"
out=$(in_b "$BIN/kl-enforcer" --pin-dir "$PIN" --run-dir "$RUN" --obj "$FOREIGN" $(audit_args enforcer) 2>&1)
rc=$?
[ $rc -eq 1 ] || fail "--obj $FOREIGN: exit $rc, want 1: $out"
echo "$out" | grep -q "$FOREIGN lacks a map, setting or program kl-enforcer uses" ||
	fail "--obj $FOREIGN: no clear refusal: $out"
log "ok: --obj of another layout is refused"
echo "x" >"$TMP/not-elf.o"
out=$(in_b "$BIN/kl-enforcer" --pin-dir "$PIN" --run-dir "$RUN" --obj "$TMP/not-elf.o" $(audit_args enforcer) 2>&1)
[ $? -eq 1 ] || fail "--obj not-elf.o: not refused: $out"
echo "$out" | grep -q "cannot open $TMP/not-elf.o" || fail "--obj not-elf.o: no clear refusal: $out"
log "ok: --obj of a file that is no BPF object is refused"

log "== --detach-on-exit"
stop_enforcer
start_enforcer --detach-on-exit
stop_enforcer
in_b ip link show "$VB" | grep -q xdp && fail "XDP still attached after --detach-on-exit"
log "all good"
