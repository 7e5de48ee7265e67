#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Write the golden replay traces (tests/replay/traces/*.jsonl).

Deterministic: no randomness beyond a fixed LCG, so running it again gives
the same bytes. The traces are committed; this script documents how they
were made. Addresses are from documentation / benchmarking ranges.
Run: python3 tests/replay/gen_traces.py
"""
import ipaddress
import json
import os
import struct
import zlib

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "traces")


class LCG:
    def __init__(self, seed):
        self.x = seed

    def next(self, n):
        self.x = (self.x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        return (self.x >> 33) % n


def src(ip, pps=0, syn=0, scan=0, bps=0, droprl=0):
    d = {"ip": ip}
    for k, v in (("pps", pps), ("bps", bps), ("syn", syn), ("scan", scan), ("droprl", droprl)):
        if v:
            d[k] = v
    return d


def benign(t):
    # A few ordinary clients that must never leave OBSERVE.
    return [src("198.18.0.10", 40 + (t % 7) * 10, 2, 1),
            src("2001:db8::20", 90, 4, 1)]


def write(name, header, lines):
    path = os.path.join(OUT, name + ".jsonl")
    with open(path, "w") as f:
        for h in header:
            f.write("# " + h + "\n")
        for obj in lines:
            f.write(json.dumps(obj, separators=(", ", ": ")) + "\n")


# ---- binary traces, as `kl-sensor --record` writes them (ipc/trace.h,
# ipc/frames.h): written here from the format's description, independently of
# the C encoder, so the replay test also checks that the two agree.

MSG_MAGIC = 0x314D4C4B  # "KLM1"
MSG_VERSION, TRACE_VERSION = 2, 2
MSG_TELEMETRY, MSG_FLOWS = 2, 3
FRAME_LAST = 1
# Records per frame in the recording: small, so that a tick with the flood
# source goes as two frames and the replay has to put it back together.
FRAME_RECORDS = 2
N_TOTALS = 16           # enum kl_total: pkts bytes pass drop_allow drop_deny drop_rl ...
RATES = ("pps", "bps", "syn", "synack", "rst", "scan", "pass",
         "drop_allow", "drop_deny", "droprl", "drop_edge")


def wire(mtype, seq, tick, payload):
    return struct.pack("<IHHIIQQ", MSG_MAGIC, MSG_VERSION, mtype, 0, len(payload), seq,
                       tick) + payload


def chunks(sources):
    """The tick's sources as frames of at most FRAME_RECORDS; at least one."""
    out = [sources[i:i + FRAME_RECORDS] for i in range(0, len(sources), FRAME_RECORDS)]
    return out or [[]]


def telemetry(tick, t_ns, sources, frame, last, totals_of):
    recs = b""
    tot = [0] * N_TOTALS
    for d in totals_of:
        tot[0] += int(d.get("pps", 0))
        tot[1] += int(d.get("bps", 0))
        tot[2] += int(max(0, d.get("pps", 0) - d.get("droprl", 0)))
        tot[5] += int(d.get("droprl", 0))
    for d in sources:
        a = ipaddress.ip_address(d["ip"])
        fam = 4 if a.version == 4 else 6
        r = dict(d)
        r["pass"] = max(0, d.get("pps", 0) - d.get("droprl", 0))
        recs += struct.pack("<B3x16s", fam, a.packed.ljust(16, b"\0"))
        recs += struct.pack("<11d", *[float(r.get(k, 0)) for k in RATES])
    # Only frame 0 carries the tick's totals.
    nt = N_TOTALS if frame == 0 else 0
    fixed = struct.pack("<QQQIIII", tick, t_ns, 1000000000, nt, len(sources), frame,
                        FRAME_LAST if last else 0)
    return fixed + struct.pack("<%dQ" % nt, *tot[:nt]) + recs


def flows(tick, t_ns, sources, frame, last):
    recs = b""
    for d in sources:
        a = ipaddress.ip_address(d["ip"])
        recs += struct.pack("<B3x16sHBxQQ", 4 if a.version == 4 else 6,
                            a.packed.ljust(16, b"\0"), 443, 6, int(d.get("pps", 0)),
                            int(d.get("bps", 0)))
    return struct.pack("<QQQIIII", tick, t_ns, 1000000000, len(sources), 0, frame,
                       FRAME_LAST if last else 0) + recs


def write_binary(name, lines, base_ns):
    path = os.path.join(OUT, name + ".kltrace")
    with open(path, "wb") as f:
        f.write(b"KLTRACE1" + struct.pack("<II", TRACE_VERSION, 0))
        seq = 0
        for obj in lines:
            t_ns = base_ns + int(obj["t"] * 1000000000)
            tick = int(obj["t"]) + 1
            parts = chunks(obj["sources"])
            bodies = []
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                bodies.append((MSG_TELEMETRY,
                               telemetry(tick, t_ns, part, i, last, obj["sources"])))
            for i, part in enumerate(parts):
                bodies.append((MSG_FLOWS, flows(tick, t_ns, part, i, i == len(parts) - 1)))
            for mtype, body in bodies:
                seq += 1
                msg = wire(mtype, seq, tick, body)
                f.write(struct.pack("<II", len(msg), zlib.crc32(msg) & 0xFFFFFFFF) + msg)


def syn_flood():
    lines = []
    for t in range(0, 240):
        s = benign(t)
        if 10 <= t < 70:
            drop = 15000 if t >= 40 else 0
            s.append(src("203.0.113.7", 20000, 19000, 1, 1200000, drop))
        lines.append({"t": t, "sources": s})
    write("syn_flood", [
        "SYN flood from 203.0.113.7, t=10..69: 20000 pps, 19000 SYN/s, one port.",
        "From t=40 the trace shows 15000 DropRL/s (a limiter in place that the flood",
        "keeps hitting). Quiet from t=70. Two benign clients throughout."], lines)
    # The same ticks as a kl-sensor recording, on the wall clock of
    # 2026-01-01T00:00:00.25Z + t: its decisions are syn_flood's, shifted.
    write_binary("syn_flood", lines, 1767225600250000000)


def slow_scan():
    lines = []
    for t in range(0, 480):
        s = benign(t)
        if 20 <= t < 120:
            s.append(src("198.51.100.23", 30, 25, 20, 1800))
        lines.append({"t": t, "sources": s})
    write("slow_scan", [
        "Slow port scan from 198.51.100.23, t=20..119: 30 pps, 25 SYN/s,",
        "20 distinct destination ports per second. Quiet afterwards."], lines)


def nat_gateway():
    r = LCG(7)
    lines = []
    for t in range(0, 600):
        s = benign(t)
        pps = 2000 + r.next(1500)
        syn = 150 + r.next(150)
        scan = 3 + r.next(4)
        if 200 <= t < 216:
            pps, syn = 6000, 900
        s.append(src("192.0.2.1", pps, syn, scan, pps * 700))
        lines.append({"t": t, "sources": s})
    write("nat_gateway", [
        "Busy NAT gateway 192.0.2.1 (many users behind one address) for 10 minutes:",
        "2000-3500 pps, 150-300 SYN/s, 3-6 ports/s, plus a 16 s burst at t=200..215",
        "(6000 pps, 900 SYN/s). It must never be blocked."], lines)


def flapping():
    lines = []
    for t in range(0, 480):
        s = benign(t)
        if 10 <= t < 250 and (t - 10) % 8 < 4:
            s.append(src("198.51.100.77", 8000, 1500, 2, 600000))
        lines.append({"t": t, "sources": s})
    write("flapping", [
        "Flapping source 198.51.100.77: 4 s at 8000 pps / 1500 SYN/s, 4 s silent,",
        "from t=10 to t=249; quiet afterwards."], lines)


def burst_then_quiet():
    lines = []
    for t in range(0, 720):
        s = benign(t)
        if 30 <= t < 40:
            s.append(src("203.0.113.50", 50000, 40000, 100, 3000000))
        lines.append({"t": t, "sources": s})
    write("burst_then_quiet", [
        "One 10 s burst from 203.0.113.50 at t=30..39 (50000 pps, 40000 SYN/s,",
        "100 ports/s), then 11 minutes of quiet: the way back down."], lines)


def exemptions():
    lines = []
    for t in range(0, 240):
        s = benign(t)
        if t >= 5:
            s.append(src("203.0.113.5", 30000, 25000, 1, 2000000))   # whitelisted by file
            s.append(src("198.51.100.9", 9000, 2000, 1, 600000))     # forgiven at t=60
            s.append(src("2001:db8:bad::1", 9000, 2000, 1, 600000))  # whitelisted at t=100
        line = {"t": t, "sources": s}
        if t == 60:
            line["feedback"] = [{"target": "198.51.100.9", "action": "forgive", "ttl": "30s",
                                 "notes": "incident 42"}]
        if t == 100:
            line["whitelist"] = ["203.0.113.0/28", "2001:db8:bad::/48"]
        if t == 120:
            line["feedback"] = [{"target": "198.51.100.9", "action": "forgive", "ttl": "30s",
                                 "notes": "incident 42"},
                                {"target": "198.51.100.0/24", "action": "whitelist",
                                 "until": "1970-01-01T00:02:20Z"}]
        lines.append(line)
    write("exemptions", [
        "Whitelisted and forgiven attackers (run with --whitelist files/whitelist.txt,",
        "which lists 203.0.113.0/28). All three flood from t=5:",
        " 203.0.113.5      inside the whitelist file: never scored;",
        " 198.51.100.9     forgiven at t=60 for 30 s, then scored again from zero;",
        "                  at t=120 its /24 is whitelisted until t=140 (until = Unix time);",
        " 2001:db8:bad::1  its /48 is added to the whitelist at t=100.",
        "Feedback lines replace the file's content, as an operator editing it would;",
        "the forgive entry at t=120 is the same entry, so its ttl is not restarted."], lines)


def violations():
    lines = []
    for t in range(0, 200):
        s = benign(t)
        s.append(src("198.18.5.3", 20, 1, 1, 9000))
        if 60 <= t < 100:
            s.append(src("198.18.5.5", 3000, 300, 40, 240000))
        line = {"t": t, "sources": s}
        v = []
        if 10 <= t < 18:
            v.append({"ip": "198.18.5.3", "port": 5432, "proto": "tcp", "mode": "observe"})
        if 50 <= t < 60:
            for port in (23 + 2 * (t - 50), 24 + 2 * (t - 50)):
                v.append({"ip": "198.18.5.4", "port": port, "proto": "tcp", "mode": "enforce"})
        if 60 <= t < 100:
            v.append({"ip": "198.18.5.5", "port": 1000 + t, "proto": "tcp", "mode": "enforce"})
        if v:
            line["violations"] = v
        lines.append(line)
    write("violations", [
        "Graph violations without graphd: 198.18.5.3 (20 pps, harmless by volume) uses",
        "an unknown edge on every tick from t=10 to t=17 (frozen-observe); 198.18.5.4, which",
        "sends nothing, has 20 frozen-enforce violations over t=50..59 (what a blind spoofer",
        "with its address makes); 198.18.5.5 floods (sev 2.7-2.8) from t=60 to t=99 and has a",
        "frozen-enforce violation on each of those ticks."], lines)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    syn_flood()
    slow_scan()
    nat_gateway()
    flapping()
    burst_then_quiet()
    exemptions()
    violations()
