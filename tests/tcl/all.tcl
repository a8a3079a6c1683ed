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
exit [expr {[runAllTests] ? 1 : 0}]
