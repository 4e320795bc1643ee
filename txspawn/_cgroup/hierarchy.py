# -*- test-case-name: tests.test_cgroup_hierarchy -*-
"""
Where the cgroup v2 hierarchy is, where a process sits in it, and the small
file reads every other module of the layer shares.

Only the C{cgroup2} mount counts: on a hybrid host the v1 hierarchies
(C{/sys/fs/cgroup/<controller>}) are mounted beside it and are never
touched.  The mount is found in C{/proc/self/mountinfo}, not assumed: a
pure v2 host mounts it at C{/sys/fs/cgroup}, a hybrid one at
C{/sys/fs/cgroup/unified}.
"""

from __future__ import annotations

import errno
import os
import re
import signal

__all__ = [
    "CgroupMount",
    "cgroupMount",
    "cgroupMountInfo",
    "cgroupPath",
    "hasCapSysAdmin",
    "killCgroup",
    "ownCgroup",
    "parseMountinfo",
    "processStartTime",
    "readControllers",
    "readProcs",
    "readSubtreeControl",
    "readText",
    "removeCgroup",
    "writeText",
]

#: C{CAP_SYS_ADMIN}'s bit in C{CapEff}.
_CAP_SYS_ADMIN = 21

#: An octal escape of C{/proc/self/mountinfo} (a space is C{\\040}).
_ESCAPE = re.compile(r"\\([0-7]{3})")


class CgroupMount:
    """
    The cgroup v2 mount this process sees.

    @ivar path: Where it is mounted.
    @ivar root: The cgroup it shows at C{path}, as C{/proc/self/cgroup}
        names cgroups (C{"/"} unless the mount was made in another cgroup
        namespace, or of a subtree).
    """

    __slots__ = ("path", "root")

    def __init__(self, path: str, root: str) -> None:
        self.path = path
        self.root = root

    def __repr__(self) -> str:
        return f"CgroupMount(path={self.path!r}, root={self.root!r})"


#: The verdict of L{cgroupMountInfo}, by the pid that found it (a forked
#: child finds its own: it may have another mount namespace).
_MOUNT: dict[int, CgroupMount | None] = {}


def _unescape(field: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parseMountinfo(text: str) -> CgroupMount | None:
    """
    The first C{cgroup2} mount of a C{/proc/<pid>/mountinfo} text whose
    root is reachable (the kernel shows a root outside this cgroup
    namespace with a leading C{/..}), or L{None}.
    """
    for line in text.splitlines():
        fields = line.split()
        try:
            dash = fields.index("-")
        except ValueError:
            continue
        if dash + 1 >= len(fields) or fields[dash + 1] != "cgroup2":
            continue
        root = _unescape(fields[3])
        if root.startswith("/.."):
            continue
        return CgroupMount(_unescape(fields[4]), root)
    return None


def cgroupMountInfo() -> CgroupMount | None:
    """
    This process's cgroup v2 mount, or L{None} when there is none; read
    once per process.
    """
    pid = os.getpid()
    try:
        return _MOUNT[pid]
    except KeyError:
        pass
    with open("/proc/self/mountinfo") as f:
        found = parseMountinfo(f.read())
    _MOUNT.clear()
    _MOUNT[pid] = found
    return found


def cgroupMount() -> str | None:
    """
    Where the cgroup v2 hierarchy is mounted, or L{None}.
    """
    found = cgroupMountInfo()
    return None if found is None else found.path


def ownCgroup(pid: int | str = "self") -> str:
    """
    The cgroup v2 path of a process (the C{0::} line of
    C{/proc/<pid>/cgroup}), for example C{"/"}.

    @raise LookupError: The process is in no cgroup v2 hierarchy (a v1-only
        kernel).
    @raise OSError: The process is gone.
    """
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            if not line.startswith("0::"):
                continue
            return line[3:].rstrip("\n")
    raise LookupError(f"/proc/{pid}/cgroup has no cgroup v2 (0::) line")


def cgroupPath(mount: CgroupMount, cgroup: str) -> str | None:
    """
    The directory of C{cgroup} (as L{ownCgroup} names it) under C{mount},
    or L{None} when the mount does not show it.
    """
    root = mount.root.rstrip("/")
    if root and cgroup != root and not cgroup.startswith(root + "/"):
        return None
    rest = cgroup[len(root) :].strip("/")
    return os.path.join(mount.path, rest) if rest else mount.path


def readText(path: str) -> str:
    """
    The whole of a (small) cgroup file.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 65536).decode()
    finally:
        os.close(fd)


def writeText(path: str, text: str) -> None:
    """
    Write C{text} to a cgroup file in one C{write}: the kernel takes each
    write as one command.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def readControllers(path: str) -> frozenset[str]:
    """
    The controllers a cgroup offers its children (its
    C{cgroup.controllers}).
    """
    return frozenset(readText(os.path.join(path, "cgroup.controllers")).split())


def readSubtreeControl(path: str) -> frozenset[str]:
    """
    The controllers a cgroup has enabled for its children (its
    C{cgroup.subtree_control}).
    """
    return frozenset(readText(os.path.join(path, "cgroup.subtree_control")).split())


def readProcs(path: str) -> list[int]:
    """
    The processes in a cgroup itself (not in its descendants).
    """
    return [int(p) for p in readText(os.path.join(path, "cgroup.procs")).split()]


def processStartTime(pid: int | str = "self") -> int | None:
    """
    A process's start time (field 22 of C{/proc/<pid>/stat}, clock ticks
    since boot), which together with its pid names it for good; L{None}
    when there is no such process.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ESRCH):
            return None
        raise
    # The command name (field 2) may hold spaces and parentheses: the
    # fields after it start after the last ")".
    rest = stat[stat.rindex(b")") + 2 :].split()
    return int(rest[22 - 3])


def hasCapSysAdmin() -> bool:
    """
    Whether this process has C{CAP_SYS_ADMIN} (or is root) in its user
    namespace.
    """
    if os.geteuid() == 0:
        return True
    # The loops below end with "continue", not with "if ...: return": see
    # tests/test_exceptiontable.py (CPython 3.13 puts the last backward jump
    # of such a loop outside the with's clean-up).
    with open("/proc/self/status") as f:
        for line in f:
            if not line.startswith("CapEff:"):
                continue
            return bool(int(line.split()[1], 16) >> _CAP_SYS_ADMIN & 1)
    return False


def killCgroup(path: str) -> None:
    """
    Kill every process in the cgroup C{path} and its descendants
    (C{cgroup.kill}, Linux 5.14); nothing when it is gone.  Without
    C{cgroup.kill}, each process listed is sent C{SIGKILL} once.
    """
    try:
        writeText(os.path.join(path, "cgroup.kill"), "1")
        return
    except FileNotFoundError:
        if not os.path.isdir(path):
            return
    for root, _, _ in os.walk(path):
        try:
            pids = readProcs(root)
        except OSError:
            continue
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def removeCgroup(path: str) -> bool:
    """
    Remove the cgroup C{path}, and any cgroup made inside it (a child may
    make some in its own cgroup namespace).

    @return: C{True} when it is gone (or was already), C{False} while a
        process is still in it (C{EBUSY}).
    @raise OSError: Any other failure.
    """
    if _rmdir(path):
        return True
    # EBUSY: a process is in it, or a cgroup was made inside it.
    nested = False
    for root, dirs, _ in os.walk(path, topdown=False):
        for name in dirs:
            nested = True
            if not _rmdir(os.path.join(root, name)):
                return False
    return nested and _rmdir(path)


def _rmdir(path: str) -> bool:
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError as e:
        if e.errno in (errno.EBUSY, errno.ENOTEMPTY):
            return False
        raise
    return True
