#!/usr/bin/env bash
# What a daemon opens before its privilege drop, in a directory its user can
# write (docs/security.md, "Files a daemon opens"): kl-decider and
# kl-graphd are started by hand as root with --user nobody after a symlink
# (to a root-owned canary), a FIFO or a hard link (to the canary) was
# planted under each name they open there: state.json, .bak, .tmp, the
# feedback file, the whitelist, the database, -wal and -shm. Root never
# follows them: the daemon refuses with an error naming the file, or
# ignores the planted file and replaces it with its own; it never hangs;
# the canary keeps its content, owner, mode and link count. Then the same
# while a racer (as nobody) keeps swapping links in and out during
# start-up: graphd's SQLite opens run with nobody's file system identity,
# so no interleaving reaches the canary.
. "$(dirname "$0")/lib.sh"
for b in kl-decider kl-graphd; do [ -x "$BIN/$b" ] || fail "missing $BIN/$b (run make first)"; done
command -v setpriv >/dev/null || skip "needs setpriv (util-linux)"

chmod 711 "$TMP"
CANARY=$TMP/canary
printf 'canary %s\n' "$$" >"$CANARY"
# An empty root-only file: what SQLite would happily turn into a database
# (the old kl-graphd did, then chowned it to the graph user by path).
CANARY0=$TMP/canary0
: >"$CANARY0"
chmod 600 "$CANARY" "$CANARY0"
canary_sig() {
	for c in "$CANARY" "$CANARY0"; do echo "$(command stat -c '%u:%g %a %h %s' "$c") $(sha256sum <"$c")"; done
}
SIG=$(canary_sig)
check_canary() {
	[ "$(canary_sig)" = "$SIG" ] || fail "$1: the canary changed: $(canary_sig) (was $SIG)"
}
D=$TMP/decider G=$TMP/graph
mkdir -p "$D" "$G" && chown nobody: "$D" "$G"

# lib.sh's stat() asks the enforcer; `command stat` is the file's.
fresh_d() { rm -f "$D"/*; : >"$D/whitelist.txt"; }
plant() { # plant KIND PATH
	rm -f "$2"
	case $1 in
	symlink) ln -s "$CANARY" "$2" ;;
	fifo) mkfifo -m 666 "$2" ;;
	hardlink) ln "$CANARY" "$2" ;;
	hardlink0) ln "$CANARY0" "$2" ;;
	esac
}

# start_daemon LOG READY-REGEX CMD...: "ready" once the log shows READY
# (logged after the privilege drop), "exited RC" if it stopped first; fails
# if neither happens within 15 s (a hang on a FIFO would show up here).
start_daemon() {
	local logf=$1 ready=$2
	shift 2
	: >"$logf"
	"$@" >>"$logf" 2>&1 &
	DPID=$!
	PIDS+=("$DPID")
	for _ in $(seq 1 150); do
		if grep -Eq "$ready" "$logf"; then STARTED=ready; return 0; fi
		if ! kill -0 "$DPID" 2>/dev/null; then
			wait "$DPID"
			STARTED="exited $?"
			return 0
		fi
		sleep 0.1
	done
	fail "$* neither served nor exited within 15 s (hung?): $(tail -n 5 "$logf")"
}
stop_daemon() {
	kill "$DPID" 2>/dev/null
	wait "$DPID" 2>/dev/null
}

DFLAGS=(--run-dir "$TMP/run-d" --dry-run=true --user nobody --sensor-user nobody $(audit_args decider)
	--state-file "$D/state.json" --feedback-file "$D/feedback.json" --whitelist "$D/whitelist.txt")
GFLAGS=(--graph-store "$G/kliq.db" --run-dir "$TMP/run-g" --user nobody --sensor-user nobody $(audit_args graphd))
DREADY='deciding every' GREADY='graph .*: [0-9]+ edges'
mkdir -p "$TMP/run-d" "$TMP/run-g"

log "== kl-decider: a file it only reads, planted: refused, naming it"
for name in feedback.json whitelist.txt; do
	for kind in symlink fifo hardlink; do
		fresh_d
		plant "$kind" "$D/$name"
		start_daemon "$TMP/decider.log" "$DREADY" "$BIN/kl-decider" "${DFLAGS[@]}"
		[ "$STARTED" != ready ] || fail "$name as a $kind: kl-decider started anyway"
		grep -q "$D/$name: refusing to open it" "$TMP/decider.log" ||
			fail "$name as a $kind: no error naming the file: $(cat "$TMP/decider.log")"
		rm -f "$D/$name"
		check_canary "$name as a $kind"
		log "ok: $name as a $kind: $STARTED, $(grep -o 'refusing to open it: [^(]*' "$TMP/decider.log" | head -n 1)"
	done
done

log "== kl-decider: its state and baselines, planted: ignored, and replaced by its own file"
for name in state.json state.json.bak state.json.tmp baselines.json baselines.json.bak \
	baselines.json.tmp; do
	own=${name%%.json*}.json
	for kind in symlink fifo hardlink; do
		fresh_d
		plant "$kind" "$D/$name"
		start_daemon "$TMP/decider.log" "$DREADY" "$BIN/kl-decider" "${DFLAGS[@]}"
		[ "$STARTED" = ready ] || fail "$name as a $kind: kl-decider did not start: $(cat "$TMP/decider.log")"
		stop_daemon # saves its state at exit, as nobody
		case $name in
		state.json | state.json.bak | baselines.json)
			grep -q "$name: rejected: refusing to open it" "$TMP/decider.log" ||
				fail "$name as a $kind: not reported: $(cat "$TMP/decider.log")" ;;
		baselines.json.bak)
			grep -q "store refused, starting without it: .*$name: refusing to open it" \
				"$TMP/decider.log" ||
				fail "$name as a $kind: not reported: $(cat "$TMP/decider.log")" ;;
		esac
		[ -f "$D/$own" ] && [ ! -L "$D/$own" ] ||
			fail "$name as a $kind: no $own of its own after the exit: $(ls -l "$D")"
		[ "$(command stat -c '%U %h' "$D/$own")" = "nobody 1" ] ||
			fail "$name as a $kind: $own is $(command stat -c '%U, %h links' "$D/$own")"
		[ ! -e "$D/$own.tmp" ] || [ "$name" = "$own.bak" ] ||
			fail "$name as a $kind: $own.tmp left behind"
		rm -f "$D"/*
		check_canary "$name as a $kind"
		log "ok: $name as a $kind: ignored, replaced by a file of nobody's; canary untouched"
	done
done

log "== kl-graphd: a clean directory: files created as nobody, no chown by path"
rm -f "$G"/*
start_daemon "$TMP/graphd.log" "$GREADY" "$BIN/kl-graphd" "${GFLAGS[@]}"
[ "$STARTED" = ready ] || fail "kl-graphd did not start: $(cat "$TMP/graphd.log")"
stop_daemon
[ "$(command stat -c %U "$G/kliq.db")" = nobody ] || fail "kliq.db belongs to $(command stat -c %U "$G/kliq.db")"
log "ok: $(ls -l "$G" | tail -n +2 | awk '{ print $3, $NF }' | tr '\n' ' ')"
# An operator's offline command as root leaves root-owned files: adopted
# through their descriptors.
chown root: "$G"/kliq.db*
start_daemon "$TMP/graphd.log" "$GREADY" "$BIN/kl-graphd" "${GFLAGS[@]}"
[ "$STARTED" = ready ] || fail "kl-graphd did not adopt root-owned files: $(cat "$TMP/graphd.log")"
stop_daemon
[ "$(command stat -c %U "$G/kliq.db")" = nobody ] || fail "root-owned kliq.db not handed to nobody"
log "ok: root-owned kliq.db handed to nobody"

log "== kl-graphd: the database, -wal or -shm planted: refused, naming it"
for name in kliq.db kliq.db-wal kliq.db-shm; do
	for kind in symlink fifo hardlink hardlink0; do
		rm -f "$G"/*
		plant "$kind" "$G/$name"
		start_daemon "$TMP/graphd.log" "$GREADY" "$BIN/kl-graphd" "${GFLAGS[@]}"
		[ "$STARTED" != ready ] || { stop_daemon; fail "$name as a $kind: kl-graphd started anyway"; }
		grep -q "$G/$name: refusing to open it" "$TMP/graphd.log" ||
			fail "$name as a $kind: no error naming the file: $(cat "$TMP/graphd.log")"
		rm -f "$G"/*
		check_canary "$name as a $kind"
		log "ok: $name as a $kind: $STARTED, $(grep -o 'refusing to open it: [^(;]*' "$TMP/graphd.log" | head -n 1)"
	done
done

log "== during start-up: nobody swaps links in and out while the daemons start"
# The racer is the graph/decider user itself (nobody): it may write its
# directories, and tries to make root follow a link between any two steps.
RACER=$TMP/racer.sh
cat >"$RACER" <<EOF
while :; do
	for n in kliq.db-wal kliq.db-shm kliq.db-journal; do ln -s "$CANARY" "$G/\$n" 2>/dev/null; done
	ln -s "$CANARY" "$D/state.json.tmp" 2>/dev/null; ln -s "$CANARY" "$D/state.json.bak" 2>/dev/null
	rm -f "$G"/kliq.db-wal "$G"/kliq.db-shm "$G"/kliq.db-journal "$D/state.json.tmp" "$D/state.json.bak"
done
EOF
rm -f "$G"/*
fresh_d
setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups bash "$RACER" &
RACER_PID=$!
PIDS+=("$RACER_PID")
g_ready=0 g_refused=0 d_ready=0
for i in 1 2 3 4 5 6; do
	start_daemon "$TMP/graphd.log" "$GREADY" "$BIN/kl-graphd" "${GFLAGS[@]}"
	if [ "$STARTED" = ready ]; then g_ready=$((g_ready + 1)); stop_daemon; else g_refused=$((g_refused + 1)); fi
	start_daemon "$TMP/decider.log" "$DREADY" "$BIN/kl-decider" "${DFLAGS[@]}"
	if [ "$STARTED" = ready ]; then d_ready=$((d_ready + 1)); stop_daemon; fi
	check_canary "start-up race, round $i"
done
kill "$RACER_PID"
wait "$RACER_PID" 2>/dev/null
log "ok: 6 rounds: kl-graphd served $g_ready times, refused a planted file $g_refused times; kl-decider served $d_ready times; the canary was never touched"
rm -f "$G"/* "$D"/*
check_canary "the end"
log "PASS"
