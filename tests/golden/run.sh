#!/usr/bin/env bash
# Golden files for every daemon's -n: tests/golden/<daemon>/<case>.args
# holds the arguments (split on white space; run from the case's
# directory, so the files it names are its neighbours), <case>.out the
# expected stdout, stderr and exit status. Error cases (unknown key, wrong
# type, out of range) are cases like any other: their .out holds the
# messages, with file, line and key.
#   BUILD=build bash tests/golden/run.sh          check
#   KL_GOLDEN_UPDATE=1 BUILD=build bash ...       rewrite the .out files
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "${BUILD:-build}/bin" && pwd)
fail=0 n=0
for args in "$here"/*/*.args; do
	dir=$(dirname "$args")
	daemon=$(basename "$dir")
	case=$(basename "$args" .args)
	read -ra argv <"$args"
	got=$(cd "$dir" && {
		"$bin/kl-$daemon" "${argv[@]}" 2>"$dir/.stderr"
		rc=$?
		echo "--- stderr"
		cat "$dir/.stderr"
		echo "--- exit $rc"
	})
	rm -f "$dir/.stderr"
	n=$((n + 1))
	if [ -n "${KL_GOLDEN_UPDATE:-}" ]; then
		printf '%s\n' "$got" >"$dir/$case.out"
		continue
	fi
	if ! diff -u "$dir/$case.out" <(printf '%s\n' "$got") >/dev/null; then
		echo "FAIL: $daemon/$case (kl-$daemon ${argv[*]})"
		diff -u "$dir/$case.out" <(printf '%s\n' "$got") | head -n 40
		fail=$((fail + 1))
	fi
done
echo "golden -n: $n cases, $fail failed"
[ "$fail" -eq 0 ]
