# -*- test-case-name: tests.test_nsprobe -*-
"""
Which Linux namespaces txspawn can create here, found by really creating
them, and why any cannot.

L{probeNamespaces} forks a short-lived child per question.  Each calls
C{unshare(2)} through C{ctypes} (Python 3.11 has no C{os.unshare}) with the
namespace's C{CLONE_NEW*} flag -- and C{CLONE_NEWUSER} alongside when this
process lacks C{CAP_SYS_ADMIN}, as an unprivileged spawn must -- and reports
the failed step and errno over a pipe.  Three more questions: can a child
write its own map (the C engine's self-map); can the parent write a map of
other ids for a waiting child; can pid 1 of a new pid namespace mount a
fresh C{/proc} (in a new mount namespace made private first, so the mount
never reaches ours and vanishes with it).  Every child is reaped before the
probe returns, whatever happens: no child or mount is left behind.  Only a
real C{unshare} tells a kernel with user namespaces from one whose security
module refuses them, or whose C{user.max_user_namespaces} is 0.

Only the standard library is imported (hence dataclasses, not attrs), so
the module also runs on its own, under any Python 3 and any user, without
txspawn installed: C{python3 nsprobe.py [--json]}.

The verdict is cached per process and effective uid, unless an errno in it
is transient (C{EAGAIN}, C{ENOMEM}, C{EMFILE}, ...).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import struct
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial

__all__ = [
    "NAMESPACE_FLAGS",
    "PARENT_MAPS",
    "PROC",
    "SELF_MAP",
    "NamespaceProbe",
    "NamespaceVerdict",
    "main",
    "probeNamespaces",
    "runProbe",
]

#: The C{CLONE_NEW*} flag of each namespace type (C{<linux/sched.h>}), in
#: the order C{info} lists them.  cgroup: Linux 4.6; time: Linux 5.6.
NAMESPACE_FLAGS: dict[str, int] = {
    "user": 0x10000000,
    "pid": 0x20000000,
    "mount": 0x00020000,
    "net": 0x40000000,
    "uts": 0x04000000,
    "ipc": 0x08000000,
    "cgroup": 0x02000000,
    "time": 0x00000080,
}
_NEWUSER = NAMESPACE_FLAGS["user"]
_NEWPID = NAMESPACE_FLAGS["pid"]
_NEWNS = NAMESPACE_FLAGS["mount"]

#: The questions asked beyond one per namespace type.
SELF_MAP = "self-map"
PARENT_MAPS = "parent-maps"
PROC = "proc"

#: For an C{EINVAL}: the younger namespace types' minimum kernel.
_MINIMUM_KERNEL = {"cgroup": "Linux 4.6", "time": "Linux 5.6"}

#: C{<sys/mount.h>}: C{MS_REC | MS_PRIVATE}, and the flags of a C{/proc}.
_MS_REC_PRIVATE = 0x4000 | (1 << 18)
_MS_PROC = 0x2 | 0x4 | 0x8  # MS_NOSUID | MS_NODEV | MS_NOEXEC

#: C{CAP_SYS_ADMIN}'s bit in C{CapEff}.
_CAP_SYS_ADMIN = 21

#: The steps a probe child reports, by their number in its record.
_STEPS = (
    *"done unshare setgroups gid_map uid_map fork propagation".split(),
    "mount /proc",
    "ready",
)
_UNSHARE, _FORK, _PROPAGATION, _MOUNT, _READY = 1, 5, 6, 7, 8
_RECORD = struct.Struct("=ii")  # (step, errno)

#: Errnos that say "try again later", not "this does not work here".
_TRANSIENT = {errno.EAGAIN, errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.EINTR}


@dataclass(frozen=True)
class NamespaceVerdict:
    """
    The answer to one question of the probe.

    @ivar name: A key of L{NAMESPACE_FLAGS}, L{SELF_MAP}, L{PARENT_MAPS} or
        L{PROC}.
    @ivar works: Whether it worked.
    @ivar step: The step that failed (C{"unshare"}, C{"uid_map"}, C{"mount
        /proc"}, ...), or C{""}.
    @ivar errno: The failed step's errno, or 0.
    @ivar reason: How it was found to work, or what failed and, where known,
        why.
    """

    name: str
    works: bool
    step: str
    errno: int
    reason: str


@dataclass(frozen=True)
class NamespaceProbe:
    """
    Everything one probe found.

    @ivar privileged: Whether this process has C{CAP_SYS_ADMIN}; if not,
        each namespace type was probed together with a user namespace.
    @ivar euid: The effective uid the probe ran as.
    @ivar verdicts: The namespace types in the order of L{NAMESPACE_FLAGS},
        then L{SELF_MAP}, L{PARENT_MAPS}, L{PROC}.
    """

    privileged: bool
    euid: int
    verdicts: tuple[NamespaceVerdict, ...]

    def verdict(self, name: str) -> NamespaceVerdict:
        """
        @param name: A question's name.
        @return: Its verdict.
        @raise KeyError: for an unknown name.
        """
        for v in self.verdicts:
            if v.name == name:
                return v
        raise KeyError(name)

    def unavailable(self, *names: str) -> str | None:
        """
        A skip reason for what needs every one of C{names}.

        @return: C{None} if they all work, else the first failure's name and
            reason.
        """
        for name in names:
            v = self.verdict(name)
            if not v.works:
                return f"{name}: {v.reason}"
        return None

    def toJSON(self) -> dict[str, object]:
        """
        @return: The probe as JSON values.
        """
        return asdict(self)


def _hasSysAdmin() -> bool:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                # continue, not "if ...: return" last in the loop: see
                # tests/test_exceptiontable.py.
                if not line.startswith("CapEff:"):
                    continue
                return bool(int(line.split()[1], 16) >> _CAP_SYS_ADMIN & 1)
    except (OSError, ValueError):
        pass
    return os.geteuid() == 0


def _sysctl(name: str) -> str | None:
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as f:
            return f.read().strip()
    except OSError:
        return None


def _libc() -> ctypes.CDLL:
    """
    The C library, with C{unshare} and C{mount} typed: resolved in the
    parent, so a child only calls them.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.unshare.argtypes = [ctypes.c_int]
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_void_p]
    return libc


def _write(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


#: A list of C{(step, path, text)} writes.
_Writes = list[tuple[int, str, bytes]]


def _selfMap(euid: int, egid: int) -> _Writes:
    """
    A self-map's writes, in the order the kernel requires.
    """
    return [
        (2, "/proc/self/setgroups", b"deny"),
        (3, "/proc/self/gid_map", b"0 %d 1\n" % egid),
        (4, "/proc/self/uid_map", b"0 %d 1\n" % euid),
    ]


def _unshareAndMap(
    libc: ctypes.CDLL, flags: int, writes: _Writes, wfd: int = -1
) -> tuple[int, int]:
    """
    In a probe child: C{unshare(flags)}, then the map writes (C{wfd}, the
    record's pipe, is for L{_runChild}'s other bodies).

    @return: C{(step, errno)} of the first failure, or C{(0, 0)}.
    """
    if libc.unshare(flags) != 0:
        return _UNSHARE, ctypes.get_errno()
    for step, path, data in writes:
        try:
            _write(path, data)
        except OSError as e:
            return step, e.errno or 0
    return 0, 0


def _mountProc(
    libc: ctypes.CDLL, flags: int, writes: _Writes, ours: int, wfd: int
) -> tuple[int, int] | None:
    """
    In a probe child: new pid and mount namespaces (and a user namespace);
    then pid 1 of the new pid namespace, a grandchild, makes every mount
    private and mounts a fresh C{/proc}, and writes the record itself.  The
    child reaps it first, so once the child is reaped nothing is left (the
    mount namespace and its C{/proc} are gone).
    """
    step, err = _unshareAndMap(libc, flags, writes)
    if step:
        return step, err
    try:
        pid = os.fork()
    except OSError as e:
        return _FORK, e.errno or 0
    if pid == 0:  # pragma: no cover - runs in the grandchild
        try:
            # Never touch a mount namespace but the new one (C{ours} is the
            # inode of the probing process's): no record then.
            if os.getpid() != 1 or _mountNamespace() == ours:
                os._exit(0)
            record = (0, 0)
            if libc.mount(None, b"/", None, _MS_REC_PRIVATE, None) != 0:
                record = (_PROPAGATION, ctypes.get_errno())
            elif libc.mount(b"proc", b"/proc", b"proc", _MS_PROC, None) != 0:
                record = (_MOUNT, ctypes.get_errno())
            os.write(wfd, _RECORD.pack(*record))
        finally:
            os._exit(0)
    os.waitpid(pid, 0)  # ours alone: nobody else reaps it
    return None


def _mountNamespace() -> int:
    return os.stat("/proc/self/ns/mnt").st_ino


def _readRecord(fd: int) -> tuple[int, int]:
    """
    @return: The record on C{fd}, or C{(-1, 0)} if its writer died first.
    """
    data = b""
    while len(data) < _RECORD.size:
        chunk = os.read(fd, _RECORD.size - len(data))
        if not chunk:
            return -1, 0
        data += chunk
    step, err = _RECORD.unpack(data)
    return step, err


def _runChild(body: Callable[[int], tuple[int, int] | None]) -> tuple[int, int]:
    """
    Fork a probe child that runs C{body(wfd)}, writes the C{(step, errno)}
    it returns (C{None}: C{body} had its record written) and C{_exit}s;
    read the record; reap the child.

    @return: C{(step, errno)}; step C{-1} if no record came.
    """
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.fork()
    except OSError as e:
        os.close(rfd)
        os.close(wfd)
        return _FORK, e.errno or 0
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            record = body(wfd)
            if record is not None:
                os.write(wfd, _RECORD.pack(*record))
        finally:
            os._exit(0)
    os.close(wfd)
    try:
        return _readRecord(rfd)
    finally:
        os.close(rfd)
        os.waitpid(pid, 0)  # ours alone: nobody else reaps it


def _parentMaps(libc: ctypes.CDLL, euid: int, egid: int) -> tuple[int, int]:
    """
    A child makes a user namespace and waits; the parent writes a map of
    two ranges (ours as 0, and 1000 ids from 100000, or from 200000 if ours
    is among them: ranges must not overlap) to its C{/proc/<pid>/gid_map}
    and C{uid_map}, as txspawn does for any map but a self-map.

    @return: C{(step, errno)} of the first failure, or C{(0, 0)}.
    """
    readyR, readyW = os.pipe2(os.O_CLOEXEC)
    goR, goW = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.fork()
    except OSError as e:
        for fd in (readyR, readyW, goR, goW):
            os.close(fd)
        return _FORK, e.errno or 0
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(goW)
            step = _READY if libc.unshare(_NEWUSER) == 0 else _UNSHARE
            os.write(readyW, _RECORD.pack(step, ctypes.get_errno()))
            os.read(goR, 1)  # end of file once the parent is done
        finally:
            os._exit(0)
    os.close(readyW)
    os.close(goR)
    try:
        step, err = _readRecord(readyR)
        if step != _READY:
            return step, err
        for step, name, own in ((3, "gid_map", egid), (4, "uid_map", euid)):
            other = 200000 if 100000 <= own < 101000 else 100000
            try:
                _write(f"/proc/{pid}/{name}", b"0 %d 1\n1 %d 1000\n" % (own, other))
            except OSError as e:
                return step, e.errno or 0
        return 0, 0
    finally:
        os.close(readyR)
        os.close(goW)  # lets the child go, whatever happened
        os.waitpid(pid, 0)  # ours alone: nobody else reaps it


def _limitHint(name: str) -> str:
    """
    The C{user.max_*_namespaces} limits that may explain an C{ENOSPC}.
    """
    kinds = {"user": [], "mount": ["mnt"], PROC: ["pid", "mnt"]}.get(name, [name])
    limits = []
    for kind in ["user"] + [k for k in kinds if k in NAMESPACE_FLAGS or k == "mnt"]:
        value = _sysctl(f"user.max_{kind}_namespaces")
        limits += [] if value is None else [f"user.max_{kind}_namespaces = {value}"]
    shown = ", ".join(limits) or "user.max_user_namespaces"
    return f"the limit on namespaces is reached ({shown}; 0 turns them off)"


_NEEDS = "needs root (CAP_SYS_ADMIN) or a user namespace"


def _unshareHint(name: str, err: int, withUser: bool) -> str:
    """
    Why C{unshare} failed with C{err}, where the cause is known.
    """
    if err == errno.ENOSPC:
        return _limitHint(name)
    if err == errno.EINVAL:
        minimum = _MINIMUM_KERNEL.get(name)
        older = f" or is older than {minimum}" if minimum else ""
        return f"this kernel was built without them{older}"
    if err == errno.EUSERS:
        return "too many nested user namespaces"
    if err not in (errno.EPERM, errno.EACCES):
        return "unexpected"
    if not withUser and name in NAMESPACE_FLAGS and name != "user":
        return (
            f"{_NEEDS}; this process has CAP_SYS_ADMIN, so a seccomp filter refuses it"
        )
    if _sysctl("kernel.unprivileged_userns_clone") == "0":
        return (
            f"{_NEEDS}, and unprivileged user namespaces are off here "
            "(kernel.unprivileged_userns_clone = 0)"
        )
    if err == errno.EACCES:
        return f"{_NEEDS}, and a security module (SELinux, AppArmor) refuses those"
    return (
        f"{_NEEDS}, and user namespaces are refused here: a seccomp filter "
        "(a container's), a chroot, or a security module"
    )


def _afterCloneHint(name: str, step: str, err: int) -> str:
    """
    Why a step after a successful C{unshare} failed with C{err}.
    """
    if err not in (errno.EPERM, errno.EACCES):
        return "unexpected"
    if step == "mount /proc":
        return (
            "parts of this /proc are masked (over-mounted, as in a "
            "container), or a security module restricts user namespaces"
        )
    if name == PARENT_MAPS:
        return (
            "a map of ids other than our own needs CAP_SETUID and "
            "CAP_SETGID (root), or a security module restricts user namespaces"
        )
    if _sysctl("kernel.apparmor_restrict_unprivileged_userns") == "1":
        return (
            "the namespace was made, then refused: AppArmor restricts "
            "unprivileged user namespaces "
            "(kernel.apparmor_restrict_unprivileged_userns = 1)"
        )
    return (
        "the namespace was made, then refused: a security module (AppArmor, "
        "SELinux) restricts user namespaces"
    )


def _verdict(
    name: str, record: tuple[int, int], withUser: bool, how: str
) -> NamespaceVerdict:
    step, err = record
    if step == 0:
        return NamespaceVerdict(name, True, "", 0, how)
    if step == -1:
        return NamespaceVerdict(
            name, False, "probe", 0, "the probe child died without an answer"
        )
    stepName = _STEPS[step]
    if step == _UNSHARE:
        hint = _unshareHint(name, err, withUser)
    elif step == _FORK:
        hint = "could not fork"
    else:
        hint = _afterCloneHint(name, stepName, err)
    errName = errno.errorcode.get(err, str(err))
    return NamespaceVerdict(
        name, False, stepName, err, f"{stepName} failed with {errName}: {hint}"
    )


def runProbe() -> NamespaceProbe:
    """
    Probe now, uncached: one child per question.

    @return: The verdicts.
    """
    privileged = _hasSysAdmin()
    euid, egid = os.geteuid(), os.getegid()
    libc = _libc()
    withUser = not privileged
    userFlag = _NEWUSER if withUser else 0
    verdicts = []
    for name, flag in NAMESPACE_FLAGS.items():
        flags = flag | userFlag
        record = _runChild(partial(_unshareAndMap, libc, flags, []))
        how = "unshare() works"
        if withUser and name != "user":
            how += " with a user namespace"
        verdicts.append(_verdict(name, record, withUser, how))
    selfMap = _selfMap(euid, egid)
    record = _runChild(partial(_unshareAndMap, libc, _NEWUSER, selfMap))
    how = "a new user namespace wrote its own map"
    verdicts.append(_verdict(SELF_MAP, record, True, how))
    how = "wrote a two-range map for a waiting child's user namespace"
    verdicts.append(_verdict(PARENT_MAPS, _parentMaps(libc, euid, egid), True, how))
    procFlags = _NEWNS | _NEWPID | userFlag
    procMaps = selfMap if withUser else []
    ours = _mountNamespace()
    record = _runChild(lambda w: _mountProc(libc, procFlags, procMaps, ours, w))
    how = "mounted one as pid 1 of a new pid namespace"
    if withUser:
        how += " (in a user namespace)"
    verdicts.append(_verdict(PROC, record, withUser, how))
    return NamespaceProbe(privileged, euid, tuple(verdicts))


_cache: dict[tuple[int, int], NamespaceProbe] = {}


def _cached(
    run: Callable[[], NamespaceProbe], cache: dict[tuple[int, int], NamespaceProbe]
) -> NamespaceProbe:
    key = (os.getpid(), os.geteuid())
    cached = cache.get(key)
    if cached is not None:
        return cached
    probe = run()
    if not any(v.errno in _TRANSIENT for v in probe.verdicts):
        cache.clear()
        cache[key] = probe
    return probe


def probeNamespaces() -> NamespaceProbe:
    """
    The namespace probe, cached per process and effective uid.

    @return: L{runProbe}'s verdicts, from the cache unless one of them
        was transient.
    """
    return _cached(runProbe, _cache)


def main(argv: Sequence[str] | None = None) -> int:
    """
    Print the probe: with C{--json} as JSON, else one line per question
    (name, C{on} or C{off}, reason).

    @param argv: The arguments, without the program name.
    @return: 0.
    """
    probe = probeNamespaces()
    if "--json" in (sys.argv[1:] if argv is None else argv):
        sys.stdout.write(json.dumps(probe.toJSON(), indent=1) + "\n")
        return 0
    for v in probe.verdicts:
        sys.stdout.write(f"{v.name:<12} {'on' if v.works else 'off':<3} {v.reason}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
