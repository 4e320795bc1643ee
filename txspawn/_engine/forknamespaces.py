# -*- test-case-name: tests.test_pyspawn_namespaces -*-
"""
The namespace steps of the Python engine's fork child (steps 1 to 8 of
L{txspawn._plan.namespaceplan}), and the C{ctypes} functions they need,
loaded in the parent first by L{loadNamespaceCalls}.

The C engine creates every namespace with the clone itself.  A C{fork}
cannot, so the fork child enters them with C{unshare(2)}: all but the pid
namespace at once, then the maps (L{_enterNamespaces}).
C{unshare(CLONE_NEWPID)} does not move the caller, only its future
children, so with a pid namespace the fork child then makes the process
that is pid 1 with a raw C{clone(CLONE_PARENT)}: its parent is the fork
child's parent, the reactor itself, which can then watch it with a pidfd
and reap it like any other child, and the fork child just exits.  The
clone also carries C{CLONE_PARENT_SETTID} pointing at a C{MAP_SHARED} page
of the parent's: the kernel stores pid 1's pid there within the clone
syscall, before either process runs again, so the parent knows pid 1 as
soon as it exists, even if the fork child is killed right after (an
interrupted spawn's clean-up kills it), which a pid sent over a pipe
would not survive.

Then the process that goes on (pid 1, or the fork child without a pid
namespace), as the C engine's child (itself pid 1) does after the maps:
opens C{/proc/self/timens_offsets} (with a time namespace), sets the early
ids, and runs the rest (L{_setUpNamespaces}): hostname, C{lo}, mount
propagation, C{/proc}, and the time namespace, whose offsets go through
the file opened before the ids changed (see L{_openOffsets}).  Pid 1 is
made before the early ids, not after them, because that file must be pid
1's own (it belongs to the process that makes the time namespace) and pid
1 could no longer open it once they changed its uid.
L{runNamespaceSteps} runs it all.

A step that fails raises L{NamespaceStepFailed} with the stage, errno and
detail the C engine reports for it (the differential tests compare them);
L{txspawn._engine.forkchild.execChild} writes it as the failure record.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import struct
from collections.abc import Callable
from typing import NoReturn

from attrs import frozen

from txspawn.errors import ChildSetupStage, UnsupportedFeature

__all__ = [
    "CLONE_NEWPID",
    "NamespaceStepFailed",
    "NamespaceSteps",
    "failStep",
    "injectedFault",
    "loadNamespaceCalls",
    "runNamespaceSteps",
]

#: C{<linux/sched.h>}.
CLONE_NEWPID = 0x20000000
_CLONE_NEWTIME = 0x00000080
_CLONE_PARENT = 0x00008000
_CLONE_PARENT_SETTID = 0x00100000
#: pid 1 is created with C{CLONE_PARENT}, which makes the kernel take its
#: exit signal from the fork child's (C{SIGCHLD}); given anyway.
_SIGCHLD = 17

#: C{clone}'s syscall number, where txspawn knows it.  The first three
#: arguments (flags, new stack, parent tid pointer) are in the same order
#: on all of these (x86_64; aarch64 and riscv64, whose generic table has
#: C{CONFIG_CLONE_BACKWARDS}, swap only the last two: tls and child tid),
#: and txspawn passes 0 for the last two.
_SYS_CLONE = {"x86_64": 56, "aarch64": 220, "riscv64": 220}.get(os.uname().machine)

#: C{<sys/mount.h>}.
_MS_REC = 0x4000
_MS_PROC = 0x2 | 0x4 | 0x8  # MS_NOSUID | MS_NODEV | MS_NOEXEC

#: C{<linux/sockios.h>}, C{<net/if.h>}.
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
#: C{struct ifreq}: the interface name, the flags (a short), and the rest
#: of the union (40 bytes on 64-bit Linux).
_IFREQ = struct.Struct("16sh22x")
_LO_REQUEST = _IFREQ.pack(b"lo", 0)

_O_WRITE = os.O_WRONLY | os.O_CLOEXEC

#: The C{detail} of an C{IDMAP} failure: which file (the C engine's
#: C{enum txs_idmap_file}).
IDMAP_SETGROUPS = 1
IDMAP_GID_MAP = 2
IDMAP_UID_MAP = 3
#: The C{detail} of a C{TIME_OFFSETS} failure (C{enum txs_time_step}).
TIME_UNSHARE = 1
TIME_WRITE = 2


class NamespaceStepFailed(Exception):
    """
    A namespace step of the fork child failed: report C{stage}, C{code}
    (an errno) and C{detail} on the error pipe.
    """

    def __init__(self, stage: ChildSetupStage, code: int, detail: int = 0) -> None:
        super().__init__(stage, code, detail)
        self.stage = stage
        self.code = code
        self.detail = detail


@frozen
class NamespaceSteps:
    """
    The namespace part of what the fork child does, computed in the parent
    from a L{txspawn._plan.namespaceplan.NamespacePlan}.

    @ivar unshareFlags: The C{CLONE_NEW*} flags of the first C{unshare}:
        the plan's, without C{CLONE_NEWPID}.
    @ivar newPid: Whether to make a pid namespace, and pid 1 in it.
    @ivar setgroups: C{setgroups}'s content, or C{None}.
    @ivar gidMap: The gid map, or C{None} (no user namespace).
    @ivar uidMap: The uid map, or C{None}.
    @ivar mapsByChild: Whether the child writes its maps itself; else, with
        maps, it asks the parent (C{readyWrite}) and waits for its byte
        (C{goRead}).
    @ivar parentEnds: The parent's ends of the sync pipes, which the child
        closes (so that it sees end of file on C{goRead} if the parent
        dies); empty without parent-written maps.
    @ivar readyWrite: Where the child says that the parent may write its
        maps (-1: no parent-written maps).
    @ivar goRead: Where the parent's byte comes from once it has.
    @ivar earlyIds: C{(uid, gid)} to set right after the maps, or C{None}.
    @ivar pidCell: The address of the C{MAP_SHARED} int where the kernel
        stores pid 1's pid (C{CLONE_PARENT_SETTID}); 0 without a pid
        namespace.
    @ivar hostname: The new hostname, or C{None}.
    @ivar loopback: Whether to bring C{lo} up.
    @ivar propagation: The propagation flag for every mount, or C{None}.
    @ivar mountProc: Whether to mount a fresh C{/proc}.
    @ivar timeOffsets: The time namespace's offsets, or C{None} (no time
        namespace).
    @ivar fault: Tests only: C{(stage, errno)} of the step to fail, or
        C{None} (see L{txspawn._plan.faultinjection}).
    """

    unshareFlags: int
    newPid: bool
    setgroups: bytes | None
    gidMap: bytes | None
    uidMap: bytes | None
    mapsByChild: bool
    parentEnds: tuple[int, ...]
    readyWrite: int
    goRead: int
    earlyIds: tuple[int, int] | None
    pidCell: int
    hostname: bytes | None
    loopback: bool
    propagation: int | None
    mountProc: bool
    timeOffsets: bytes | None
    fault: tuple[int, int] | None


# The ctypes functions, once loadNamespaceCalls resolved them: PyDLL, so
# that no call releases the GIL (the child of the raw clone must come back
# holding it, as its parent did).
_unshare: Callable[[int], int] | None = None
_mount: Callable[[bytes | None, bytes, bytes | None, int, None], int] | None = None
_syscall: Callable[..., int] | None = None


def loadNamespaceCalls(newPid: bool) -> None:
    """
    Resolve C{unshare}, C{mount} and C{syscall} through C{ctypes}, once:
    call it in the parent before forking a child with namespaces (never in
    the child).

    @param newPid: Whether the plan makes a pid namespace, which needs the
        raw C{clone}.
    @raise UnsupportedFeature: (feature C{"pid"}) if the plan makes a pid
        namespace on an architecture whose C{clone} syscall number
        txspawn does not know.
    """
    global _unshare, _mount, _syscall
    if newPid and _SYS_CLONE is None:
        raise UnsupportedFeature(
            "pid",
            f"the Python engine does not know clone's syscall number on "
            f"{os.uname().machine}",
        )
    if _syscall is None:
        libc = ctypes.PyDLL(None, use_errno=True)
        unshare = libc.unshare
        unshare.restype = ctypes.c_int
        unshare.argtypes = [ctypes.c_int]
        mount = libc.mount
        mount.restype = ctypes.c_int
        mount.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_void_p,
        ]
        # syscall() is variadic: no argtypes, and each argument passed as
        # a C long (see _clonePidOne).
        syscall = libc.syscall
        syscall.restype = ctypes.c_long
        _unshare, _mount, _syscall = unshare, mount, syscall


def injectedFault(ns: NamespaceSteps, stage: ChildSetupStage, detail: int = 0) -> None:
    """
    Fail the step of C{stage} as the test asked (L{NamespaceSteps.fault}),
    with C{detail}, if it did.

    @raise NamespaceStepFailed: if so.
    """
    if ns.fault is not None and ns.fault[0] == stage:
        raise NamespaceStepFailed(stage, ns.fault[1], detail)


def failStep(stage: ChildSetupStage, e: OSError, detail: int = 0) -> NoReturn:
    """
    Report C{e} as the failure of C{stage}.
    """
    raise NamespaceStepFailed(stage, e.errno or errno.EINVAL, detail) from None


def _checked(result: int) -> None:
    """
    Raise the C{errno} of a C{ctypes} call that returned -1.
    """
    if result == -1:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _unshareNow(flags: int) -> None:
    assert _unshare is not None
    _checked(_unshare(flags))


def _writeFile(path: bytes, data: bytes) -> None:
    """
    Write C{data} to C{path} (a C{/proc} file) with one C{write}.
    """
    fd = os.open(path, _O_WRITE)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _clonePidOne(pidCell: int) -> int:
    """
    C{clone(CLONE_PARENT | CLONE_PARENT_SETTID | SIGCHLD)}, raw: a copy of
    this single-threaded process, as with C{fork} but a child of our
    parent, with no C{atfork} handler run (nothing of Python's runs: the
    new process is this one's copy, GIL held, as the fork child is).

    @return: 0 in the new process, its pid (also stored at C{pidCell}) in
        this one.
    @raise OSError: if the clone failed.
    """
    assert _syscall is not None and _SYS_CLONE is not None
    pid = _syscall(
        ctypes.c_long(_SYS_CLONE),
        ctypes.c_long(_CLONE_PARENT | _CLONE_PARENT_SETTID | _SIGCHLD),
        ctypes.c_long(0),  # the new stack: our own (a copy of it)
        ctypes.c_long(pidCell),  # parent_tid: the kernel stores the pid
        ctypes.c_long(0),
        ctypes.c_long(0),
    )
    _checked(pid)
    return pid


def runNamespaceSteps(ns: NamespaceSteps) -> None:
    """
    Steps 1 to 8 in the fork child, in the C engine's order (C{child.c}'s
    C{txs_namespaces}): this returns only in the process that goes on with
    the usual steps, pid 1 with a pid namespace (the fork child exits once
    pid 1 exists), else the fork child itself.

    The offsets file, opened between the maps and the early ids, is closed
    here on every path: once written, or when a step fails.  It is
    close-on-exec anyway, and no signal handler can interrupt its way out
    of this: every signal is blocked in the child, and every disposition
    is C{SIG_DFL} by now.

    @raise NamespaceStepFailed: if a step failed.
    """
    _enterNamespaces(ns)
    offsetsFd = _openOffsets(ns)
    try:
        _setEarlyIds(ns)
        _setUpNamespaces(ns, offsetsFd)
    finally:
        if offsetsFd != -1:
            _closeQuietly(offsetsFd)


def _enterNamespaces(ns: NamespaceSteps) -> None:
    """
    Steps 1 and 2: enter the namespaces, write the maps (or wait for the
    parent's); then, with a pid namespace, clone pid 1 and exit.

    @raise NamespaceStepFailed: if a step failed.
    """
    # 1. Every namespace but the pid one (which unshare gives only to the
    # children of the caller: see below).
    injectedFault(ns, ChildSetupStage.NAMESPACES)
    try:
        _unshareNow(ns.unshareFlags)
    except OSError as e:
        failStep(ChildSetupStage.NAMESPACES, e)
    # 2. The maps.
    if ns.uidMap is not None:
        if ns.mapsByChild:
            _writeOwnMaps(ns)
        else:
            _awaitParentMaps(ns)
    if not ns.newPid:
        return
    # Pid 1 now, as the C engine's child is from the start: the process
    # that makes the time namespace must open its own offsets file while
    # its uid is still the one it was forked with (see _openOffsets).
    # unshare(CLONE_NEWPID) needs CAP_SYS_ADMIN in the new user namespace,
    # which we have had since entering it, maps or not.
    try:
        _unshareNow(CLONE_NEWPID)
        pid = _clonePidOne(ns.pidCell)
    except OSError as e:
        failStep(ChildSetupStage.NAMESPACES, e)
    if pid == 0:
        return  # pid 1: the parent knows it from pidCell.
    # The fork child's work is done: pid 1 inherited the error pipe, and
    # the parent reaps us.
    os._exit(0)


def _openOffsets(ns: NamespaceSteps) -> int:
    """
    With a time namespace, open C{/proc/self/timens_offsets} for step 8,
    now, before the early ids: once they change our uid (a map whose root
    is not our euid), the kernel makes us non-dumpable and our
    C{/proc/self} files the host root's, which it would no longer let us
    open for writing; the write is checked against the opener's
    credentials.  As in the C engine, failing to open it is C{TIME_OFFSETS}
    2, reported here, and no fault is injected at the open.

    @return: The file (close-on-exec), or -1 without a time namespace.
    @raise NamespaceStepFailed: if it could not be opened.
    """
    if ns.timeOffsets is None:
        return -1
    try:
        return os.open(b"/proc/self/timens_offsets", _O_WRITE)
    except OSError as e:
        failStep(ChildSetupStage.TIME_OFFSETS, e, TIME_WRITE)


def _setEarlyIds(ns: NamespaceSteps) -> None:
    """
    Step 3: the ids inside, while we still have every capability there (a
    uid changing to the namespace's root keeps them).

    @raise NamespaceStepFailed: if a step failed.
    """
    if ns.earlyIds is None:
        return
    uid, gid = ns.earlyIds
    injectedFault(ns, ChildSetupStage.SETGID)
    try:
        os.setresgid(gid, gid, gid)
    except OSError as e:
        failStep(ChildSetupStage.SETGID, e)
    injectedFault(ns, ChildSetupStage.SETUID)
    try:
        os.setresuid(uid, uid, uid)
    except OSError as e:
        failStep(ChildSetupStage.SETUID, e)


def _closeQuietly(fd: int) -> None:
    """
    Close C{fd}, ignoring an error, as the C engine does (a close of a
    C{/proc} file has nothing to report, and the step is done).
    """
    try:
        os.close(fd)
    except OSError:
        pass


def _writeOwnMaps(ns: NamespaceSteps) -> None:
    """
    Step 2 with a self-map: write C{setgroups}, C{gid_map} and C{uid_map}
    under C{/proc/self} (allowed from inside for one line mapping our own
    id, C{setgroups} denied first).
    """
    for path, data, detail in (
        (b"/proc/self/setgroups", ns.setgroups, IDMAP_SETGROUPS),
        (b"/proc/self/gid_map", ns.gidMap, IDMAP_GID_MAP),
        (b"/proc/self/uid_map", ns.uidMap, IDMAP_UID_MAP),
    ):
        if data is None:
            continue
        injectedFault(ns, ChildSetupStage.IDMAP, detail)
        try:
            _writeFile(path, data)
        except OSError as e:
            failStep(ChildSetupStage.IDMAP, e, detail)


def _awaitParentMaps(ns: NamespaceSteps) -> None:
    """
    Step 2 with parent-written maps: ask the parent and wait for its byte.
    End of file means that the parent gave up (a map write failed, and it
    is killing us) or died: just exit, as the C engine's child does on
    C{TXS_SYNC_ABORT}.
    """
    for fd in ns.parentEnds:
        os.close(fd)
    try:
        os.write(ns.readyWrite, b"R")
        go = os.read(ns.goRead, 1)
    except OSError as e:
        failStep(ChildSetupStage.SYNC, e)
    if not go:
        os._exit(127)
    # As the C engine: a SYNC fault fails once the maps are written.
    injectedFault(ns, ChildSetupStage.SYNC)


def _setUpNamespaces(ns: NamespaceSteps, offsetsFd: int) -> None:
    """
    Steps 4 to 8, in pid 1 (or in the fork child without a pid namespace):
    hostname, C{lo} up, mount propagation, a fresh C{/proc}, the time
    namespace and its offsets.

    @param offsetsFd: Our C{/proc/self/timens_offsets}, opened by
        L{_openOffsets} (the caller closes it), or -1.
    @raise NamespaceStepFailed: if a step failed.
    """
    if ns.hostname is not None:
        injectedFault(ns, ChildSetupStage.HOSTNAME)
        try:
            # The bytes as they are (sethostname takes bytes too, but is
            # typed for str).
            socket.sethostname(os.fsdecode(ns.hostname))
        except OSError as e:
            failStep(ChildSetupStage.HOSTNAME, e)
    if ns.loopback:
        injectedFault(ns, ChildSetupStage.LOOPBACK)
        try:
            _loopbackUp()
        except OSError as e:
            failStep(ChildSetupStage.LOOPBACK, e)
    assert _mount is not None
    if ns.propagation is not None:
        injectedFault(ns, ChildSetupStage.MOUNT_PROPAGATION)
        try:
            _checked(_mount(None, b"/", None, _MS_REC | ns.propagation, None))
        except OSError as e:
            failStep(ChildSetupStage.MOUNT_PROPAGATION, e)
    if ns.mountProc:
        injectedFault(ns, ChildSetupStage.MOUNT_PROC)
        try:
            _checked(_mount(b"proc", b"/proc", b"proc", _MS_PROC, None))
        except OSError as e:
            failStep(ChildSetupStage.MOUNT_PROC, e)
    if ns.timeOffsets is not None:
        # The offsets go to the new namespace, which the process enters at
        # exec: they can be written until a process is in it.
        injectedFault(ns, ChildSetupStage.TIME_OFFSETS, TIME_UNSHARE)
        try:
            _unshareNow(_CLONE_NEWTIME)
        except OSError as e:
            failStep(ChildSetupStage.TIME_OFFSETS, e, TIME_UNSHARE)
        try:
            written = os.write(offsetsFd, ns.timeOffsets)
        except OSError as e:
            failStep(ChildSetupStage.TIME_OFFSETS, e, TIME_WRITE)
        if written != len(ns.timeOffsets):
            # As the C engine: a short write is EIO.
            raise NamespaceStepFailed(
                ChildSetupStage.TIME_OFFSETS, errno.EIO, TIME_WRITE
            )


def _loopbackUp() -> None:
    """
    Bring C{lo} up (C{SIOCSIFFLAGS} with C{IFF_UP} added): the kernel then
    adds 127.0.0.1 and ::1 itself.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    try:
        got = fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, _LO_REQUEST)
        flags = _IFREQ.unpack(got)[1]
        fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, _IFREQ.pack(b"lo", flags | _IFF_UP))
    finally:
        sock.close()
