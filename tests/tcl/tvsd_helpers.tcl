# Helpers of tvsd.test: publications built by hand, tvsd started in a test
# network namespace (net_tap) or on a pcap/ring/memif/vhost vdev, the
# control socket and the telemetry socket (both through python3: Tcl has no
# UNIX sockets), and frame scripts for the pcap PMD.
source [file join [file dirname [info script]] helpers.tcl]
package require json

set ::srcdir [file normalize [file join [file dirname [info script]] .. ..]]
set ::tvsd [expr {[catch {prog tvsd} p] ? "" : $p}]

testConstraint tvsd [expr {$::tvsd ne ""}]

# tvsd started as root becomes [tvsd] user (default tvsd) once set up, as
# the unit and ./demo run it, and so do the tests: the user must exist.
# systemd-sysusers makes it from the project's sysusers file, as `meson
# install` does; it changes nothing when the user is there.
proc tvsd_user_ensure {} {
	if {[exec id -u] != 0 || ![catch {exec getent passwd tvsd}]} return
	exec systemd-sysusers [file join $::srcdir config systemd tvs.sysusers] 2>@1
}
tvsd_user_ensure
testConstraint python3 [expr {[auto_execok python3] ne ""}]
testConstraint netns [expr {[testConstraint root] && [auto_execok ip] ne ""}]
testConstraint ping [expr {[auto_execok ping] ne ""}]
testConstraint nft [expr {[auto_execok nft] ne ""}]

# Every tvsd of this file gets its own EAL file prefix and runtime dir.
set ::tvsd_seq 0
set ::tvsd_runs {}

proc sha256 {path} {
	lindex [exec sha256sum $path] 0
}

# Writes generation gen under root from a dict name -> bytes, with its
# PUBLICATION index, and points root/current at it (rename(2), like the
# real publisher). Extra index lines (tampering tests) go in `extra`.
proc make_pub {root gen files {extra {}}} {
	set dir [file join $root [format gen-%08d $gen]]
	file mkdir $dir
	set idx "tvs-publication 1\ngeneration $gen\ncreated [clock seconds]\n"
	foreach {name data} $files {
		writebin [file join $dir $name] $data
		append idx "serve $name [string length $data] [sha256 [file join $dir $name]]\n"
	}
	append idx $extra "end\n"
	writebin [file join $dir PUBLICATION] $idx
	set tmp [file join $root current.tmp]
	file delete $tmp
	exec ln -s [file tail $dir] $tmp
	exec mv -T $tmp [file join $root current]
	return $dir
}

# Deterministic pseudo-random bytes (a file big enough to take a while).
proc blob {n seed} {
	expr {srand($seed)}
	set b [binary format c* [lmap i [lrepeat 4096 0] {expr {int(rand() * 256) - 128}}]]
	set out [string repeat $b [expr {$n / 4096 + 1}]]
	return [string range $out 0 [expr {$n - 1}]]
}

proc write_conf {dir pubroot {extra {}}} {
	set conf [file join $dir tvsd.conf]
	set f [open $conf w]
	puts $f "\[tvsd\]\npublications = $pubroot\ncontrol-socket = [file join $dir ctl.sock]"
	puts $f "log-level = info\n\[tftp\]\nmax-blksize = 1428"
	if {![string match *timeout-ms* $extra]} { puts $f "timeout-ms = 300" }
	puts $f $extra
	if {![string match {*\[port0\]*} $extra]} { puts $f "\[port0\]\naddress = 10.99.0.2/24" }
	close $f
	return $conf
}

# Starts tvsd in the background. opts: ns (namespace or ""), vdevs (list),
# lcores (EAL core option list), extra (EAL args). Returns a handle dict.
# Waits up to 20 s for "running:" in its log.
proc tvsd_start {dir conf args} {
	set o [dict merge {ns "" vdevs {} lcores {-l 0-1} extra {} wait 1} $args]
	set prefix tvst[pid]_[incr ::tvsd_seq]
	set rt [file join $dir rt$::tvsd_seq]
	file mkdir $rt
	set log [file join $dir tvsd$::tvsd_seq.log]
	set cmd [list env RUNTIME_DIRECTORY=$rt]
	if {[dict get $o ns] ne ""} { lappend cmd ip netns exec [dict get $o ns] }
	lappend cmd $::tvsd --no-huge -m 512 --no-pci {*}[dict get $o lcores] \
		--file-prefix $prefix {*}[dict get $o extra]
	foreach v [dict get $o vdevs] { lappend cmd --vdev $v }
	lappend cmd -- -c $conf
	# The shell records tvsd's exit status; `ip netns exec` execs tvsd.
	set rcfile [file join $dir rc$::tvsd_seq]
	set sh "[join [lmap w $cmd {shellquote $w}] " "] >[shellquote $log] 2>&1 & echo \$! >[shellquote $rcfile.pid]; wait \$!; echo \$? >[shellquote $rcfile]"
	# no pipe of ours reaches tvsd: tcltest's parent reads the child's
	# output until every holder closes it, a leaked tvsd would hang it
	exec sh -c $sh </dev/null >/dev/null 2>/dev/null &
	wait_for 5000 {[file exists $rcfile.pid] && [file size $rcfile.pid] > 0}
	set h [dict create pid [string trim [readbin $rcfile.pid]] log $log rc $rcfile \
		prefix $prefix rt $rt sock [file join $dir ctl.sock] dir $dir ns [dict get $o ns]]
	lappend ::tvsd_runs $h
	if {[dict get $o wait] && ![wait_for 20000 {[tvsd_logged $h "running:"] || [file exists $rcfile]}]} {
		error "tvsd did not start in 20 s: [readbin $log]"
	}
	return $h
}

proc shellquote {s} {
	return '[string map {' '\\''} $s]'
}

proc tvsd_logged {h pattern} {
	expr {[file exists [dict get $h log]] && [string first $pattern [readbin [dict get $h log]]] >= 0}
}

# TERM, then KILL after 10 s. Returns tvsd's exit status (or "killed").
proc tvsd_stop {h} {
	set pid [dict get $h pid]
	set rc [dict get $h rc]
	if {![file exists $rc]} {
		catch {exec kill -TERM $pid}
		if {![wait_for 10000 {[file exists $rc] && [file size $rc] > 0}]} {
			catch {exec kill -KILL $pid}
			wait_for 5000 {[file exists $rc]}
			return killed
		}
	}
	wait_for 2000 {[file size $rc] > 0}
	return [string trim [readbin $rc]]
}

proc tvsd_stop_all {} {
	foreach h $::tvsd_runs { catch {tvsd_stop $h} }
	set ::tvsd_runs {}
}

# A namespace with tvsd's TAP interface tvs0 and the kernel side 10.99.0.1.
proc ns_create {ns} {
	catch {exec ip netns del $ns}
	exec ip netns add $ns
	exec ip netns exec $ns ip link set lo up
}

proc ns_tap_up {ns} {
	if {![wait_for 10000 {![catch {exec ip netns exec $ns ip link show tvs0}]}]} {
		error "tvs0 did not appear in $ns"
	}
	exec ip netns exec $ns ip addr add 10.99.0.1/24 dev tvs0
	exec ip netns exec $ns ip link set tvs0 up
}

proc ns_delete {ns} {
	catch {exec ip netns del $ns}
}

# Runs a command in ns, bounded; returns {exitcode output}.
proc ns_run {ns secs args} {
	set rc [catch {exec timeout $secs ip netns exec $ns {*}$args 2>@1} out opts]
	if {$rc == 0} { return [list 0 $out] }
	set ec [dict get $opts -errorcode]
	if {[lindex $ec 0] eq "CHILDSTATUS"} { return [list [lindex $ec 2] $out] }
	return [list -1 $out]
}

# One request on the control socket (dataplane/dpctl.py speaks its binary
# protocol); returns the reply as a Tcl dict.
set ::dpctl_py [file join $::srcdir dataplane dpctl.py]
proc ctl {h cmd} {
	::json::json2dict [exec python3 $::dpctl_py [dict get $h sock] $cmd]
}

# A telemetry command through DPDK's SEQPACKET socket; returns a dict.
set ::py_tel {
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(10)
s.connect(sys.argv[1])
info = json.loads(s.recv(4096).decode())
s.send(sys.argv[2].encode())
sys.stdout.write(s.recv(info["max_output_len"]).decode())
}

proc telemetry {h cmd} {
	set sock [file join [dict get $h rt] dpdk [dict get $h prefix] dpdk_telemetry.v2]
	::json::json2dict [exec python3 -c $::py_tel $sock $cmd]
}

# Frame scripts for net_pcap: `gen` writes pcaps from a list of frame
# names, `read` prints the frames tvsd sent, decoded, one per line, with
# checksums checked.
set ::py_pcap {
import struct, sys

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

CLIENT_MAC = bytes.fromhex("020000000001")
BCAST = b"\xff" * 6
SRV_MAC = bytes.fromhex("027063617000")  # any: tvsd does not filter MACs
CLI, SRV = bytes([10, 99, 0, 1]), bytes([10, 99, 0, 2])

def eth(payload, etype=0x0800, dst=SRV_MAC, vlan=None):
    h = dst + CLIENT_MAC
    if vlan is not None:
        h += struct.pack("!HH", 0x8100, vlan)
    return h + struct.pack("!H", etype) + payload

def ipv4(payload, proto=17, src=CLI, dst=SRV, frag=0x4000, bad=False):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, frag, 64, proto, 0, src, dst)
    c = csum(h) ^ (0x1111 if bad else 0)
    return h[:10] + struct.pack("!H", c) + h[12:] + payload

def udp(sport, dport, data, bad=False, src=CLI, dst=SRV):
    h = struct.pack("!HHHH", sport, dport, 8 + len(data), 0)
    c = csum(src + dst + struct.pack("!BBH", 0, 17, 8 + len(data)) + h + data) or 0xffff
    if bad:
        c ^= 0x00ff
    return h[:6] + struct.pack("!H", c) + data

def rrq(name, op=1):
    return struct.pack("!H", op) + name.encode() + b"\0octet\0"

FRAMES = {
    "arp": lambda: eth(struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, CLIENT_MAC, CLI,
                                   b"\0" * 6, SRV), 0x0806, BCAST),
    "arp_other": lambda: eth(struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, CLIENT_MAC, CLI,
                                         b"\0" * 6, bytes([10, 99, 0, 77])), 0x0806, BCAST),
    "icmp": lambda: eth(ipv4((lambda p: p[:2] + struct.pack("!H", csum(p)) + p[4:])(
        struct.pack("!BBHHH", 8, 0, 0, 0x1234, 1) + b"tvsd-ping"), proto=1)),
    "rrq": lambda: eth(ipv4(udp(40000, 69, rrq("ITLFile.tlv")))),
    "wrq": lambda: eth(ipv4(udp(40001, 69, rrq("x.bin", 2)))),
    "ack1": lambda: eth(ipv4(udp(40000, 49152, struct.pack("!HH", 4, 1)))),
    "bad_ip_cksum": lambda: eth(ipv4(udp(40002, 69, rrq("ITLFile.tlv")), bad=True)),
    "fragment": lambda: eth(ipv4(udp(40003, 69, rrq("ITLFile.tlv")), frag=0x2000)),
    "bad_udp_cksum": lambda: eth(ipv4(udp(40004, 69, rrq("ITLFile.tlv"), bad=True))),
    "closed_port": lambda: eth(ipv4(udp(40005, 5000, b"hello"))),
    "vlan": lambda: eth(ipv4(udp(40006, 69, rrq("ITLFile.tlv"))), vlan=7),
    "ipv6": lambda: eth(b"\x60" + b"\0" * 39, 0x86dd),
    "other_dst": lambda: eth(ipv4(udp(40007, 69, rrq("ITLFile.tlv"), dst=bytes([10, 99, 0, 9])),
                                  dst=bytes([10, 99, 0, 9]))),
    "tcp": lambda: eth(ipv4(b"\0" * 20, proto=6)),
    "igmp": lambda: eth(ipv4(b"\x11\0\xee\xff\0\0\0\0", proto=2)),
    "runt": lambda: b"\x01\x02\x03",
}

def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", 1 + i, 0, len(fr), len(fr)) + fr)

def read_pcap(path):
    data = open(path, "rb").read()
    off, out = 24, []
    while off + 16 <= len(data):
        n = struct.unpack("<I", data[off + 8:off + 12])[0]
        out.append(data[off + 16:off + 16 + n])
        off += 16 + n
    return out

def describe(fr, itl):
    etype = struct.unpack("!H", fr[12:14])[0]
    if etype == 0x0806:
        op, sip, tip = struct.unpack("!H", fr[20:22])[0], fr[28:32], fr[38:42]
        return "arp op=%d sip=%s tip=%s tha=%s" % (op, ".".join(map(str, sip)),
                                                  ".".join(map(str, tip)), fr[32:38].hex())
    ip = fr[14:]
    hl = (ip[0] & 15) * 4
    ok_ip = csum(ip[:hl]) == 0
    proto, src, dst = ip[9], ip[12:16], ip[16:20]
    l4 = ip[hl:struct.unpack("!H", ip[2:4])[0]]
    if proto == 1:
        return "icmp type=%d ok_ip=%s ok_icmp=%s data=%s" % (l4[0], ok_ip, csum(l4) == 0,
                                                             l4[8:].decode(errors="replace"))
    sport, dport = struct.unpack("!HH", l4[:4])
    ok_udp = csum(src + dst + struct.pack("!BBH", 0, 17, len(l4)) + l4) == 0
    op = struct.unpack("!H", l4[8:10])[0]
    extra = ""
    if op == 3:
        blk = struct.unpack("!H", l4[10:12])[0]
        body = l4[12:]
        extra = " block=%d len=%d match=%s" % (blk, len(body), body == itl[(blk - 1) * 512:blk * 512])
    elif op == 5:
        extra = " code=%d" % struct.unpack("!H", l4[10:12])[0]
    return "udp %d->%d ok_ip=%s ok_udp=%s op=%d%s" % (sport, dport, ok_ip, ok_udp, op, extra)

if sys.argv[1] == "gen":
    write_pcap(sys.argv[2], [FRAMES[n]() for n in sys.argv[3:]])
else:
    itl = open(sys.argv[3], "rb").read()
    for fr in read_pcap(sys.argv[2]):
        print(describe(fr, itl))
}

proc pcap_gen {path args} {
	exec python3 -c $::py_pcap gen $path {*}$args
}

proc pcap_read {path itl} {
	split [exec python3 -c $::py_pcap read $path $itl] \n
}

# Starts each command of cmds (lists) in ns, bounded by secs, in the
# background; returns a job handle for ns_collect.
proc ns_spawn {ns secs cmds} {
	set rcs {}
	foreach c $cmds {
		set rc [file join [configure -tmpdir] job[pid]_[incr ::tvsd_seq].rc]
		file delete $rc
		set sh "timeout $secs ip netns exec $ns [join [lmap w $c {shellquote $w}] " "] >/dev/null 2>&1; echo \$? >[shellquote $rc]"
		exec sh -c $sh &
		lappend rcs $rc
	}
	return [list $secs $rcs]
}

# Waits for the jobs (bounded); returns their exit codes ("hung" if none).
proc ns_collect {job} {
	lassign $job secs rcs
	set codes {}
	foreach rc $rcs {
		wait_for [expr {($secs + 5) * 1000}] {[file exists $rc] && [file size $rc] > 0}
		lappend codes [expr {[file exists $rc] ? [string trim [readbin $rc]] : "hung"}]
		file delete $rc
	}
	return $codes
}

proc ns_parallel {ns secs cmds} {
	ns_collect [ns_spawn $ns $secs $cmds]
}

# ---- TVS (tvsd_tvs.test) ---------------------------------------------------

# The certificates of an ITL's records of one role (21 = TVS), parsed here
# in Tcl so that a check does not trust the C parser it is testing.
proc itl_role_certs {path role} {
	set d [readbin $path]
	# HEADER_LENGTH 02 0002 <u16> at offset 5; each record opens with
	# RECORD_LENGTH 01 0002 <u16 of the whole record>
	binary scan $d @5cuSuSu tag l hlen
	if {$tag != 2} { error "$path: no HEADER_LENGTH at offset 5" }
	set certs {}
	for {set off $hlen} {$off + 5 <= [string length $d]} {set off $end} {
		binary scan $d @${off}cuSuSu tag l rlen
		if {$tag != 1 || $rlen < 5} { error "$path: no RECORD_LENGTH at offset $off" }
		set end [expr {$off + $rlen}]
		set r -1
		set cert ""
		for {set p [expr {$off + 5}]} {$p + 3 <= $end} {incr p [expr {3 + $l}]} {
			binary scan $d @${p}cuSu t l
			set v [string range $d [expr {$p + 3}] [expr {$p + 2 + $l}]]
			if {$t == 4} { binary scan $v Su r }
			if {$t == 9} { set cert $v }
		}
		if {$r == $role && $cert ne ""} { lappend certs $cert }
	}
	return $certs
}

# DER of the first PEM certificate in some text (s_client -showcerts).
proc pem_first_der {text tmp} {
	if {![regexp {(-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----)} $text -> pem]} {
		return ""
	}
	writebin $tmp $pem
	exec openssl x509 -in $tmp -outform DER -out $tmp.der
	return [readbin $tmp.der]
}

# TCP and TLS behaviour that the real clients cannot show, from inside
# the namespace (python3; every loop bounded):
#   silent SECS          connect, send nothing; "eof" when the server
#                        closes, "timeout" after SECS
#   rst HEX              connect, send HEX, then close with RST (linger 0)
#   garbage HEX SECS     connect, send HEX (not TLS); "eof" or "reset"
#   hold N SECS          N connections opened and held; then one more,
#                        which sends 3 bytes and prints how it ended:
#                        "reset" (refused), "eof" or "timeout"
#   synflood N PORT [SRC]  N SYNs from a raw socket (from SRC, default
#                        10.99.0.1), random source ports
#   session DER1 DER2 GO TLS, verify DER1, print its status, wait until
#                        file GO exists (bounded), verify DER2 on the same
#                        connection, print its status
set ::py_tcp {
import os, random, socket, ssl, struct, sys, time

SRV = ("10.99.0.2", int(os.environ.get("TVS_PORT", "2445")))
cmd = sys.argv[1]

def verify_req(rid, der):
    dev = b"\x01CP-8861-SEP0000000000AB"
    area = b"\x01" + struct.pack("!H", len(dev)) + dev + b"\x02" + struct.pack("!H", len(der)) + der
    return struct.pack("!BBBBIH", 0x57, 1, 1, 0, rid, len(area)) + area

def recv_n(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b

def answer_status(s):
    hdr = recv_n(s, 10)
    area = recv_n(s, struct.unpack("!H", hdr[8:10])[0])
    off = 0
    while off + 3 <= len(area):
        tag, ln = area[off], struct.unpack("!H", area[off + 1:off + 3])[0]
        if tag == 7:
            return area[off + 3]
        off += 3 + ln
    return -1

def wait_close(s, secs):
    s.settimeout(secs)
    try:
        while s.recv(4096):
            pass
        return "eof"
    except socket.timeout:
        return "timeout"
    except ConnectionResetError:
        return "reset"

def csum(b):
    if len(b) % 2:
        b += b"\0"
    v = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while v >> 16:
        v = (v & 0xffff) + (v >> 16)
    return ~v & 0xffff

if cmd == "silent":
    s = socket.create_connection(SRV, timeout=5)
    print(wait_close(s, float(sys.argv[2])))
elif cmd == "rst":
    s = socket.create_connection(SRV, timeout=5)
    s.sendall(bytes.fromhex(sys.argv[2]))
    time.sleep(0.2)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    print("sent")
elif cmd == "garbage":
    s = socket.create_connection(SRV, timeout=5)
    s.sendall(bytes.fromhex(sys.argv[2]))
    print(wait_close(s, float(sys.argv[3])))
elif cmd == "hold":
    held = [socket.create_connection(SRV, timeout=5) for _ in range(int(sys.argv[2]))]
    time.sleep(0.3)
    try:
        # the refusal may come while connect() is still returning
        s = socket.create_connection(SRV, timeout=5)
        s.sendall(b"\x16\x03\x01")
        print(wait_close(s, float(sys.argv[3])))
    except (ConnectionResetError, BrokenPipeError):
        print("reset")
    for h in held:
        h.close()
elif cmd == "synflood":
    n, port = int(sys.argv[2]), int(sys.argv[3])
    srcip = sys.argv[4] if len(sys.argv) > 4 else "10.99.0.1"
    r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    r.bind((srcip, 0))
    src, dst = socket.inet_aton(srcip), socket.inet_aton(SRV[0])
    for i in range(n):
        sport = random.randint(1024, 65535)
        h = struct.pack("!HHIIBBHHH", sport, port, random.getrandbits(32), 0, 5 << 4, 0x02,
                        65535, 0, 0)
        c = csum(src + dst + struct.pack("!BBH", 0, 6, len(h)) + h)
        r.sendto(h[:16] + struct.pack("!H", c) + h[18:], (SRV[0], 0))
    print("sent %d" % n)
elif cmd == "session":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(socket.create_connection(SRV, timeout=10))
    s.sendall(verify_req(1, open(sys.argv[2], "rb").read()))
    print("first %d" % answer_status(s), flush=True)
    deadline = time.time() + 30
    while not os.path.exists(sys.argv[4]) and time.time() < deadline:
        time.sleep(0.05)
    s.sendall(verify_req(2, open(sys.argv[3], "rb").read()))
    print("second %d" % answer_status(s))
}

# Runs the python3 TCP helper in ns, bounded; returns {exitcode output}.
proc tcp_helper {ns secs args} {
	ns_run $ns $secs python3 -c $::py_tcp {*}$args
}
