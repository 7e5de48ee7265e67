#!/usr/bin/env bash
# SIGHUP re-reads the configuration files of kl-sensor (sensor.yaml),
# kl-graphd (graphd.yaml and spec.graph of the PDPConfig), kl-decider (the
# PDPConfig) and kl-enforcer (enforcer.yaml), validating first:
# a live setting changes at once, a restart-only one is logged as "needs a
# restart" and keeps its value, a bad file keeps the whole running
# configuration and the log names file, line and key. The daemons run as
# their units start them (the lab's service users), in their sandboxes.
. "$(dirname "$0")/lab.sh"
CFG=$TMP/etc
mkdir -p "$CFG" && chmod 0755 "$CFG"
printf 'summary_every: 10\ninterval: 1s\n' >"$CFG/sensor.yaml"
printf 'graph_min_seen: 5\n' >"$CFG/graphd.yaml"
pdp() { # MIN_WINDOWS
	cat >"$CFG/pdp.yaml" <<YAML
apiVersion: kernloom.io/v1alpha1
kind: PDPConfig
spec:
  graph:
    promotion: {min_seen_count: 5, min_windows: $1}
YAML
}
pdp 3
dpdp() { # UP_NEED BASELINE_MIN_PPS: the decider's PDPConfig
	cat >"$CFG/decider.yaml" <<YAML
apiVersion: kernloom.io/v1alpha1
kind: PDPConfig
spec:
  progressive_enforcement: {up_need: $1}
  baseline: {min_pps: $2}
YAML
}
dpdp 3 3
printf 'new_source_min_rate: 100\nmap_sizes: {flow: 32768}\n' >"$CFG/enforcer.yaml"
chmod 0644 "$CFG"/*.yaml
ENF_ARGS=(--config "$CFG/enforcer.yaml")
DEC_ARGS=("${LAB_DEC_ARGS[@]}" --pdp-config "$CFG/decider.yaml")
SENSOR_ARGS=(--config "$CFG/sensor.yaml") # interval and summary_every from the file
GRAPHD_ARGS=(--config "$CFG/graphd.yaml" --pdp-config "$CFG/pdp.yaml")
start_suite

ticks_at_least() { [ "$(grep -c 'TICK#' "$TMP/sensor.log")" -ge "$1" ]; }

hup() { # ROLE LOG PATTERN: SIGHUP, then wait for the pattern in the role's log
	kill -HUP "${DPID[$1]}" || fail "kill -HUP $1"
	wait_for 10 "$1: $3" grep -q -- "$3" "$2"
	kill -0 "${DPID[$1]}" 2>/dev/null || fail "$1 died on SIGHUP"
}

# -- kl-sensor --
# live: summary-every
printf 'summary_every: 1\ninterval: 1s\n' >"$CFG/sensor.yaml"
hup sensor "$TMP/sensor.log" "reload: summary-every 10 -> 1 (file $CFG/sensor.yaml:1)"
n=$(grep -c "TICK#" "$TMP/sensor.log")
wait_for 10 "TICK# lines every tick" ticks_at_least $((n + 3))
log "ok: sensor summary-every changed live"
# restart-only: interval
printf 'summary_every: 1\ninterval: 2s\n' >"$CFG/sensor.yaml"
hup sensor "$TMP/sensor.log" "reload: interval 2s (file $CFG/sensor.yaml:2) needs a restart; keeping 1s"
log "ok: sensor interval needs a restart"
# a bad file: refused whole, the running configuration stays
printf 'summary_every: lots\n' >"$CFG/sensor.yaml"
hup sensor "$TMP/sensor.log" "SIGHUP: $CFG/sensor.yaml:1: summary_every: expected an integer, got 'lots'"
grep -q "configuration refused; keeping the running one" "$TMP/sensor.log" ||
	fail "sensor: no 'keeping the running one'"
n=$(grep -c "TICK#" "$TMP/sensor.log")
wait_for 10 "sensor still ticks with summary-every 1" ticks_at_least $((n + 2))
log "ok: sensor keeps its configuration on a bad file"

# -- kl-graphd --
# live, from both files
printf 'graph_min_seen: 2\n' >"$CFG/graphd.yaml"
pdp 1
hup graphd "$TMP/graphd.log" "reload: graph-min-seen 5 -> 2 (file $CFG/graphd.yaml:1)"
grep -q -- "reload: graph-min-windows 3 -> 1 (pdp $CFG/pdp.yaml:5)" "$TMP/graphd.log" ||
	fail "graphd: spec.graph min_windows not reloaded"
log "ok: graphd took graph-min-seen (graphd.yaml) and graph-min-windows (PDPConfig) live"
# restart-only: the push rate
printf 'graph_min_seen: 2\ngraph_push_rate: 100\n' >"$CFG/graphd.yaml"
hup graphd "$TMP/graphd.log" "reload: graph-push-rate 100 (file $CFG/graphd.yaml:2) needs a restart; keeping 2000"
klctl graph export >/dev/null || fail "graphd stopped answering after a restart-only change"
log "ok: graphd graph-push-rate needs a restart"
# a bad PDPConfig: refused whole
pdp 0
hup graphd "$TMP/graphd.log" "SIGHUP: $CFG/pdp.yaml:5: spec.graph.promotion.min_windows: 0 is out of range"
klctl graph export >/dev/null || fail "graphd stopped answering after a bad file"

# -- kl-decider --
dpdp 2 3
hup decider "$TMP/decider.log" "reload: up-need 3 -> 2 (pdp $CFG/decider.yaml:4)"
log "ok: decider up-need changed live"
dpdp 2 5
hup decider "$TMP/decider.log" "reload: baseline-min-pps 5 (pdp $CFG/decider.yaml:5) needs a restart; keeping 3"
log "ok: decider baseline-min-pps needs a restart"
dpdp -1 5
hup decider "$TMP/decider.log" "SIGHUP: $CFG/decider.yaml:4: spec.progressive_enforcement.up_need: -1 is out of range"
klctl sources >/dev/null || fail "the decider stopped answering after a bad file"

# -- kl-enforcer --
DPID[enforcer]=$ENF_PID
printf 'new_source_min_rate: 50\nmap_sizes: {flow: 32768}\n' >"$CFG/enforcer.yaml"
hup enforcer "$TMP/enforcer.log" "reload: new-source-min-rate 100 -> 50 (file $CFG/enforcer.yaml:1)"
log "ok: enforcer new_source_min_rate changed live"
printf 'new_source_min_rate: 50\nmap_sizes: {flow: 4096}\n' >"$CFG/enforcer.yaml"
hup enforcer "$TMP/enforcer.log" "reload: map-size-flow 4096 (file $CFG/enforcer.yaml:2) needs a restart; keeping 32768"
log "ok: enforcer map_sizes needs a restart"
printf 'new_source_min_rate: lots\n' >"$CFG/enforcer.yaml"
hup enforcer "$TMP/enforcer.log" "SIGHUP: $CFG/enforcer.yaml:1: new_source_min_rate"
klctl status enforcer >/dev/null || fail "the enforcer stopped answering after a bad file"
log "all good"
