# -*- test-case-name: tests.test_features -*-
"""
The kernel layer: what this kernel and libc offer, and the one handle on a
started child.

What it owns:

  - L{txspawn._kernel.features}: one-shot, cached, overridable probes of the
    kernel and libc (pidfds, C{clone3}, C{close_range}, ...), each with the
    reason it is on or off;
  - L{txspawn._kernel.childhandle}: L{ChildProcess}, a started child's pid
    and pidfd, the single place it is signalled and reaped, and the
    interrupt-safe hand-over of a new child to its owner (C{recordCall}).

What it may import: the standard library, Twisted, the C core
(C{txspawn._cspawn}) and the public vocabulary (L{txspawn.errors},
L{txspawn.options}, L{txspawn.interfaces}).  What imports it: every layer
above.
"""
