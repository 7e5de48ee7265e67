#!/usr/bin/env bash
# The suite under a real systemd: PID 1 of a throwaway container (new PID,
# mount, net, UTS and IPC namespaces; an overlay of / with a tmpfs upper
# layer, toolchain notes 8b). `make install` goes into the overlay, then
# sd/inside.sh runs there as a oneshot unit: systemd-sysusers and
# systemd-tmpfiles for our files, a veth lab, `systemctl start
# kernloom.target`, and the checks (readiness, /proc of every thread,
# modes and owners, a flood rate-limited then blocked end to end, kill -9
# and watchdog restarts, what `systemctl stop kernloom.target` leaves).
# Results come back through a bind-mounted directory; PID 1 is killed by pid
# at the end. Must stay well under 5 minutes.
set -u
BUILD=${BUILD:-build}
WT=$(cd "$(dirname "$0")/../.." && pwd)
log() { echo "[$(date +%T)] $*"; }
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root"
[ -x /lib/systemd/systemd ] || skip "no /lib/systemd/systemd"
command -v unshare >/dev/null && command -v jq >/dev/null || skip "needs unshare and jq"
for b in bin/kl-enforcer bin/kl-sensor bin/kl-decider bin/kl-graphd bin/klctl tools/kl-pktgen bpf/shield.bpf.o; do
	[ -e "$WT/$BUILD/$b" ] || { echo "FAIL: missing $BUILD/$b (run make)"; exit 1; }
done
case $WT in /tmp/*) skip "the worktree must not live under /tmp (the container has its own /tmp)" ;; esac

OUT=$(mktemp -d /var/tmp/kl-sdout.XXXXXX)
UNSHARE_PID=
cleanup() {
	local rc=$?
	# Killing PID 1 of the namespace ends every process in it, and with the
	# last of them go its mounts (overlay, tmpfs, bpffs) and its netns.
	if [ -s "$OUT/pid1" ]; then
		kill -KILL "$(cat "$OUT/pid1")" 2>/dev/null
	fi
	[ -n "$UNSHARE_PID" ] && { kill "$UNSHARE_PID" 2>/dev/null; wait "$UNSHARE_PID" 2>/dev/null; }
	if [ -s "$OUT/overlay" ]; then
		o=$(cat "$OUT/overlay")
		case $o in /var/tmp/kl-sd.[0-9]*) mountpoint -q "$o" || rm -rf "$o" ;; esac
	fi
	rm -rf "$OUT"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "booting systemd in a throwaway container"
start=$(date +%s)
(cd / && exec timeout 280 unshare --pid --mount --net --uts --ipc --fork \
	bash "$WT/tests/integration/sd/boot.sh" "$WT" "$BUILD" "$OUT") >"$OUT/boot.log" 2>&1 &
UNSHARE_PID=$!
while [ ! -s "$OUT/rc" ]; do
	if ! kill -0 "$UNSHARE_PID" 2>/dev/null; then
		echo "FAIL: the container ended without a result"
		cat "$OUT/boot.log" "$OUT/install.log" 2>/dev/null | tail -n 30
		tail -n 40 "$OUT/console.log" 2>/dev/null
		cat "$OUT/inside.log" 2>/dev/null
		exit 1
	fi
	if [ $(($(date +%s) - start)) -gt 270 ]; then
		echo "FAIL: no result after 270 s"
		cat "$OUT/inside.log" 2>/dev/null
		tail -n 40 "$OUT/console.log" 2>/dev/null
		exit 1
	fi
	sleep 1
done
cat "$OUT/inside.log"
rc=$(cat "$OUT/rc")
log "container test finished with rc $rc after $(($(date +%s) - start)) s"
if [ "$rc" != 0 ]; then
	echo "---- console (last 40 lines)"
	tail -n 40 "$OUT/console.log"
fi
[ "$rc" = 0 ]
