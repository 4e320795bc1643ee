# -*- test-case-name: tests.test_monitor -*-
"""
The monitor layer: noticing that children exited, stopped or continued,
and reaping them (L{txspawn.interfaces.IChildMonitor}).

What it owns:

  - L{txspawn._monitor.selection}: which monitor a reactor gets, and why;
  - L{txspawn._monitor.pidfd}: each child's pidfd as a reactor reader (the
    default);
  - L{txspawn._monitor.sigchld}: the classic monitor, reaping each
    watched child on every C{SIGCHLD};
  - L{txspawn._monitor.sigchldwakeup}: the one owner of the C{SIGCHLD}
    handler and signal wakeup fd, shared by every user of C{SIGCHLD};
  - L{txspawn._monitor.twistedregistry}: reaping the processes of
    Twisted's own registry (C{twisted.internet.process.Process} built
    directly);
  - L{txspawn._monitor.shared}: what both monitors share;
  - L{txspawn._monitor.orphans}: reaping children that outlive their
    reactor;
  - L{txspawn._monitor.statewatch}: stop and continue notifications.

A new way of watching children is a new monitor module here, chosen in
L{txspawn._monitor.selection}.  What it may import: L{txspawn._kernel} and
the public vocabulary.  What imports it: the transports (state
notifications), the reactor layer and the command line.
"""
