# -*- test-case-name: tests.test_cgroup_leaf,tests.test_cgroup_parent -*-
"""
The cgroup layer: the parent-side work of giving each child a cgroup v2 of
its own (issue 14).

What it owns:

  - L{txspawn._cgroup.hierarchy}: where the cgroup v2 hierarchy is
    mounted, a process's own cgroup, and the small reads and writes of
    cgroup files the other modules share (killing and removing a cgroup);
  - L{txspawn._cgroup.parent}: finding the parent cgroup leaves are made
    in (given, delegated to us, or C{<mount>/txspawn} as root; else
    L{CgroupUnavailable} with a hint), and enabling the controllers the
    limits need on it, obeying the "no internal processes" rule;
  - L{txspawn._cgroup.leaf}: L{CgroupLeaf}, one child's fresh leaf, made
    with its limits by L{createLeaf}, and what is done to it (kill,
    statistics, removal);
  - L{txspawn._cgroup.stats}: parsing C{cpu.stat}, C{memory.peak},
    C{memory.events}, C{pids.peak} and C{io.stat} into a
    L{txspawn.options.CgroupStats};
  - L{txspawn._cgroup.stale}: removing the leaves of txspawn processes
    that died;
  - L{txspawn._cgroup.events} and L{txspawn._cgroup.removal}: watching a
    leaf's C{cgroup.events} through the reactor (one Twisted C{INotify} per
    reactor) and removing it once empty, retrying while it is busy;
  - L{txspawn._cgroup.support}: what C{python -m txspawn info} says about
    cgroup support here, from real probes.

Never the v1 hierarchies: on a hybrid host only the C{cgroup2} mount is
used.

What it may import: the standard library, Twisted, the vocabulary
(L{txspawn.errors}, L{txspawn.options} and C{txspawn._cgroupoptions}, the
C core C{txspawn._cspawn}) and the kernel layer.  What imports it: the
engines, the transports and the result API, which place a child in its
leaf, kill it and read it.
"""
