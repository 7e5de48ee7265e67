#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Per-source baselines across a decider restart.
#
#   tests/replay/baseline_run.sh [KL_DECIDER]   (BUILD defaults to build)
#
# traces/baselines.jsonl (derivations in baselines.md) is cut in two: t=0..89
# is replayed with --baseline-file, which is written at the end of the
# replay; a new process replays t=90..119 with the same file:
#   1. the heavy client 198.18.1.1 learned in the first process stays at
#      OBSERVE through its bursts (t=100..104) in the second, while without
#      the file the same second half escalates it; the newcomer 198.18.1.2
#      is escalated either way;
#   2. the store has state.json's integrity rules: a changed value is
#      refused with the reason, the decider runs on without it (exit 0) and
#      scores the client as a newcomer; a good .bak is used instead.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-${BUILD:-build}/bin/kl-decider}
case $bin in /*) ;; *) bin="$PWD/$bin" ;; esac
if [ ! -x "$bin" ]; then
	echo "baseline_run.sh: $bin not found (build it: make BUILD=... $bin)" >&2
	exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); printf '  ok    %s\n' "$1"; }
bad() { fail=$((fail + 1)); printf '  FAIL  %s %s\n' "$1" "$2"; }
check() { # check DESC CONDITION...
	local d=$1
	shift
	if "$@"; then ok "$d"; else bad "$d" ""; fi
}

head -n 90 "$here/traces/baselines.jsonl" >"$tmp/part1.jsonl"
tail -n +91 "$here/traces/baselines.jsonl" >"$tmp/part2.jsonl"
F=(--whitelist= --feedback-file= --profile generic --w-pps 1.0 --decisions-json)
store=$tmp/decider/baselines.json
mkdir -p "$tmp/decider"

"$bin" --replay "$tmp/part1.jsonl" "${F[@]}" --baseline-file "$store" \
	>"$tmp/p1.out" 2>"$tmp/p1.err"
check "first process exits 0" [ $? -eq 0 ]
check "the store is written with its integrity hash" grep -q '"sha256"' "$store"
check "the store holds the heavy client" grep -q '"198.18.1.1"' "$store"

escalated() { grep -q "\"ip\": \"$2\", \"from\": \"OBSERVE\", \"to\": \"RATE_SOFT\"" "$1"; }

"$bin" --replay "$tmp/part2.jsonl" "${F[@]}" --baseline-file "$store" \
	>"$tmp/p2.out" 2>"$tmp/p2.err"
check "second process exits 0" [ $? -eq 0 ]
check "the second process loaded the baselines" grep -q 'baselines: .* sources loaded from' "$tmp/p2.err"
check "restarted: the heavy client stays at OBSERVE through its bursts" \
	bash -c "! grep -q '\"198.18.1.1\"' '$tmp/p2.out'"
check "restarted: the newcomer is escalated" escalated "$tmp/p2.out" 198.18.1.2

"$bin" --replay "$tmp/part2.jsonl" "${F[@]}" --baseline=false >"$tmp/off.out" 2>/dev/null
check "without baselines the same half escalates the heavy client" escalated "$tmp/off.out" 198.18.1.1

# A changed value with the old hash: refused by name, no .bak to fall back on.
rm -f "$store.bak"
cp "$store" "$tmp/good.json"
sed -i 's/\([0-9]\)\.0,$/\1.5,/' "$store"
if cmp -s "$store" "$tmp/good.json"; then
	bad "corrupting the store" "(sed changed nothing)"
fi
"$bin" --replay "$tmp/part2.jsonl" "${F[@]}" --baseline-file "$store" \
	>"$tmp/bad.out" 2>"$tmp/bad.err"
check "a corrupt store: the decider still runs (exit 0)" [ $? -eq 0 ]
check "a corrupt store is refused with the reason" \
	grep -q 'store refused, starting without it: .*integrity hash mismatch' "$tmp/bad.err"
check "a corrupt store: the client is scored as a newcomer" escalated "$tmp/bad.out" 198.18.1.1

# With the good copy as .bak, the .bak is used.
cp "$tmp/good.json" "$store"
sed -i 's/\([0-9]\)\.0,$/\1.5,/' "$store"
cp "$tmp/good.json" "$store.bak"
"$bin" --replay "$tmp/part2.jsonl" "${F[@]}" --baseline-file "$store" \
	>"$tmp/bak.out" 2>"$tmp/bak.err"
check "a corrupt store with a good .bak: the .bak is loaded" \
	grep -q 'baselines.json.bak' "$tmp/bak.err"
check "... and the client keeps its baseline" bash -c "! grep -q '\"198.18.1.1\"' '$tmp/bak.out'"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
