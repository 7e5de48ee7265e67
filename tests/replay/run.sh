#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Golden replay tests for kl-decider.
#
#   tests/replay/run.sh [KL_DECIDER]          compare every case with expected/
#   tests/replay/run.sh --update [KL_DECIDER] rewrite expected/ (then review by hand!)
#
# The binary defaults to $BUILD/bin/kl-decider (BUILD defaults to build).
# Each case of `cases` runs twice: the output must equal expected/NAME.out
# byte for byte and the two runs must be identical (determinism). Every
# etc/pdp/*.yaml file (PDPConfig presets, the PolicyPack example) must also
# pass `kl-decider -n`, and the generated flag table in docs/decider.md
# must match `kl-decider --help-markdown`.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
update=0
if [ "${1:-}" = "--update" ]; then update=1; shift; fi
bin=${1:-${BUILD:-build}/bin/kl-decider}
case $bin in /*) ;; *) bin="$PWD/$bin" ;; esac
if [ ! -x "$bin" ]; then
	echo "run.sh: $bin not found (build it: make BUILD=... $bin)" >&2
	exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

ok() { pass=$((pass + 1)); printf '  ok    %s\n' "$1"; }
bad() { fail=$((fail + 1)); printf '  FAIL  %s %s\n' "$1" "$2"; }

cd "$here" || exit 2
while read -r name trace flags; do
	case $name in '' | '#'*) continue ;; esac
	# TRACE names a file in traces/ (a kl-sensor recording, *.kltrace) or,
	# without an extension, traces/TRACE.jsonl.
	file="traces/$trace"
	[ -f "$file" ] || file="traces/$trace.jsonl"
	# shellcheck disable=SC2086 # flags are words on purpose
	"$bin" --replay "$file" --whitelist= --feedback-file= $flags \
		>"$tmp/$name.1" 2>"$tmp/$name.err"
	rc=$?
	# shellcheck disable=SC2086
	"$bin" --replay "$file" --whitelist= --feedback-file= $flags \
		>"$tmp/$name.2" 2>/dev/null
	if [ $rc -ne 0 ]; then
		bad "$name" "(exit $rc)"
		sed 's/^/        /' "$tmp/$name.err" | tail -n 5
		continue
	fi
	if [ $update -eq 1 ]; then
		cp "$tmp/$name.1" "expected/$name.out"
	fi
	if ! cmp -s "$tmp/$name.1" "$tmp/$name.2"; then
		bad "$name" "(two runs differ)"
	elif [ ! -f "expected/$name.out" ]; then
		bad "$name" "(no expected/$name.out)"
	elif ! cmp -s "expected/$name.out" "$tmp/$name.1"; then
		bad "$name" "(differs from expected/$name.out)"
		diff -u "expected/$name.out" "$tmp/$name.1" | head -n 20 | sed 's/^/        /'
	else
		ok "$name"
	fi
done <cases

for f in "$root"/etc/pdp/*.yaml; do
	[ -e "$f" ] || continue
	n="config:etc/pdp/$(basename "$f")"
	opt=--pdp-config
	grep -q '^kind: PolicyPack' "$f" && opt=--policy
	if "$bin" -n "$opt" "$f" --whitelist= --feedback-file= >"$tmp/cfg.out" 2>"$tmp/cfg.err"; then
		ok "$n"
	else
		bad "$n" "(kl-decider -n failed)"
		sed 's/^/        /' "$tmp/cfg.err" | head -n 5
	fi
done

# The flag table in the docs is generated from the knob table: keep it so.
"$bin" --help-markdown >"$tmp/flags.md"
doc="$root/docs/decider.md"
n="docs:$(basename "$doc") flag table"
if ! grep -q '^<!-- BEGIN kl-decider --help-markdown -->' "$doc" 2>/dev/null ||
	! grep -q '^<!-- END kl-decider --help-markdown -->' "$doc"; then
	bad "$n" "($doc has no BEGIN/END kl-decider --help-markdown block)"
else
	sed -n '/^<!-- BEGIN kl-decider --help-markdown -->/,/^<!-- END kl-decider --help-markdown -->/p' "$doc" |
		sed '1d;$d' >"$tmp/doc-flags.md"
	if cmp -s "$tmp/flags.md" "$tmp/doc-flags.md"; then
		ok "$n"
	else
		bad "$n" "(stale: regenerate with kl-decider --help-markdown)"
		diff -u "$tmp/doc-flags.md" "$tmp/flags.md" | head -n 10 | sed 's/^/        /'
	fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
