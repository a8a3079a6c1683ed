"""What the Python benchmarks share: the client side of tvsd's control
socket (dataplane/dp_ctl.c: one text command per connection, one JSON
line back; commands help, status, stats, reload, rollout, memory) and the
machine facts they report (hugepages, CPU model)."""

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


def meminfo(key):
	"""A /proc/meminfo value (kB, or a count for HugePages_*); 0 if absent."""
	with open("/proc/meminfo") as f:
		for line in f:
			name, _, rest = line.partition(":")
			if name == key:
				return int(rest.split()[0])
	return 0


def hugepages_free_mb():
	"""Free hugepage memory of the default page size, in MB."""
	return meminfo("HugePages_Free") * meminfo("Hugepagesize") // 1024


def cpu_model():
	with open("/proc/cpuinfo") as f:
		for line in f:
			if line.startswith("model name"):
				return line.split(":", 1)[1].strip()
	return "?"
