# Shared helpers for the network-namespace scenarios. Source it; it sets a
# trap that removes every namespace, veth, pin directory, process and temp
# directory the scenario created, also on failure.
#
# Topology (per scenario, names unique to this process):
#   ns $NS_A (client/attacker)  veth $VA 198.18.0.1/24 fd00:6b6c::1/64
#   ns $NS_B (protected host)   veth $VB 198.18.0.2/24 fd00:6b6c::2/64   <- XDP shield
set -u

BUILD=${BUILD:-build}
BIN=$BUILD/bin
TOOLS=$BUILD/tools
OBJ=$BUILD/bpf/shield.bpf.o
ID=$$
NS_A=kla$ID
NS_B=klb$ID
VA=kva$ID
VB=kvb$ID
A4=198.18.0.1 B4=198.18.0.2
A6=fd00:6b6c::1 B6=fd00:6b6c::2
PIN=/sys/fs/bpf/kltest$ID
TMP=$(mktemp -d /tmp/kltest.XXXXXX)
RUN=$TMP/run
PIDS=()
# The daemons run under a kill-process seccomp filter; LeakSanitizer needs
# ptrace at exit, so they run without it here. 15_sandbox.sh checks their
# leaks in a run whose filter only logs (a test-build switch); klctl and
# the tools keep the caller's settings.
KL_ASAN_CALLER=${ASAN_OPTIONS:-}
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
# The daemons drop to this user when started as root (every role).
KL_USER=${KL_USER:-nobody}
EXTRA_NS=() # namespaces beyond A and B (start_suite's lab)
# Run by the trap once every process of the scenario is gone and its files
# are removed (lab.sh's service users: userdel refuses a user still running).
CLEANUP_HOOKS=()
# A prefix that starts kl-enforcer as its unit does, as its own user with
# ambient capabilities (lab.sh's service users). Empty: it starts as root and
# drops to $KL_USER itself, in a run dir that user owns.
ENF_EXEC=()

log() { echo "[$(date +%T)] $*"; }
fail() { echo "FAIL: $*" >&2; dump_logs; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }

dump_logs() {
	for f in "$TMP"/*.log; do
		[ -f "$f" ] || continue
		echo "---- $(basename "$f") (last 30 lines)" >&2
		tail -n 30 "$f" >&2
	done
}

cleanup() {
	local rc=$?
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	ip netns del "$NS_A" 2>/dev/null
	ip netns del "$NS_B" 2>/dev/null
	for n in "${EXTRA_NS[@]}"; do ip netns del "$n" 2>/dev/null; done
	ip link del "$VA" 2>/dev/null
	rm -rf "$PIN" 2>/dev/null
	rm -rf "$TMP"
	for h in "${CLEANUP_HOOKS[@]}"; do "$h"; done
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" -eq 0 ] || skip "needs root"
# Pins need a bpffs; systemd mounts one, a bare machine may not have it.
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf || fail "cannot mount bpffs on /sys/fs/bpf"
[ -x "$BIN/kl-enforcer" ] || fail "missing $BIN/kl-enforcer (run make first)"

in_a() { ip netns exec "$NS_A" "$@"; }
# nsenter keeps the mount namespace, so /sys/fs/bpf pins stay visible.
in_b() { nsenter --net=/run/netns/"$NS_B" "$@"; }

setup_pair() {
	ip netns add "$NS_A" || fail "netns add"
	ip netns add "$NS_B" || fail "netns add"
	ip link add "$VA" netns "$NS_A" type veth peer name "$VB" netns "$NS_B" || fail "veth"
	ip -n "$NS_A" addr add $A4/24 dev "$VA"
	ip -n "$NS_B" addr add $B4/24 dev "$VB"
	ip -n "$NS_A" addr add $A6/64 dev "$VA" nodad
	ip -n "$NS_B" addr add $B6/64 dev "$VB" nodad
	ip -n "$NS_A" link set lo up
	ip -n "$NS_B" link set lo up
	ip -n "$NS_A" link set "$VA" up
	ip -n "$NS_B" link set "$VB" up
	# The peer of an XDP veth needs an XDP program (or GRO) to receive
	# native-mode frames; a plain stack peer works for skb traffic.
	in_a ping -c1 -W2 $B4 >/dev/null || fail "no IPv4 connectivity before the shield"
}

# audit_args ROLE: the audit trail of a daemon in this scenario's scratch
# directory (the defaults are /var/log/kernloom/ROLE and /var/lib/kernloom/).
# Word-split on purpose: $TMP has no spaces.
audit_args() { echo "--audit-dir $TMP/audit/$1 --audit-key $TMP/keys/$1/audit.key"; }

# start_enforcer [extra args...]: runs kl-enforcer in ns B on $VB, with the
# shield built into it (--obj "$OBJ" loads the file instead).
start_enforcer() {
	local user=()
	if [ ${#ENF_EXEC[@]} -eq 0 ]; then
		# The enforcer creates its sockets after becoming $KL_USER: the
		# run dir must be that user's, and reachable through $TMP.
		mkdir -p "$RUN" && chown "$KL_USER" "$RUN" && chmod 0711 "$TMP"
		user=(--user "$KL_USER")
		# Where a built-in peer user exists on this host (an installed
		# suite), that peer runs as $KL_USER here (a caller's flag comes
		# later and wins): the enforcer, as $KL_USER, cannot hand a socket
		# to a group it is not in. Absent, the enforcer's fallback applies.
		local peer
		for peer in decider graph sensor; do
			getent passwd "kernloom-$peer" >/dev/null && user+=(--"$peer"-user "$KL_USER")
		done
	fi
	# nsenter execs (ENF_EXEC execs) kl-enforcer, so $! is the daemon itself
	# (a shell function here would fork a subshell, and stop_enforcer would
	# kill only that).
	nsenter --net=/run/netns/"$NS_B" "${ENF_EXEC[@]}" "$BIN/kl-enforcer" --iface "$VB" --pin-dir "$PIN" --run-dir "$RUN" \
		$(audit_args enforcer) "${user[@]}" "$@" \
		>>"$TMP/enforcer.log" 2>&1 &
	ENF_PID=$!
	PIDS+=("$ENF_PID")
	for _ in $(seq 1 100); do
		[ -S "$RUN/enforcer/enforcer.sock" ] && klctl status enforcer >/dev/null 2>&1 && return 0
		kill -0 "$ENF_PID" 2>/dev/null || fail "kl-enforcer exited early"
		sleep 0.1
	done
	fail "kl-enforcer did not come up"
}

stop_enforcer() {
	kill "$ENF_PID" 2>/dev/null
	wait "$ENF_PID" 2>/dev/null
	rm -f "$RUN/enforcer/enforcer.sock"
}

klctl() { ASAN_OPTIONS=$KL_ASAN_CALLER "$BIN/klctl" --run-dir "$RUN" "$@"; }

# pings FROM_NS DST COUNT -> number of replies
pings() {
	local ns=$1 dst=$2 n=$3
	ip netns exec "$ns" ping -c "$n" -i 0.05 -W 1 -q "$dst" 2>/dev/null |
		awk '/received/ { for (i = 1; i <= NF; i++) if ($(i+1) ~ /^received/) print $i }'
}

# dropped_root PID: none of the process's uids (real, effective, saved, fs)
# is root (for wait_for).
dropped_root() { awk '/^Uid:/ { exit !($2 && $3 && $4 && $5) }' "/proc/$1/status"; }
log_count_ge() { [ "$(grep -c -- "$2" "$1")" -ge "$3" ]; } # FILE PATTERN N (for wait_for)
pings_pass() { [ "$(pings "$1" "$2" 1)" = 1 ]; } # NS DST: one ping answered (for wait_for)

# stat NAME -> value of a `klctl stats` token
stat() { klctl stats | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'; }

# src_field IP FIELD -> a field of the source's top-src JSON entry
src_field() {
	klctl --json top-src -n 1000 | jq -r --arg ip "$1" --arg f "$2" \
		'(.entries // .)[] | select(.ip == $ip) | .[$f]' | head -n 1
}

# src_settled IP: the shield's packet count for IP, read twice 0.1 s apart,
# holds still: the frames still in flight to it have arrived (for wait_for).
src_settled() {
	local a
	a=$(src_field "$1" pkts)
	sleep 0.1
	[ "$a" = "$(src_field "$1" pkts)" ]
}

# wait_for SECONDS DESC CMD...: poll CMD (quietly) every 0.2 s until it
# succeeds; fail after the deadline. The way to wait for a daemon's tick or
# a state change: never a fixed sleep before an assertion.
wait_for() {
	local secs=$1 desc=$2 end
	shift 2
	end=$((SECONDS + secs))
	while ! "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || fail "timed out after ${secs}s: $desc"
		sleep 0.2
	done
}

expect_eq() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; log "ok: $3 ($1)"; }
expect_ge() { [ "$1" -ge "$2" ] 2>/dev/null || fail "$3: expected >= $2, got '$1'"; log "ok: $3 ($1 >= $2)"; }
expect_le() { [ "$1" -le "$2" ] 2>/dev/null || fail "$3: expected <= $2, got '$1'"; log "ok: $3 ($1 <= $2)"; }
expect_fail() { # expect_fail DESC RC-WANTED CMD...
	local desc=$1 want=$2 out rc
	shift 2
	out=$("$@" 2>&1)
	rc=$?
	[ $rc -eq "$want" ] || fail "$desc: expected exit $want, got $rc: $out"
	log "ok: $desc (exit $rc: $out)"
	LAST_OUT=$out
}
