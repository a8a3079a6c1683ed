#!/usr/bin/env python3
"""Floods from one address of a test namespace (flood.test; its SYN flood
is tvsd_helpers.tcl's `synflood`).

flood.py rrq SRC DST N
    N TFTP RRQs for ITLFile.tlv from SRC, each from its own source port,
    sent as fast as a raw socket goes and never acknowledged. Options
    cycle through: timeout 255; blksize 1428 tsize 0 timeout 255; none;
    windowsize 16 timeout 255. Prints "sent N".
flood.py idle SRC DST PORT N STATUS GO SECS
    N TCP connections from SRC, opened at once (non-blocking), never
    sending a byte. Once every connect has resolved (at most 20 s) writes
    "connected C failed F" to the file STATUS, then holds the sockets until
    the file GO exists or SECS pass, and closes them.
Every loop is bounded by its count or a deadline.
"""
import os
import resource
import select
import socket
import struct
import sys
import time


def raw_udp_from(src):
    """A raw UDP socket whose datagrams leave from src (the kernel adds the IP header)."""
    r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
    r.bind((src, 0))
    return r


OPTION_SETS = [
    [b"timeout", b"255"],
    [b"blksize", b"1428", b"tsize", b"0", b"timeout", b"255"],
    [],
    [b"windowsize", b"16", b"timeout", b"255"],
]


def rrq(src, dst, n):
    r = raw_udp_from(src)
    for i in range(n):
        body = struct.pack("!H", 1) + b"ITLFile.tlv\0octet\0"
        for o in OPTION_SETS[i % len(OPTION_SETS)]:
            body += o + b"\0"
        sport = 20000 + i % 40000
        # checksum 0: "none computed" (RFC 768), which tvsd accepts
        r.sendto(struct.pack("!HHHH", sport, 69, 8 + len(body), 0) + body, (dst, 0))
    print("sent %d" % n)


def idle(src, dst, port, n, status, go, secs):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    socks, pending = [], {}
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((src, 0))
        s.connect_ex((dst, port))
        socks.append(s)
        pending[s.fileno()] = s
    connected = failed = 0
    deadline = time.monotonic() + 20
    poller = select.poll()
    for fd in pending:
        poller.register(fd, select.POLLOUT)
    while pending and time.monotonic() < deadline:
        for fd, _ in poller.poll(200):
            s = pending.pop(fd, None)
            if s is None:
                continue
            poller.unregister(fd)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                connected += 1
            else:
                failed += 1
    failed += len(pending)
    with open(status + ".tmp", "w") as f:
        f.write("connected %d failed %d\n" % (connected, failed))
    os.rename(status + ".tmp", status)
    end = time.monotonic() + secs
    while not os.path.exists(go) and time.monotonic() < end:
        time.sleep(0.05)
    for s in socks:
        s.close()


cmd = sys.argv[1]
if cmd == "rrq":
    rrq(sys.argv[2], sys.argv[3], int(sys.argv[4]))
elif cmd == "idle":
    idle(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6],
         sys.argv[7], float(sys.argv[8]))
else:
    sys.exit("unknown command " + cmd)
