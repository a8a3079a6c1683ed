#!/usr/bin/env python3
"""A TFTP client that holds its transfer open on purpose.

tftp_slow.py SERVER NAME OUT GOFILE

Reads NAME (octet, blksize 512, lock-step) from SERVER:69 into OUT, but
acknowledges only one block every 50 ms until GOFILE exists, then runs at
full speed. Tests use it to keep transfers running across an event (a
publication swap) without relying on how fast the server or machine is.
Exit 0 when the whole file arrived, 1 on an ERROR packet, 2 on timeout.
"""
import os
import socket
import struct
import sys
import time

server, name, out, gofile = sys.argv[1:5]
deadline = time.monotonic() + 100
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
rrq = struct.pack("!H", 1) + name.encode() + b"\0octet\0"
s.sendto(rrq, (server, 69))
data, expect, peer, last_ack = bytearray(), 1, None, None
while time.monotonic() < deadline:
    try:
        pkt, addr = s.recvfrom(70000)
    except socket.timeout:
        if last_ack is not None:
            s.sendto(last_ack, peer)
        else:
            s.sendto(rrq, (server, 69))
        continue
    op = struct.unpack("!H", pkt[:2])[0]
    if op == 5:
        sys.exit(1)
    if op != 3:
        continue
    block = struct.unpack("!H", pkt[2:4])[0]
    if block != expect & 0xFFFF:
        continue
    peer = addr
    data += pkt[4:]
    if not os.path.exists(gofile):
        time.sleep(0.05)
    last_ack = struct.pack("!HH", 4, block)
    s.sendto(last_ack, peer)
    expect += 1
    if len(pkt) - 4 < 512:
        with open(out, "wb") as f:
            f.write(data)
        sys.exit(0)
sys.exit(2)
