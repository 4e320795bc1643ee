# -*- test-case-name: tests.test_cgroup_parent,tests.test_cgroup_delegation -*-
"""
The parent cgroup every child's leaf is made in: found once per process,
and the controllers its children need, enabled on it.

Where the parent is (issue 14, item 2), in this order:

  1. the path the user gave (C{Cgroup(parent=...)}), when it is a cgroup v2
     directory under the mount whose C{cgroup.procs} this process can
     write;
  2. this process's own cgroup when it is delegated to us: not the root
     cgroup, and either C{cgroup.procs} and C{cgroup.subtree_control} are
     writable, or systemd marked it with the C{user.delegate} or
     C{trusted.delegate} extended attribute (C{Delegate=yes});
  3. C{<mount>/txspawn}, made when missing, when this process is root (or
     has C{CAP_SYS_ADMIN});
  4. else L{CgroupUnavailable}, with the hint to run under a unit or scope
     with C{Delegate=yes}.

cgroup v2's "no internal processes" rule: a cgroup that enables a
controller for its children may hold no process itself (the root cgroup
excepted).  When the parent holds this process, L{enableControllers} first
moves it into a leaf of its own, C{txspawn-self-<pid>-<starttime>}; a
parent holding other processes cannot be used for limits, and says so.
Nothing of this happens for a spawn without limits: only the controllers a
limit needs are ever enabled.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterable

from attrs import define

from txspawn._cgroup.hierarchy import (
    cgroupMountInfo,
    cgroupPath,
    hasCapSysAdmin,
    ownCgroup,
    processStartTime,
    readControllers,
    readProcs,
    readSubtreeControl,
    writeText,
)
from txspawn.errors import ChildSetupStage, SpawnError, UnsupportedFeature

__all__ = [
    "DELEGATE_HINT",
    "SUBTREE",
    "CgroupParent",
    "CgroupUnavailable",
    "boundToV1",
    "enableControllers",
    "findParent",
    "selfLeafName",
]

#: What to do when no parent can be found.
DELEGATE_HINT = (
    "run under a systemd unit or scope with Delegate=yes "
    "(systemd-run --user --scope -p Delegate=yes ...)"
)

#: How a parent made by root at the top of the hierarchy was found.
SUBTREE = "txspawn subtree (root)"

#: The extended attributes systemd sets on a delegated cgroup.
_DELEGATE_XATTRS = ("user.delegate", "trusted.delegate")

#: The limit options that need each controller (for the error naming
#: the option).
_OPTIONS_OF = {
    "memory": ("memoryMax", "memoryHigh"),
    "pids": ("pidsMax",),
    "cpu": ("cpuMax",),
    "io": ("ioWeight",),
}


class CgroupUnavailable(Exception):
    """
    No cgroup can be made for a child here.

    @ivar reason: Why.
    @ivar hint: What would make it possible.
    """

    def __init__(self, reason: str, hint: str) -> None:
        super().__init__(reason, hint)
        self.reason = reason
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.reason} ({self.hint})"


@define(eq=False)
class CgroupParent:
    """
    A cgroup v2 directory in which children's leaves are made.

    @ivar path: Its absolute path.
    @ivar how: How it was found: C{"given"}, C{"delegated (writable)"},
        C{"delegated (xattr user.delegate)"} (or C{trusted.delegate}), or
        C{"txspawn subtree (root)"} (L{SUBTREE}).
    @ivar controllers: Its C{cgroup.controllers}: what it may enable for
        its children.
    @ivar enabled: Its C{cgroup.subtree_control}: what it has enabled.
    @ivar cloneInto: L{None} while C{CLONE_INTO_CGROUP} may be used for its
        leaves; else why not (set by an engine after a fallback that must
        stick).
    @ivar isRoot: Whether it is the root of the mount (which may hold
        processes and enable controllers at once).
    @ivar selfLeaf: The leaf this process was moved into to obey the "no
        internal processes" rule, if it was.
    @ivar swept: Whether this process has swept its stale leaves.
    @ivar spare: A fresh, empty leaf made ahead of the next spawn (its path,
        and fds on its directory, C{cpu.stat} and C{cgroup.events}), or
        L{None}: see
        L{txspawn._cgroup.leaf.prepareSpare}.
    """

    path: str
    how: str
    controllers: frozenset[str]
    enabled: frozenset[str]
    cloneInto: str | None = None
    isRoot: bool = False
    selfLeaf: str | None = None
    swept: bool = False
    spare: tuple[str, int, int, int] | None = None


#: The parents found, by (pid, effective uid, given path): a forked child
#: or a process that changed its uid looks again.
_PARENTS: dict[tuple[int, int, str | None], CgroupParent] = {}
#: Serialises finding parents and enabling controllers (spawns may come
#: from several threads).
_LOCK = threading.RLock()


def findParent(given: str | None) -> CgroupParent:
    """
    The parent in which to make leaves: C{given}, or found as the module
    docstring says.  Cached per process.

    @raise CgroupUnavailable: There is none.
    @raise SpawnError: Making C{<mount>/txspawn} failed (stage
        L{ChildSetupStage.CGROUP}).
    """
    key = (os.getpid(), os.geteuid(), given)
    found = _PARENTS.get(key)
    if found is not None:
        return found
    with _LOCK:
        found = _PARENTS.get(key)
        if found is None:
            found = _locateParent(given)
            if key[0] not in {k[0] for k in _PARENTS}:
                _PARENTS.clear()
            _PARENTS[key] = found
        return found


def _locateParent(given: str | None) -> CgroupParent:
    mount = cgroupMountInfo()
    if mount is None:
        raise CgroupUnavailable("no cgroup v2 hierarchy is mounted", DELEGATE_HINT)
    if given is not None:
        return _givenParent(mount.path, given)
    try:
        own = ownCgroup()
    except LookupError as e:
        raise CgroupUnavailable(str(e), DELEGATE_HINT) from None
    ownPath = cgroupPath(mount, own)
    if ownPath is not None and ownPath != mount.path:
        how = _delegation(ownPath)
        if how is not None:
            return _parentAt(ownPath, how, isRoot=False)
    if hasCapSysAdmin():
        subtree = os.path.join(mount.path, "txspawn")
        try:
            os.mkdir(subtree, 0o755)
        except FileExistsError:
            pass
        except OSError as e:
            raise SpawnError.fromErrno(
                e.errno or errno.EIO, ChildSetupStage.CGROUP, subtree
            ) from None
        return _parentAt(subtree, SUBTREE, isRoot=False)
    where = "the root cgroup" if ownPath == mount.path else f"cgroup {own}"
    raise CgroupUnavailable(
        f"this process's cgroup v2 ({where}) is not delegated to it, and only "
        "root may make a txspawn subtree at the top of the hierarchy",
        DELEGATE_HINT,
    )


def _givenParent(mountPath: str, given: str) -> CgroupParent:
    path = os.path.normpath(given)
    hint = (
        f"give a cgroup v2 directory under {mountPath} whose cgroup.procs "
        "and cgroup.subtree_control this user may write"
    )
    if os.path.commonpath([mountPath, path]) != mountPath:
        raise CgroupUnavailable(
            f"the cgroup parent {path} is not under the cgroup v2 mount {mountPath}",
            hint,
        )
    if not os.path.isfile(os.path.join(path, "cgroup.procs")):
        raise CgroupUnavailable(
            f"the cgroup parent {path} is not a cgroup v2 directory", hint
        )
    if not os.access(os.path.join(path, "cgroup.procs"), os.W_OK):
        raise CgroupUnavailable(
            f"the cgroup parent {path}: its cgroup.procs is not writable by "
            f"uid {os.geteuid()}",
            hint,
        )
    return _parentAt(path, "given", isRoot=path == mountPath)


def _delegation(path: str) -> str | None:
    """
    How C{path} is delegated to this process, or L{None}.
    """
    for name in _DELEGATE_XATTRS:
        try:
            os.getxattr(path, name)
        except OSError:
            continue
        return f"delegated (xattr {name})"
    if all(
        os.access(os.path.join(path, name), os.W_OK)
        for name in ("cgroup.procs", "cgroup.subtree_control")
    ):
        return "delegated (writable)"
    return None


#: The errnos that say this process ran out of something (fds, memory),
#: not that a cgroup is unusable: a spawn then fails as any spawn does
#: under exhaustion (L{SpawnError}, stage C{CGROUP}), never with the
#: hint to run under a delegated unit.
EXHAUSTION_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM})


def _parentAt(path: str, how: str, isRoot: bool) -> CgroupParent:
    try:
        controllers = readControllers(path)
        enabled = readSubtreeControl(path)
    except OSError as e:
        if e.errno in EXHAUSTION_ERRNOS:
            raise SpawnError.fromErrno(e.errno, ChildSetupStage.CGROUP, path) from None
        raise CgroupUnavailable(
            f"the cgroup parent {path} cannot be read: {e.strerror}", DELEGATE_HINT
        ) from None
    return CgroupParent(path, how, controllers, enabled, isRoot=isRoot)


def _wanted(controller: str, options: Iterable[str]) -> list[str]:
    """
    The limit options among C{options} that need C{controller}.

    A function of its own, not a comprehension in L{enableControllers}:
    CPython 3.13 inlines a comprehension, and the last backward jump of its
    loop would fall outside the lock's clean-up (tests/test_exceptiontable.py).
    """
    given = set(options)
    return [name for name in _OPTIONS_OF.get(controller, ()) if name in given]


def selfLeafName(pid: int, startTime: int) -> str:
    """
    The name of the leaf a process moves itself into.
    """
    return f"txspawn-self-{pid}-{startTime}"


def _missingReason(
    parent: CgroupParent, controller: str, options: Iterable[str]
) -> str:
    names = " and ".join(options) or f"a limit of the {controller} controller"
    offered = ", ".join(sorted(parent.controllers)) or "none"
    reason = (
        f"{names} needs the {controller} controller, which this cgroup v2 "
        f"hierarchy does not offer at {parent.path} (cgroup.controllers: "
        f"{offered})"
    )
    if boundToV1(controller):
        reason += "; on a hybrid host it is bound to cgroup v1"
    return reason


def boundToV1(controller: str) -> bool:
    """
    Whether C{controller} is bound to a cgroup v1 hierarchy (a hybrid
    host), by this process's C{/proc/self/cgroup}.
    """
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                number, names, _ = line.split(":", 2)
                if number == "0" or controller not in names.split(","):
                    continue
                return True
    except OSError:
        pass
    return False


def enableControllers(
    parent: CgroupParent, needed: frozenset[str], options: Iterable[str] = ()
) -> None:
    """
    Enable C{needed} for the children of C{parent} (only what is not
    enabled yet), after moving this process out of C{parent} if it is in
    it.

    @param options: The limit options set, to name the one that needs a
        missing controller.
    @raise UnsupportedFeature: A controller is not offered, or the parent
        holds other processes than this one.
    @raise SpawnError: A write failed (stage L{ChildSetupStage.CGROUP}).
    """
    if needed <= parent.enabled:
        return
    with _LOCK:
        missing = needed - parent.enabled
        if not missing:
            return
        if not missing <= parent.controllers:
            parent.controllers = readControllers(parent.path)
        absent = missing - parent.controllers
        if absent and parent.how == SUBTREE:
            _enableAtRoot(parent, absent)
            absent = missing - parent.controllers
        if absent:
            controller = min(absent)
            raise UnsupportedFeature(
                "cgroup",
                _missingReason(parent, controller, _wanted(controller, options)),
            )
        if not parent.isRoot:
            _leaveParent(parent, missing)
        control = os.path.join(parent.path, "cgroup.subtree_control")
        _write(control, " ".join(f"+{c}" for c in sorted(missing)))
        parent.enabled = readSubtreeControl(parent.path)


def _enableAtRoot(parent: CgroupParent, absent: frozenset[str]) -> None:
    """
    For C{<mount>/txspawn}: enable at the root cgroup the controllers it
    offers that our subtree lacks (a host without systemd enables none).
    """
    root = os.path.dirname(parent.path)
    offered = absent & readControllers(root)
    if offered:
        control = os.path.join(root, "cgroup.subtree_control")
        _write(control, " ".join(f"+{c}" for c in sorted(offered)))
        parent.controllers = readControllers(parent.path)


def _leaveParent(parent: CgroupParent, missing: frozenset[str]) -> None:
    """
    Obey the "no internal processes" rule: move this process into a leaf of
    its own if it is in C{parent}; refuse if others are.
    """
    try:
        procs = readProcs(parent.path)
    except OSError as e:
        raise SpawnError.fromErrno(
            e.errno or errno.EIO, ChildSetupStage.CGROUP, parent.path
        ) from None
    if not procs:
        return
    pid = os.getpid()
    others = [p for p in procs if p != pid]
    if others:
        shown = " ".join(map(str, others[:10])) + (" ..." if len(others) > 10 else "")
        raise UnsupportedFeature(
            "cgroup",
            f"enabling {', '.join(sorted(missing))} for the children of "
            f"{parent.path} needs it to hold no process of its own (cgroup v2's "
            f'"no internal processes" rule), and it holds other processes than '
            f"this one: {shown}",
        )
    start = processStartTime()
    assert start is not None
    leaf = os.path.join(parent.path, selfLeafName(pid, start))
    try:
        os.mkdir(leaf)
    except FileExistsError:
        pass
    except OSError as e:
        raise SpawnError.fromErrno(
            e.errno or errno.EIO, ChildSetupStage.CGROUP, leaf
        ) from None
    try:
        _write(os.path.join(leaf, "cgroup.procs"), str(pid))
    except SpawnError:
        _rmdirQuietly(leaf)
        raise
    parent.selfLeaf = leaf


def _rmdirQuietly(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def _write(path: str, text: str) -> None:
    try:
        writeText(path, text)
    except OSError as e:
        raise SpawnError.fromErrno(
            e.errno or errno.EIO, ChildSetupStage.CGROUP, path
        ) from None
