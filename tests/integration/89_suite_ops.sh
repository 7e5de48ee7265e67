#!/usr/bin/env bash
# Operator workflows without root (README, Operations): an operator who is
# not root but in the control sockets' group whitelists an attacker through
# klctl. The decider writes its own feedback file, releases the attacker to
# OBSERVE with its enforcer entries removed, never escalates it while the
# entry lasts, escalates it again once the entry expires, and records each
# change in its audit trail. Someone outside the group is refused.
. "$(dirname "$0")/lab.sh"
command -v hping3 >/dev/null || skip "needs hping3 (scripts/deps.sh installs it)"
command -v setpriv >/dev/null || skip "needs setpriv (util-linux)"
id daemon >/dev/null 2>&1 || skip "no user daemon (the operator here)"
id bin >/dev/null 2>&1 || skip "no user bin (the stranger here)"
# The operators' group, as sysusers.d makes it on an installed host (made
# for this scenario when the host has none), and the operator, user daemon,
# a member of it in /etc/group the way `usermod -aG` makes one: the daemons
# admit a peer by the user database's groups. Both undone at the end.
MADE_GROUP= ADDED_OP=
if ! getent group kernloom-admin >/dev/null; then
	groupadd --system kernloom-admin || skip "cannot create the group kernloom-admin"
	MADE_GROUP=1
fi
if ! id -nG daemon | tr ' ' '\n' | grep -qx kernloom-admin; then
	gpasswd -a daemon kernloom-admin >/dev/null || skip "cannot add daemon to kernloom-admin"
	ADDED_OP=1
fi
ops_cleanup() {
	local rc=$?
	[ -z "$ADDED_OP" ] || [ -n "$MADE_GROUP" ] || gpasswd -d daemon kernloom-admin >/dev/null
	[ -z "$MADE_GROUP" ] || groupdel kernloom-admin
	(exit $rc)
	cleanup
}
trap ops_cleanup EXIT
ADMIN_GID=$(getent group kernloom-admin | cut -d: -f3)
LAB_NO_GRAPHD=1
start_suite
expect_eq "$(command stat -c %g "$RUN/decider/decider.sock")" "$ADMIN_GID" "the decider's control socket is kernloom-admin's"

# The operator: uid daemon in kernloom-admin; the stranger: uid bin
# without the group (not nobody, which the lab's daemons may run as).
OP_UID=$(id -u daemon)
as_op() { setpriv --reuid=daemon --regid=daemon --groups="$ADMIN_GID" env ASAN_OPTIONS="$KL_ASAN_CALLER" \
	"$BIN/klctl" --run-dir "$RUN" "$@"; }
as_stranger() { setpriv --reuid=bin --regid=bin --clear-groups env ASAN_OPTIONS="$KL_ASAN_CALLER" \
	"$BIN/klctl" --run-dir "$RUN" "$@"; }

# A whitelisted source is not tracked at all: OBSERVE or absent.
released() { case $(level_of $A4) in "" | OBSERVE) return 0 ;; esac; return 1; }
escalated() { ! released; }

syn_flood 150 2000
wait_level $A4 RATE_HARD 40
wait_for 10 "an enforcer entry for the attacker" entries_eq rl $A4 1

log "== the enforcer's --metrics-file, rewritten every second"
prom_val() { awk -v k="$2" '$1 == k { print $2 }' "$(metrics_file "${1%.prom}")"; }
prom_ge() { local v; v=$(prom_val "$1" "$2"); [ -n "$v" ] && awk -v v="$v" -v n="$3" 'BEGIN { exit !(v >= n) }'; }
wait_for 5 "enforcer.prom counts rate-limit drops" \
	prom_ge enforcer.prom 'kernloom_enforcer_xdp_verdicts_total{verdict="drop_rl"}' 100
# RATE_SOFT then RATE_HARD: two records, one rate-limit entry.
wait_for 5 "enforcer.prom counts the decider's records" \
	prom_ge enforcer.prom 'kernloom_enforcer_link_records_applied_total{link="decider"}' 2
expect_eq "$(prom_val enforcer.prom 'kernloom_enforcer_map_entries{map="kernloom_rl_policy4"}')" 1 \
	"enforcer.prom: the attacker's rate-limit entry"
grep -q '^# TYPE kernloom_enforcer_xdp_verdicts_total counter$' "$(metrics_file enforcer)" ||
	fail "enforcer.prom has no TYPE line: $(head "$(metrics_file enforcer)")"
w1=$(prom_val enforcer.prom kernloom_enforcer_last_write_timestamp_seconds)
enf_rewritten() { [ "$(prom_val enforcer.prom kernloom_enforcer_last_write_timestamp_seconds)" != "$w1" ]; }
wait_for 5 "enforcer.prom is rewritten" enf_rewritten
log "ok: enforcer.prom: $(grep -c '^kernloom_' "$(metrics_file enforcer)") samples"

log "== whitelist add by a non-root operator releases the attacker at once"
expect_fail "a user outside the sockets' group cannot whitelist" 1 \
	as_stranger whitelist add $A4 --ttl 25s
out=$(as_op whitelist add $A4 --ttl 25s 2>&1) || fail "klctl whitelist add as the operator: $out"
log "ok: $out"
T_ADD=$SECONDS
wait_for 5 "the attacker is released to OBSERVE" released
wait_for 5 "the attacker's enforcer entries are removed" entries_eq rl $A4 0
expect_eq "$(decider_entries deny $A4)" 0 "no deny entry for the whitelisted attacker"
jq -e --arg ip $A4 --arg u "$OP_UID" '.[] | select(.target == $ip and .action == "whitelist"
	and .ttl == "25s" and (.notes | endswith("uid " + $u)))' "$DEC/feedback.json" >/dev/null ||
	fail "feedback.json lacks the operator's entry: $(cat "$DEC/feedback.json")"
log "ok: the decider wrote the entry to its feedback file as uid $OP_UID asked"
as_op whitelist list --json | jq -e --arg ip $A4 '.entries[] | select(.target == $ip and
	.origin == "feedback" and .expires_in_ms > 0 and .expires_in_ms <= 25000)' >/dev/null ||
	fail "whitelist list: $(as_op whitelist list --json)"
as_op whitelist list | grep -qE "^$A4 +feedback +in " || fail "whitelist list: $(as_op whitelist list)"
log "ok: klctl whitelist list shows it with its expiry (table and --json)"

log "== never escalated while whitelisted, escalated again after the TTL"
moves=$(moves_of $A4)
while [ $((SECONDS - T_ADD)) -lt 18 ]; do
	released || fail "the whitelisted attacker escalated: $(level_of $A4)"
	sleep 1
done
expect_eq "$(moves_of $A4)" "$moves" "no level change while whitelisted"
wait_for 40 "the attacker escalates once the entry expired" escalated
expect_ge $((SECONDS - T_ADD)) 24 "the whitelist entry held for its TTL"
as_op whitelist list --json | jq -e --arg ip $A4 '[.entries[] | select(.target == $ip)] | length == 0' \
	>/dev/null || fail "an expired entry is still listed"
log "ok: expired after $((SECONDS - T_ADD)) s and the attacker escalated again"

log "== --until, del, and the refusals"
out=$(as_op whitelist add $A4 --until 2099-01-01T00:00:00Z) || fail "whitelist add --until: $out"
wait_for 5 "the attacker is released again" released
jq -e --arg ip $A4 '[.[] | select(.target == $ip and .action == "whitelist")] |
	length == 1 and .[0].until == "2099-01-01T00:00:00Z"' "$DEC/feedback.json" >/dev/null ||
	fail "--until did not replace the earlier entry: $(cat "$DEC/feedback.json")"
out=$(as_op --json whitelist del $A4) || fail "whitelist del: $out"
echo "$out" | jq -e '.removed == 1' >/dev/null || fail "whitelist del: $out"
wait_for 20 "the attacker escalates once removed" escalated
log "ok: removed and scored again"
expect_fail "del of an address that is not whitelisted" 1 as_op whitelist del 198.18.0.77
echo "$LAST_OUT" | grep -q "not a whitelist entry" || fail "del: $LAST_OUT"
expect_fail "an --until in the past" 1 as_op whitelist add $A4 --until 2001-01-01T00:00:00Z
expect_fail "--ttl and --until together" 2 as_op whitelist add $A4 --ttl 1h --until 2099-01-01T00:00:00Z
ok_before=$(prom_val enforcer.prom 'kernloom_enforcer_ctl_requests_total{status="OK"}')
klctl stats >/dev/null
ctl_counted() { prom_ge enforcer.prom 'kernloom_enforcer_ctl_requests_total{status="OK"}' $((ok_before + 1)); }
wait_for 5 "enforcer.prom counts klctl requests" ctl_counted

log "== every change is in the decider's audit trail"
kill "$FLOOD_PID" 2>/dev/null
audit_has() { grep -rqs "\"$1\"" "$TMP/audit/decider"; }
wait_for 10 "whitelist-add in the audit trail" audit_has whitelist-add
wait_for 10 "whitelist-del in the audit trail" audit_has whitelist-del
expect_ge "$(grep -rhos '"whitelist-add"' "$TMP/audit/decider" | wc -l)" 2 "audit records of the adds"
kill -0 "${DPID[decider]}" || fail "kl-decider died"
log "all good"
