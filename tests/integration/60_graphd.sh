#!/usr/bin/env bash
# kl-graphd end to end: real HTTP traffic from namespace A to a server in
# namespace B is seen by the shield's flow telemetry, sent by kl-sensor,
# learned by kl-graphd (unprivileged) into its SQLite graph; the graph is
# frozen and kl-graphd restarted in frozen-enforce, which pushes the frozen
# edges to the enforcer's edge allow map; with `klctl tuple-enforce allow`
# the known path keeps working, while the same client on a new port is
# dropped at XDP (drop_edge rises), reported as a violation (block) and
# denied as an edge, while the decider leaves the source alone. Then the
# operator's recovery: approve-ip.
# A second client that is rate-limited while the graph learns is not
# learned from: the sensor flags its flows as restricted.
. "$(dirname "$0")/lib.sh"
for b in kl-sensor kl-graphd; do [ -x "$BIN/$b" ] || fail "missing $BIN/$b (run make first)"; done
command -v jq >/dev/null || skip "needs jq"
command -v curl >/dev/null || skip "needs curl"
command -v python3 >/dev/null || skip "needs python3 (the HTTP servers)"
setup_pair
start_enforcer --features graph-enforce --sensor-user nobody --graph-user nobody

# graphd runs as nobody: its database directory must be its own.
chmod 711 "$TMP"
GDIR=$TMP/graph
mkdir -p "$GDIR" && chown nobody: "$GDIR"
DB=$GDIR/kliq.db
# Fast learning: 3 ticks in 2 windows of 2 s and 4 s of age.
GFLAGS=(--graph-store "$DB" --run-dir "$RUN" --user nobody --sensor-user nobody $(audit_args graphd) --graph-min-seen 3
	--graph-min-windows 2 --graph-min-age 4s --graph-promote-interval 2s --graph-window 2s
	--summary-every 5 --graph-rule-ttl 10m)

start_graphd() {
	"$BIN/kl-graphd" "${GFLAGS[@]}" "$@" >>"$TMP/graphd.log" 2>&1 &
	GRAPHD_PID=$!
	PIDS+=("$GRAPHD_PID")
	for _ in $(seq 1 50); do
		[ -S "$RUN/graphd/flows.sock" ] && [ -S "$RUN/graphd/graphd.sock" ] && return 0
		kill -0 "$GRAPHD_PID" 2>/dev/null || fail "kl-graphd exited early"
		sleep 0.1
	done
	fail "kl-graphd did not come up"
}
stop_graphd() {
	kill "$GRAPHD_PID" 2>/dev/null
	wait "$GRAPHD_PID" 2>/dev/null
	rm -f "$RUN/graphd/flows.sock" "$RUN/graphd/graphd.sock"
}

start_graphd
"$BIN/kl-sensor" --pin-dir "$PIN" --run-dir "$RUN" --user nobody --interval 1s $(audit_args sensor) \
	--summary-every 5 >>"$TMP/sensor.log" 2>&1 &
PIDS+=("$!")
# The decider (dry run: it decides and logs, enforces nothing) receives
# graphd's violations on violations.sock.
"$BIN/kl-decider" --run-dir "$RUN" --profile ssh-bastion --dry-run=true --whitelist= $(audit_args decider) \
	--feedback-file= --state-file "$TMP/decider-state.json" --user nobody --tick-log-every 1s \
	>>"$TMP/decider.log" 2>&1 &
PIDS+=("$!")

log "== kl-graphd runs unprivileged"
wait_for 10 "kl-graphd drops root" dropped_root "$GRAPHD_PID"
for u in $(awk '/^Uid:/ { print $2, $3, $4, $5 }' /proc/$GRAPHD_PID/status); do
	[ "$u" -ne 0 ] || fail "kl-graphd kept uid 0"
done
expect_eq "$(awk '/^CapEff:/ { print $2 }' /proc/$GRAPHD_PID/status)" 0000000000000000 "kl-graphd CapEff"

log "== HTTP servers in B on 8080 (known) and 9090 (never used while learning)"
for port in 8080 9090; do
	ip netns exec "$NS_B" python3 -m http.server "$port" --bind $B4 >>"$TMP/http$port.log" 2>&1 &
	PIDS+=("$!")
done
# Wait for both to listen without sending them a packet: 9090 must stay
# unknown to the graph.
both_listen() { [ "$(ip netns exec "$NS_B" ss -Hltn "( sport = :8080 or sport = :9090 )" | wc -l)" -ge 2 ]; }
wait_for 10 "the HTTP servers listening on 8080 and 9090" both_listen

get() { in_a curl -s -o /dev/null -w '%{http_code}' -m 2 "http://$B4:$1/"; }
# C: a second address in A, rate-limited by the operator (generously: its
# requests still pass, but a rate-limited source is not learned from).
C4=198.18.0.3
ip -n "$NS_A" addr add $C4/24 dev "$VA" || fail "addr add $C4"
klctl rl set-ip $C4 --rate 10000 --burst 10000 >/dev/null || fail "klctl rl set-ip $C4"
get_c() { in_a curl -s -o /dev/null -w '%{http_code}' -m 2 --interface $C4 "http://$B4:$1/"; }

log "== learning: A and the rate-limited C fetch from 8080 for ~12 s"
for _ in $(seq 1 40); do
	get 8080 >/dev/null
	get_c 8080 >/dev/null
	sleep 0.3
done
expect_eq "$(get_c 8080)" 200 "C's requests pass under its rate limit"
expect_ge "$(src_field $C4 pkts)" 40 "C's packets seen by the shield"
# edge_state IP PORT: the graph's state of IP -> PORT/tcp (empty: none).
edge_state() {
	"$BIN/kl-graphd" --graph-store "$DB" export --format json 2>/dev/null |
		jq -r --arg ip "$1" --argjson p "$2" '.edges[] | select(.src == $ip and .port == $p and .proto == "tcp") | .state'
}
edge_learned() { [ "$(edge_state "$1" "$2")" = learned ]; }
# The last window closes and graphd promotes on its next tick.
wait_for 15 "A -> 8080/tcp learned: $(edge_state $A4 8080)" edge_learned $A4 8080
wait_for 10 "a TICK line counting suspicious flows" grep -q "suspicious=[1-9]" "$TMP/graphd.log"
EXPORT=$("$BIN/kl-graphd" --graph-store "$DB" export --format json 2>"$TMP/export.err") ||
	fail "export next to the running daemon: $(cat "$TMP/export.err")"
state=$(echo "$EXPORT" | jq -r --arg ip $A4 '.edges[] | select(.src == $ip and .port == 8080 and .proto == "tcp") | .state')
log "graph: $(echo "$EXPORT" | jq -c "[.edges[] | [.src, .port, .proto, .state, .seen]]")"
expect_eq "$state" learned "A -> 8080/tcp learned"
[ "$(echo "$EXPORT" | jq --arg ip $A4 '[.edges[] | select(.src == $ip and .port == 9090)] | length')" = 0 ] ||
	fail "9090 was learned: $EXPORT"
expect_eq "$(echo "$EXPORT" | jq --arg ip $C4 '[.edges[] | select(.src == $ip)] | length')" 0 \
	"edges of the rate-limited $C4 (not even candidates)"

log "== review and freeze, live through klctl graph"
klctl graph freeze --dry-run >"$TMP/dry.txt" 2>&1 || fail "klctl graph freeze --dry-run: $(cat "$TMP/dry.txt")"
grep -q "freeze  $A4 8080/tcp" "$TMP/dry.txt" || fail "dry run lacks the edge: $(cat "$TMP/dry.txt")"
klctl --json graph export | jq -e --arg ip $A4 '.edges[] | select(.src == $ip and .port == 8080 and .state == "learned")' \
	>/dev/null || fail "klctl graph export: $(klctl graph export)"
expect_fail "an offline freeze next to the running daemon is refused" 1 "$BIN/kl-graphd" --graph-store "$DB" freeze
echo "$LAST_OUT" | grep -q "in use by a running kl-graphd" || fail "unclear refusal: $LAST_OUT"
klctl graph freeze >"$TMP/freeze.txt" 2>&1 || fail "klctl graph freeze: $(cat "$TMP/freeze.txt")"
log "$(head -n 1 "$TMP/freeze.txt")"
"$BIN/kl-graphd" --graph-store "$DB" backup "$TMP/frozen-backup.db" >/dev/null || fail "backup next to the running daemon"
stop_graphd
state=$("$BIN/kl-graphd" --graph-store "$DB" export --format json |
	jq -r --arg ip $A4 '.edges[] | select(.src == $ip and .port == 8080) | .state')
expect_eq "$state" frozen "the freeze is in the database"
[ "$(jq -r '.edges[] | select(.port == 8080) | .state' <("$BIN/kl-graphd" --graph-store "$TMP/frozen-backup.db" export --format json))" = frozen ] ||
	fail "the backup lacks the frozen edge"
# A damaged edge baseline row (written at exit) refuses the edge baselines,
# not the graph: the daemon below starts and enforces without them.
nbl=$(python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
n = c.execute("UPDATE edge_baselines SET ewma_pps = -1 WHERE port = 8080").rowcount
c.commit()
print(n)' "$DB") || fail "cannot damage an edge baseline row in $DB"
expect_eq "$nbl" 1 "edge baseline rows of 8080/tcp written at exit"

log "== frozen-enforce: the baseline goes to the edge allow map"
start_graphd --graph-mode frozen-enforce
grep -q "edge baselines refused, starting without them: graph db $DB: edge_baselines ($A4, 8080, 6)" \
	"$TMP/graphd.log" || fail "no refusal of the damaged edge baseline: $(grep -i baseline "$TMP/graphd.log")"
log "ok: a damaged edge baseline row is refused by name; kl-graphd runs without edge baselines"
# edge_rule KIND PORT: graphd's edge KIND rule for A4 -> PORT is in the enforcer.
edge_rule() {
	klctl --json edge list | jq -e --arg ip $A4 --arg k "$1" --argjson p "$2" \
		'.entries[] | select(.kind == $k and .ip == $ip and .port == $p and .origin == "graphd")'
}
wait_for 10 "graphd's edge allow rule for $A4 8080/tcp" edge_rule allow 8080
klctl --json edge list | jq -e --arg ip $A4 \
	'.entries[] | select(.kind == "allow" and .ip == $ip and .port == 8080 and .origin == "graphd" and .expires_in_ms > 0)' \
	>/dev/null || fail "no graphd allow rule for $A4 8080/tcp: $(klctl edge list)"
log "ok: edge allow $A4 8080/tcp from graphd, with a TTL"
# Started as root, graphd dials the enforcer only after it dropped to its
# user: the enforcer's peer check and audit name that user, never root.
grep -q "CHANGE who=graphd(uid=$(id -u nobody),pid=[0-9]*) action=edge-rules" "$TMP/enforcer.log" ||
	fail "the enforcer did not see graphd's rules from its user: $(grep -m1 'who=graphd' "$TMP/enforcer.log")"
grep -q "who=graphd(uid=0," "$TMP/enforcer.log" && fail "graphd talked to the enforcer as root"
klctl tuple-enforce allow >/dev/null || fail "tuple-enforce allow"

log "== the known path keeps working"
expect_eq "$(get 8080)" 200 "A -> 8080 under tuple-enforce allow"

log "== the same client on a new port is dropped at XDP"
e0=$(src_field $A4 drop_edge)
code=$(get 9090)
[ "$code" != 200 ] || fail "A -> 9090 got through"
drop_edge_above() { [ "$(src_field $A4 drop_edge)" -gt "${e0:-0}" ]; }
wait_for 10 "drop_edge of $A4 rising above ${e0:-0}" drop_edge_above
# A sensor tick and a graphd tick later, the violation is reported.
wait_for 10 "a VIOLATION line for $A4 9090/tcp in the graphd log" \
	grep -q "VIOLATION src=$A4 port=9090 proto=tcp mode=frozen-enforce action=block" "$TMP/graphd.log"
ticks_at_violation=$(grep -c "TICK#" "$TMP/decider.log")
e1=$(src_field $A4 drop_edge)
expect_ge "$(( ${e1:-0} - ${e0:-0} ))" 1 "drop_edge rose for $A4"
grep -q "VIOLATION src=$A4 port=9090 proto=tcp mode=frozen-enforce action=block" "$TMP/graphd.log" ||
	fail "no VIOLATION line in the graphd log"
log "ok: VIOLATION logged"
# One violation at low severity is no evidence against the source
# (docs/security.md, "Graph violations and spoofing"): the decider does not
# move it (62_graph_spoof.sh covers the decider's side in full). It has had
# its say once it ticked twice after graphd reported the violation (it logs
# a TICK line every tick here).
wait_for 10 "two decider ticks after the violation" \
	log_count_ge "$TMP/decider.log" "TICK#" $((ticks_at_violation + 2))
grep -q "STATE $A4 " "$TMP/decider.log" &&
	fail "one violation moved $A4: $(grep -E "STATE" "$TMP/decider.log" | tail -5)"
log "ok: one frozen-enforce violation did not move $A4 in kl-decider"
V=$("$BIN/kl-graphd" --graph-store "$DB" violations --format json) || fail "violations next to the running daemon"
echo "$V" | jq -e --arg ip $A4 '.violations[] | select(.src == $ip and .port == 9090 and .action == "block")' \
	>/dev/null || fail "violations lacks 9090: $V"
wait_for 10 "graphd's edge deny for the violation of $A4 9090/tcp" edge_rule deny 9090
log "ok: edge deny $A4 9090/tcp from graphd"
expect_eq "$(get 8080)" 200 "A -> 8080 still works after the violation"

log "== recovery through klctl graph"
# The seeds' spellings: export --violations, --format json after the command.
V=$(klctl graph export --violations --since 10m --format json) || fail "klctl graph export --violations"
echo "$V" | jq -e --arg ip $A4 '.violations[] | select(.src == $ip and .port == 9090 and .action == "block")' \
	>/dev/null || fail "klctl graph export --violations lacks 9090: $V"
klctl graph approve-ip $A4 >"$TMP/approve.txt" 2>&1 || fail "klctl graph approve-ip: $(cat "$TMP/approve.txt")"
answers() { [ "$(get "$1")" = 200 ]; }
wait_for 10 "A -> 9090 answering after approve-ip" answers 9090
expect_eq "$(get 9090)" 200 "A -> 9090 after approve-ip"
klctl graph export --format json | jq -e --arg ip $A4 '.edges[] | select(.src == $ip and .port == 9090 and .state == "approved")' \
	>/dev/null || fail "klctl graph export lacks the approved edge"
klctl --json edge list | jq -e --arg ip $A4 '[.entries[] | select(.kind == "deny" and .ip == $ip and .port == 9090)] | length == 0' \
	>/dev/null || fail "the violation's edge deny is still there: $(klctl edge list)"
log "$(cat "$TMP/approve.txt")"
n=$(klctl --json graph violations | jq --arg ip $A4 '[.violations[] | select(.src == $ip and .port == 9090)] | length')
expect_eq "$n" 1 "the violation is stored once"
klctl tuple-enforce off >/dev/null
log "PASS"
