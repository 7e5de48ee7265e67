#!/usr/bin/env python3
"""Hostile IPC peer for the scenario suite: speaks nng's SP-over-IPC framing
by hand, so that what it sends reaches the daemon's own decoder.

  nngpoke.py SOCKET garbage     one message of random bytes
  nngpoke.py SOCKET oversized   a frame announcing 1 TiB, then a few bytes
  nngpoke.py SOCKET short       a 3-byte message

It takes the protocol the listener announces and answers as its peer
(REP -> REQ, PULL -> PUSH, PAIR -> PAIR). Exit 0 when the bytes went out;
what the daemon does with them is the caller's to check."""
import os
import socket
import struct
import sys

PEER = {0x31: 0x30, 0x51: 0x50, 0x10: 0x10, 0x11: 0x11}


def main():
    path, what = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1)
    s.connect(path)
    s.sendall(b"\x00SP\x00" + struct.pack(">H", 0) + b"\x00\x00")
    hs = s.recv(8)
    if len(hs) != 8 or hs[:4] != b"\x00SP\x00":
        print(f"{path}: no SP handshake ({hs!r})", file=sys.stderr)
        return 1
    theirs = struct.unpack(">H", hs[4:6])[0]
    # Our first handshake said protocol 0; nng closes on a mismatch, so
    # reconnect announcing the right peer protocol.
    s.close()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1)
    s.connect(path)
    s.sendall(b"\x00SP\x00" + struct.pack(">H", PEER.get(theirs, 0)) + b"\x00\x00")
    s.recv(8)
    req_id = b"\x80\x00\x00\x01" if theirs == 0x31 else b""
    if what == "garbage":
        body = req_id + os.urandom(64)
        s.sendall(b"\x01" + struct.pack(">Q", len(body)) + body)
    elif what == "oversized":
        s.sendall(b"\x01" + struct.pack(">Q", 1 << 40) + req_id + b"x" * 4096)
    elif what == "short":
        body = req_id + b"abc"
        s.sendall(b"\x01" + struct.pack(">Q", len(body)) + body)
    else:
        print(f"unknown kind {what}", file=sys.stderr)
        return 2
    try:
        s.recv(64)  # an answer, a close, or the timeout: all fine
    except OSError:
        pass
    s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
