#!/usr/bin/env bash
# Deny, deny TTL, enforce-allow and the protected list, for IPv4 and IPv6,
# with real packets through the XDP shield on a veth.
. "$(dirname "$0")/lib.sh"
setup_pair
start_enforcer --protect 198.18.0.200/32 --protect fd00:6b6c::200/128

for fam in 4 6; do
	if [ $fam = 4 ]; then A=$A4 B=$B4; else A=$A6 B=$B6; fi
	log "== IPv$fam"
	expect_eq "$(pings "$NS_A" $B 5)" 5 "v$fam: pings pass before any rule"

	klctl deny add $A || fail "deny add $A"
	before=$(src_field $A drop_deny); before=${before:-0}
	expect_eq "$(pings "$NS_A" $B 5)" 0 "v$fam: pings dropped after deny add"
	after=$(src_field $A drop_deny)
	expect_ge "$after" $((before + 5)) "v$fam: drop_deny counted for $A"
	klctl deny list | grep -q "$A" || fail "deny list does not show $A"

	klctl deny del $A || fail "deny del"
	expect_eq "$(pings "$NS_A" $B 5)" 5 "v$fam: pings pass after deny del"

	klctl deny add $A --ttl 2s || fail "deny add --ttl"
	expect_eq "$(pings "$NS_A" $B 3)" 0 "v$fam: dropped while the 2s deny lives"
	wait_for 5 "the 2s deny of $A lapsing" pings_pass "$NS_A" $B
	expect_eq "$(pings "$NS_A" $B 5)" 5 "v$fam: the 2s deny lapsed by itself"

	# CIDR deny covers the source too.
	if [ $fam = 4 ]; then C=198.18.0.0/28; else C=fd00:6b6c::/120; fi
	klctl deny add $C || fail "deny add $C"
	expect_eq "$(pings "$NS_A" $B 3)" 0 "v$fam: dropped by CIDR deny $C"
	klctl deny del $C || fail "deny del $C"
	expect_eq "$(pings "$NS_A" $B 3)" 3 "v$fam: passes after CIDR deny removed"
done

log "== enforce-allow"
klctl enforce-allow on || fail "enforce-allow on"
expect_eq "$(pings "$NS_A" $B4 3)" 0 "v4 source outside the allowlist is dropped"
before=$(stat drop_allow)
klctl allow add 198.18.0.0/30 || fail "allow add"
expect_eq "$(pings "$NS_A" $B4 3)" 3 "v4 source inside the allowlist passes"
expect_eq "$(pings "$NS_A" $B6 3)" 0 "v6 source outside the allowlist is dropped"
klctl allow add fd00:6b6c::/64 || fail "allow add v6"
expect_eq "$(pings "$NS_A" $B6 3)" 3 "v6 source inside the allowlist passes"
klctl allow list | grep -q 198.18.0.0/30 || fail "allow list misses 198.18.0.0/30"
expect_ge "$(stat drop_allow)" $((before)) "drop_allow total counted"
klctl enforce-allow off || fail "enforce-allow off"
klctl allow del 198.18.0.0/30 || fail "allow del"

log "== protected addresses"
expect_fail "deny of a protected address is refused" 1 klctl deny add 198.18.0.200
echo "$LAST_OUT" | grep -q protected || fail "refusal does not say why: $LAST_OUT"
expect_fail "CIDR deny covering a protected address is refused" 1 klctl deny add 198.18.0.0/24
expect_fail "rate limit of a protected v6 address is refused" 1 klctl rl set-ip fd00:6b6c::200 --rate 1 --burst 1
expect_fail "bad address is a usage error" 2 klctl deny add 198.18.0.300
klctl deny list | grep -q 198.18.0.200 && fail "protected address ended up in the deny list"
log "all good"
