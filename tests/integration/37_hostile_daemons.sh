#!/usr/bin/env bash
# For every daemon: with the enforcer, kl-sensor,
# kl-decider and kl-graphd running (the last three as nobody), every socket
# in the run dir is attacked by kl-hostile as nobody and as root (3 x 20
# connect+close, garbage, half headers, half a message, a wrong HELLO).
# Afterwards every daemon is alive, every klctl socket answers, and
# telemetry and flows frames still reach the decider and graphd.
. "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || skip "needs jq"
setup_pair
start_enforcer --sensor-user nobody --graph-user nobody --decider-user nobody
chmod 711 "$TMP"
# Until each daemon has its own role directory (deployment contract), a
# daemon that dropped to nobody must be able to rename a replaced socket
# into the shared run dir.
chmod 0777 "$RUN"
GDIR=$TMP/graph
mkdir -p "$GDIR" && chown nobody: "$GDIR"

"$BIN/kl-graphd" $(audit_args graphd) --graph-store "$GDIR/kliq.db" --run-dir "$RUN" --user nobody --sensor-user nobody \
	--summary-every 1 >>"$TMP/graphd.log" 2>&1 &
GRAPHD_PID=$!
PIDS+=("$GRAPHD_PID")
"$BIN/kl-decider" $(audit_args decider) --run-dir "$RUN" --profile ssh-bastion --dry-run=true --whitelist= \
	--feedback-file= --state-file "$TMP/decider-state.json" --user nobody --sensor-user nobody \
	--tick-log-every 1s >>"$TMP/decider.log" 2>&1 &
DEC_PID=$!
PIDS+=("$DEC_PID")
"$BIN/kl-sensor" $(audit_args sensor) --pin-dir "$PIN" --run-dir "$RUN" --user nobody --interval 1s \
	>>"$TMP/sensor.log" 2>&1 &
PIDS+=("$!")

alive() {
	for p in "$ENF_PID" "$DEC_PID" "$GRAPHD_PID"; do
		kill -0 "$p" 2>/dev/null || fail "daemon pid $p died"
	done
}
retry() { # retry DESC CMD...: poll up to 30 s
	local desc=$1 out=
	shift
	for _ in $(seq 1 60); do
		alive
		if out=$("$@" 2>&1); then
			log "ok: $desc ($(echo "$out" | tail -n 1 | cut -c1-100))"
			return 0
		fi
		sleep 0.5
	done
	fail "$desc: still failing after 30 s: $out"
}
# new_line FILE FROM-LINE REGEX: a line matching REGEX after line FROM-LINE
new_line() { tail -n +"$(($2 + 1))" "$1" | grep -qE "$3"; }
# Frames flow: the decider sees our pinging source, graphd ticks.
frames_flow() {
	local dl gl
	dl=$(wc -l <"$TMP/decider.log") gl=$(wc -l <"$TMP/graphd.log")
	pings "$NS_A" "$B4" 40 >/dev/null &
	local ping_pid=$!
	retry "the decider receives telemetry ($1)" new_line "$TMP/decider.log" "$dl" 'TICK#[0-9]+ .* sources=[1-9]'
	retry "graphd receives flows ($1)" new_line "$TMP/graphd.log" "$gl" 'TICK#[0-9]+ flows='
	wait "$ping_pid"
}
retry "kl-decider is up" klctl sources
retry "kl-graphd is up" klctl graph violations
frames_flow "before"

mapfile -t SOCKS < <(find "$RUN" -type s -name '*.sock' | sort)
[ "${#SOCKS[@]}" -ge 8 ] || fail "expected the 8 sockets of four daemons, found: ${SOCKS[*]}"
for s in "${SOCKS[@]}"; do
	push=
	case $s in *telemetry.sock | *flows.sock | *violations.sock) push=--push ;; esac
	log "nobody: $(setpriv --reuid=nobody --regid=nogroup --clear-groups "$TOOLS/kl-hostile" $push "$s" 2>&1)"
	log "root: $("$TOOLS/kl-hostile" $push "$s" 2>&1)"
done
alive

retry "klctl status enforcer after the attack" klctl status enforcer
retry "klctl sources (decider) after the attack" klctl sources
retry "klctl graph violations (graphd) after the attack" klctl graph violations
retry "the decider link after the attack" \
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$TOOLS/kl-enfclient" --run-dir "$RUN" \
	--timeout 2s state
frames_flow "after the attack"
alive
log "listener replacements: $(cat "$TMP"/*.log | grep -c 'listener stopped accepting')"
log "all good"
