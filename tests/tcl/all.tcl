# Runs every tests/tcl/*.test file, each in its own tclsh (tcltest's default).
# Exits non-zero when any test failed, and, under CI=true, when any test
# skipped because something it needs was missing.
package require tcltest 2.5
namespace import ::tcltest::*

configure -testdir [file dirname [file normalize [info script]]] \
	-tmpdir [file join [expr {[info exists ::env(TMPDIR)] ? $::env(TMPDIR) : "/tmp"}] tvs-tcl-[pid]] \
	{*}$argv
file mkdir [configure -tmpdir]

# runAllTests returns 1 when any file failed, but tclsh would exit 0.
set failed [runAllTests]
# each test file removes its own folders (tmp_sweep); the empty parent
# goes too, so that a run leaves nothing in /tmp (a non-empty one stays:
# a failing test keeps its files to look at)
catch {file delete [configure -tmpdir]}
exit [expr {$failed ? 1 : 0}]
