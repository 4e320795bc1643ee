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

L{planNamespaces} makes a L{NamespacePlan} from the public
L{txspawn.options.Namespaces} (and L{withInit} adds txspawn's init);
L{failureHint} says what a namespace step's failure most likely means.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence

from attrs import evolve, frozen

from txspawn._namespaceoptions import IdMapRange, effectiveCapabilities
from txspawn.errors import ChildSetupStage
from txspawn.options import Namespaces

__all__ = [
    "CLONE_NEWCGROUP",
    "CLONE_NEWIPC",
    "CLONE_NEWNET",
    "CLONE_NEWNS",
    "CLONE_NEWPID",
    "CLONE_NEWTIME",
    "CLONE_NEWUSER",
    "CLONE_NEWUTS",
    "HINT_GID_MAP",
    "HINT_LIMIT",
    "HINT_PRIVILEGE",
    "HINT_PROC",
    "HINT_SECURITY_MODULE",
    "HINT_SETGROUPS",
    "HINT_UID_MAP",
    "HINT_USERNS_REFUSED",
    "MS_PRIVATE",
    "MS_REC",
    "MS_SHARED",
    "MS_SLAVE",
    "NamespacePlan",
    "failureHint",
    "planNamespaces",
    "withInit",
]

# <linux/sched.h>: the clone flags of each namespace type.
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
#: Only for C{unshare} (and C{clone3}): the old C{clone} reads this bit as
#: part of the exit signal.
CLONE_NEWTIME = 0x00000080

# <sys/mount.h>: the propagation types, and "to every mount below".
MS_REC = 1 << 14
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20

#: The clone flag of each L{Namespaces} field (not time: see
#: L{NamespacePlan.cloneFlags}).
_CLONE_FLAGS = (
    ("user", CLONE_NEWUSER),
    ("pid", CLONE_NEWPID),
    ("mount", CLONE_NEWNS),
    ("net", CLONE_NEWNET),
    ("uts", CLONE_NEWUTS),
    ("ipc", CLONE_NEWIPC),
    ("cgroup", CLONE_NEWCGROUP),
)

#: The mount flag of each L{Namespaces.propagation}.
_PROPAGATION = {"slave": MS_SLAVE, "private": MS_PRIVATE, "shared": MS_SHARED}


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


def _insideOf(ranges: Sequence[IdMapRange], outside: int) -> int | None:
    """
    The id inside that C{ranges} map to the id C{outside}, or C{None}.
    """
    for r in ranges:
        if r.outside <= outside < r.outside + r.count:
            return r.inside + outside - r.outside
    return None


def _isMapped(ranges: Sequence[IdMapRange], inside: int) -> bool:
    return any(r.inside <= inside < r.inside + r.count for r in ranges)


def _isSelfMap(ranges: Sequence[IdMapRange], own: int) -> bool:
    """
    Whether C{ranges} map one id to C{own} and nothing else: the only map
    the kernel lets an unprivileged process write (from inside too).
    """
    return len(ranges) == 1 and ranges[0].outside == own and ranges[0].count == 1


def _checkMapped(
    value: int, ranges: Sequence[IdMapRange], what: str, mapName: str
) -> None:
    if not _isMapped(ranges, value):
        mapped = ", ".join(f"{r.inside}-{r.inside + r.count - 1}" for r in ranges)
        raise ValueError(
            f"{what} {value} is not mapped in the user namespace (with one, it "
            f"is an id inside): namespaces.{mapName} maps {mapped}"
        )


def planNamespaces(
    namespaces: Namespaces,
    uid: int | None,
    gid: int | None,
    groups: tuple[int, ...] | None,
    euid: int,
    egid: int,
) -> tuple[NamespacePlan | None, int | None, int | None]:
    """
    Plan the namespaces of a spawn.

    With a user namespace, C{uid}, C{gid} and C{groups} are ids inside it,
    and must be mapped.  The target ids, when C{uid} or C{gid} is not
    given: the id inside that this process's effective id maps to, else the
    lowest id mapped.  A target uid of 0 is set right after the maps
    (L{NamespacePlan.earlyIds}, with the target gid), so that the child
    keeps its capabilities for the namespace's setup; any other is set by
    the ordinary credential steps, so the plan's uid and gid are then the
    targets.

    @param uid: C{spawnProcess}'s C{uid}, checked, or C{None}.
    @param gid: Its C{gid}, checked, or C{None}.
    @param groups: The supplementary groups, resolved, or C{None}.
    @param euid: This process's effective uid (L{os.geteuid}).
    @param egid: This process's effective gid (L{os.getegid}).
    @return: The namespace plan (C{None} if no namespace is asked for),
        and the plan's C{uid} and C{gid}.  Its C{init} is C{None}:
        L{withInit} adds it.
    @raise ValueError: for ids that are not mapped, or C{groups} with
        C{setgroups} denied; the message names the argument.
    """
    flags = 0
    for name, flag in _CLONE_FLAGS:
        if getattr(namespaces, name):
            flags |= flag
    if not flags and not namespaces.time:
        return None, uid, gid
    uidMap = gidMap = setgroups = None
    mapsByChild = False
    earlyIds = None
    if namespaces.user:
        uids = namespaces.uidMap or (IdMapRange(0, euid, 1),)
        gids = namespaces.gidMap or (IdMapRange(0, egid, 1),)
        if uid is not None:
            _checkMapped(uid, uids, "uid", "uidMap")
        if gid is not None:
            _checkMapped(gid, gids, "gid", "gidMap")
        if groups is not None:
            if namespaces.setgroups == "deny":
                raise ValueError(
                    "groups cannot be set in a user namespace with "
                    "setgroups='deny' (namespaces): give Namespaces("
                    "setgroups='allow') and a gidMap mapping the groups"
                )
            for index, group in enumerate(groups):
                _checkMapped(group, gids, f"groups[{index}]", "gidMap")
        targetUid = uid if uid is not None else _insideOf(uids, euid)
        if targetUid is None:
            targetUid = min(r.inside for r in uids)
        targetGid = gid if gid is not None else _insideOf(gids, egid)
        if targetGid is None:
            targetGid = min(r.inside for r in gids)
        if targetUid == 0:
            earlyIds = (0, targetGid)
            uid = gid = None
        else:
            uid, gid = targetUid, targetGid
        uidMap = IdMapRange.kernelText(uids).encode("ascii")
        gidMap = IdMapRange.kernelText(gids).encode("ascii")
        setgroups = namespaces.setgroups.encode("ascii")
        mapsByChild = (
            _isSelfMap(uids, euid)
            and _isSelfMap(gids, egid)
            and namespaces.setgroups == "deny"
        )
    timeOffsets = None
    if namespaces.time:
        # Without offsets, both clocks at 0: one case for the engines.
        offsets = namespaces.timeOffsets or (("monotonic", 0, 0), ("boottime", 0, 0))
        timeOffsets = "".join(f"{c} {s} {ns}\n" for c, s, ns in offsets).encode()
    return (
        NamespacePlan(
            cloneFlags=flags,
            uidMap=uidMap,
            gidMap=gidMap,
            setgroups=setgroups,
            mapsByChild=mapsByChild,
            earlyIds=earlyIds,
            hostname=(
                None
                if namespaces.hostname is None
                else os.fsencode(namespaces.hostname)
            ),
            loopback=namespaces.loopback,
            propagation=(
                _PROPAGATION.get(namespaces.propagation) if namespaces.mount else None
            ),
            mountProc=namespaces.mountProc,
            timeOffsets=timeOffsets,
        ),
        uid,
        gid,
    )


def withInit(plan: NamespacePlan, namespaces: Namespaces) -> NamespacePlan:
    """
    C{plan} with the path of txspawn's init when it is to be pid 1 (a pid
    namespace and L{Namespaces.pidInit}).

    Apart from L{planNamespaces} because it depends on the installation,
    not on the arguments: the planner looks it up last, after every check
    of the arguments, so that the fake reactor (which ignores what depends
    on the machine) makes the same checks.

    @raise txspawn.errors.UnsupportedFeature: naming C{pidInit}, when
        txspawn's init was not built.
    """
    if not (namespaces.pid and namespaces.pidInit):
        return plan
    from txspawn._kernel.initprogram import initProgram

    return evolve(plan, init=initProgram())


#: The hints of L{failureHint}.
HINT_PRIVILEGE = "needs root (CAP_SYS_ADMIN) or a user namespace (user=True)"
HINT_USERNS_REFUSED = (
    "this system may refuse unprivileged user namespaces "
    "(kernel.unprivileged_userns_clone=0, or a security module), or this "
    "process is chrooted"
)
HINT_LIMIT = "user.max_user_namespaces (or another user.max_*_namespaces) is exhausted"
HINT_SECURITY_MODULE = (
    "a security module (AppArmor's unprivileged_userns restriction, SELinux) "
    "may be restricting user namespaces"
)
HINT_PROC = "/proc is masked or over-mounted (in a container?)"
HINT_UID_MAP = (
    "mapping uids other than our own euid needs CAP_SETUID (root); "
    "otherwise " + HINT_SECURITY_MODULE
)
HINT_GID_MAP = (
    "mapping gids other than our own egid, or setgroups='allow', needs "
    "CAP_SETGID (root); otherwise " + HINT_SECURITY_MODULE
)
HINT_SETGROUPS = "setgroups(2) is denied in this user namespace (setgroups='deny')"

#: The steps after the clone that the user namespace grants the
#: capabilities for.
_CAPABLE_STAGES = frozenset(
    {
        ChildSetupStage.IDMAP,
        ChildSetupStage.SETGROUPS,
        ChildSetupStage.SETGID,
        ChildSetupStage.SETUID,
        ChildSetupStage.HOSTNAME,
        ChildSetupStage.LOOPBACK,
        ChildSetupStage.MOUNT_PROPAGATION,
        ChildSetupStage.MOUNT_PROC,
        ChildSetupStage.TIME_OFFSETS,
    }
)

_CAP_SETGID = 6
_CAP_SETUID = 7


def _lacks(capability: int) -> bool:
    capabilities = effectiveCapabilities()
    return capabilities is not None and not capabilities >> capability & 1


def failureHint(
    namespaces: NamespacePlan, stage: ChildSetupStage, err: int, detail: int
) -> str | None:
    """
    The likely cause of a failure at C{stage} with C{err} in a spawn with
    C{namespaces}, when it is known (for L{txspawn.errors.SpawnError.hint}),
    else C{None}.
    """
    user = bool(namespaces.cloneFlags & CLONE_NEWUSER)
    denied = err in (errno.EPERM, errno.EACCES)
    creating = stage is ChildSetupStage.NAMESPACES or (
        stage is ChildSetupStage.TIME_OFFSETS and detail == 1
    )
    if creating and err == errno.ENOSPC:
        return HINT_LIMIT
    if creating and err == errno.EPERM:
        return HINT_USERNS_REFUSED if user else HINT_PRIVILEGE
    if stage is ChildSetupStage.MOUNT_PROC and err == errno.EPERM:
        return HINT_PROC
    if stage is ChildSetupStage.SETGROUPS and namespaces.setgroups == b"deny":
        return HINT_SETGROUPS if err == errno.EPERM else None
    if not (user and denied and stage in _CAPABLE_STAGES):
        return None
    if stage is ChildSetupStage.IDMAP and not namespaces.mapsByChild:
        # The parent wrote the map: its own capabilities decide first.
        if detail == 3 and _lacks(_CAP_SETUID):
            return HINT_UID_MAP
        if detail in (1, 2) and _lacks(_CAP_SETGID):
            return HINT_GID_MAP
    return HINT_SECURITY_MODULE
