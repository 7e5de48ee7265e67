#!/usr/bin/env bash
# `make bench`, the lab's numbers, all from one run of the lab of
# `make demo` (tests/integration/lab.sh): how many ticks from the start of
# a SYN flood (hping3, FLOOD_PPS) to the first dropped attack packet and to
# RATE_HARD; the legitimate client's success rate and p50/p99 latency with
# and without the flood; CPU per daemon at idle and under the flood.
set -u
BUILD=${1:-build}
IDLE=${LAB_IDLE_SECONDS:-15}
FLOOD=${LAB_FLOOD_SECONDS:-30}
FLOOD_PPS=${LAB_FLOOD_PPS:-2000}
. "$(dirname "$0")/../tests/integration/lab.sh"
command -v hping3 >/dev/null || fail "needs hping3 (scripts/deps.sh installs it)"

HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
declare -A C0
cpu_mark() { local r; for r in enforcer sensor decider graphd; do C0[$r]=$(cpu_ticks "${DPID[$r]}"); done; }
# cpu_pct ROLE SECONDS: the daemon's CPU since cpu_mark, in % of one core
cpu_pct() { awk -v a="${C0[$1]}" -v b="$(cpu_ticks "${DPID[$1]}")" -v hz="$HZ" -v s="$2" \
	'BEGIN { printf "%.1f", 100 * (b - a) / hz / s }'; }

start_suite
lab_client
wait_for 10 "the client gets answers" client_all_ok 0
sleep 2 # let the client's first connections settle before measuring
declare -A IDLE_CPU FLOOD_CPU
T_IDLE=$(date +%s)
cpu_mark
sleep "$IDLE"
for r in enforcer sensor decider graphd; do IDLE_CPU[$r]=$(cpu_pct $r "$IDLE"); done
T_FLOOD=$(date +%s)
cpu_mark
T0=$(date +%s.%N)
syn_flood "$FLOOD" "$FLOOD_PPS"
# The first dropped attack packet: poll the shield's per-source counters.
first_drop=""
while [ -z "$first_drop" ]; do
	d=$(klctl --json top-src -n 100 | jq -r --arg ip $A4 \
		'[(.entries // .)[] | select(.ip == $ip) | .drop_rl + .drop_deny] | add // 0')
	[ "$d" -gt 0 ] 2>/dev/null && first_drop=$(date +%s.%N)
	awk -v t0="$T0" -v now="$(date +%s.%N)" 'BEGIN { exit !(now - t0 > 60) }' && fail "no drop in 60 s"
	sleep 0.1
done
hard_or_block() { case $(level_of $A4) in RATE_HARD | BLOCK) return 0 ;; esac; return 1; }
wait_for 60 "$A4 reaches RATE_HARD" hard_or_block
left=$((FLOOD - ($(date +%s) - T_FLOOD) - 1))
[ "$left" -gt 0 ] && sleep "$left"
el=$(($(date +%s) - T_FLOOD))
for r in enforcer sensor decider graphd; do FLOOD_CPU[$r]=$(cpu_pct $r "$el"); done
T_END=$(date +%s)
wait "$FLOOD_PID" 2>/dev/null

# RATE_HARD or past it (a loaded machine may go from RATE_SOFT to BLOCK).
hard_at=$(grep -m1 -E "STATE $A4 [A-Z_]+->(RATE_HARD|BLOCK)" "$TMP/decider.log" | cut -d' ' -f1)
hard_s=$(date -d "$hard_at" +%s.%N)
ticks() { awk -v a="$T0" -v b="$1" 'BEGIN { printf "%.1f", b - a }'; } # 1 s ticks
read -r n0 ok0 pct0 p500 p990 <<<"$(client_stats "$T_IDLE" "$T_FLOOD")"
read -r n1 ok1 pct1 p501 p991 <<<"$(client_stats "$T_FLOOD" "$T_END")"

cat <<EOF
### The lab (\`bench/lab.sh\`): a ${FLOOD_PPS}/s hping3 SYN flood against nginx, the four daemons, 1 s ticks

| measure | value |
|---|---|
| ticks from the flood's start to the first dropped attack packet | $(ticks "$first_drop") |
| ticks from the flood's start to RATE_HARD | $(ticks "$hard_s") |
| client without the flood (${IDLE} s) | $ok0/$n0 ok (${pct0} %), p50 ${p500} ms, p99 ${p990} ms |
| client during the flood (${FLOOD} s) | $ok1/$n1 ok (${pct1} %), p50 ${p501} ms, p99 ${p991} ms |

| daemon | CPU idle (% of a core) | CPU under the flood |
|---|---|---|
EOF
for r in enforcer sensor decider graphd; do
	echo "| kl-$r | ${IDLE_CPU[$r]} | ${FLOOD_CPU[$r]} |"
done
