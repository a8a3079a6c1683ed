#!/usr/bin/env python3
"""Bad TFTP input against a running server, from a kernel UDP socket.

tftp_bad.py SERVER CASE

Prints one line: what came back. Cases:
  traversal   RRQ "../ITLFile.tlv"       -> "error 2"
  absolute    RRQ "/ITLFile.tlv"         -> "error 2"
  opcode      opcode 9                   -> "error 4"
  truncated   RRQ without its NULs       -> "error 4"
  oversized   a 1,400-byte RRQ           -> "error 4"
  blksize0    blksize 0                  -> "error 8"
  blksize70k  blksize 70000              -> "oack blksize=N" (N <= the server max)
  stray       ACK to port 50152 (a transfer port of worker 1, unused) -> "error 5"
  flood N     N RRQs from one socket, never acknowledged: prints
              "data=D busy=B" (transfers started, ERROR 0 busy answers), then
              ends every started transfer with an ERROR to its port
Exit 0 when an answer came, 2 on timeout.
"""
import socket
import struct
import sys
import time

server, case = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)


def rrq(name, *opts, op=1):
    b = struct.pack("!H", op) + name + b"\0octet\0"
    for o in opts:
        b += o + b"\0"
    return b


def answer(pkt):
    op = struct.unpack("!H", pkt[:2])[0]
    if op == 5:
        return "error %d" % struct.unpack("!H", pkt[2:4])[0]
    if op == 6:
        f = pkt[2:].split(b"\0")
        return "oack " + " ".join("%s=%s" % (f[i].decode(), f[i + 1].decode())
                                  for i in range(0, len(f) - 1, 2))
    if op == 3:
        return "data %d" % struct.unpack("!H", pkt[2:4])[0]
    return "op %d" % op


def ask(pkt, port=69):
    s.sendto(pkt, (server, port))
    try:
        got, addr = s.recvfrom(70000)
    except socket.timeout:
        print("timeout")
        sys.exit(2)
    if got[:2] in (b"\0\3", b"\0\6"):	# end what we started, politely
        s.sendto(struct.pack("!HH", 5, 0) + b"test done\0", addr)
    print(answer(got))


def flood(n):
    """n answered RRQs, as fast as possible; what a loaded machine dropped
    (no answer once new answers have stopped coming for a moment) is sent
    again, so that the table really is filled (every request is
    independent). The moment is short against a transfer's life (retries x
    timeout): resent DATA blocks of started transfers are no news, and a
    port freed by an expired transfer and reused would look like one."""
    # a thousand DATA blocks and the busy errors arrive at once: room for all
    s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)	# SO_RCVBUFFORCE (root)
    data, busy, ports = 0, 0, set()
    deadline = time.monotonic() + 30
    s.settimeout(0.05)
    while time.monotonic() < deadline and data + busy < n:
        for i in range(n - data - busy):
            s.sendto(rrq(b"ITLFile.tlv"), (server, 69))
        news = time.monotonic()
        while time.monotonic() < min(deadline, news + 0.3) and data + busy < n:
            try:
                got, addr = s.recvfrom(70000)
            except socket.timeout:
                continue
            if got[:2] == b"\0\3" and addr[1] not in ports:
                data += 1
                ports.add(addr[1])
            elif got[:4] == b"\0\5\0\0":
                busy += 1
            else:
                continue		# a resent DATA block
            news = time.monotonic()
    for p in ports:
        s.sendto(struct.pack("!HH", 5, 0) + b"flood over\0", (server, p))
    print("data=%d busy=%d" % (data, busy))


cases = {
    "traversal": lambda: ask(rrq(b"../ITLFile.tlv")),
    "absolute": lambda: ask(rrq(b"/ITLFile.tlv")),
    "opcode": lambda: ask(struct.pack("!H", 9) + b"ITLFile.tlv\0octet\0"),
    "truncated": lambda: ask(struct.pack("!H", 1) + b"ITLFile.tlv"),
    "oversized": lambda: ask(rrq(b"ITLFile.tlv", b"x" * 1400)),
    "blksize0": lambda: ask(rrq(b"ITLFile.tlv", b"blksize", b"0")),
    "blksize70k": lambda: ask(rrq(b"ITLFile.tlv", b"blksize", b"70000")),
    "stray": lambda: ask(struct.pack("!HH", 4, 1), port=50152),
    "flood": lambda: flood(int(sys.argv[3])),
}
cases[case]()
