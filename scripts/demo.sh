#!/usr/bin/env bash
# `make demo`: a self-contained lab. Two network namespaces joined by a veth
# pair: "attacker" (198.18.0.1, fd00:6b6c::1) and "host" (198.18.0.2,
# fd00:6b6c::2) with the XDP shield on its interface. The demo floods the
# host, shows the shield's counters, then denies and rate-limits the
# attacker by hand with klctl and shows the effect on real packets.
# Everything it creates is removed on exit.
set -u
BUILD=${1:-build}
BIN=$BUILD/bin
[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (XDP, namespaces)" >&2; exit 1; }
ID=$$
NS_A=kldemo-a NS_B=kldemo-b VA=kldemo-a0 VB=kldemo-b0
PIN=/sys/fs/bpf/kldemo
TMP=$(mktemp -d /tmp/kldemo.XXXXXX)
RUN=$TMP/run
ENF=""
cleanup() {
	[ -n "$ENF" ] && kill "$ENF" 2>/dev/null && wait "$ENF" 2>/dev/null
	ip netns del $NS_A 2>/dev/null
	ip netns del $NS_B 2>/dev/null
	rm -rf "$PIN" "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cleanup # a previous interrupted demo
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
klctl() { "$BIN/klctl" --run-dir "$RUN" "$@"; }
flood() { ip netns exec $NS_A "$BUILD/tools/kl-pktgen" --src "$1" --dst "$2" --udp --rate "$3" --duration "$4"; }
pings() { ip netns exec $NS_A ping -c "$2" -i 0.05 -W 1 -q "$1" | grep -E 'packets transmitted'; }

say "Lab: namespaces $NS_A (attacker) and $NS_B (host), veth $VA <-> $VB"
ip netns add $NS_A && ip netns add $NS_B
ip link add $VA netns $NS_A type veth peer name $VB netns $NS_B
ip -n $NS_A addr add 198.18.0.1/24 dev $VA
ip -n $NS_B addr add 198.18.0.2/24 dev $VB
ip -n $NS_A addr add fd00:6b6c::1/64 dev $VA nodad
ip -n $NS_B addr add fd00:6b6c::2/64 dev $VB nodad
for n in $NS_A $NS_B; do ip -n $n link set lo up; done
ip -n $NS_A link set $VA up
ip -n $NS_B link set $VB up

say "Start kl-enforcer on the host's interface (198.18.0.100 is protected: the operator)"
mkdir -p "$RUN"
nsenter --net=/run/netns/$NS_B "$BIN/kl-enforcer" --iface $VB --pin-dir $PIN --run-dir "$RUN" \
	--obj "$BUILD/bpf/shield.bpf.o" --protect 198.18.0.100/32 \
	--audit-dir "$TMP/audit/enforcer" --audit-key "$TMP/keys/enforcer.key" >"$TMP/enforcer.log" 2>&1 &
ENF=$!
for _ in $(seq 50); do klctl status >/dev/null 2>&1 && break; sleep 0.1; done
run klctl status

say "Normal traffic passes"
pings 198.18.0.2 5
pings fd00:6b6c::2 5

say "The attacker floods the host with 5000 UDP packets/s for 2 s"
flood 198.18.0.1 198.18.0.2 5000 2s
run klctl stats
run klctl top-src -n 5

say "Operator rate-limits the attacker to 100 packets/s (burst 20) for 10 minutes"
run klctl rl set-ip 198.18.0.1 --rate 100 --burst 20 --ttl 10m
flood 198.18.0.1 198.18.0.2 5000 2s
run klctl top-src -n 5 --by droprl

say "Operator blocks the attacker outright; pings die at the NIC"
run klctl deny add 198.18.0.1 --ttl 1h
pings 198.18.0.2 5
run klctl deny list

say "Anti-lockout: the enforcer refuses to block a protected address"
run klctl deny add 198.18.0.100 || true

say "Release"
run klctl deny del 198.18.0.1
run klctl rl unset-ip 198.18.0.1
pings 198.18.0.2 5
run klctl stats

say "Done. The enforcer's log:"
tail -n 20 "$TMP/enforcer.log"
