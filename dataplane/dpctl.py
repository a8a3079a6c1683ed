"""Client of tvsd's control socket in Python (the protocol is described at
the top of dataplane/dpctl_proto.h): a binary header {u32 magic, u32 type,
u32 len, u32 id} in host byte order, requests without payload, replies that
carry a JSON document or, for reload, struct dpctl_reload.

Used by the Tcl tests (tests/tcl/tvsd_helpers.tcl runs it as a program:
`python3 dpctl.py SOCKET COMMAND` prints the reply as JSON) and by the
benchmarks (perf/benchlib.py imports it)."""

import json
import socket
import struct
import sys
import time

MAGIC = 0x31435044
REPLY = 0x80000000
ERROR = REPLY | 0xFF
TYPES = {"help": 1, "status": 2, "stats": 3, "reload": 4, "rollout": 5, "memory": 6}
HDR = struct.Struct("=IIII")
RELOAD = struct.Struct("=QII")
REPLY_MAX = (16 << 20) + 4096


class ControlError(RuntimeError):
	"""tvsd answered with an error, closed the connection, or sent
	something that is not a reply of the protocol."""


def header(type_, length=0, id_=1, magic=MAGIC):
	return HDR.pack(magic, type_, length, id_)


def recv_exact(s, n, deadline):
	buf = b""
	while len(buf) < n:
		left = deadline - time.monotonic()
		if left <= 0:
			raise socket.timeout("no complete reply in time")
		s.settimeout(left)
		d = s.recv(min(n - len(buf), 1 << 20))
		if not d:
			raise ControlError("tvsd closed the connection")
		buf += d
	return buf


def decode(type_, payload):
	"""A checked reply payload as a dict (the JSON document, or the reload
	answer as {"ok", "generation", "lcores", "message" or "error"})."""
	if type_ == ERROR:
		raise ControlError("tvsd: " + payload.rstrip(b"\0").decode(errors="replace"))
	if type_ == TYPES["reload"] | REPLY:
		gen, ok, n = RELOAD.unpack_from(payload)
		lcores = list(struct.unpack_from("=%dI" % n, payload, RELOAD.size))
		msg = payload[RELOAD.size + 4 * n:].rstrip(b"\0").decode(errors="replace")
		return {"ok": bool(ok), "generation": gen, "lcores": lcores,
			"message" if ok else "error": msg}
	if not payload.endswith(b"\0"):
		raise ControlError("reply without its final NUL")
	return json.loads(payload[:-1])


class Client:
	"""One connection; requests are answered in order."""

	def __init__(self, path, timeout=10.0):
		self.timeout = timeout
		self.next_id = 1
		self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
		self.s.settimeout(timeout)
		self.s.connect(path)

	def close(self):
		self.s.close()

	def __enter__(self):
		return self

	def __exit__(self, *exc):
		self.close()

	def send(self, cmd):
		"""Sends the request cmd (a name of TYPES); returns its id."""
		if cmd not in TYPES:
			raise ControlError("unknown command %r (one of %s)" % (cmd, " ".join(TYPES)))
		id_ = self.next_id
		self.next_id += 1
		self.s.sendall(header(TYPES[cmd], 0, id_))
		return id_

	def receive(self, cmd, id_):
		deadline = time.monotonic() + self.timeout
		magic, type_, length, rid = HDR.unpack(recv_exact(self.s, HDR.size, deadline))
		if magic != MAGIC or length > REPLY_MAX or rid != id_ or \
				type_ not in (TYPES[cmd] | REPLY, ERROR):
			raise ControlError("not a reply to %s: magic %#x type %#x len %d id %d" %
				(cmd, magic, type_, length, rid))
		return decode(type_, recv_exact(self.s, length, deadline))

	def ask(self, cmd):
		return self.receive(cmd, self.send(cmd))


def ask(path, cmd, timeout=10.0):
	"""One request on its own connection; its reply as a dict."""
	with Client(path, timeout) as c:
		return c.ask(cmd)


def main(argv):
	if len(argv) not in (3, 4):
		sys.stderr.write("usage: dpctl.py SOCKET COMMAND [TIMEOUT_S]\n")
		return 2
	try:
		r = ask(argv[1], argv[2], float(argv[3]) if len(argv) == 4 else 10.0)
	except (OSError, ControlError) as e:
		sys.stderr.write("dpctl: %s %s: %s\n" % (argv[1], argv[2], e))
		return 1
	print(json.dumps(r))
	return 0


if __name__ == "__main__":
	sys.exit(main(sys.argv))
