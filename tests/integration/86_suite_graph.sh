#!/usr/bin/env bash
# Scenario 9 of the suite (README, Tests): graphd learns the lab's real
# traffic (the client's requests to nginx), the graph is frozen and graphd
# restarted in frozen-enforce. A new path from the known client is dropped
# at XDP while its known path keeps working. When the same client then
# hammers the new path it is blocked source-wide; the operator's
# `klctl graph approve-ip` releases that block within two decider ticks
# (graphd tells the decider), long before the block's TTL.
. "$(dirname "$0")/lab.sh"
command -v hping3 >/dev/null || skip "needs hping3 (scripts/deps.sh installs it)"
BLOCK_TTL=300
ENF_ARGS=(--features graph-enforce)
# Fast learning: 3 ticks in 2 windows of 2 s and 4 s of age (60_graphd.sh).
GRAPHD_ARGS=(--graph-min-seen 3 --graph-min-windows 2 --graph-min-age 4s --graph-promote-interval 2s
	--graph-window 2s --graph-rule-ttl 10m)
DEC_ARGS=("${LAB_DEC_ARGS[@]}" --block-ttl ${BLOCK_TTL}s)
start_suite
lab_client

edge_state() { # SRC PORT -> its state in the live graph
	klctl --json graph export | jq -r --arg ip "$1" --argjson p "$2" \
		'.edges[] | select(.src == $ip and .port == $p and .proto == "tcp") | .state' | head -n 1
}
edge_is() { [ "$(edge_state "$1" "$2")" = "$3" ]; }

log "== learn the client's real traffic, freeze, frozen-enforce"
wait_for 60 "the client's path to nginx is learned" edge_is $C4 80 learned
klctl graph freeze >"$TMP/freeze.txt" 2>&1 || fail "klctl graph freeze: $(cat "$TMP/freeze.txt")"
log "$(head -n 1 "$TMP/freeze.txt")"
kill "${DPID[graphd]}"
wait "${DPID[graphd]}" 2>/dev/null
lab_graphd --graph-mode frozen-enforce
allow_pushed() {
	klctl --json edge list | jq -e --arg ip $C4 \
		'.entries[] | select(.kind == "allow" and .ip == $ip and .port == 80 and .origin == "graphd")' \
		>/dev/null
}
wait_for 20 "graphd pushes the frozen edge to the allow map" allow_pushed
klctl tuple-enforce allow >/dev/null || fail "klctl tuple-enforce allow"
T0=$(date +%s)

log "== a new path from the known client is dropped at XDP, its known path works"
e0=$(src_field $C4 drop_edge)
code=$(ip netns exec "$NS_C" curl -s -o /dev/null -w '%{http_code}' -m 2 "http://$B4:8080/")
[ "$code" = 000 ] || fail "the client's new path got an answer ($code)"
wait_for 10 "drop_edge rises for the client" src_ge $C4 drop_edge $((${e0:-0} + 1))
wait_for 10 "graphd reports the violation" \
	grep -q "VIOLATION src=$C4 port=8080 proto=tcp mode=frozen-enforce" "$TMP/graphd.log"
sleep 2 # two client requests after the violation
client_all_ok "$T0" || fail "the known path failed: $(client_stats "$T0" 99999999999)"
expect_eq "$(moves_of $C4)" "" "one violation did not move the client in the decider"

log "== the client hammers the new path: blocked source-wide"
ip netns exec "$NS_C" timeout 60 hping3 -S -p 8080 -i u500 -q $B4 >>"$TMP/hping3.log" 2>&1 &
HP_PID=$!
PIDS+=("$HP_PID")
wait_level $C4 BLOCK 50
kill "$HP_PID" 2>/dev/null
wait "$HP_PID" 2>/dev/null
code=$(ip netns exec "$NS_C" curl -s -o /dev/null -w '%{http_code}' -m 1 "http://$B4/")
expect_eq "$code" 000 "the blocked client's request to the known path"
expect_eq "$(level_of $C4)" BLOCK "the block holds after the burst (TTL ${BLOCK_TTL}s)"

log "== graph approve-ip releases the block within two ticks"
klctl graph approve-ip $C4 >"$TMP/approve.txt" 2>&1 || fail "klctl graph approve-ip: $(cat "$TMP/approve.txt")"
T_APPROVE=$SECONDS
released() { case $(level_of $C4) in "" | OBSERVE) return 0 ;; esac; return 1; }
wait_for 10 "the decider releases the client" released
wait_for 5 "the client's deny entry is removed" entries_eq deny $C4 0
log "ok: released $((SECONDS - T_APPROVE)) s after approve-ip (block TTL ${BLOCK_TTL}s)"
told=$(grep -m1 "APPROVED $C4: kl-decider told" "$TMP/graphd.log" | cut -c1-23)
done_at=$(grep -m1 "APPROVED $C4 in the graph: BLOCK->OBSERVE" "$TMP/decider.log" | cut -c1-23)
[ -n "$told" ] && [ -n "$done_at" ] || fail "no APPROVED lines (graphd '$told', decider '$done_at')"
ms() { date -d "$1" +%s%3N; }
expect_le "$(($(ms "$done_at") - $(ms "$told")))" 2000 "ms from graphd's APPROVED to the release (two 1 s ticks)"
grep -q "ACTION ip=$C4 BLOCK->OBSERVE dry_run=false" "$TMP/decider.log" ||
	fail "no ACTION line for the release: $(grep "ip=$C4" "$TMP/decider.log" | tail -3)"
T1=$(date +%s)
sleep 2
client_all_ok "$T1" || fail "the client's requests after the release: $(client_stats "$T1" 99999999999)"
expect_eq "$(edge_state $C4 8080)" approved "the new path is approved in the graph"
log "all good"
