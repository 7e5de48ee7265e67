# The lab shared by `make demo`, `make bench`'s lab numbers and the 8x
# scenarios: a LAN (a bridge in its own namespace) joining three hosts, each
# in its own namespace, and the four daemons, each dropped to its user and
# sandbox. Source it after setting BUILD; it sources lib.sh, whose trap
# removes everything it made, also on failure.
#
# LAB_USERS picks the daemons' users:
#   service  (default) each started the way its unit starts it: as its own
#            service user of systemd/sysusers.d/kernloom.conf (with the
#            memberships there; users and groups missing on the host are made
#            for the run and removed after it), the enforcer with its three
#            ambient capabilities, no --user nor peer-user flag (the units
#            pass none: the defaults are the service users), in directories
#            with the owners and modes of systemd/tmpfiles.d/kernloom.conf.
#   nobody   started by hand as root with --user nobody (and nobody for every
#            peer), so each drops to nobody and enters its sandbox.
#
#   $NS_A  attacker   198.18.0.1  fd00:6b6c::1   (hping3, nmap, kl-pktgen)
#   $NS_B  server     198.18.0.2  fd00:6b6c::2   nginx; the XDP shield on $VB
#   $NS_C  client     198.18.0.3  fd00:6b6c::3   curl in a loop
#   $NS_L  LAN        bridge br0
#
# start_suite brings it all up; the knobs are arrays set before the call:
#   ENF_ARGS (kl-enforcer), DEC_ARGS (kl-decider, replacing LAB_DEC_ARGS),
#   GRAPHD_ARGS (kl-graphd), SENSOR_ARGS (kl-sensor, replacing LAB_SENSOR_ARGS),
#   LAB_NO_GRAPHD=1 (three daemons only).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NS_C=klc$ID
NS_L=kll$ID
VC=kvc$ID
C4=198.18.0.3 C6=fd00:6b6c::3
EXTRA_NS+=("$NS_C" "$NS_L")
DEC=$TMP/dec
GDIR=$TMP/graph
METRICS=$TMP/metrics # the daemons' --metrics-file: metrics_file ROLE
CLIENT_LOG=$TMP/client.txt
declare -A DPID # role -> pid of the running daemon

# A decider that escalates within seconds and enforces: a web server's
# profile with triggers a SYN flood or a scan crosses at once and a client
# at a few requests per second never nears; +1 strike per high tick so every
# level shows (RATE_SOFT at 1, RATE_HARD at 3, BLOCK at 9 once severity has
# stayed above 2.0 for 4 s), 3 s between changes, no learning. The gap from
# 3 to 9 keeps RATE_HARD from being skipped when a loaded machine delays
# ticks past the cooldown.
LAB_DEC_ARGS=(--profile public-web --dry-run=false --trig-pps 400 --trig-syn 100 --trig-scan 10
	--sev-delta2 1 --sev-delta3 1 --soft-at 1 --hard-at 3 --block-at 9 --block-min-sev 2.0
	--block-min-dur 4s --cooldown 3s --autotune=false --tick-log-every 5s)

in_c() { ip netns exec "$NS_C" "$@"; }

LAB_USERS=${LAB_USERS:-service}
case $LAB_USERS in service | nobody) ;; *) fail "LAB_USERS=$LAB_USERS: service or nobody" ;; esac
# A role's service user (the run directory's name is the role's).
declare -A UNIT_USER=([enforcer]=kernloom-enforcer [sensor]=kernloom-sensor
	[decider]=kernloom-decider [graphd]=kernloom-graph)
LAB_SYSUSERS=$(dirname "${BASH_SOURCE[0]}")/../../systemd/sysusers.d/kernloom.conf
# Shared by the labs running at once: which users and groups a lab made (the
# last lab out removes them) and which labs still use them; under the lock.
LAB_USERS_STATE=/run/kernloom-lab-users
LAB_USERS_LOCK=/run/lock/kernloom-lab-users.lock

# lab_users_make: every user, group and membership of sysusers.d that the
# host lacks, made the way systemd-sysusers makes them; each one made is
# recorded so that the last lab using them removes exactly those.
lab_users_make() {
	[ -r "$LAB_SYSUSERS" ] || fail "cannot read $LAB_SYSUSERS"
	command -v setpriv >/dev/null || fail "setpriv missing (util-linux)"
	CLEANUP_HOOKS+=(lab_users_undo)
	(
		flock 9 || exit 1
		mkdir -p "$LAB_USERS_STATE/holders" || exit 1
		echo $$ >"$LAB_USERS_STATE/holders/$ID"
		made=$LAB_USERS_STATE/made
		while read -r kind name rest; do
			case $kind in
			g)
				getent group "$name" >/dev/null && continue
				groupadd --system "$name" || exit 1
				echo "group $name" >>"$made"
				;;
			u)
				getent passwd "$name" >/dev/null && continue
				desc=$(sed -n 's/^[^"]*"\([^"]*\)".*/\1/p' <<<"$rest")
				grp=(--user-group)
				if getent group "$name" >/dev/null; then
					grp=(--gid "$name")
				else
					echo "group $name" >>"$made" # after the user: the user goes first
				fi
				useradd --system --no-create-home --home-dir / --shell /usr/sbin/nologin \
					--comment "$desc" "${grp[@]}" "$name" || exit 1
				echo "user $name" >>"$made"
				;;
			m)
				id -nG "$name" | tr ' ' '\n' | grep -qx "$rest" && continue
				gpasswd -a "$name" "$rest" >/dev/null || exit 1
				echo "member $name $rest" >>"$made"
				;;
			esac
		done < <(grep -v '^[[:space:]]*\(#\|$\)' "$LAB_SYSUSERS")
	) 9>"$LAB_USERS_LOCK" || fail "cannot make the service users of $LAB_SYSUSERS"
}

# The trap's: once no lab uses them, undo what the labs made, last first.
lab_users_undo() {
	(
		flock 9 || exit 1
		cd "$LAB_USERS_STATE" 2>/dev/null || exit 0
		rm -f "holders/$ID"
		for h in holders/*; do
			[ -f "$h" ] || continue
			kill -0 "$(cat "$h")" 2>/dev/null && exit 0 # still in use
			rm -f "$h"
		done
		[ -f made ] && tac made | while read -r kind a b; do
			case $kind in
			member) ! id "$a" >/dev/null 2>&1 || gpasswd -d "$a" "$b" >/dev/null ;;
			user) userdel "$a" ;;
			group) ! getent group "$a" >/dev/null || groupdel "$a" ;;
			esac || echo "lab: could not remove the $kind $a $b the lab made" >&2
		done
		cd / && rm -rf "$LAB_USERS_STATE"
	) 9>"$LAB_USERS_LOCK"
}

# The directories of tmpfiles.d, in the lab's scratch directory: the run
# directory (0711 root) holds one 2751 ROLE-USER:kernloom-admin per role;
# state, keys and metrics 0700 the role's; audit 2750 the role's and
# kernloom-admin; pins 0750 kernloom-enforcer:kernloom-sensor.
lab_dirs_service() {
	local r u
	install -d -m 0711 "$RUN" "$TMP/audit" "$TMP/keys" "$METRICS" || fail "lab directories"
	for r in enforcer sensor decider graphd; do
		u=${UNIT_USER[$r]}
		install -d -m 2751 -o "$u" -g kernloom-admin "$RUN/$r" &&
			install -d -m 2750 -o "$u" -g kernloom-admin "$TMP/audit/$r" &&
			install -d -m 0700 -o "$u" -g "$u" "$TMP/keys/$r" "$METRICS/$r" || fail "$r's directories"
	done
	install -d -m 0700 -o kernloom-decider -g kernloom-decider "$DEC" &&
		install -d -m 0700 -o kernloom-graph -g kernloom-graph "$GDIR" &&
		install -d -m 0750 -o kernloom-enforcer -g kernloom-sensor "$PIN" || fail "state and pin directories"
}

# unit_exec ROLE: how the role's unit starts it (User=, Group=, the
# user's supplementary groups, the enforcer's AmbientCapabilities=,
# CapabilityBoundingSet= and SecureBits=, NoNewPrivileges=). Word-split
# on purpose; nothing in nobody mode (started as root).
unit_exec() {
	[ "$LAB_USERS" = service ] || return 0
	local u=${UNIT_USER[$1]} caps=-all
	[ "$1" = enforcer ] && caps=-all,+bpf,+net_admin,+perfmon
	echo setpriv --reuid="$u" --regid="$u" --init-groups --inh-caps=$caps --ambient-caps=$caps \
		--bounding-set=$caps --no-new-privs
	[ "$1" = enforcer ] && echo --securebits=+keep_caps_locked,+no_setuid_fixup,+no_setuid_fixup_locked,+noroot,+noroot_locked
	echo --
}
# user_args ROLE: the user flags of sensor, decider, graphd (start_enforcer
# gives the enforcer's); in service mode none, as in the units.
user_args() {
	[ "$LAB_USERS" = nobody ] || return 0
	case $1 in
	sensor) echo --user nobody ;;
	decider) echo --user nobody --sensor-user nobody --graph-user nobody ;;
	graphd) echo --user nobody --sensor-user nobody ;;
	esac
}
lab_user() { # ROLE -> the user it runs as
	if [ "$LAB_USERS" = service ]; then echo "${UNIT_USER[$1]}"; else echo nobody; fi
}
metrics_file() { # ROLE
	if [ "$LAB_USERS" = service ]; then echo "$METRICS/$1/$1.prom"; else echo "$METRICS/$1.prom"; fi
}

lab_port() { # NS DEV V4 V6: a host on the LAN
	ip link add "$2" netns "$1" type veth peer name "p$2" netns "$NS_L" || fail "veth $2"
	ip -n "$NS_L" link set "p$2" master br0 up || fail "bridge port p$2"
	ip -n "$1" addr add "$3/24" dev "$2"
	ip -n "$1" addr add "$4/64" dev "$2" nodad
	ip -n "$1" link set "$2" up
}

lab_net() {
	local n
	for n in "$NS_A" "$NS_B" "$NS_C" "$NS_L"; do
		ip netns add "$n" || fail "netns add $n"
		ip -n "$n" link set lo up
	done
	# No STP: ports forward at once.
	ip -n "$NS_L" link add br0 type bridge stp_state 0 || fail "bridge"
	ip -n "$NS_L" link set br0 up
	lab_port "$NS_A" "$VA" $A4 $A6
	lab_port "$NS_B" "$VB" $B4 $B6
	lab_port "$NS_C" "$VC" $C4 $C6
	in_a ping -c1 -W2 $B4 >/dev/null || fail "attacker cannot reach the server"
	in_c ping -c1 -W2 $B4 >/dev/null || fail "client cannot reach the server"
}

# nginx from Debian, answering on the server's v4 and v6 address; every
# file it writes is under $TMP.
lab_nginx() {
	command -v nginx >/dev/null || fail "nginx missing (scripts/deps.sh installs nginx-light)"
	mkdir -p "$TMP/nginx"
	cat >"$TMP/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx-error.log;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $TMP/nginx/body;
	server {
		listen $B4:80 backlog=4096;
		listen [$B6]:80 backlog=4096;
		location / { return 200 "kernloom lab\n"; }
	}
}
EOF
	# Not through in_b: a backgrounded function is a subshell, and $! must
	# be nginx's master for the cleanup to stop it.
	nsenter --net=/run/netns/"$NS_B" nginx -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf" -g 'daemon off;' >>"$TMP/nginx.log" 2>&1 &
	PIDS+=("$!")
	local _
	for _ in $(seq 1 100); do
		in_c curl -s -o /dev/null --max-time 1 "http://$B4/" && return 0
		sleep 0.1
	done
	fail "nginx did not answer"
}

# lab_client [URL]: the legitimate client, a request every 0.2 s; one line
# per request in $CLIENT_LOG: epoch-seconds http-code seconds.
lab_client() {
	local url=${1:-http://$B4/}
	: >"$CLIENT_LOG"
	ip netns exec "$NS_C" bash -c 'while :; do
		t=$(date +%s.%N)
		r=$(curl -s -o /dev/null -w "%{http_code} %{time_total}" --max-time 2 "$1")
		echo "$t ${r:-000 2}" >>"$2"
		sleep 0.2
	done' lab-client "$url" "$CLIENT_LOG" &
	CLIENT_PID=$!
	PIDS+=("$CLIENT_PID")
}

# client_stats FROM TO: "requests ok success% p50-ms p99-ms" of the client's
# requests started in [FROM, TO) (epoch seconds).
client_stats() {
	awk -v a="$1" -v b="$2" '$1 >= a && $1 < b { n++; if ($2 == 200) { ok++; l[ok] = $3 * 1000 } }
		END {
			if (!n) { print "0 0 0 0 0"; exit }
			# insertion sort: a few hundred samples at most
			for (i = 2; i <= ok; i++) { v = l[i]; j = i - 1; while (j > 0 && l[j] > v) { l[j+1] = l[j]; j-- } l[j+1] = v }
			p50 = ok ? l[int((ok - 1) * 0.50) + 1] : 0; p99 = ok ? l[int((ok - 1) * 0.99) + 1] : 0
			printf "%d %d %.1f %.1f %.1f\n", n, ok, 100 * ok / n, p50, p99
		}' "$CLIENT_LOG"
}

lab_enforcer() {
	ENF_EXEC=($(unit_exec enforcer))
	start_enforcer --metrics-file "$(metrics_file enforcer)" "${ENF_ARGS[@]}"
	DPID[enforcer]=$ENF_PID
}

LAB_SENSOR_ARGS=(--interval 1s --summary-every 10)

lab_sensor() {
	local a=("${LAB_SENSOR_ARGS[@]}")
	[ -n "${SENSOR_ARGS+x}" ] && a=("${SENSOR_ARGS[@]}")
	$(unit_exec sensor) "$BIN/kl-sensor" $(audit_args sensor) --run-dir "$RUN" --pin-dir "$PIN" $(user_args sensor) \
		--metrics-file "$(metrics_file sensor)" "${a[@]}" >>"$TMP/sensor.log" 2>&1 &
	DPID[sensor]=$!
	PIDS+=("$!")
}

lab_decider() {
	local a=("${LAB_DEC_ARGS[@]}")
	[ -n "${DEC_ARGS+x}" ] && a=("${DEC_ARGS[@]}")
	$(unit_exec decider) "$BIN/kl-decider" $(audit_args decider) --run-dir "$RUN" $(user_args decider) --whitelist= \
		--state-file "$DEC/state.json" --feedback-file="$DEC/feedback.json" \
		--metrics-file "$(metrics_file decider)" "${a[@]}" "$@" \
		>>"$TMP/decider.log" 2>&1 &
	DPID[decider]=$!
	PIDS+=("$!")
	wait_for 10 "kl-decider answers klctl" klctl sources
}

lab_graphd() {
	$(unit_exec graphd) "$BIN/kl-graphd" $(audit_args graphd) --graph-store "$GDIR/kliq.db" --run-dir "$RUN" \
		$(user_args graphd) --summary-every 10 --metrics-file "$(metrics_file graphd)" "${GRAPHD_ARGS[@]}" "$@" \
		>>"$TMP/graphd.log" 2>&1 &
	DPID[graphd]=$!
	PIDS+=("$!")
	wait_for 10 "kl-graphd answers klctl" klctl graph export
}

start_suite() {
	command -v jq >/dev/null || skip "needs jq"
	command -v curl >/dev/null || skip "needs curl"
	[ "$LAB_USERS" = service ] || id nobody >/dev/null 2>&1 || skip "no user nobody"
	local b
	for b in kl-enforcer kl-sensor kl-decider kl-graphd klctl; do
		[ -x "$BIN/$b" ] || fail "missing $BIN/$b (run make first)"
	done
	lab_net
	lab_nginx
	# The daemons must reach the sockets in $RUN; the decider rewrites its
	# state and feedback files in $DEC, graphd its database in $GDIR.
	chmod 0755 "$TMP"
	if [ "$LAB_USERS" = service ]; then
		lab_users_make
		lab_dirs_service
	else
		mkdir -p "$RUN" "$DEC" "$GDIR" "$METRICS" && chmod 0755 "$RUN" &&
			chown nobody "$DEC" "$GDIR" "$METRICS"
	fi
	lab_enforcer
	[ -n "${LAB_NO_GRAPHD:-}" ] || lab_graphd
	lab_decider
	lab_sensor
	wait_for 10 "kl-sensor reads the maps" grep -q "reading .* every" "$TMP/sensor.log"
}

# ---- observing the suite ----
level_of() { # IP -> its level in `klctl sources`, or nothing
	klctl --json sources -n 1000 | jq -r --arg ip "$1" '.[] | select(.ip == $ip) | .level' |
		head -n 1
}
decider_entries() { # LIST (deny|rl) IP -> how many decider-origin entries
	klctl --json "$1" list | jq --arg ip "$2" \
		'[(.entries // [])[] | select(.ip == $ip and .origin == "decider")] | length'
}
# wait_level IP LEVEL SECONDS: poll until the decider has IP at LEVEL.
wait_level() {
	local end=$((SECONDS + $3))
	while [ "$(level_of "$1")" != "$2" ]; do
		[ $SECONDS -lt $end ] || fail "$1 did not reach $2 within $3 s (now '$(level_of "$1")')"
		sleep 0.3
	done
	log "ok: $1 is $2"
}

# ---- attacks from $NS_A ----
# syn_flood SECONDS [PPS] [DST]: hping3's SYN flood on port 80, paced (a
# 2-core machine shared with the daemons: --flood would take a core).
syn_flood() {
	local us=$((1000000 / ${2:-2000}))
	command -v hping3 >/dev/null || fail "hping3 missing (scripts/deps.sh installs it)"
	ip netns exec "$NS_A" timeout "$1" hping3 -S -p 80 -i "u$us" -q "${3:-$B4}" >>"$TMP/hping3.log" 2>&1 &
	FLOOD_PID=$!
	PIDS+=("$FLOOD_PID")
}
# port_scan [DST [SRC]]: nmap SYN scan of 3000 ports at 300 a second (so
# that it spans ~10 ticks), from SRC (an address of $NS_A) when given.
port_scan() {
	local src=()
	command -v nmap >/dev/null || fail "nmap missing (scripts/deps.sh installs it)"
	[ -n "${2:-}" ] && src=(-S "$2" -e "$VA")
	case ${1:-$B4} in *:*) src+=(-6) ;; esac
	ip netns exec "$NS_A" nmap -n -Pn -sS --max-retries 0 --min-rate 250 --max-rate 300 -p 1-3000 "${src[@]}" "${1:-$B4}" >>"$TMP/nmap.log" 2>&1 &
	SCAN_PID=$!
	PIDS+=("$SCAN_PID")
}

# ---- assertions over the decider's log ----
# moves_of IP -> its level changes so far, e.g. "OBSERVE->RATE_SOFT RATE_SOFT->RATE_HARD"
moves_of() {
	awk -v ip="$1" '$4 == "STATE" && $5 == ip { printf "%s%s", sep, $6; sep = " " } END { print "" }' \
		"$TMP"/decider*.log
}
# client_all_ok FROM: every client request since FROM succeeded (and >= 5 of them)
client_all_ok() {
	set -- $(client_stats "$1" 99999999999)
	[ "$1" -ge 5 ] && [ "$1" = "$2" ]
}
pings_from_ns() { # NS DST COUNT -> replies
	ip netns exec "$1" ping -c "$3" -i 0.1 -W 1 -q "$2" 2>/dev/null |
		awk '/received/ { for (i = 1; i <= NF; i++) if ($(i+1) ~ /^received/) print $i }'
}
src_ge() { # IP FIELD N: the source's top-src FIELD is >= N (for wait_for)
	local v
	v=$(src_field "$1" "$2")
	[ -n "$v" ] && [ "$v" -ge "$3" ]
}
entries_eq() { [ "$(decider_entries "$1" "$2")" = "$3" ]; } # LIST IP N (for wait_for)
