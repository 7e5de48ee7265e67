#!/usr/bin/env bash
# `make demo` works as a newcomer sees it: a short run of scripts/demo.sh in
# which each daemon runs under its own service user, the attacker reaches
# RATE_HARD or BLOCK, its packets are dropped at XDP, the client keeps being
# served, and nothing the demo made is left behind (namespaces, links, pins,
# its scratch directory, the users and groups it made).
. "$(dirname "$0")/lib.sh"
for c in jq curl hping3 nmap nginx setpriv useradd gpasswd; do
	command -v $c >/dev/null || skip "needs $c (scripts/deps.sh installs it)"
done
DEMO=$(dirname "$0")/../../scripts/demo.sh
SECS=20 # the shortest the demo allows; the flood lasts 2/3 of it

# The host's kernloom users and groups with their members, compared after.
accounts() { { getent passwd; getent group; } | grep '^kernloom-' | sort; }
BEFORE=$(accounts)

start=$SECONDS
DEMO_SECONDS=$SECS bash "$DEMO" "$BUILD" >"$TMP/demo.log" 2>&1
rc=$?
took=$((SECONDS - start))
# Without the terminal's bold.
sed -i 's/\x1b\[[0-9;]*[A-Za-z]//g' "$TMP/demo.log"
[ $rc -eq 0 ] || fail "the demo exited $rc"
log "ok: the demo ran in ${took}s"
OUT=$TMP/demo.log

# ---- each daemon up under its own user, in its sandbox ----
declare -A WANT=([enforcer]="kernloom-enforcer +filter +1 +000000c000001000"
	[sensor]="kernloom-sensor +filter +1 +0000000000000000"
	[decider]="kernloom-decider +filter +1 +0000000000000000"
	[graphd]="kernloom-graph +filter +1 +0000000000000000")
for r in enforcer sensor decider graphd; do
	grep -qE "^ +kl-$r +up +[0-9]+ +${WANT[$r]} " "$OUT" ||
		fail "the demo's status lacks kl-$r up as ${WANT[$r]%% *}: $(grep -E '^ +kl-' "$OUT")"
done
log "ok: the four daemons up, each as its own user (seccomp filter, no_new_privs, capabilities)"

# ---- the attacker escalates and is dropped ----
grep -qE "^ +t= *[-+]?[0-9]+s +$A4 +[A-Z_]+->(RATE_HARD|BLOCK) " "$OUT" ||
	fail "the attacker $A4 reached neither RATE_HARD nor BLOCK: $(sed -n '/^Level changes/,/^Packets/p' "$OUT")"
log "ok: $(grep -E " $A4 " "$OUT" | grep -E '^ +t=' | awk '{ print $4 }' | paste -sd' ')"
# The "Per source" row: SOURCE PKTS BYTES SYN PASS D_ALLOW D_DENY D_RL ...
dropped=$(sed -n '/^Per source/,/^The legitimate client/p' "$OUT" |
	awk -v ip=$A4 '$1 == ip && NF >= 8 { print $7 + $8; exit }')
expect_ge "${dropped:-0}" 1 "the attacker's packets dropped at XDP (deny + rate limit)"

# ---- the client is served during the attack ----
read -r n ok < <(awk '/^ +during the attack/ { print $4, $6 }' "$OUT" | tr -d ',%')
[ -n "${n:-}" ] || fail "no client line for the attack in the summary"
expect_ge "$n" 10 "the client's requests during the attack"
awk -v ok="$ok" 'BEGIN { exit !(ok >= 95) }' || fail "the client's success during the attack: $ok% < 95%"
log "ok: the client's success during the attack ($ok% of $n)"

# ---- nothing left behind ----
id=$(sed -n 's/.*LAN kll\([0-9]*\);.*/\1/p' "$OUT" | head -n 1)
dtmp=$(sed -n 's/^Logs of this run were in \(\/tmp\/kltest\.[A-Za-z0-9]*\) .*/\1/p' "$OUT")
[ -n "$id" ] && [ -n "$dtmp" ] || fail "the demo did not name its namespaces and scratch directory"
left=$(ip netns list | grep -E "^kl[abcl]$id( |$)")
[ -z "$left" ] || fail "namespaces left behind: $left"
left=$(ip -o link show | grep -E "kv[abc]$id[@:]")
[ -z "$left" ] || fail "links left behind: $left"
[ ! -e "/sys/fs/bpf/kltest$id" ] || fail "pins left behind: /sys/fs/bpf/kltest$id"
[ ! -e "$dtmp" ] || fail "scratch directory left behind: $dtmp"
left=$(pgrep -af -- "$dtmp/")
[ -z "$left" ] || fail "processes left behind: $left"
log "ok: no namespace, link, pin, scratch directory or process of the demo's lab ($id) left"
if [ -e /run/kernloom-lab-users ]; then
	# Another lab in service mode runs now and still uses them.
	log "note: another lab holds the service users; not compared"
else
	after=$(accounts)
	[ "$after" = "$BEFORE" ] ||
		fail "kernloom users/groups changed by the demo: $(diff <(echo "$BEFORE") <(echo "$after"))"
	log "ok: the host's kernloom users and groups are as before ($(echo "$BEFORE" | grep -c .) entries)"
fi
