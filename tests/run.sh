#!/usr/bin/env bash
# Test runner used by `make test`/`make check`.
#   tests/run.sh unit|bpf BUILD BIN...          cmocka binaries (bpf ones need root)
#   tests/run.sh integration BUILD SCRIPT...    network-namespace scenarios (need root)
#   tests/run.sh replay BUILD SCRIPT...         replay golden-file runners
#   tests/run.sh docs BUILD SCRIPT...           documentation checks (man pages)
#   tests/run.sh fuzz-smoke BUILD FUZZER...     each fuzzer for FUZZ_SMOKE_SECONDS
#   tests/run.sh reset BUILD                    start a new run
#   tests/run.sh summary BUILD                  totals of this run; fails if anything failed
# Counts are kept in BUILD/test-results so the summary covers every stage; a
# stage never stops the others, so one run shows every failure.
set -u
stage=$1 build=$2
shift 2
res="${KL_RESULTS:-$build/test-results}"
mkdir -p "$build/logs"

record() { # status name detail
	echo "$1 $2" >>"$res"
	case $1 in
	pass) printf '  ok    %s %s\n' "$2" "${3:-}" ;;
	skip) printf '  skip  %s %s\n' "$2" "${3:-}" ;;
	*) printf '  FAIL  %s %s\n' "$2" "${3:-}" ;;
	esac
}

is_root() { [ "$(id -u)" -eq 0 ]; }

case $stage in
unit | bpf)
	# A fresh machine has no bpffs mounted; every test must bring its own
	# (tests/bpffs.h). Prove it: as root, run the stage in a private mount
	# namespace with every bpffs unmounted (the host's mounts stay).
	if is_root && [ -z "${KL_NO_HOST_BPFFS:-}" ]; then
		if unshare --mount --propagation private true 2>/dev/null; then
			exec env KL_NO_HOST_BPFFS=1 unshare --mount --propagation private -- "$0" "$stage" "$build" "$@"
		fi
		echo "  note: cannot make a private mount namespace here; running with the host's mounts"
	fi
	if [ -n "${KL_NO_HOST_BPFFS:-}" ]; then
		for m in $(awk '$3 == "bpf" { print $2 }' /proc/self/mounts | sort -r); do
			umount "$m" || umount -l "$m"
		done
		if awk '$3 == "bpf" { f = 1 } END { exit !f }' /proc/self/mounts; then
			record fail "$stage-setup" "(a bpffs is still mounted in the stage's namespace)"
			exit 0 # counted; the summary fails the run, the other stages still run
		fi
	fi
	echo "== $stage tests${KL_NO_HOST_BPFFS:+ (no bpffs mounted)}"
	for t in "$@"; do
		n=$(basename "$t")
		log="$build/logs/$n.log"
		if [ "$stage" = bpf ] && ! is_root; then record skip "$n" "(needs root)"; continue; fi
		# A hung test is a failure, not a hung run (rc 124).
		timeout -k 10 "${KL_UNIT_TIMEOUT:-600}" "$t" >"$log" 2>&1
		rc=$?
		ran=$(grep -c '^\[       OK \]' "$log")
		bad=$(grep -c '^\[  FAILED  \] [a-z_]' "$log")
		if [ $rc -eq 77 ]; then record skip "$n" "$(tail -n 1 "$log")"
		elif [ $rc -eq 0 ]; then record pass "$n" "($ran cases)"
		else record fail "$n" "(rc=$rc, $bad failed case(s); log: $log)"; sed -n '/FAILED\|ERROR\|LINE\|runtime error\|AddressSanitizer/p' "$log" | head -n 20 | sed 's/^/        /'
		fi
	done
	;;
integration | replay | docs)
	echo "== $stage tests"
	# A scenario keeps everything in its scratch directory: the daemons'
	# default state and log paths must not appear on the host because of it.
	host_paths="/var/lib/kernloom /var/log/kernloom"
	absent=""
	for p in $host_paths; do [ -e "$p" ] || absent="$absent $p"; done
	for t in "$@"; do
		n=$(basename "$(dirname "$t")")/$(basename "$t" .sh)
		log="$build/logs/$stage-${n//\//-}.log"
		if [ "$stage" = integration ] && ! is_root; then record skip "$n" "(needs root)"; continue; fi
		start=$(date +%s)
		BUILD="$build" timeout 600 bash "$t" >"$log" 2>&1
		rc=$?
		dur=$(($(date +%s) - start))
		for p in $absent; do
			if [ -e "$p" ]; then
				echo "FAIL: the scenario created $p on the host (a daemon started without its scratch paths)" >>"$log"
				rm -rf "$p"
				[ $rc -eq 0 ] && rc=1
			fi
		done
		if [ $rc -eq 77 ]; then record skip "$n" "$(tail -n 1 "$log")"
		elif [ $rc -eq 0 ]; then record pass "$n" "(${dur}s)"
		else record fail "$n" "(rc=$rc after ${dur}s; log: $log)"; tail -n 25 "$log" | sed 's/^/        /'
		fi
	done
	;;
fuzz-smoke)
	echo "== fuzz smoke (${FUZZ_SMOKE_SECONDS:-5}s each)"
	for f in "$@"; do
		n=$(basename "$f")
		log="$build/logs/$n.log"
		corpus="$build/corpus/$n"
		mkdir -p "$corpus"
		seeds=""
		[ -d "tests/fuzz/corpus/$n" ] && seeds="tests/fuzz/corpus/$n"
		# CI replays one fixed mutation sequence so that its verdict is
		# reproducible; a run by hand explores a new one each time.
		seedarg=""
		[ "${CI:-}" = true ] && seedarg="-seed=${FUZZ_SEED:-1}"
		"$f" -print_final_stats=1 -max_total_time="${FUZZ_SMOKE_SECONDS:-5}" $seedarg "$corpus" $seeds >"$log" 2>&1
		rc=$?
		if [ $rc -eq 0 ]; then record pass "$n" "($(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}') execs)"
		else record fail "$n" "(rc=$rc; log: $log)"; grep -m5 -A5 'ERROR\|SUMMARY' "$log" | sed 's/^/        /'
		fi
	done
	;;
reset)
	: >"$res"
	;;
esac

if [ "$stage" = summary ]; then
	p=$(grep -c '^pass ' "$res" 2>/dev/null)
	f=$(grep -c '^fail ' "$res" 2>/dev/null)
	s=$(grep -c '^skip ' "$res" 2>/dev/null)
	echo "total: $p passed, $f failed, $s skipped"
	[ "$f" -eq 0 ]
fi
