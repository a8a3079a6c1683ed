"""What the Python benchmarks share: the client side of tvsd's control
socket (dataplane/dpctl.py speaks its binary protocol, dataplane/dpctl_proto.h;
requests help, status, stats, reload, rollout, memory) and the machine facts
they report (hugepages, CPU model)."""

import os
import pwd
import subprocess
import sys

SYSUSERS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
			"config", "systemd", "tvs.sysusers")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dataplane"))
import dpctl  # noqa: E402

ControlError = dpctl.ControlError


def ask(path, cmd, timeout=10.0):
	"""Sends cmd to the socket at path on a connection of its own; returns
	the reply as a dict ("ok": true). Raises ControlError when tvsd refuses
	(a refused reload) or answers outside the protocol, OSError when nothing
	listens there."""
	reply = dpctl.ask(path, cmd, timeout)
	if not reply.get("ok"):
		raise ControlError("tvsd %s: %s" % (cmd, reply.get("error")))
	return reply


def ensure_tvsd_user():
	"""tvsd started as root becomes its [tvsd] user (default tvsd) once set
	up, as in production; makes that user from the project's sysusers file
	when this machine has none yet (as `meson install` does). Not root:
	tvsd changes no user, nothing to do."""
	if os.geteuid() != 0:
		return
	try:
		pwd.getpwnam("tvsd")
	except KeyError:
		subprocess.run(["systemd-sysusers", SYSUSERS], check=True)


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
