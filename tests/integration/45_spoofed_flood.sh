#!/usr/bin/env bash
# A spoofed SYN flood (hping3 --rand-source, ~5000 pps) next to a legitimate
# client, with kl-sensor and an enforcing kl-decider. Every flood packet
# comes from a source the shield has not admitted: it counts in new_sources
# and claims no slot. The decider sees new sources/s above its trigger and
# sets the aggregate new-source limit (NEWSRC_LIMIT); after the first 10 s
# at least half of the flood is dropped at XDP while the client, a known
# source, keeps >= 95 % of its pings and stays at OBSERVE. Then the
# operator's `klctl new-sources limit|off`. Ns B has no default route: no
# reply to a random address ever leaves the lab.
. "$(dirname "$0")/lib.sh"
command -v hping3 >/dev/null || skip "needs hping3 (scripts/deps.sh)"
command -v jq >/dev/null || skip "needs jq"
id nobody >/dev/null 2>&1 || skip "no user nobody"
[ -x "$BIN/kl-sensor" ] && [ -x "$BIN/kl-decider" ] || fail "missing kl-sensor / kl-decider (run make)"
setup_pair
[ -z "$(ip -n "$NS_B" route show default)" ] || fail "the victim namespace has a default route"
chmod 0755 "$TMP"
mkdir -p "$RUN" && chmod 0755 "$RUN"
DEC=$TMP/dec
mkdir -p "$DEC" && chown nobody "$DEC"
start_enforcer --decider-user nobody
"$BIN/kl-sensor" $(audit_args sensor) --run-dir "$RUN" --pin-dir "$PIN" --interval 1s --user nobody \
	>>"$TMP/sensor.log" 2>&1 &
PIDS+=("$!")
"$BIN/kl-decider" $(audit_args decider) --run-dir "$RUN" --whitelist= --feedback-file= --user nobody --sensor-user nobody \
	--state-file "$DEC/state.json" --dry-run=false >>"$TMP/decider.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 100); do
	[ -S "$RUN/decider.sock" ] && klctl sources >/dev/null 2>&1 && break
	sleep 0.1
done
klctl sources >/dev/null 2>&1 || fail "kl-decider did not come up"

jstat() { klctl --json stats | jq -r ".$1 // 0"; }
limit_burst() { klctl --json status enforcer | jq -r '.new_sources.limit.burst // 0'; }
level_of() { klctl --json sources -n 1000 | jq -r --arg ip "$1" '.[] | select(.ip == $ip) | .level' | head -n 1; }
# wait_new N: polls until new_sources grew by N since $N0 (deadline 30 s).
wait_new() {
	for _ in $(seq 1 300); do
		[ $(($(jstat new_sources) - N0)) -ge "$1" ] && return 0
		sleep 0.1
	done
	fail "new_sources grew by $(($(jstat new_sources) - N0)), want >= $1 (is hping3 sending?)"
}

expect_eq "$(pings "$NS_A" $B4 5)" 5 "the client is known before the flood"
C0=$(jstat src_new)
N0=$(jstat new_sources)
T0=$(date +%s)
# Not through in_a: a function would run in a subshell, and $! would be that
# subshell, not hping3 (which the cleanup must kill). ip netns exec execs.
ip netns exec "$NS_A" hping3 -S -p 80 -i u200 --rand-source -q $B4 >"$TMP/hping3.log" 2>&1 &
FLOOD=$!
PIDS+=("$FLOOD")

log "== the flood is seen as new sources and claims no slot"
wait_new 3000
expect_le "$(($(jstat src_new) - C0))" 30 "slots claimed during 3000 spoofed packets"

log "== the decider sets the new-source limit within 10 s"
for _ in $(seq 1 100); do
	[ "$(limit_burst)" -gt 0 ] && break
	[ $(($(date +%s) - T0)) -lt 10 ] || break
	sleep 0.1
done
expect_eq "$(limit_burst)" 200 "limit set by the decider (its default burst)"
grep -q "spoofed flood: .* new sources/s" "$TMP/decider.log" || fail "decider log: no flood line"
grep -q "new-source limit: 100 pps, burst 200" "$TMP/decider.log" || fail "decider log: no limit line"
while [ $(($(date +%s) - T0)) -lt 10 ]; do sleep 0.2; done

log "== after the first 10 s: a measured window"
N0=$(jstat new_sources)
D0=$(jstat drop_new_sources)
ok=$(pings "$NS_A" $B4 100)
wait_new 3000
seen=$(($(jstat new_sources) - N0)) dropped=$(($(jstat drop_new_sources) - D0))
log "window: $seen spoofed packets, $dropped dropped at XDP, client pings $ok/100"
expect_ge "$((dropped * 2))" "$seen" "at least half of the spoofed flood dropped at XDP"
expect_ge "$ok" 95 "the known client keeps >= 95 % of its pings"
lvl=$(level_of $A4)
[ -z "$lvl" ] || [ "$lvl" = OBSERVE ] || fail "the client is at $lvl, not OBSERVE"
log "ok: the client stays at OBSERVE (${lvl:-untracked})"
expect_eq "$(src_field $A4 drop_rl)" 0 "the client is never limited"
kill "$FLOOD" 2>/dev/null

log "== the operator's lever"
klctl new-sources limit --rate 0 --burst 1 --ttl 5m || fail "new-sources limit"
klctl status enforcer | grep -q 'new sources:.*limit 0 pps, burst 1' || fail "status: $(klctl status enforcer)"
klctl new-sources off || fail "new-sources off"
klctl status enforcer | grep -q 'new sources:.*limit off' || fail "status after off: $(klctl status enforcer)"
log "all good"
