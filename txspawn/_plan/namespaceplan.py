# -*- test-case-name: tests.test_namespaceoptions -*-
"""
The namespace part of a spawn plan: what the child does between its clone
and the ordinary setup steps, already encoded as the bytes and flags the
engines hand to the kernel.

The child's order, the same on both engines (each step's failure is the
L{txspawn.errors.ChildSetupStage} in brackets):

  1. clone (or C{unshare}) with L{NamespacePlan.cloneFlags} [C{NAMESPACES}];
  2. the maps: with L{NamespacePlan.mapsByChild} the child writes
     C{setgroups}, C{gid_map}, C{uid_map} under C{/proc/self} itself
     [C{IDMAP} 1/2/3]; else it waits [C{SYNC}] while the parent writes them
     under C{/proc/<pid>};
  3. L{NamespacePlan.earlyIds}: C{setresgid} [C{SETGID}], C{setresuid}
     [C{SETUID}];
  4. hostname [C{HOSTNAME}]; 5. C{lo} up [C{LOOPBACK}]; 6. mount
     propagation [C{MOUNT_PROPAGATION}]; 7. a fresh C{/proc}
     [C{MOUNT_PROC}]; 8. time offsets [C{TIME_OFFSETS}];
  9. the ordinary steps, then exec of the command or of txspawn's init.
"""

from __future__ import annotations

from attrs import frozen

__all__ = ["NamespacePlan"]


@frozen
class NamespacePlan:
    """
    The namespaces one child is created in, and their setup.

    @ivar cloneFlags: The C{CLONE_NEW*} flags for the clone (user, pid,
        mount, net, uts, ipc, cgroup as asked); never C{CLONE_NEWTIME},
        which is unshared later (step 8) so that its offsets can still be
        written.
    @ivar uidMap: The uid map, C{b"inside outside count\\n"} lines ready to
        be written with one C{write()}; C{None} without a user namespace.
    @ivar gidMap: The gid map, in the same form; C{None} without a user
        namespace.
    @ivar setgroups: C{b"deny"} or C{b"allow"}, for
        C{/proc/<pid>/setgroups}; C{None} without a user namespace.
    @ivar mapsByChild: C{True} for a self-map (the uid map is one line whose
        outside id is our euid, the gid map one line whose outside id is our
        egid, and C{setgroups} is denied): the child writes its own maps
        under C{/proc/self}, which the kernel allows from inside.  C{False}:
        the parent writes C{/proc/<pid>/setgroups}, C{gid_map}, C{uid_map}
        while the child waits (stage C{SYNC}).
    @ivar earlyIds: C{(uid, gid)} inside the namespace, set right after the
        maps (C{setresgid} then C{setresuid}) when the target uid inside is
        0, so that the child keeps its capabilities in the namespace for the
        steps that need them.  Otherwise C{None}, and the plan's C{uid} and
        C{gid} hold the inside ids for the ordinary credential steps.
    @ivar hostname: The hostname to set in the new UTS namespace, or
        C{None}.
    @ivar loopback: Bring C{lo} up in the new network namespace.
    @ivar propagation: C{MS_SLAVE}, C{MS_PRIVATE} or C{MS_SHARED}, applied
        recursively to every mount of the new mount namespace (the engine
        adds C{MS_REC}); C{None} to leave propagation unchanged, or without
        a mount namespace.
    @ivar mountProc: Mount a fresh C{/proc} in the new mount namespace.
    @ivar timeOffsets: The time namespace's offsets,
        C{b"monotonic S NS\\nboottime S NS\\n"} (clocks by name), written to
        C{/proc/self/timens_offsets} after C{unshare(CLONE_NEWTIME)} (a time
        namespace without offsets writes both clocks as C{0 0}, so the
        engines need no second case); C{None} without a time namespace.
    @ivar init: The absolute path of txspawn's init program, which the
        engine execs as pid 1 of the new pid namespace (the command is then
        its pid 2); C{None} when the command is exec'd directly.
    """

    cloneFlags: int
    uidMap: bytes | None = None
    gidMap: bytes | None = None
    setgroups: bytes | None = None
    mapsByChild: bool = False
    earlyIds: tuple[int, int] | None = None
    hostname: bytes | None = None
    loopback: bool = False
    propagation: int | None = None
    mountProc: bool = False
    timeOffsets: bytes | None = None
    init: bytes | None = None
