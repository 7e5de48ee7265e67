#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Golden replay tests for kl-graphd (tests/replay/graph/).
#
#   tests/replay/graph_run.sh [KL_GRAPHD]            compare with graph/expected/
#   tests/replay/graph_run.sh --update [KL_GRAPHD]   rewrite graph/expected/ (review by hand!)
#
# For each family (IPv4, IPv6): learn from learnF.jsonl, check the exported
# graph and the freeze dry run, freeze, then replay newF.jsonl (the known
# paths plus one new one) in each mode on a copy of the frozen database:
# frozen-observe must print exactly one violation with action "signal",
# frozen-enforce exactly one with "block", learn none. Then the recovery:
# approve-ip the source and the same replay in frozen-enforce is clean.
# Per-edge baselines: on a copy of the frozen database, jumpF.jsonl makes a
# learned edge jump far above its baseline: exactly one "deviation" signal
# in observe mode, the edge stays frozen and its peak does not learn the
# jump (the export, a new process, also shows the stored baselines); in
# frozen-enforce the same jump is still an observe-mode deviation, no block.
# A damaged edge_baselines row refuses the baselines, not the graph: the
# same jump replay runs on without them (no deviation: nothing learned yet)
# and the table is rewritten, so the export after it loads cleanly.
# The whole scenario runs twice; both runs must be byte-identical.
set -u
here=$(cd "$(dirname "$0")" && pwd)
update=0
if [ "${1:-}" = "--update" ]; then update=1; shift; fi
bin=${1:-${BUILD:-build}/bin/kl-graphd}
case $bin in /*) ;; *) bin="$PWD/$bin" ;; esac
if [ ! -x "$bin" ]; then
	echo "graph_run.sh: $bin not found (build it: make BUILD=... $bin)" >&2
	exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gdir=$here/graph
pass=0 fail=0
ok() { pass=$((pass + 1)); printf '  ok    %s\n' "$1"; }
bad() { fail=$((fail + 1)); printf '  FAIL  %s %s\n' "$1" "$2"; }

# Fast learning so that one minute of one-second ticks is enough.
P="--graph-min-age 30s --graph-promote-interval 10s --graph-window 10s --log-level warn"

# scenario OUT: every step's stdout in OUT/<step>.out, exit codes in OUT/<step>.rc
scenario() {
	local o=$1 f db
	mkdir -p "$o"
	for f in 4 6; do
		db=$o/g$f.db
		step() { # step NAME CMD...: run, keep stdout and the exit code
			local name=$1
			shift
			"$@" >"$o/$name.out" 2>"$o/$name.err"
			echo $? >"$o/$name.rc"
		}
		# shellcheck disable=SC2086 # P is words on purpose
		step "learn$f" "$bin" --graph-store "$db" $P --replay "$gdir/traces/learn$f.jsonl"
		step "export$f" "$bin" --graph-store "$db" export --format json
		step "candidates$f" "$bin" --graph-store "$db" export --state candidate
		step "freeze-dry$f" "$bin" --graph-store "$db" $P freeze --dry-run
		step "freeze$f" "$bin" --graph-store "$db" $P freeze
		for m in frozen-observe frozen-enforce learn; do
			n=$m
			[ "$m" = learn ] && n=learnmode
			cp "$db" "$o/$n$f.db"
			# shellcheck disable=SC2086
			step "$n$f" "$bin" --graph-store "$o/$n$f.db" $P --graph-mode "$m" \
				--replay "$gdir/traces/new$f.jsonl"
		done
		# per-edge baselines: a learned edge jumps far above its baseline
		cp "$db" "$o/jump$f.db"
		# shellcheck disable=SC2086
		step "jump$f" "$bin" --graph-store "$o/jump$f.db" $P --replay "$gdir/traces/jump$f.jsonl"
		step "jump-export$f" "$bin" --graph-store "$o/jump$f.db" export --format json
		cp "$db" "$o/jump-enforce$f.db"
		# shellcheck disable=SC2086
		step "jump-enforce$f" "$bin" --graph-store "$o/jump-enforce$f.db" $P --graph-mode frozen-enforce \
			--replay "$gdir/traces/jump$f.jsonl"
		cp "$o/jump$f.db" "$o/damaged$f.db"
		python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("UPDATE edge_baselines SET peak_pps = -1 WHERE port = 8080")
c.commit()' "$o/damaged$f.db"
		# shellcheck disable=SC2086
		step "damaged$f" "$bin" --graph-store "$o/damaged$f.db" $P --replay "$gdir/traces/jump$f.jsonl"
		step "damaged-export$f" "$bin" --graph-store "$o/damaged$f.db" export --format json
		step "violations$f" "$bin" --graph-store "$o/frozen-enforce$f.db" violations --format json
		src=$(jq -r '.violations[0].src' "$o/violations$f.out" 2>/dev/null)
		step "approve$f" "$bin" --graph-store "$o/frozen-enforce$f.db" approve-ip "${src:-none}"
		# shellcheck disable=SC2086
		step "recovered$f" "$bin" --graph-store "$o/frozen-enforce$f.db" $P --graph-mode frozen-enforce \
			--replay "$gdir/traces/new$f.jsonl"
	done
}

scenario "$tmp/a"
scenario "$tmp/b"

# Checks that hold whatever the golden files say.
check() { # check NAME DESC CONDITION...
	local name=$1 desc=$2
	shift 2
	if "$@"; then ok "$name: $desc"; else bad "$name: $desc" "($(head -c 300 "$tmp/a/$name.out" "$tmp/a/$name.err" 2>/dev/null | tr '\n' ' '))"; fi
}
lines() { [ "$(grep -c . "$tmp/a/$1.out")" -eq "$2" ]; }
action() { [ "$(jq -r .action "$tmp/a/$1.out")" = "$2" ]; }
not_grep() { ! grep -q "$@"; }
for f in 4 6; do
	for n in learn export candidates freeze-dry freeze frozen-observe frozen-enforce learnmode jump jump-export jump-enforce damaged damaged-export violations approve recovered; do
		[ "$(cat "$tmp/a/$n$f.rc")" = 0 ] || bad "$n$f" "(exit $(cat "$tmp/a/$n$f.rc"): $(head -c 300 "$tmp/a/$n$f.err"))"
	done
	check "learn$f" "learning prints no violation" lines "learn$f" 0
	check "export$f" "four learned edges" \
		[ "$(jq '[.edges[] | select(.state == "learned")] | length' "$tmp/a/export$f.out")" = 4 ]
	check "export$f" "the replies to the host's own connections folded to port 0" \
		[ "$(jq '[.edges[] | select(.port >= 32768)] | length' "$tmp/a/export$f.out")" = 0 ]
	check "export$f" "the rate-limited source was not learned from" \
		[ "$(jq '[.edges[] | select(.src | test("66$"))] | length' "$tmp/a/export$f.out")" = 0 ]
	check "export$f" "the edge seen in two ticks is still a candidate" \
		[ "$(jq -r '[.edges[] | select(.port == 25)][0].state' "$tmp/a/export$f.out")" = candidate ]
	check "frozen-observe$f" "exactly one violation" lines "frozen-observe$f" 1
	check "frozen-observe$f" "action signal" action "frozen-observe$f" signal
	check "frozen-enforce$f" "exactly one violation" lines "frozen-enforce$f" 1
	check "frozen-enforce$f" "action block" action "frozen-enforce$f" block
	check "frozen-enforce$f" "on the new path 9090/tcp" \
		[ "$(jq -r '"\(.port)/\(.proto)"' "$tmp/a/frozen-enforce$f.out")" = 9090/tcp ]
	check "learnmode$f" "learn mode: no violation on the same trace" lines "learnmode$f" 0
	check "recovered$f" "after approve-ip the path is allowed" lines "recovered$f" 0
	check "jump$f" "a jump on a learned edge: exactly one signal" lines "jump$f" 1
	check "jump$f" "action deviation" action "jump$f" deviation
	check "jump$f" "mode observe (strikes, never a block)" \
		[ "$(jq -r .mode "$tmp/a/jump$f.out")" = observe ]
	check "jump$f" "on the edge that jumped, 8080/tcp" \
		[ "$(jq -r '"\(.port)/\(.proto)"' "$tmp/a/jump$f.out")" = 8080/tcp ]
	check "jump-export$f" "the edge stays frozen (not denied) and its peak did not learn the jump" \
		[ "$(jq -r '[.edges[] | select(.port == 8080)][0] | "\(.state) \(.baseline.peak_pps <= 16)"' "$tmp/a/jump-export$f.out")" = "frozen true" ]
	check "jump-export$f" "edge baselines survived the restart (a new process loaded them)" \
		[ "$(jq -r '[.edges[] | select(.port == 8080)][0].baseline.observations >= 60' "$tmp/a/jump-export$f.out")" = true ]
	check "jump-enforce$f" "frozen-enforce: the same jump is one deviation, still mode observe" \
		[ "$(jq -sr 'map("\(.action) \(.mode)") | join(",")' "$tmp/a/jump-enforce$f.out")" = "deviation observe" ]
	check "damaged$f" "a damaged baseline row is refused by name, the replay runs on" \
		grep -q "edge baselines refused, starting without them: graph db .*damaged$f.db: edge_baselines (.*, 8080, 6)" "$tmp/a/damaged$f.err"
	check "damaged$f" "without baselines the jump is no deviation" lines "damaged$f" 0
	check "damaged-export$f" "the table was rewritten: loads without a refusal" \
		not_grep "refused" "$tmp/a/damaged-export$f.err"
	check "damaged-export$f" "the edges survived; baselines learned from the replay only" \
		[ "$(jq -r '[.edges[] | select(.port == 8080)][0] | "\(.state) \(.baseline.observations > 0 and .baseline.observations < 60)"' "$tmp/a/damaged-export$f.out")" = "frozen true" ]
done

# Golden files and determinism.
for out in "$tmp"/a/*.out; do
	name=$(basename "$out" .out)
	if [ $update -eq 1 ]; then
		cp "$out" "$gdir/expected/$name.out"
	fi
	if ! cmp -s "$out" "$tmp/b/$name.out"; then
		bad "$name" "(two runs differ)"
	elif [ ! -f "$gdir/expected/$name.out" ]; then
		bad "$name" "(no graph/expected/$name.out)"
	elif ! cmp -s "$gdir/expected/$name.out" "$out"; then
		bad "$name" "(differs from graph/expected/$name.out)"
		diff -u "$gdir/expected/$name.out" "$out" | head -n 20 | sed 's/^/        /'
	else
		ok "$name (golden)"
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
