#!/usr/bin/env bash
# Per-source and global rate limits cap what really reaches the host.
. "$(dirname "$0")/lib.sh"
setup_pair
start_enforcer

# 2000 pps offered for 3 s against a budget of 200 pps, burst 50: about
# 50 + 3*200 = 650 should pass. Allow 15 % for pacing and timer slack.
measure() { # SRC DST -> packets that passed for that source
	local src=$1 dst=$2 p0 p1
	p0=$(src_field "$src" pass); p0=${p0:-0}
	in_a "$TOOLS/kl-pktgen" --src "$src" --dst "$dst" --udp --rate 2000 --duration 3s >/dev/null ||
		fail "pktgen"
	wait_for 5 "the packets of $src settling" src_settled "$src"
	p1=$(src_field "$src" pass)
	echo $((p1 - p0))
}

for fam in 4 6; do
	if [ $fam = 4 ]; then A=$A4 B=$B4; else A=$A6 B=$B6; fi
	klctl rl set-ip $A --rate 200 --burst 50 || fail "rl set-ip"
	klctl rl list | grep -q "$A" || fail "rl list misses $A"
	passed=$(measure $A $B)
	expect_ge "$passed" 550 "v$fam: passed near the 200 pps budget"
	expect_le "$passed" 750 "v$fam: passed near the 200 pps budget"
	expect_ge "$(src_field $A drop_rl)" 4500 "v$fam: drop_rl counted"
	klctl rl unset-ip $A || fail "rl unset-ip"
	passed=$(measure $A $B)
	expect_ge "$passed" 5700 "v$fam: no limit after rl unset-ip"
done

log "== per-source override with TTL"
klctl rl set-ip $A4 --rate 0 --burst 1 --ttl 2s || fail "rl set-ip rate 0"
expect_eq "$(pings "$NS_A" $B4 3)" 0 "rate 0 drops everything"
wait_for 5 "the 2s override of $A4 lapsing" pings_pass "$NS_A" $B4
expect_eq "$(pings "$NS_A" $B4 3)" 3 "override lapsed after its TTL"

log "== global default"
klctl rl set --rate 100 --burst 20 || fail "rl set"
passed=$(measure $A4 $B4)
expect_ge "$passed" 270 "global default caps a source"
expect_le "$passed" 380 "global default caps a source"
klctl rl off || fail "rl off"
passed=$(measure $A4 $B4)
expect_ge "$passed" 5700 "no cap after rl off"
log "all good"
