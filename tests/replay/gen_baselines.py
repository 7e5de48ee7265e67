#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Write tests/replay/traces/baselines.jsonl (per-source baselines, issue 16).

Deterministic; the derivation of every expected decision is in
tests/replay/baselines.md. Run: python3 tests/replay/gen_baselines.py
"""
import json
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "traces", "baselines.jsonl")
T = 5000  # generic trig_pps
BURST = range(100, 105)


def normal(t):
    # 0.86..0.98 x T: a heavy client just under the trigger
    return 4300 + ((t * 3) % 7) * 100


def tick(t):
    s = []
    # A: heavy by nature, seen from t=0, bursts to 1.14 x T at t=100..104
    s.append({"ip": "198.18.1.1", "pps": 5700 if t in BURST else normal(t), "syn": 5})
    # B: newcomer from t=95 with the same traffic and the same bursts
    if t >= 95:
        s.append({"ip": "198.18.1.2", "pps": 5700 if t in BURST else normal(t), "syn": 5})
    # C: slow ramp from 0.5 x T, +40 pps per second
    s.append({"ip": "198.18.1.3", "pps": 2500 + 40 * t, "syn": 5})
    # D: floods 1.5 x T for 3 s (rate-limited), then sits at 0.9 x T, then
    # the same bursts as A
    if t < 3:
        pps = 7500
    elif t in BURST:
        pps = 5700
    else:
        pps = normal(t)
    s.append({"ip": "198.18.1.4", "pps": pps, "syn": 5})
    return {"t": float(t), "sources": s}


with open(OUT, "w") as f:
    for t in range(120):
        f.write(json.dumps(tick(t), separators=(", ", ": ")) + "\n")
