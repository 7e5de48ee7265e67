#!/bin/bash
# The sandboxes, by inspection and by attempt. Each daemon is
# started by hand as root with --user nobody; then, for every thread of
# each: uid not 0, the capability sets (exactly CAP_NET_ADMIN, CAP_PERFMON,
# CAP_BPF for the enforcer, nothing for the others), NoNewPrivs 1 and
# Seccomp 2. The proofs use the test build's KL_TEST_SANDBOX_PROBE switch
# (sandbox/testhooks.c): after its sandbox the decider cannot open a file
# outside its paths (EACCES from Landlock), open an AF_INET socket, ptrace
# or execve; graphd cannot open a network socket; the sensor cannot write a
# map; the enforcer cannot execve or chown. The pins end up owned by the
# enforcer's user, and the enforcer started directly as that user with
# ambient capabilities (as systemd does) reopens them. Last, a leak-checked
# run of the decider under the test build's log-only filter.
. "$(dirname "$0")/lib.sh"

for b in kl-sensor kl-decider kl-graphd; do
	[ -x "$BIN/$b" ] || fail "missing $BIN/$b (run make first)"
done
id nobody >/dev/null 2>&1 || skip "no user nobody"
grep -q KL_TEST_SANDBOX_PROBE "$BIN/kl-decider" || skip "needs the test build (make SAN=1)"
NOBODY=$(id -u nobody)
SIGSYS_RC=$((128 + 31))

setup_pair
chmod 0755 "$TMP"
DEC=$TMP/dec GDIR=$TMP/graph
mkdir -p "$DEC" "$GDIR" && chown nobody "$DEC" "$GDIR"
start_enforcer --decider-user nobody --graph-user nobody --sensor-user nobody

# check_proc NAME PID CAPS: every thread's /proc status.
check_proc() {
	local name=$1 pid=$2 caps=$3 n=0 bad=""
	for st in /proc/"$pid"/task/*/status; do
		n=$((n + 1))
		bad+=$(awk -v caps="$caps" '
			/^Uid:/ { for (i = 2; i <= 5; i++) if ($i == 0) print FILENAME ": " $0 }
			/^CapEff:|^CapPrm:|^CapBnd:/ && $2 != caps { print FILENAME ": " $0 }
			/^CapInh:|^CapAmb:/ && $2 != "0000000000000000" { print FILENAME ": " $0 }
			/^NoNewPrivs:/ && $2 != 1 { print FILENAME ": " $0 }
			/^Seccomp:/ && $2 != 2 { print FILENAME ": " $0 }' "$st")
	done
	[ -z "$bad" ] || fail "$name: $bad"
	log "ok: $name: $n threads, uid $NOBODY, caps $caps, no_new_privs, seccomp filter"
}

ENF_CAPS=000000c000001000 # CAP_NET_ADMIN (12), CAP_PERFMON (38), CAP_BPF (39)
log "== the enforcer"
check_proc kl-enforcer "$ENF_PID" $ENF_CAPS
[ "$(awk '/^Threads:/ { print $2 }' /proc/"$ENF_PID"/status)" -gt 1 ] ||
	fail "expected nng's threads in the enforcer"
grep -q "sandbox: landlock ABI" "$TMP/enforcer.log" || fail "the enforcer has no Landlock"
expect_eq "$(command stat -c %U "$PIN")" nobody "the pin directory belongs to the enforcer's user"
others=$(find "$PIN" -mindepth 1 ! -user nobody | head -n 3)
[ -z "$others" ] || fail "pins not owned by the enforcer's user: $others"
log "ok: every pin belongs to nobody"
klctl deny add 198.18.0.77 >/dev/null || fail "klctl deny add as nobody + 3 caps"
klctl deny del 198.18.0.77 >/dev/null || fail "klctl deny del"

log "== the sensor, the decider, graphd"
"$BIN/kl-sensor" $(audit_args sensor) --run-dir "$RUN" --pin-dir "$PIN" --interval 1s --user nobody \
	>>"$TMP/sensor.log" 2>&1 &
SENSOR_PID=$!
PIDS+=("$SENSOR_PID")
DEC_FLAGS=(--run-dir "$RUN" --profile ssh-bastion --whitelist= --user nobody --sensor-user nobody
	--state-file "$DEC/state.json" --feedback-file "$DEC/feedback.json" --dry-run=true)
"$BIN/kl-decider" $(audit_args decider) "${DEC_FLAGS[@]}" >>"$TMP/decider.log" 2>&1 &
DEC_PID=$!
PIDS+=("$DEC_PID")
GFLAGS=(--graph-store "$GDIR/kliq.db" --run-dir "$RUN" --user nobody --sensor-user nobody)
"$BIN/kl-graphd" $(audit_args graphd) "${GFLAGS[@]}" >>"$TMP/graphd.log" 2>&1 &
GRAPHD_PID=$!
PIDS+=("$GRAPHD_PID")
for _ in $(seq 1 100); do
	grep -q "seccomp allow-list" "$TMP/sensor.log" 2>/dev/null &&
		grep -q "seccomp allow-list" "$TMP/decider.log" 2>/dev/null &&
		grep -q "seccomp allow-list" "$TMP/graphd.log" 2>/dev/null &&
		klctl sources >/dev/null 2>&1 && break
	sleep 0.1
done
for p in "$SENSOR_PID" "$DEC_PID" "$GRAPHD_PID"; do
	kill -0 "$p" 2>/dev/null || fail "a daemon exited early"
done
# The sensor has sent frames through its sandbox when the decider ticks.
for _ in $(seq 1 50); do
	grep -q "TICK#" "$TMP/decider.log" && break
	sleep 0.2
done
check_proc kl-sensor "$SENSOR_PID" 0000000000000000
check_proc kl-decider "$DEC_PID" 0000000000000000
check_proc kl-graphd "$GRAPHD_PID" 0000000000000000
in_a ping -c 2 -i 0.2 -W 1 -q $B4 >/dev/null || fail "traffic through the shield"
for p in "$SENSOR_PID" "$DEC_PID" "$GRAPHD_PID" "$ENF_PID"; do
	kill -0 "$p" 2>/dev/null || fail "a sandboxed daemon died at work"
done

# probe NAME LOG WANT CMD...: run a daemon with KL_TEST_SANDBOX_PROBE set
# (in the environment by the caller) and check how it ended. WANT is
# "sigsys" (killed by the filter) or "refused:TEXT" (the call failed with
# TEXT and the daemon went on; it is stopped here).
probe() {
	local name=$1 logf=$TMP/$2 want=$3 rc pid
	shift 3
	"$@" >>"$logf" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	case $want in
	sigsys)
		wait "$pid"
		rc=$?
		[ "$rc" -eq $SIGSYS_RC ] || fail "$name: expected death by SIGSYS, exit $rc: $(tail -n 5 "$logf")"
		grep -q "sandbox probe .*: attempting" "$logf" || fail "$name: the probe never ran"
		grep -q "sandbox probe .*: ALLOWED" "$logf" && fail "$name: allowed"
		log "ok: $name: killed by seccomp" ;;
	refused:*)
		for _ in $(seq 1 100); do
			grep -q "sandbox probe .*: refused\|sandbox probe .*: ALLOWED" "$logf" && break
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		grep -q "sandbox probe .*: refused: ${want#refused:}" "$logf" ||
			fail "$name: expected refused: ${want#refused:}: $(grep 'sandbox' "$logf" | tail -n 3)"
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		log "ok: $name: refused (${want#refused:})" ;;
	esac
}

log "== proofs by attempt"
# The probing daemons use their own sockets, beside the running ones.
PRUN=$TMP/prun
mkdir -p "$PRUN" && chown nobody "$PRUN"
PDEC=(--run-dir "$PRUN" --profile ssh-bastion --whitelist= --user nobody --sensor-user nobody
	--state-file "$DEC/p-state.json" --feedback-file "$DEC/p-feedback.json" --dry-run=true)
echo secret >"$TMP/outside" && chmod 0644 "$TMP/outside"
KL_TEST_SANDBOX_PROBE="open:$TMP/outside" \
	probe "decider open outside its paths" probe-dec-open.log "refused:Permission denied" \
	"$BIN/kl-decider" $(audit_args decider) "${PDEC[@]}"
for what in inet ptrace execve fork; do
	KL_TEST_SANDBOX_PROBE=$what probe "decider $what" "probe-dec-$what.log" sigsys \
		"$BIN/kl-decider" $(audit_args decider) "${PDEC[@]}"
	rm -f "$PRUN"/*.sock
done
# ASan's report, with its stack and summary, gets through the test build's
# filter (its extra syscalls exist for this).
KL_TEST_SANDBOX_PROBE=asan "$BIN/kl-decider" $(audit_args decider) "${PDEC[@]}" >>"$TMP/probe-dec-asan.log" 2>&1
rc=$?
rm -f "$PRUN"/*.sock
[ "$rc" -eq 1 ] && grep -q "SUMMARY: AddressSanitizer: heap-buffer-overflow" "$TMP/probe-dec-asan.log" ||
	fail "ASan's report under the sandbox: exit $rc: $(tail -n 5 "$TMP/probe-dec-asan.log")"
log "ok: an ASan report gets through the sandbox"
KL_TEST_SANDBOX_PROBE=inet probe "graphd inet socket" probe-graphd.log sigsys \
	"$BIN/kl-graphd" $(audit_args graphd) --graph-store "$GDIR/probe.db" --run-dir "$PRUN" --user nobody --sensor-user nobody
rm -f "$PRUN"/*.sock
KL_TEST_SANDBOX_PROBE=mapwrite probe "sensor map write" probe-sensor.log sigsys \
	"$BIN/kl-sensor" $(audit_args sensor) --run-dir "$PRUN" --pin-dir "$PIN" --interval 1s --user nobody
grep -q "sandbox probe mapwrite: map fd" "$TMP/probe-sensor.log" || fail "the sensor held no map fd to try"
# A second enforcer on its own pins (inside $PIN, so the cleanup takes
# them) and sockets, on no interface.
for what in execve "chown:$PRUN"; do
	rm -rf "$PIN/probe"
	KL_TEST_SANDBOX_PROBE=$what probe "enforcer $what" "probe-enf-${what%%:*}.log" sigsys \
		nsenter --net=/run/netns/"$NS_B" "$BIN/kl-enforcer" $(audit_args enforcer) --pin-dir "$PIN/probe" --run-dir "$PRUN" \
		--obj "$OBJ" --user nobody --decider-user nobody --graph-user nobody --sensor-user nobody
	rm -f "$PRUN"/*.sock
done
rm -rf "$PIN/probe"

log "== the enforcer started as its user with ambient capabilities (systemd's way)"
stop_enforcer
nsenter --net=/run/netns/"$NS_B" setpriv --reuid=nobody --regid=nogroup --clear-groups \
	--inh-caps=+bpf,+net_admin,+perfmon --ambient-caps=+bpf,+net_admin,+perfmon \
	"$BIN/kl-enforcer" $(audit_args enforcer) --iface "$VB" --pin-dir "$PIN" \
	--run-dir "$RUN" --obj "$OBJ" --decider-user nobody --graph-user nobody --sensor-user nobody \
	>>"$TMP/enforcer-user.log" 2>&1 &
ENF_PID=$!
PIDS+=("$ENF_PID")
for _ in $(seq 1 100); do
	klctl status enforcer >/dev/null 2>&1 && break
	kill -0 "$ENF_PID" 2>/dev/null || fail "kl-enforcer as nobody: $(tail -n 5 "$TMP/enforcer-user.log")"
	sleep 0.1
done
klctl status enforcer >/dev/null 2>&1 || fail "kl-enforcer as nobody did not come up"
for st in /proc/"$ENF_PID"/task/*/status; do
	awk -v c=$ENF_CAPS '/^CapEff:|^CapPrm:/ && $2 != c { print "bad " $0 }
		/^CapAmb:|^CapInh:/ && $2 != "0000000000000000" { print "bad " $0 }
		/^Seccomp:/ && $2 != 2 { print "bad " $0 }' "$st" | grep -q bad && fail "$st: $(cat "$st")"
done
log "ok: the enforcer reopened its pins as nobody with exactly its three capabilities"
stop_enforcer
expect_fail "without the capabilities it says what is missing" 1 \
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$BIN/kl-enforcer" $(audit_args enforcer) --pin-dir "$PIN" \
	--run-dir "$RUN" --obj "$OBJ"
echo "$LAST_OUT" | grep -q "AmbientCapabilities=" || fail "unclear message: $LAST_OUT"

log "== leaks, in a run whose filter logs instead of killing (test build only)"
kill "$DEC_PID" && wait "$DEC_PID"
rm -f "$RUN"/decider.sock "$RUN"/telemetry.sock "$RUN"/violations.sock
KL_TEST_SECCOMP_LOG=1 ASAN_OPTIONS=detect_leaks=1 "$BIN/kl-decider" $(audit_args decider) "${DEC_FLAGS[@]}" \
	>>"$TMP/decider-leaks.log" 2>&1 &
DEC_PID=$!
PIDS+=("$DEC_PID")
for _ in $(seq 1 100); do
	grep -q "TICK#\|deciding every" "$TMP/decider-leaks.log" && break
	sleep 0.1
done
kill "$DEC_PID"
wait "$DEC_PID"
rc=$?
grep -q "LeakSanitizer" "$TMP/decider-leaks.log" && fail "leaks: $(grep -A5 LeakSanitizer "$TMP/decider-leaks.log")"
[ "$rc" -eq 0 ] || fail "the leak-checked decider exited $rc: $(tail -n 5 "$TMP/decider-leaks.log")"
log "ok: no leaks in the decider"
log "all good"
