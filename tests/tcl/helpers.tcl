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
	foreach dir [list control dataplane perf tests] {
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
