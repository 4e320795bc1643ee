# -*- test-case-name: tests.test_plan -*-
"""
The plan layer: what a child should be, decided before anything is opened
or started.

What it owns:

  - L{txspawn._plan.plan}: L{SpawnPlan} and the specs it is made of (the
    child's fds, its pty): every C{spawnProcess} argument validated and
    normalised;
  - L{txspawn._plan.planner}: L{planSpawn}, which makes a L{SpawnPlan},
    rejecting bad input with an error naming the argument, and resolves the
    executable on C{PATH};
  - L{txspawn._plan.argumentchecks}: the check and encoding of each
    argument (C{str} to C{bytes}, no NUL; environment, ids, working
    directory, C{usePTY}, C{childFDs}), and L{checkCommand}, the same
    checks for L{txspawn.run} and L{txspawn.stream};
  - L{txspawn._plan.fdremap}: the pure algorithm from a C{childFDs} mapping
    to a flat program of fd operations, and L{txspawn._plan.fdops}, that
    program's vocabulary;
  - L{txspawn._plan.failurerecord}: the record a child writes to its parent
    when it fails between clone and exec;
  - L{txspawn._plan.namespaceplan}: the namespace part of a plan
    (L{NamespacePlan}, made by L{planNamespaces} from the public
    L{txspawn.options.Namespaces}), the C{CLONE_NEW*} and C{MS_*} flags the
    engines use, and the hint a failed namespace step's error gives;
  - L{txspawn._plan.faultinjection}: for tests, a failure to inject at one
    step of the child's setup, which the planner copies into the plan.

Nothing here touches the process: it is pure data and checks, which is
why both engines and the fakes can share it.  What it may import: the
public vocabulary (L{txspawn.errors}, L{txspawn.options},
L{txspawn.interfaces}).  What imports it: the engines, the transports, the
result API and the reactor layer.
"""
