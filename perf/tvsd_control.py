"""The client side of tvsd's control socket (dataplane/dp_ctl.c), for the
Python benchmarks: one text command per connection, one JSON line back.
Commands: help, status, stats, reload, rollout, memory."""

import json
import socket


class ControlError(RuntimeError):
	"""tvsd answered {"ok": false, "error": ...}, or not in JSON."""


def ask(path, cmd, timeout=10.0):
	"""Sends cmd to the socket at path; returns the JSON reply (a dict with
	"ok": true). Raises ControlError when tvsd refuses or answers garbage,
	OSError when nothing listens there."""
	with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
		s.settimeout(timeout)
		s.connect(path)
		s.sendall(cmd.encode() + b"\n")
		buf = b""
		while not buf.endswith(b"\n"):
			d = s.recv(1 << 20)
			if not d:
				break
			buf += d
	try:
		reply = json.loads(buf)
	except ValueError:
		raise ControlError("tvsd %s: not a JSON answer: %r" % (cmd, buf[:200])) from None
	if not reply.get("ok"):
		raise ControlError("tvsd %s: %s" % (cmd, reply.get("error")))
	return reply
