#!/usr/bin/env bash
# klctl trace from-pcap on captures this test writes itself (kl-pcapgen):
# exact rates per tick of the capture's own clock, flows, deterministic
# output, other intervals, ephemeral folding, gaps, and refusals.
. "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || skip "needs jq"
[ -x "$TOOLS/kl-pcapgen" ] || fail "missing $TOOLS/kl-pcapgen (run make first)"
[ -f "$OBJ" ] || fail "missing $OBJ"

trace() { "$BIN/klctl" trace "$@"; }
CAP=$TMP/known.pcap
# 200 pps UDP (100-byte frames) from .1 for 5 s, SYNs to 100 new ports/s
# from .3 for 5 s, 50 pps UDP from an IPv6 source for 3 s, 10 pps UDP to an
# ephemeral port from .5.
"$TOOLS/kl-pcapgen" --out "$CAP" --start 1700000000.25 \
	--stream 198.18.0.1,198.18.0.2,udp,200,5s,9,0,58 \
	--stream 198.18.0.3,198.18.0.2,syn,100,5s,1000,1 \
	--stream fd00:6b6c::1,fd00:6b6c::2,udp,50,3s,53,0,58 \
	--stream 198.18.0.5,198.18.0.2,udp,10,5s,40000,0,58 2>"$TMP/gen.log" || fail "kl-pcapgen"

OUT=$TMP/out.jsonl
trace from-pcap "$CAP" --obj "$OBJ" >"$OUT" 2>"$TMP/from.err" || fail "from-pcap: $(cat "$TMP/from.err")"
jq -e . "$OUT" >/dev/null || fail "output is not JSON lines"
expect_eq "$(wc -l <"$OUT")" 5 "one line per 1 s tick of the 5 s capture"
# As printed (jq would normalize 1.0 to 1).
tvals() { grep -o '^{"t": [0-9.]*' "$OUT" | cut -d' ' -f2 | tr '\n' ' '; }
expect_eq "$(tvals)" "0.0 1.0 2.0 3.0 4.0 " "t on the capture's clock"
grep -q "1700 packets in 5 ticks" "$TMP/from.err" || fail "summary: $(cat "$TMP/from.err")"

field() { jq -r --arg ip "$1" --arg f "$2" '[.sources[] | select(.ip == $ip) | .[$f]] | first // "absent"' "$OUT" | tr '\n' ' '; }
# A source's first packet is not admitted to a slot (the shield's admission
# filter): it counts in new_sources, not in the source's own rates.
expect_eq "$(jq -r '.new_sources' "$OUT" | tr '\n' ' ')" "4 0 0 0 0 " "new_sources: each source's first packet"
expect_eq "$(field 198.18.0.1 pps)" "199 200 200 200 200 " "198.18.0.1 pps per tick"
expect_eq "$(field 198.18.0.1 bps)" "19900 20000 20000 20000 20000 " "198.18.0.1 bytes/s per tick"
expect_eq "$(field 198.18.0.3 pps)" "99 100 100 100 100 " "scanner pps"
expect_eq "$(field 198.18.0.3 syn)" "99 100 100 100 100 " "scanner syn/s"
expect_eq "$(field 198.18.0.3 scan)" "99 100 100 100 100 " "scanner distinct ports/s"
expect_eq "$(field 198.18.0.3 bps)" "5346 5400 5400 5400 5400 " "scanner bytes/s (54-byte SYNs)"
expect_eq "$(field fd00:6b6c::1 pps)" "49 50 50 absent absent " "IPv6 source, gone after 3 s"
expect_eq "$(field 198.18.0.1 droprl)" "0 0 0 0 0 " "no rate limits in a private shield"
for v in $(field 198.18.0.1 scan); do
	[ "$v" -le 2 ] || fail "one-port sender has scan $v (windows of the capture's clock)"
done
log "ok: one-port sender's scan stays <= 2: $(field 198.18.0.1 scan)"
# Exactly the fields of DESIGN §6.6.
expect_eq "$(jq -c '.sources[0] | keys' "$OUT" | sort -u)" '["bps","droprl","ip","pps","scan","syn"]' "source fields"
expect_eq "$(jq -c '.flows[0] | keys' "$OUT" | sort -u)" '["bytes","pkts","port","proto","src"]' "flow fields"

flow() { jq -r --arg s "$1" --argjson p "$2" --arg pr "$3" --arg f "$4" \
	'[.flows[] | select(.src == $s and .port == $p and .proto == $pr) | .[$f]] | first // "absent"' "$OUT" | tr '\n' ' '; }
expect_eq "$(flow 198.18.0.1 9 udp pkts)" "199 200 200 200 200 " "flow 198.18.0.1 -> 9/udp pkts"
expect_eq "$(flow 198.18.0.1 9 udp bytes)" "19900 20000 20000 20000 20000 " "flow bytes"
expect_eq "$(flow fd00:6b6c::1 53 udp pkts)" "49 50 50 absent absent " "IPv6 flow"
expect_eq "$(jq '[.flows[] | select(.src == "198.18.0.3" and .proto == "tcp")] | length' "$OUT" | tr '\n' ' ')" \
	"99 100 100 100 100 " "scanner: 100 new (port, tcp) edges per tick"
expect_eq "$(flow 198.18.0.5 0 udp pkts)" "9 10 10 10 10 " "port 40000 folded to 0 (ephemeral)"

log "== deterministic: the same capture gives byte-identical output"
trace from-pcap "$CAP" --obj "$OBJ" >"$TMP/out2.jsonl" 2>/dev/null || fail "second run"
cmp -s "$OUT" "$TMP/out2.jsonl" || fail "two runs differ"
log "ok: identical"

log "== other interval, no folding"
trace from-pcap "$CAP" --obj "$OBJ" --interval 500ms --ephemeral-min 0 >"$OUT" 2>/dev/null || fail "--interval 500ms"
expect_eq "$(wc -l <"$OUT")" 10 "ten 500 ms ticks"
expect_eq "$(tvals | cut -d' ' -f1-3)" "0.0 0.5 1.0" "t steps by 0.5"
expect_eq "$(field 198.18.0.1 pps | awk '{ print $1, $5, $10 }')" "198 200 200" "rates stay per second"
expect_eq "$(flow 198.18.0.5 40000 udp pkts | awk '{ print $1 }')" "4" "--ephemeral-min 0 keeps port 40000"

log "== a gap in the capture: empty ticks keep the clock going"
"$TOOLS/kl-pcapgen" --out "$TMP/gap.pcap" --start 100 \
	--stream 198.18.0.1,198.18.0.2,udp,10,1s,9,0,18,0s \
	--stream 198.18.0.7,198.18.0.2,udp,10,1s,9,0,18,4s 2>/dev/null || fail "kl-pcapgen"
trace from-pcap "$TMP/gap.pcap" --obj "$OBJ" >"$OUT" 2>/dev/null || fail "gap capture"
expect_eq "$(jq -c '[.sources[].ip]' "$OUT" | tr '\n' ' ')" \
	'["198.18.0.1"] [] [] [] ["198.18.0.7"] ' "sources per tick across a 3 s gap"

log "== refusals"
"$TOOLS/kl-pcapgen" --out "$TMP/raw.pcap" --raw --stream 198.18.0.1,198.18.0.2,udp,10,1s 2>/dev/null || fail "kl-pcapgen --raw"
expect_fail "a non-Ethernet capture is refused" 1 trace from-pcap "$TMP/raw.pcap" --obj "$OBJ"
echo "$LAST_OUT" | grep -q "link type" || fail "refusal does not name the link type: $LAST_OUT"
expect_fail "a missing capture" 1 trace from-pcap "$TMP/nope.pcap" --obj "$OBJ"
expect_fail "a bad interval is a usage error" 2 trace from-pcap "$CAP" --interval 1x
expect_fail "no capture is a usage error" 2 trace from-pcap
expect_fail "an unknown subcommand is a usage error" 2 trace frobnicate
chmod 0755 "$TMP" && chmod 0644 "$CAP"
if command -v setpriv >/dev/null; then
	expect_fail "needs root, and says so" 1 setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$BIN/klctl" trace from-pcap "$CAP" --obj "$OBJ"
	echo "$LAST_OUT" | grep -q "needs root" || fail "non-root refusal does not say why: $LAST_OUT"
fi
log "all good"
