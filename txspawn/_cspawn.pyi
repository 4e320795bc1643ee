"""
Type stub for the C engine extension (txspawn/_csrc/module.c).

Use it through L{txspawn._engine.cengine.CSpawner}; the argument conventions are
documented there and in docs/design/engines.rst.
"""

from __future__ import annotations

import resource
from collections.abc import Callable

MAGIC: bytes
RECORD_SIZE: int
CLOSE_RANGE_MAX: int
ALLOW_VFORK: int
ALLOW_CLONE_PIDFD: int
ALLOW_PIDFD_OPEN: int
ALLOW_CLONE3: int
ALLOW_ALL: int
FLAG_VFORK: int
FLAG_SLOTS_FOREIGN: int
FLAG_SLOTS_UNUSABLE: int
MAX_SLOT_FDS: int
POST_SPAWN_STEPS: int
FLAG_CLONE3: int
FLAG_SHARED_VM: int
FLAG_CGROUP_CLONE: int
FLAG_CGROUP_PROCS: int
FLAG_CGROUP_KILLED: int
FLAG_CGROUP_NO_CLONE3: int
CGROUP_ERRNO_SHIFT: int
FDOP_DUP2: int
FDOP_DUP2_CLOEXEC: int
FDOP_CLEAR_CLOEXEC: int
FDOP_CLOSE: int
FDOP_CLOSE_RANGE: int
STAGE_SPAWN: int
STAGE_FDS: int
STAGE_CLOSE_FDS: int
STAGE_SIGNALS: int
STAGE_SETSID: int
STAGE_SETPGID: int
STAGE_CTTY: int
STAGE_CHDIR: int
STAGE_UMASK: int
STAGE_RLIMIT: int
STAGE_PDEATHSIG: int
STAGE_SETGROUPS: int
STAGE_SETGID: int
STAGE_SETUID: int
STAGE_EXEC: int
STAGE_SYNC: int
STAGE_NAMESPACES: int
STAGE_IDMAP: int
STAGE_CGROUP: int
STAGE_RESERVED_FD: int
STAGE_HOSTNAME: int
STAGE_LOOPBACK: int
STAGE_MOUNT_PROPAGATION: int
STAGE_MOUNT_PROC: int
STAGE_TIME_OFFSETS: int
STAGE_INIT: int
IDMAP_SETGROUPS: int
IDMAP_GID_MAP: int
IDMAP_UID_MAP: int
TIME_UNSHARE: int
TIME_WRITE: int

def spawn(
    candidates: tuple[bytes, ...],
    argv: tuple[bytes, ...],
    envp: tuple[bytes, ...],
    cwd: bytes | None,
    ops: tuple[tuple[int, int, int], ...],
    errFd: int,
    slots: tuple[int, ...],
    filesBound: int,
    reserved: tuple[int, int, int, int, int, int, int, int] | None,
    newSession: bool,
    ctty: bool,
    processGroup: int,
    umask: int,
    rlimits: tuple[tuple[int, int, int], ...],
    groups: tuple[int, ...] | None,
    groupsImplicit: bool,
    gid: int,
    uid: int,
    deathSignal: int,
    signalMask: tuple[int, ...],
    allow: int,
    namespaces: tuple[
        int,
        bytes | None,
        bytes | None,
        bytes | None,
        bool,
        tuple[int, int] | None,
        bytes | None,
        bool,
        int,
        bool,
        bytes | None,
    ]
    | None,
    init: tuple[bytes, tuple[bytes, ...], int] | None,
    fault: tuple[int, int] | None,
    cgroup: tuple[int, int, bool] | None,
    /,
) -> tuple[int, int, bytes | None, int, int]: ...
def probeCloneIntoCgroup(dirFd: int, /) -> int: ...
def wait4(pid: int, options: int, /) -> tuple[int, int, resource.struct_rusage]: ...
def openpty() -> tuple[int, int, bytes]: ...
def features() -> dict[str, tuple[bool | None, str | None]]: ...
def _clone3SelfTest() -> tuple[int, bool, bool]: ...
def _failAfterSpawn(step: int, /) -> None: ...
def discard(outcomes: list[tuple[int, int, bytes | None, int, int]], /) -> None: ...
def discardChild(pid: int, pidfd: int | None, /) -> None: ...
def completeCleanup(function: Callable[..., object], /, *args: object) -> None: ...
