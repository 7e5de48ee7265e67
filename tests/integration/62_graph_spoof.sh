#!/usr/bin/env bash
# Spoofed graph violations never block a client (docs/security.md,
# "Graph violations and spoofing"). Client A learns the path
# A -> B:8080/tcp, the graph is frozen and enforced (tuple-enforce allow),
# and an enforcing kl-decider listens to graphd's violations. Then a
# blind spoofer sends 20 SYNs over 10 s with A's address to 20 ports outside
# the baseline: each is dropped at XDP and reported by graphd as a
# frozen-enforce violation, the decider counts them, and A is never moved
# off OBSERVE: its baseline path keeps working throughout and after.
. "$(dirname "$0")/lib.sh"
for b in kl-sensor kl-graphd kl-decider; do [ -x "$BIN/$b" ] || fail "missing $BIN/$b (run make first)"; done
[ -x "$TOOLS/kl-pktgen" ] || fail "missing $TOOLS/kl-pktgen"
id nobody >/dev/null 2>&1 || skip "no user nobody"
command -v jq >/dev/null || skip "needs jq"
command -v curl >/dev/null || skip "needs curl"
command -v python3 >/dev/null || skip "needs python3 (the HTTP server)"
setup_pair
chmod 711 "$TMP"
start_enforcer --features graph-enforce --sensor-user nobody --graph-user nobody --decider-user nobody

GDIR=$TMP/graph
mkdir -p "$GDIR" && chown nobody: "$GDIR"
DEC=$TMP/dec
mkdir -p "$DEC" && chown nobody "$DEC"
GFLAGS=(--graph-store "$GDIR/kliq.db" --run-dir "$RUN" --user nobody --sensor-user nobody --graph-min-seen 3
	--graph-min-windows 2 --graph-min-age 4s --graph-promote-interval 2s --graph-window 2s
	--summary-every 5 --graph-rule-ttl 10m --graph-violation-every 1s)
# Sockets live in $RUN/<role>/ (or, before that layout, in $RUN itself).
sock() { [ -S "$RUN/$1/$2" ] || [ -S "$RUN/$2" ]; }
start_graphd() {
	"$BIN/kl-graphd" $(audit_args graphd) "${GFLAGS[@]}" "$@" >>"$TMP/graphd.log" 2>&1 &
	GRAPHD_PID=$!
	PIDS+=("$GRAPHD_PID")
	for _ in $(seq 1 50); do
		sock graphd flows.sock && sock graphd graphd.sock && klctl graph export >/dev/null 2>&1 &&
			return 0
		kill -0 "$GRAPHD_PID" 2>/dev/null || fail "kl-graphd exited early"
		sleep 0.1
	done
	fail "kl-graphd did not come up"
}
stop_graphd() {
	kill "$GRAPHD_PID" 2>/dev/null
	wait "$GRAPHD_PID" 2>/dev/null
	rm -f "$RUN/flows.sock" "$RUN/graphd.sock" "$RUN/graphd/flows.sock" "$RUN/graphd/graphd.sock"
}

start_graphd
"$BIN/kl-sensor" $(audit_args sensor) --pin-dir "$PIN" --run-dir "$RUN" --user nobody --interval 1s \
	--summary-every 5 >>"$TMP/sensor.log" 2>&1 &
PIDS+=("$!")
# Enforcing (not a dry run), strict profile with a block gate; soft-at 3 so
# that the strikes violations may add (up to soft-at - 1 = 2) show.
"$BIN/kl-decider" $(audit_args decider) --run-dir "$RUN" --profile ssh-bastion --dry-run=false --whitelist= \
	--feedback-file= --state-file "$DEC/state.json" --user nobody --sensor-user nobody \
	--soft-at 3 --hard-at 4 >>"$TMP/decider.log" 2>&1 &
DEC_PID=$!
PIDS+=("$DEC_PID")
for _ in $(seq 1 100); do
	klctl sources >/dev/null 2>&1 && break
	kill -0 "$DEC_PID" 2>/dev/null || fail "kl-decider exited early"
	sleep 0.1
done

in_b python3 -m http.server 8080 --bind $B4 >>"$TMP/http.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 50); do
	[ "$(in_b ss -Hltn "( sport = :8080 )" | wc -l)" -ge 1 ] && break
	sleep 0.2
done
get() { in_a curl -s -o /dev/null -w '%{http_code}' -m 2 "http://$B4:8080/"; }

log "== learning: A fetches from 8080 until the edge is learned"
learned=
for _ in $(seq 1 60); do
	get >/dev/null
	sleep 0.3
	learned=$("$BIN/kl-graphd" --graph-store "$GDIR/kliq.db" export --format json 2>/dev/null |
		jq -r --arg ip $A4 '.edges[] | select(.src == $ip and .port == 8080 and .proto == "tcp") | .state')
	[ "$learned" = learned ] && break
done
expect_eq "$learned" learned "A -> 8080/tcp learned"
klctl graph freeze >"$TMP/freeze.txt" 2>&1 || fail "klctl graph freeze: $(cat "$TMP/freeze.txt")"
stop_graphd
start_graphd --graph-mode frozen-enforce
for _ in $(seq 1 50); do
	klctl --json edge list | jq -e --arg ip $A4 \
		'.entries[] | select(.kind == "allow" and .ip == $ip and .port == 8080 and .origin == "graphd")' \
		>/dev/null && break
	sleep 0.2
done
klctl --json edge list | jq -e --arg ip $A4 '.entries[] | select(.kind == "allow" and .ip == $ip and .port == 8080)' \
	>/dev/null || fail "no graphd allow rule for $A4 8080/tcp: $(klctl edge list)"
klctl tuple-enforce allow >/dev/null || fail "tuple-enforce allow"
expect_eq "$(get)" 200 "A -> 8080 under tuple-enforce allow"

log "== a blind spoofer: 20 SYNs over 10 s from A's address to ports 20000..20019"
e0=$(src_field $A4 drop_edge)
in_a "$TOOLS/kl-pktgen" --src $A4 --dst $B4 --syn --port 20000 --port-step 1 --rate 2 \
	--count 20 --duration 11s >>"$TMP/pktgen.log" 2>&1 &
SPOOF_PID=$!
PIDS+=("$SPOOF_PID")
level_of() { klctl --json sources -n 1000 | jq -r --arg ip $A4 '.[] | select(.ip == $ip) | .level' | head -n 1; }
strikes_max=0
# Watch A for the spoof's 10 s and 4 s after it (a sensor, graphd and
# decider tick each): never above OBSERVE, the baseline path answers.
end=$((SECONDS + 30))
spoof_done_at=
while [ $SECONDS -lt $end ]; do
	lvl=$(level_of)
	[ -z "$lvl" ] || [ "$lvl" = OBSERVE ] || fail "A moved to $lvl: $(grep -E "STATE|ACTION" "$TMP/decider.log" | tail -5)"
	s=$(klctl --json sources -n 1000 | jq -r --arg ip $A4 '.[] | select(.ip == $ip) | .strikes' | head -n 1)
	[ -n "$s" ] && [ "$s" -gt "$strikes_max" ] && strikes_max=$s
	expect_eq "$(get)" 200 "A -> 8080 while spoofed" >/dev/null
	if [ -z "$spoof_done_at" ] && ! kill -0 "$SPOOF_PID" 2>/dev/null; then
		spoof_done_at=$SECONDS
		end=$((SECONDS + 4))
	fi
	sleep 0.5
done
[ -n "$spoof_done_at" ] || fail "kl-pktgen did not finish"
wait "$SPOOF_PID" || fail "kl-pktgen failed: $(cat "$TMP/pktgen.log")"
log "ok: A stayed at OBSERVE and 8080 answered throughout"

e1=$(src_field $A4 drop_edge)
expect_ge "$(( ${e1:-0} - ${e0:-0} ))" 20 "spoofed SYNs dropped at XDP (drop_edge of $A4)"
nviol=$(grep -c "VIOLATION src=$A4 port=200[01][0-9] proto=tcp mode=frozen-enforce" "$TMP/graphd.log")
expect_ge "$nviol" 10 "frozen-enforce violations reported by graphd"
# The decider got them and counted them as strikes, below soft-at.
expect_ge "$strikes_max" 1 "strikes the decider counted for $A4"
expect_le "$strikes_max" 2 "strikes stay below soft-at"
grep -q "STATE $A4 " "$TMP/decider.log" && fail "the decider changed A's level: $(grep "STATE $A4" "$TMP/decider.log")"
klctl --json deny list 2>/dev/null | jq -e --arg ip $A4 '[.. | objects | select(.ip? == $ip)] | length == 0' \
	>/dev/null || fail "an enforcement entry for $A4: $(klctl deny list)"
expect_eq "$(get)" 200 "A -> 8080 after the spoof"
klctl tuple-enforce off >/dev/null
log "PASS"
