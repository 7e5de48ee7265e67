#!/usr/bin/env bash
# `make demo`: the whole suite as a user meets it, unattended. The lab of
# tests/integration/lab.sh (a LAN of namespaces: a server running nginx with
# the XDP shield, a legitimate client requesting in a loop, an attacker) and
# the four daemons, each started the way its unit starts it (its own service
# user, made for the run when the host lacks it, and its sandbox); then a real SYN
# flood (hping3) and a real port scan (nmap) while the client keeps going, a
# live view, and a summary. DEMO_SECONDS (default 90) is the length of the
# run after setup. It never touches the host's interfaces; the lab's trap
# removes everything it made.
set -u
BUILD=${1:-build}
[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (XDP, namespaces)" >&2; exit 1; }
TOTAL=${DEMO_SECONDS:-90}
[[ $TOTAL =~ ^[0-9]+$ ]] && [ "$TOTAL" -ge 20 ] || { echo "demo: DEMO_SECONDS must be a number >= 20" >&2; exit 2; }
. "$(dirname "$0")/../tests/integration/lab.sh"

BASE=$((TOTAL / 6))              # the client alone
ATTACK=$((TOTAL * 2 / 3))        # the flood (the scan starts at its third)
AFTER=$((TOTAL - BASE - ATTACK)) # the flood is over
SCAN4=198.18.0.4                 # the attacker's second address: the scanner

bold() { printf '\033[1m%s\033[0m\n' "$*"; }
say() { printf '\n'; bold "== $*"; }
TTY=0
[ -t 1 ] && TTY=1

# One frame of the live view: what the decider sees, what the shield drops,
# how the client fares. On a terminal it redraws in place.
view() { # PHASE
	local now st c
	now=$(date +%s)
	st=$(klctl --json stats 2>/dev/null)
	c=$(client_stats $((now - 5)) $((now + 1)))
	[ $TTY = 1 ] && printf '\033[H\033[2J'
	bold "kernloom demo — $1 — $(date +%T)   (t=$((now - T_START))s of ~$TOTAL s)"
	klctl sources -n 6 2>/dev/null | cut -c1-130
	echo "$st" | jq -r '"shield: pkts=\(.pkts) pass=\(.pass) dropped: rate-limit=\(.drop_rl) deny=\(.drop_deny) edge=\(.drop_edge)"' 2>/dev/null
	set -- $c
	echo "client (last 5 s): $2/$1 requests ok, p50 ${4} ms, p99 ${5} ms"
	[ $TTY = 1 ] || echo
}
run_phase() { # PHASE SECONDS
	local end=$((SECONDS + $2))
	while [ $SECONDS -lt $end ]; do
		view "$1"
		sleep $((TTY ? 1 : 3))
	done
}

say "Setting up the lab: LAN $NS_L; attacker $NS_A ($A4, $SCAN4), server $NS_B ($B4, nginx), client $NS_C ($C4)"
ENF_ARGS=(--features graph-learning)
GRAPHD_ARGS=(--graph-min-seen 3 --graph-min-windows 2 --graph-min-age 10s --graph-promote-interval 5s)
start_suite
ip -n "$NS_A" addr add $SCAN4/24 dev "$VA" || fail "addr add $SCAN4"
bold "$ klctl status"
klctl status | sed 's/^/  /'
echo "  decider: profile public-web, enforcing (not a dry run), triggers lowered so the demo escalates in seconds"

T_START=$(date +%s)
lab_client
run_phase "the client alone" "$BASE"
T_ATTACK=$(date +%s)
syn_flood "$ATTACK" 2000
run_phase "SYN flood from $A4 (hping3, 2000/s)" $((ATTACK / 3))
port_scan $B4 $SCAN4
run_phase "SYN flood + port scan from $SCAN4 (nmap)" $((ATTACK - ATTACK / 3))
T_END_ATTACK=$(date +%s)
run_phase "after the attack" "$AFTER"
T_STOP=$(date +%s)
kill "$CLIENT_PID" 2>/dev/null

# ---- summary ----
say "Summary"
bold "Level changes (t = seconds since the flood started)"
grep -E ' STATE ' "$TMP/decider.log" | while read -r ts _ _ _ ip move rest; do
	t=$(( $(date -d "${ts%Z}Z" +%s) - T_ATTACK ))
	printf '  t=%+4ds  %-14s %-22s %s\n' "$t" "$ip" "$move" "${rest##*reason=}"
done
bold "Packets dropped at XDP, by reason"
klctl --json stats | jq -r '"  rate limit \(.drop_rl)   deny \(.drop_deny)   edge \(.drop_edge)   allowlist \(.drop_allow)   (of \(.pkts) packets)"'
bold "Per source"
klctl top-src -n 5 --by drops | sed 's/^/  /'
bold "The legitimate client ($C4 -> nginx on $B4)"
for w in "before the attack:$T_START:$T_ATTACK" "during the attack:$T_ATTACK:$T_END_ATTACK" "after the attack:$T_END_ATTACK:$T_STOP"; do
	IFS=: read -r name a b <<<"$w"
	set -- $(client_stats "$a" "$b")
	printf '  %-18s %4d requests, %5.1f%% ok, p50 %6.1f ms, p99 %6.1f ms\n' "$name" "$1" "$3" "$4" "$5"
done
bold "The attacker's history"
klctl audit show --source $A4 "$TMP"/audit/* 2>&1 | tail -n 15 | sed 's/^/  /'
echo
echo "Logs of this run were in $TMP (removed now). Run it again with DEMO_SECONDS=30 for a short one."
