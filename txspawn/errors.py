# -*- test-case-name: tests.test_errors -*-
"""
Exceptions raised by txspawn.

Every failure to start a child, whether it happens in the parent (bad input,
C{fork}/C{clone} failing) or in the child between clone and exec (C{chdir},
C{setuid}, C{execve}, ...), is raised I{synchronously} from C{spawnProcess} as
a L{SpawnError}.  L{SpawnError} is an L{OSError}, and a spawn failure with
C{ENOENT} is also a L{FileNotFoundError}, one with C{EACCES}/C{EPERM} also a
L{PermissionError}, and so on, so code written against C{subprocess} or plain
C{os} keeps working.

@since: txspawn 0.1
"""

from __future__ import annotations

import enum
import errno as _errno
import os

__all__ = [
    "ChildSetupStage",
    "ReservedFdError",
    "SpawnError",
    "UnsupportedFeature",
]


class ChildSetupStage(enum.IntEnum):
    """
    The step of child setup that failed.

    The numeric values are part of the child-to-parent wire record (see
    L{txspawn._plan.failurerecord}) and are mirrored by the C engine's C{plan.h}; never
    renumber a member, only add new ones.
    """

    #: The parent could not create the child at all (C{fork}, C{clone},
    #: C{posix_spawn} or a pipe failed in the parent).
    SPAWN = 1
    #: Moving the planned file descriptors into place (C{dup2}, C{fcntl}).
    FDS = 2
    #: Closing every file descriptor that is not in the plan.
    CLOSE_FDS = 3
    #: Resetting signal dispositions or the signal mask.
    SIGNALS = 4
    #: C{setsid()}.
    SETSID = 5
    #: C{setpgid()}.
    SETPGID = 6
    #: Acquiring the controlling terminal (C{TIOCSCTTY}).
    CTTY = 7
    #: C{chdir()} to the requested working directory.
    CHDIR = 8
    #: C{umask()} (cannot fail today; reserved so the record stays total).
    UMASK = 9
    #: C{setrlimit()}.
    RLIMIT = 10
    #: C{prctl(PR_SET_PDEATHSIG)}.
    PDEATHSIG = 11
    #: C{setgroups()}.
    SETGROUPS = 12
    #: C{setresgid()}.
    SETGID = 13
    #: C{setresuid()}.
    SETUID = 14
    #: C{execve()} of every candidate path failed.
    EXEC = 15
    #: Waiting for the parent to finish its part of the setup (for example
    #: writing a user namespace's uid/gid maps).
    SYNC = 16
    #: Entering or creating namespaces (C{clone}/C{unshare} with the
    #: C{CLONE_NEW*} flags).
    NAMESPACES = 17
    #: Writing a user namespace's maps: C{detail} is 1 for C{setgroups},
    #: 2 for C{gid_map}, 3 for C{uid_map}.
    IDMAP = 18
    #: Joining a cgroup.
    CGROUP = 19
    #: Checking that the file descriptor the C engine reserved for itself
    #: is still its own (raised as L{ReservedFdError}).
    RESERVED_FD = 20
    #: C{sethostname()} in a new UTS namespace.
    HOSTNAME = 21
    #: Bringing the loopback interface up in a new network namespace (the
    #: socket, or the C{SIOCGIFFLAGS}/C{SIOCSIFFLAGS} ioctls).
    LOOPBACK = 22
    #: Changing the propagation of every mount in a new mount namespace
    #: (C{mount(NULL, "/", NULL, MS_REC | flag, NULL)}).
    MOUNT_PROPAGATION = 23
    #: Mounting a fresh C{/proc} in a new mount namespace.
    MOUNT_PROC = 24
    #: Setting time-namespace offsets: C{unshare(CLONE_NEWTIME)} (detail
    #: 1) or writing C{/proc/self/timens_offsets} (detail 2).
    TIME_OFFSETS = 25
    #: txspawn's init (pid 1 of a new pid namespace) could not start the
    #: command (its C{fork} failed, or it was given bad arguments).
    INIT = 26


class SpawnError(OSError):
    """
    A child process could not be started.

    Raised synchronously by C{spawnProcess}; by the time it is raised the
    child, if one was created, has been reaped, and every file descriptor
    txspawn opened for it has been closed.

    @ivar stage: The L{ChildSetupStage} that failed.
    @ivar filename: The path involved, if any: the working directory for
        L{ChildSetupStage.CHDIR}, the executable for L{ChildSetupStage.EXEC}.
    @ivar detail: A stage-specific integer (for example the resource number
        for L{ChildSetupStage.RLIMIT}), or C{0}.
    @ivar hint: The likely cause, when it is known (for example that
        creating namespaces without a user namespace needs root), else
        C{None}; it ends the message too.
    """

    stage: ChildSetupStage
    detail: int
    hint: str | None

    def __init__(
        self,
        errno: int,
        stage: ChildSetupStage,
        filename: str | bytes | None = None,
        detail: int = 0,
        hint: str | None = None,
    ) -> None:
        strerror = f"{os.strerror(errno)} (while spawning: {stage.name.lower()})"
        if hint is not None:
            strerror = f"{strerror}: {hint}"
        if filename is None:
            super().__init__(errno, strerror)
        else:
            super().__init__(errno, strerror, filename)
        self.stage = stage
        self.detail = detail
        self.hint = hint

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _flavourFor,
            (self.errno, self.stage, self.filename, self.detail, self.hint),
        )

    @classmethod
    def fromErrno(
        cls,
        errno: int,
        stage: ChildSetupStage,
        filename: str | bytes | None = None,
        detail: int = 0,
        hint: str | None = None,
    ) -> SpawnError:
        """
        Build the most specific L{SpawnError} for C{errno}.

        C{SpawnError.fromErrno(ENOENT, ...)} is also a L{FileNotFoundError},
        C{EACCES}/C{EPERM} give a L{PermissionError}, and so on, mirroring
        the builtin errno-to-subclass mapping that L{OSError} applies only
        to itself.
        """
        return _flavourFor(errno, stage, filename, detail, hint)


class SpawnFileNotFoundError(SpawnError, FileNotFoundError):
    """
    A L{SpawnError} for C{ENOENT}.
    """


class SpawnPermissionError(SpawnError, PermissionError):
    """
    A L{SpawnError} for C{EACCES} or C{EPERM}.
    """


class SpawnNotADirectoryError(SpawnError, NotADirectoryError):
    """
    A L{SpawnError} for C{ENOTDIR}.
    """


class SpawnIsADirectoryError(SpawnError, IsADirectoryError):
    """
    A L{SpawnError} for C{EISDIR}.
    """


class ReservedFdError(SpawnError):
    """
    The C engine found that a file descriptor it reserved for itself had
    been closed by other code and its number given to another file, so the
    spawn was abandoned before the program ran (C{errno} is C{ESTALE}).  A
    reserved fd that is merely closed, the number free, raises nothing: the
    spawn takes the ordinary path.

    Closing a file descriptor one does not own is a bug of the code that
    did it (for example a "close every fd" loop, or a thread closing a
    number it believes to be its own); the number may since have been
    given to that code's own file, which txspawn leaves alone and never
    hands to a child.  txspawn then stops using its reserved fd
    (C{CSpawner.slotStatus()} says why) and later spawns take the ordinary
    path, so retrying the spawn works.

    @ivar fd: The number of the reserved fd (also in C{detail}).
    @since: txspawn 0.1
    """

    def __init__(
        self,
        errno: int,
        stage: ChildSetupStage,
        filename: str | bytes | None = None,
        detail: int = 0,
        hint: str | None = None,
    ) -> None:
        super().__init__(errno, stage, filename, detail, hint)
        self.strerror = (
            f"txspawn's reserved fd {detail} was closed by other code and "
            "the number now holds another file, which was left alone; the "
            "spawn was abandoned before the program ran"
        )

    @property
    def fd(self) -> int:
        """
        The number of the reserved fd.
        """
        return self.detail


_FLAVOURS: dict[int, type[SpawnError]] = {
    _errno.ENOENT: SpawnFileNotFoundError,
    _errno.EACCES: SpawnPermissionError,
    _errno.EPERM: SpawnPermissionError,
    _errno.ENOTDIR: SpawnNotADirectoryError,
    _errno.EISDIR: SpawnIsADirectoryError,
}


def _flavourFor(
    errno: int,
    stage: ChildSetupStage,
    filename: str | bytes | None,
    detail: int,
    hint: str | None = None,
) -> SpawnError:
    if stage is ChildSetupStage.RESERVED_FD:
        return ReservedFdError(errno, stage, filename, detail, hint)
    return _FLAVOURS.get(errno, SpawnError)(errno, stage, filename, detail, hint)


class UnsupportedFeature(SpawnError):
    """
    An option was requested that the chosen engine or this kernel cannot
    honour.  txspawn never silently ignores an option.

    @ivar feature: The name of the option, as the user spelled it.
    @ivar reason: Why it cannot be honoured here.
    """

    def __init__(self, feature: str, reason: str) -> None:
        super().__init__(_errno.ENOTSUP, ChildSetupStage.SPAWN)
        self.feature = feature
        self.reason = reason
        self.strerror = f"{feature} is not supported here: {reason}"

    def __reduce__(self) -> tuple[object, ...]:
        return (UnsupportedFeature, (self.feature, self.reason))

    def __str__(self) -> str:
        return f"{self.feature} is not supported here: {self.reason}"
