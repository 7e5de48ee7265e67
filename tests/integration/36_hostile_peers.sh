#!/usr/bin/env bash
# A local peer that may connect() to an enforcer
# socket cannot stop the enforcer's service. As uid nobody (the decider and
# graph user here) and as root: 3 rounds of 20 bare connect+close on every
# enforcer socket, plus garbage, half headers, a wrong HELLO (kl-hostile).
# Afterwards the enforcer still runs, klctl is answered, the decider and
# graphd links still serve uid nobody, and its audit trail names the
# refused connections.
. "$(dirname "$0")/lib.sh"
setup_pair
start_enforcer --decider-user nobody --graph-user nobody
chmod 711 "$TMP" # the run dir inside must be reachable for uid nobody

# Wherever the run dir layout puts them.
mapfile -t SOCKS < <(find "$RUN" -type s -name 'enforcer*.sock' | sort)
[ "${#SOCKS[@]}" -eq 3 ] || fail "expected 3 enforcer sockets, found: ${SOCKS[*]}"
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }

for s in "${SOCKS[@]}"; do
	out=$(as_nobody "$TOOLS/kl-hostile" "$s" 2>&1)
	log "nobody: $out"
	case $s in
	*decider.sock | *graphd.sock)
		echo "$out" | grep -qE ': [1-9][0-9]* connections' ||
			fail "nobody could not even connect to $s (no attack made): $out" ;;
	esac
	out=$("$TOOLS/kl-hostile" "$s" 2>&1) || fail "root could not connect to $s: $out"
	log "root: $out"
done

# Recovery may take a listener check or two; poll with a deadline.
retry() { # retry DESC CMD...
	local desc=$1 out=
	shift
	for _ in $(seq 1 40); do
		kill -0 "$ENF_PID" 2>/dev/null || fail "kl-enforcer died during the attack"
		if out=$("$@" 2>&1); then
			log "ok: $desc ($(echo "$out" | tail -n 1 | cut -c1-100))"
			return 0
		fi
		sleep 0.5
	done
	fail "$desc: still failing after 20 s: $out"
}
retry "klctl status enforcer after the attack" klctl status enforcer
retry "decider link serves nobody after the attack" \
	as_nobody "$TOOLS/kl-enfclient" --run-dir "$RUN" --timeout 2s state
retry "graphd link serves nobody after the attack" \
	as_nobody "$TOOLS/kl-enfclient" --run-dir "$RUN" --timeout 2s --role graphd state
retry "a decision from the decider link is applied" \
	as_nobody "$TOOLS/kl-enfclient" --run-dir "$RUN" --timeout 2s decide 198.18.0.1 RATE_SOFT \
	--rate 20 --burst 40 --ttl 60s
grep -q "listener stopped accepting" "$TMP/enforcer.log" ||
	log "note: no listener was wedged this time (nng fixed?)"
for s in "${SOCKS[@]}"; do
	[ "$(command stat -c %a "$s")" = 660 ] || fail "$s lost its mode: $(command stat -c %a "$s")"
done
expect_eq "$(command stat -c %G "$(printf '%s\n' "${SOCKS[@]}" | grep 'decider.sock$')")" nogroup \
	"the decider's socket kept the decider user's group"
# What a socket turns away is in the enforcer's audit trail, with the
# peer's uid: uid nobody says HELLO as graphd on the decider's socket.
nobody_uid=$(id -u nobody)
dsock=$(printf '%s\n' "${SOCKS[@]}" | grep 'decider.sock$')
as_nobody "$TOOLS/kl-enfclient" --socket "$dsock" --role graphd --timeout 2s state >/dev/null 2>&1 &&
	fail "a graphd HELLO on the decider's socket was let in"
refused_seen() {
	"$BIN/klctl" --json audit show "$TMP/audit/enforcer" 2>/dev/null | jq -s -e --argjson u "$nobody_uid" \
		'any(.event == "refused" and .details.action == "connection" and .details.peer.uid == $u
		     and (.details.detail | test("role graphd may not")))' >/dev/null
}
for _ in $(seq 1 40); do refused_seen && break; sleep 0.25; done
refused_seen || fail "no audit record of the refused HELLO of uid nobody"
"$BIN/klctl" audit verify "$TMP/audit/enforcer" >/dev/null || fail "the enforcer's trail does not verify"
log "ok: the refused HELLO is audited with the peer's uid, and the trail verifies"
kill -0 "$ENF_PID" 2>/dev/null || fail "kl-enforcer is gone"
log "all good"
