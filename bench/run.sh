#!/usr/bin/env bash
# `make bench`: every benchmark, each reporting ratios against a baseline
# measured in the same run. Needs root for BPF and namespaces.
set -u
BUILD=${1:-build}
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root" >&2; exit 1; }
ID=$$
NS_G=klbg$ID NS_R=klbr$ID VG=kbg$ID VR=kbr$ID
cleanup() {
	ip netns del $NS_G 2>/dev/null
	ip netns del $NS_R 2>/dev/null
}
trap cleanup EXIT

echo "# Kernloom benchmarks ($(date -u +%FT%TZ), $(uname -r), $(nproc) CPUs)"
echo
for b in "$BUILD"/bench/bench_*; do
	name=$(basename "$b")
	case $name in
	bench_veth)
		ip netns add $NS_G && ip netns add $NS_R &&
			ip link add $VG netns $NS_G type veth peer name $VR netns $NS_R &&
			ip -n $NS_G link set $VG up && ip -n $NS_R link set $VR up &&
			ip -n $NS_R addr add 198.18.0.2/24 dev $VR || { echo "bench: netns setup failed" >&2; exit 1; }
		echo "## $name"
		"$b" $NS_G $VG $NS_R $VR "$BUILD/bpf/shield.bpf.o" ${VETH_FRAMES:+"$VETH_FRAMES"} || exit 1
		cleanup
		;;
	bench_xdp)
		echo "## $name"
		"$b" || exit 1
		echo
		"$b" --cold-sweep || exit 1
		;;
	*)
		echo "## $name"
		"$b" || exit 1
		;;
	esac
	echo
done

# The lab's numbers: the daemons against a real flood.
echo "## lab"
"$(dirname "$0")/lab.sh" "$BUILD" || exit 1
