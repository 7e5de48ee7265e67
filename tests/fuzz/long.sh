#!/bin/bash
# SPDX-License-Identifier: MPL-2.0
# Long fuzz runs and corpus minimisation (the Fuzzing table in docs/testing.md).
#
#   tests/fuzz/long.sh run BUILD SECONDS JOBS FUZZER...
#       run each FUZZER for SECONDS (JOBS at a time, niced) on a corpus in
#       BUILD/fuzz-long/NAME/ seeded from tests/fuzz/corpus/NAME; the log
#       keeps libFuzzer's final statistics, crashes land next to it
#   tests/fuzz/long.sh table BUILD FUZZER...
#       one Markdown row per FUZZER from its log
#   tests/fuzz/long.sh minimise BUILD FUZZER...
#       merge seeds + the run's corpus into a fresh directory (-merge=1) and
#       make that tests/fuzz/corpus/NAME
set -u
cmd=$1 build=$2
shift 2

one() { # build seconds fuzzer
	local n d
	n=$(basename "$3")
	d="$1/fuzz-long/$n"
	rm -rf "$d" && mkdir -p "$d/corpus"
	nice -n 10 "$3" -max_total_time="$2" -print_final_stats=1 -artifact_prefix="$d/" \
		"$d/corpus" "tests/fuzz/corpus/$n" >"$d/log" 2>&1
	echo "$n: exit $?" >>"$d/log"
	echo "$n: done (exit $(tail -n1 "$d/log" | awk '{print $3}'))"
}

case $cmd in
run)
	secs=$1 jobs=$2
	shift 2
	export -f one
	printf '%s\n' "$@" | xargs -P "$jobs" -I{} bash -c 'one "$0" "$1" "$2"' "$build" "$secs" {}
	;;
table)
	echo "| target | seconds | execs | exec/s | peak RSS MB | cov | ft | corpus files | findings |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for f in "$@"; do
		n=$(basename "$f")
		log="$build/fuzz-long/$n/log"
		st() { grep -o "stat::$1: *[0-9]*" "$log" | awk '{print $2}'; }
		done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n1)
		cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
		ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
		corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$done_line")
		secs=$(sed -n 's/.*Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")
		crashes=$(find "$build/fuzz-long/$n" -maxdepth 1 -name 'crash-*' -o -maxdepth 1 \
			-name 'leak-*' -o -maxdepth 1 -name 'timeout-*' -o -maxdepth 1 -name 'oom-*' | wc -l)
		echo "| $n | ${secs:-?} | $(st number_of_executed_units) | $(st average_exec_per_sec) | $(st peak_rss_mb) | ${cov:-?} | ${ft:-?} | ${corp:-?} | $crashes |"
	done
	;;
minimise)
	for f in "$@"; do
		n=$(basename "$f")
		d="$build/fuzz-long/$n"
		rm -rf "$d/min" && mkdir -p "$d/min" "tests/fuzz/corpus/$n"
		nice -n 10 "$f" -merge=1 "$d/min" "tests/fuzz/corpus/$n" "$d/corpus" >"$d/merge.log" 2>&1 ||
			{ echo "$n: merge failed, see $d/merge.log"; exit 1; }
		# Too many files for a seed corpus: keep what covers new edges,
		# not every new hit count.
		if [ "$(ls "$d/min" | wc -l)" -gt 400 ]; then
			rm -rf "$d/min2" && mkdir -p "$d/min2"
			nice -n 10 "$f" -merge=1 -use_counters=0 "$d/min2" "$d/min" >>"$d/merge.log" 2>&1 ||
				{ echo "$n: merge failed, see $d/merge.log"; exit 1; }
			rm -rf "$d/min" && mv "$d/min2" "$d/min"
		fi
		rm -rf "tests/fuzz/corpus/$n" && cp -r "$d/min" "tests/fuzz/corpus/$n"
		echo "$n: $(ls "tests/fuzz/corpus/$n" | wc -l) files, $(du -sk "tests/fuzz/corpus/$n" | cut -f1) KiB"
	done
	;;
*)
	echo "usage: $0 run|table|minimise BUILD ..." >&2
	exit 2
	;;
esac
