# Shared helpers of the Tcl functional tests. Source it from each .test file:
#   source [file join [file dirname [info script]] helpers.tcl]
package require tcltest 2.5
namespace import ::tcltest::*

set ::builddir [expr {[info exists ::env(TVS_BUILD_DIR)] ? $::env(TVS_BUILD_DIR) \
	: [file normalize [file join [file dirname [info script]] .. .. build]]}]
set ::samples [expr {[info exists ::env(TVS_SAMPLES)] ? $::env(TVS_SAMPLES) \
	: [file normalize [file join [file dirname [info script]] .. .. .. shared samples]]}]
set ::ci [expr {[info exists ::env(CI)] && $::env(CI) eq "true"}]

proc prog {name} {
	foreach dir [list control dataplane perf perf/tvs perf/phone perf/tftpgen tests] {
		set p [file join $::builddir $dir $name]
		if {[file executable $p]} { return $p }
	}
	error "program $name not built under $::builddir"
}

# Constraints. Under CI a missing prerequisite is a failure, not a skip:
# requirePrereq turns a false constraint into an error there.
testConstraint root [expr {[exec id -u] == 0}]
testConstraint tftp [expr {[auto_execok tftp] ne ""}]
testConstraint atftp [expr {[auto_execok atftp] ne ""}]
testConstraint curl [expr {[auto_execok curl] ne ""}]
testConstraint samples [file exists [file join $::samples ITLFile.csptechnologies-ciscoprovsionerweb.tlv]]

proc requirePrereqs {args} {
	if {!$::ci} return
	foreach c $args {
		if {![testConstraint $c]} {
			puts stderr "CI=true and prerequisite '$c' is missing"
			exit 3
		}
	}
}

# Runs tvsctl; returns {exitcode stdout+stderr}.
proc tvsctl {args} {
	set rc [catch {exec [prog tvsctl] {*}$args 2>@1} out opts]
	if {$rc == 0} { return [list 0 $out] }
	set ec [dict get $opts -errorcode]
	if {[lindex $ec 0] eq "CHILDSTATUS"} { return [list [lindex $ec 2] $out] }
	return [list -1 $out]
}

# Like tvsctl but fails the test unless it exits 0; returns the output.
proc tvsctl_ok {args} {
	lassign [tvsctl {*}$args] rc out
	if {$rc != 0} { error "tvsctl $args exited $rc: $out" }
	return $out
}

proc tmpdir {name} {
	set d [file join [configure -tmpdir] $name-[clock microseconds]]
	file mkdir $d
	return $d
}

proc readbin {path} {
	set f [open $path rb]
	set d [read $f]
	close $f
	return $d
}

proc writebin {path data} {
	set f [open $path wb]
	puts -nonewline $f $data
	close $f
}

# Bounded wait: evaluates cond every 50 ms up to ms milliseconds.
proc wait_for {ms cond} {
	set deadline [expr {[clock milliseconds] + $ms}]
	while {[clock milliseconds] < $deadline} {
		if {[uplevel 1 [list expr $cond]]} { return 1 }
		after 50
	}
	return 0
}

# --- trust store and tvsctl helpers (store/itl/cli/files tests) ---

# Runs tvsctl with `input` on stdin (a pipe, never a terminal); returns
# {exitcode output} like tvsctl.
proc tvsctl_stdin {input args} {
	set rc [catch {exec [prog tvsctl] {*}$args << $input 2>@1} out opts]
	if {$rc == 0} { return [list 0 $out] }
	set ec [dict get $opts -errorcode]
	if {[lindex $ec 0] eq "CHILDSTATUS"} { return [list [lindex $ec 2] $out] }
	return [list -1 $out]
}

# A fresh store (1024-bit keys: quick) and publication root under a new
# temporary directory; returns {store pub}.
proc new_store {name args} {
	set d [tmpdir $name]
	set s [file join $d store]
	set p [file join $d pub]
	lassign [tvsctl_stdin "" --store $s --pub $p store init --hostname cucm-pub \
		--key-bits 1024 {*}$args] rc out
	if {$rc != 0} { error "store init exited $rc: $out" }
	return [list $s $p]
}

# Self-signed certificate and key made with the openssl CLI; returns {pem key}.
proc openssl_cert {dir cn {bits 1024}} {
	set key [file join $dir $cn.key]
	set pem [file join $dir $cn.pem]
	exec openssl req -x509 -newkey rsa:$bits -nodes -keyout $key -out $pem -days 30 \
		-subj "/CN=$cn/O=Test" 2>@1
	return [list $pem $key]
}

# Flips one byte of a file in place.
proc flip_byte {path offset} {
	set d [readbin $path]
	binary scan [string index $d $offset] c b
	set d [string replace $d $offset $offset [binary format c [expr {$b ^ 0x55}]]]
	writebin $path $d
}

testConstraint openssl [expr {[auto_execok openssl] ne ""}]
testConstraint flock [expr {[auto_execok flock] ne ""}]

# Removes what this test file created under tcltest's temporary directory
# (call tmp_mark at the top of the file and tmp_sweep before cleanupTests).
proc tmp_mark {} {
	set ::tmp_marked [glob -nocomplain -directory [configure -tmpdir] *]
}
proc tmp_sweep {} {
	foreach f [glob -nocomplain -directory [configure -tmpdir] *] {
		if {[lsearch -exact $::tmp_marked $f] < 0} { file delete -force $f }
	}
}
