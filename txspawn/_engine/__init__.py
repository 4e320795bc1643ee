# -*- test-case-name: tests.test_engines -*-
"""
The engine layer: turning a L{SpawnPlan} into a running child
(L{txspawn.interfaces.ISpawner}).

What it owns:

  - L{txspawn._engine.selection}: which engine is used, by name, by
    C{TXSPAWN_ENGINE} or by preference, and why another is unavailable;
  - the C engine: L{txspawn._engine.cengine} (C{CSpawner}, the Python side
    of the C extension, whose sources are in C{txspawn/_csrc/}),
    L{txspawn._engine.fdslots} (slot mode: the reserved low fd through
    which a child is sent its fds), L{txspawn._engine.cfdprogram} (the fd
    program in the form the extension takes it),
    L{txspawn._engine.cextension} (the extension, imported with the reason
    it was not built) and L{txspawn._engine.cbuild} (whether it was built
    here, and why not);
  - the Python engine: L{txspawn._engine.pyengine} (C{PythonSpawner}:
    C{posix_spawn} when the plan fits, C{fork} otherwise, the replay of
    an ambiguous C{posix_spawn} failure, clean-up, the pidfd),
    L{txspawn._engine.parentsyscalls} (the parent's syscalls that can fail,
    in one object tests replace) and L{txspawn._engine.envp} (the
    environment as C{execve} takes it);
  - its fork path: L{txspawn._engine.forkpath} (the parent side: the
    child's steps precomputed, the fork, the failure record) and
    L{txspawn._engine.forkchild} (what the forked child runs before exec);
  - its C{posix_spawn} path: L{txspawn._engine.posixspawnpath} (which
    plans it can express, the plan as file actions and attributes, trying
    each exec candidate), L{txspawn._engine.posixspawn} (which backend, and
    why), L{txspawn._engine.spawnactions} (the file actions and attributes
    every backend takes, and the backend protocol),
    L{txspawn._engine.libcposixspawn} (glibc's C{posix_spawn} through
    C{ctypes}, the fast backend) and L{txspawn._engine.osposixspawn}
    (C{os.posix_spawn}, the slow fallback).

A new spawn option is planned in L{txspawn._plan} and carried out here,
in both engines (the C child in C{txspawn/_csrc/child.c}, the Python child
in L{txspawn._engine.forkchild}), with one answer from both.

What it may import: L{txspawn._plan}, L{txspawn._kernel}, the C core and
the public vocabulary.  What imports it: the reactor layer (which picks an
engine) and the command line.
"""
