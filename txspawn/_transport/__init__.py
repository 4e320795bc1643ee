# -*- test-case-name: tests.test_process -*-
"""
The transport layer: Twisted's C{IProcessTransport} contract for a running
child, on top of an engine and a monitor.

What it owns:

  - L{txspawn._transport.pipetransport}: L{Process}, a child on pipes;
  - L{txspawn._transport.ptytransport}: L{PTYProcess}, a child on a
    pseudo-terminal;
  - L{txspawn._transport.lifecycle}: the child half both transports share
    (signals, exit delivery, the end of the child's life);
  - L{txspawn._transport.pipes}: the parent's pipe ends and fast reads;
  - L{txspawn._transport.exitstatus}: exit statuses as Twisted's exit
    reasons;
  - L{txspawn._transport.exitlisteners}: other code waiting for an exit;
  - L{txspawn._transport.groupkill}: signalling a child's process group,
    and the C{SIGTERM}-then-C{SIGKILL} escalation;
  - L{txspawn._transport.timelimits}: the lifetime options (C{timeout},
    C{killAfter}, C{closePipesAfterExit});
  - L{txspawn._transport.cgroupend}: the child's cgroup leaf, made first
    in a spawn, and its end (statistics, C{cgroup.kill}, removal, the end
    of the whole tree).

A new behaviour of a running child's transport goes here.  What it may
import: L{txspawn._monitor}, L{txspawn._plan}, L{txspawn._cgroup},
L{txspawn._kernel}, the C core and the public vocabulary; not the engines
(a transport is handed a started child).  What imports it: the result
API, the reactor layer and the fakes.
"""
