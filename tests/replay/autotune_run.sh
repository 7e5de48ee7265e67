#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Autotune over long traces on the replay's virtual clock.
#
#   tests/replay/autotune_run.sh [KL_DECIDER]   (BUILD defaults to build)
#
# A 15-simulated-day JSON-lines trace (one tick per simulated minute, 30
# ordinary sources with a daily cycle, ~21600 lines) is generated at run
# time and replayed with the real schedule (phases end at 48 h / 120 h /
# 336 h of clean observed time; tunes every 1 h / 6 h / 24 h, then 84 h):
#   1. the AUTOTUNE lines: 47 in phase 1 (the first three skip for lack of
#      samples), 12 in phase 2, 9 in phase 3, 1 steady; state.json's history
#      holds every applied tune at exactly its tune point;
#   2. the same trace with a 6-hour flood inserted at hour 30 gives the very
#      same AUTOTUNE lines: attack ticks are dirty, they neither teach nor
#      age the bootstrap (block-at is out of reach here, so the tick right
#      after the flood is clean again; the block gate is covered by
#      test_autotune_sim);
#   3. a restart in the middle of the bootstrap (first part replayed with
#      --state-file, a new process continues with the rest of the trace and
#      the same --state-file) gives the same AUTOTUNE lines as one run.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-${BUILD:-build}/bin/kl-decider}
case $bin in /*) ;; *) bin="$PWD/$bin" ;; esac
if [ ! -x "$bin" ]; then
	echo "autotune_run.sh: $bin not found (build it: make BUILD=... $bin)" >&2
	exit 2
fi
command -v jq >/dev/null || { echo "autotune_run.sh: needs jq" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); printf '  ok    %s\n' "$1"; }
bad() { fail=$((fail + 1)); printf '  FAIL  %s %s\n' "$1" "$2"; }

# gen DAYS ATTACK_AT_H ATTACK_H [FROM_MIN TO_MIN]: the benign sequence is a
# function of the tick index only, so inserting attack ticks (which shift
# the clock by ATTACK_H hours) leaves every benign tick as it was.
gen() {
	awk -v days="$1" -v at="$2" -v dur="$3" -v from="${4:-0}" -v to="${5:--1}" '
	function benign(i,    s, line, k, pps, ph) {
		line = ""
		for (k = 1; k <= 24; k++) {
			# each source: its own level, a daily cycle, deterministic jitter
			ph = sin(6.283185307 * (i / 1440.0) + k)
			s = (k * 7919 + i * 104729) % 1000 / 1000.0
			pps = (40 + 12 * k) * (1 + 0.3 * ph) * (0.8 + 0.4 * s)
			line = line sprintf("%s{\"ip\":\"198.18.1.%d\",\"pps\":%.1f,\"syn\":%.1f,\"scan\":%.1f}",
				k > 1 ? "," : "", k, pps, pps * 0.04 + s, (k % 5) * s)
		}
		return line
	}
	function emit(tmin, body) {
		if (tmin >= from && (to < 0 || tmin < to))
			printf("{\"t\":%d,\"sources\":[%s]}\n", tmin * 60, body)
	}
	BEGIN {
		n = days * 1440
		shift = 0
		for (i = 0; i < n; i++) {
			if (dur > 0 && i == at * 60) {
				for (a = 0; a < dur * 60; a++)
					emit(i + a, benign(i) ",{\"ip\":\"198.18.9.9\",\"pps\":40000,\"syn\":38000,\"scan\":400}")
				shift = dur * 60
			}
			emit(i + shift, benign(i))
		}
	}'
}

FLAGS=(--whitelist= --feedback-file= --profile generic --interval 60s --block-at 30000
	--state-history 100 --tick-log-every 0)
tunes() { # LOG -> the AUTOTUNE lines without the log prefix
	sed -n 's/.*\(AUTOTUNE .*\)/\1/p' "$1"
}

start=$(date +%s)
gen 15 0 0 >"$tmp/clean.jsonl"
gen 15 30 6 >"$tmp/attack.jsonl"
echo "  trace: $(wc -l <"$tmp/clean.jsonl") ticks, $(du -m "$tmp/clean.jsonl" | cut -f1) MB"

# 1. the schedule
t0=$(date +%s.%N)
"$bin" --replay "$tmp/clean.jsonl" "${FLAGS[@]}" --state-file "$tmp/clean.state" \
	>/dev/null 2>"$tmp/clean.log" || bad "clean replay" "(exit $?)"
t1=$(date +%s.%N)
echo "  replay of 15 days: $(echo "$t1 - $t0" | bc) s"
tunes "$tmp/clean.log" >"$tmp/clean.tunes"
c() { grep -c "$1" "$tmp/clean.tunes"; }
got="$(c 'phase=1$') $(c 'phase=2$') $(c 'phase=3$') $(c 'phase=steady$') $(c '^AUTOTUNE skipped')"
if [ "$got" = "47 12 9 1 3" ]; then
	ok "schedule: 47/12/9/1 attempts in phases 1/2/3/steady, 3 skipped"
else
	bad "schedule" "(per phase 1 2 3 steady, skipped: $got, want 47 12 9 1 3)"
fi
if head -n 3 "$tmp/clean.tunes" | grep -qv "skipped: too few samples"; then
	bad "first tunes" "(the first three should skip for lack of samples)"
else
	ok "the first three tune points skip: too few samples"
fi
# Every applied tune at its point: 4..47 h by 1 h, 48..114 h by 6 h,
# 120..312 h by 24 h, then 336 h (steady).
want=$( (seq 4 47; seq 48 6 114; seq 120 24 312; echo 336) | tr '\n' ' ')
have=$(jq -r '[.history[] | (.observed_s / 3600 | tostring) + ":" + .phase] | join(" ")' \
	"$tmp/clean.state" 2>/dev/null)
want_ph=$( (for h in $(seq 4 47); do echo "$h:1"; done; for h in $(seq 48 6 114); do echo "$h:2"; done
	for h in $(seq 120 24 312); do echo "$h:3"; done; echo "336:steady") | tr '\n' ' ')
if [ "$have " = "$want_ph" ]; then
	ok "state.json history: every applied tune at its point and phase ($want)"
else
	bad "tune points" "(history: $have)"
fi
if jq -e '.bootstrap.phase == "steady" and .active.trig.pps < 5000 and .active.trig.pps >= 100
	and (.integrity.sha256 | length) == 64' "$tmp/clean.state" >/dev/null; then
	ok "state.json: steady phase, learned trig_pps $(jq .active.trig.pps "$tmp/clean.state")"
else
	bad "state.json" "($(jq -c '.bootstrap, .active' "$tmp/clean.state" 2>&1 | head -c 300))"
fi

# 2. an attack during learning
"$bin" --replay "$tmp/attack.jsonl" "${FLAGS[@]}" >/dev/null 2>"$tmp/attack.log" ||
	bad "attack replay" "(exit $?)"
tunes "$tmp/attack.log" >"$tmp/attack.tunes"
if ! grep -q "ACTION ip=198.18.9.9\|STATE 198.18.9.9\|198.18.9.9" "$tmp/attack.log" &&
	! "$bin" --replay "$tmp/attack.jsonl" "${FLAGS[@]}" 2>/dev/null | grep -q 198.18.9.9; then
	bad "attack" "(the flood was not acted on: not an attack)"
elif cmp -s "$tmp/clean.tunes" "$tmp/attack.tunes"; then
	ok "a 6 h flood at hour 30 leaves every AUTOTUNE line as it was ($(wc -l <"$tmp/attack.tunes") lines)"
else
	bad "attack" "(AUTOTUNE lines differ from the clean run)"
	diff "$tmp/clean.tunes" "$tmp/attack.tunes" | head -n 6 | sed 's/^/        /'
fi

# 3. a restart in the middle of phase 2 (100.5 h)
split=$((100 * 60 + 30))
gen 15 0 0 0 $split >"$tmp/part1.jsonl"
gen 15 0 0 $split >"$tmp/part2.jsonl"
"$bin" --replay "$tmp/part1.jsonl" "${FLAGS[@]}" --state-file "$tmp/r.state" \
	>/dev/null 2>"$tmp/r1.log" || bad "restart part 1" "(exit $?)"
"$bin" --replay "$tmp/part2.jsonl" "${FLAGS[@]}" --state-file "$tmp/r.state" \
	>/dev/null 2>"$tmp/r2.log" || bad "restart part 2" "(exit $?)"
cat "$tmp/r1.log" "$tmp/r2.log" | sed -n 's/.*\(AUTOTUNE .*\)/\1/p' >"$tmp/restart.tunes"
if ! grep -q "autotune: resumed phase=2" "$tmp/r2.log"; then
	bad "restart" "(the second process did not resume: $(grep -m1 'autotune:' "$tmp/r2.log"))"
elif cmp -s "$tmp/clean.tunes" "$tmp/restart.tunes"; then
	ok "restart at 100.5 h: the second process resumes the same timeline ($(wc -l <"$tmp/r2.log" | tr -d ' ') log lines)"
else
	bad "restart" "(AUTOTUNE lines differ from one uninterrupted run)"
	diff "$tmp/clean.tunes" "$tmp/restart.tunes" | head -n 6 | sed 's/^/        /'
fi
if jq -e '.' "$tmp/r.state" >/dev/null 2>&1 && [ -f "$tmp/r.state.bak" ]; then
	ok "state.json and state.json.bak written by the replays"
else
	bad "state files" "(missing $tmp/r.state or .bak)"
fi

echo "  ($(($(date +%s) - start)) s)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
