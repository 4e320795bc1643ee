# -*- test-case-name: tests.test_features -*-
"""
The kernel layer: what this kernel and libc offer, and the one handle on a
started child.

What it owns:

  - L{txspawn._kernel.features}: the features of the kernel and libc
    txspawn may use (pidfds, C{clone3}, C{close_range}, ...) by name, and
    L{Features}, the verdict on each with the reason it is on or off
    (overridable, so tests and the C engine can replace one);
  - L{txspawn._kernel.probes}: the one-shot, cached probes that find those
    verdicts (L{probeFeatures});
  - L{txspawn._kernel.childhandle}: L{ChildProcess}, a started child's pid
    and pidfd, the single place it is signalled and reaped, and the
    interrupt-safe hand-over of a new child to its owner (C{recordCall}),
    and the exact exit status of a command run under txspawn's init (the
    status pipe);
  - L{txspawn._kernel.nsprobe}: which Linux namespaces work here and why
    any does not, from a real probe (C{python -m txspawn info});
  - L{txspawn._kernel.initprogram}: where txspawn's init (pid 1 of a new
    pid namespace, built from C{txspawn/_csrc/init.c}) is installed.

What it may import: the standard library, Twisted, the C core
(C{txspawn._cspawn}) and the public vocabulary (L{txspawn.errors},
L{txspawn.options}, L{txspawn.interfaces}).  What imports it: every layer
above.
"""
