# -*- test-case-name: tests.test_osposixspawn -*-
"""
The signals a C{posix_spawn} child starts with ignored, with C{clone3}
refused or not; run by L{tests.test_osposixspawn} in a process of its own
(a seccomp filter cannot be removed once installed).

Usage::

    spawnsigign.py [--refuse-clone3] SPAWNER

With C{--refuse-clone3}, a seccomp filter first makes C{clone3} fail with
C{ENOSYS} in this process and its children, as on a kernel without
C{clone3} or under a container runtime's filter that refuses it: glibc
>= 2.38 then starts C{posix_spawn} children with C{clone}, its older path
(see L{tests.libcspawn}).

Before spawning, C{SIGHUP} is ignored, beside the C{SIGPIPE} and C{SIGXFSZ}
that Python ignores itself.  C{SPAWNER} then starts C{cat
/proc/self/status}:

  - C{libc}: C{os.posix_spawn} with no attributes, what the libc does
    alone (the ignored signals are inherited);
  - C{os}: txspawn's Python engine on its C{posix_spawn} path through
    L{txspawn._engine.osposixspawn.OsPosixSpawn};
  - C{glibc}: the same through
    L{txspawn._engine.libcposixspawn.LibcPosixSpawn}.

Prints, as JSON, C{sigIgn} (the child's C{SigIgn} mask) and C{clone3Errno}
(what C{clone3} returns in this process after the filter, if any).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
import sys

from tests.engineutil import makePlan, waitExit
from tests.libcspawn import CLONE3_ARCHES, clone3Errno
from txspawn._engine.libcposixspawn import LibcPosixSpawn
from txspawn._engine.osposixspawn import OsPosixSpawn
from txspawn._engine.pyengine import PythonSpawner

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_RET_K = 0x06
SYS_CLONE3 = 435


class SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint32),
    ]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def refuseClone3() -> None:
    """
    Make C{clone3} fail with C{ENOSYS} from now on, in this process and
    every child: a four-instruction seccomp filter on C{seccomp_data}'s
    C{arch} (offset 4) and C{nr} (offset 0).
    """
    arch = CLONE3_ARCHES[os.uname().machine]
    program = (SockFilter * 6)(
        SockFilter(BPF_LD_W_ABS, 0, 0, 4),
        # Another ABI's syscall: allowed.
        SockFilter(BPF_JEQ_K, 0, 3, arch),
        SockFilter(BPF_LD_W_ABS, 0, 0, 0),
        SockFilter(BPF_JEQ_K, 0, 1, SYS_CLONE3),
        SockFilter(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS),
        SockFilter(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
    )
    fprog = SockFprog(len(program), program)
    libc = ctypes.CDLL(None, use_errno=True)
    one, zero = ctypes.c_ulong(1), ctypes.c_ulong(0)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, one, zero, zero, zero) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    mode = ctypes.c_ulong(SECCOMP_MODE_FILTER)
    if libc.prctl(PR_SET_SECCOMP, mode, ctypes.byref(fprog), zero, zero) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def spawnStatus(spawner: str, out: int) -> int:
    """
    Start C{cat /proc/self/status} with its stdout on C{out}; return its
    pid.
    """
    argv = [b"cat", b"/proc/self/status"]
    if spawner == "libc":
        return os.posix_spawn(
            "/bin/cat", argv, {}, file_actions=[(os.POSIX_SPAWN_DUP2, out, 1)]
        )
    backend = OsPosixSpawn() if spawner == "os" else LibcPosixSpawn()
    engine = PythonSpawner(method="posix_spawn", posixSpawn=backend)
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        plan = makePlan(b"/bin/cat", argv=tuple(argv))
        child = engine.spawn(plan, {0: null, 1: out, 2: null}, None)
        child.closePidfd()
        return child.pid
    finally:
        os.close(null)


def main(args: list[str]) -> None:
    if args[0] == "--refuse-clone3":
        refuseClone3()
        args = args[1:]
    (spawner,) = args
    # What this process ignores must be exactly SIGHUP and what Python
    # ignores itself (SIGPIPE, SIGXFSZ): a test runner started in the
    # background by a shell without job control passes SIGINT and SIGQUIT
    # on ignored.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = spawnStatus(spawner, w)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        status = f.read().decode()
    code = waitExit(pid)
    if code != 0:
        raise SystemExit(f"cat exited with {code}")
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    json.dump(
        {"sigIgn": int(fields["SigIgn"], 16), "clone3Errno": clone3Errno()},
        sys.stdout,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
