# -*- test-case-name: tests.test_errors -*-
"""
Tests for L{txspawn.errors}: the L{SpawnError} flavours, pickling, and
L{UnsupportedFeature}.
"""

from __future__ import annotations

import errno
import pickle

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from txspawn.errors import (
    ChildSetupStage,
    ReservedFdError,
    SpawnError,
    UnsupportedFeature,
)

__all__ = ["ChildSetupStageTests", "SpawnErrorTests", "UnsupportedFeatureTests"]


class ChildSetupStageTests(SynchronousTestCase):
    """
    The stage numbers are wire values shared with the C engine.
    """

    def test_values(self) -> None:
        """
        Every stage keeps its number; members are only ever added.
        """
        self.assertEqual(
            {stage.name: stage.value for stage in ChildSetupStage},
            {
                "SPAWN": 1,
                "FDS": 2,
                "CLOSE_FDS": 3,
                "SIGNALS": 4,
                "SETSID": 5,
                "SETPGID": 6,
                "CTTY": 7,
                "CHDIR": 8,
                "UMASK": 9,
                "RLIMIT": 10,
                "PDEATHSIG": 11,
                "SETGROUPS": 12,
                "SETGID": 13,
                "SETUID": 14,
                "EXEC": 15,
                "SYNC": 16,
                "NAMESPACES": 17,
                "IDMAP": 18,
                "CGROUP": 19,
                "RESERVED_FD": 20,
                "HOSTNAME": 21,
                "LOOPBACK": 22,
                "MOUNT_PROPAGATION": 23,
                "MOUNT_PROC": 24,
                "TIME_OFFSETS": 25,
                "INIT": 26,
            },
        )


class SpawnErrorTests(SynchronousTestCase):
    """
    L{SpawnError} and L{SpawnError.fromErrno}.
    """

    def test_flavours(self) -> None:
        """
        C{fromErrno} picks the builtin L{OSError} subclass matching the
        errno, and the result is still a L{SpawnError}.
        """
        for code, flavour in [
            (errno.ENOENT, FileNotFoundError),
            (errno.EACCES, PermissionError),
            (errno.EPERM, PermissionError),
            (errno.ENOTDIR, NotADirectoryError),
            (errno.EISDIR, IsADirectoryError),
        ]:
            error = SpawnError.fromErrno(code, ChildSetupStage.EXEC, "/x")
            self.assertIsInstance(error, flavour)
            self.assertIsInstance(error, SpawnError)
            self.assertIsInstance(error, OSError)
            self.assertEqual(error.errno, code)

    def test_otherErrno(self) -> None:
        """
        An errno without a flavour gives a plain L{SpawnError}, which is
        an L{OSError} and none of the flavours.
        """
        error = SpawnError.fromErrno(errno.EMFILE, ChildSetupStage.FDS)
        self.assertIs(type(error), SpawnError)
        self.assertIsInstance(error, OSError)
        self.assertNotIsInstance(error, (FileNotFoundError, PermissionError))

    def test_attributes(self) -> None:
        """
        The stage, detail and filename are kept, and the message names the
        stage and the file.
        """
        error = SpawnError.fromErrno(
            errno.EACCES, ChildSetupStage.CHDIR, "/some/dir", detail=3
        )
        self.assertEqual(error.stage, ChildSetupStage.CHDIR)
        self.assertEqual(error.detail, 3)
        self.assertEqual(error.filename, "/some/dir")
        self.assertIn("chdir", str(error))
        self.assertIn("/some/dir", str(error))
        self.assertIn("Permission denied", str(error))

    def test_noFilename(self) -> None:
        """
        Without a filename, C{filename} is C{None} and C{detail} is C{0}.
        """
        error = SpawnError(errno.EMFILE, ChildSetupStage.SPAWN)
        self.assertIsNone(error.filename)
        self.assertEqual(error.detail, 0)
        self.assertIn("spawn", str(error))

    def test_catchableAsOSError(self) -> None:
        """
        Code written for C{subprocess} catches a missing executable as
        L{FileNotFoundError}.
        """
        try:
            raise SpawnError.fromErrno(errno.ENOENT, ChildSetupStage.EXEC, b"prog")
        except FileNotFoundError as e:
            self.assertEqual(e.filename, b"prog")

    @given(
        st.sampled_from(
            [
                *(errno.ENOENT, errno.EACCES, errno.EPERM, errno.ENOTDIR),
                *(errno.EISDIR, errno.EMFILE, errno.EINVAL, errno.E2BIG),
                errno.ENOMEM,
            ]
        ),
        st.sampled_from(list(ChildSetupStage)),
        st.one_of(st.none(), st.text(max_size=5), st.binary(max_size=5)),
        st.integers(min_value=-(2**31), max_value=2**31 - 1),
    )
    def test_pickle(
        self,
        code: int,
        stage: ChildSetupStage,
        filename: str | bytes | None,
        detail: int,
    ) -> None:
        """
        Every flavour survives a pickle round trip with its type, errno,
        stage, filename, detail and message.
        """
        error = SpawnError.fromErrno(code, stage, filename, detail)
        copy = pickle.loads(pickle.dumps(error))
        self.assertIs(type(copy), type(error))
        self.assertEqual(
            (copy.errno, copy.stage, copy.filename, copy.detail, str(copy)),
            (error.errno, error.stage, error.filename, error.detail, str(error)),
        )


class ReservedFdErrorTests(SynchronousTestCase):
    """
    L{ReservedFdError}, the C{RESERVED_FD} stage's flavour.
    """

    def test_flavour(self) -> None:
        """
        C{fromErrno} gives it for the C{RESERVED_FD} stage whatever the
        errno; it is a L{SpawnError} carrying the fd number.
        """
        for code in (errno.EBADF, errno.EPERM, errno.ENOENT):
            error = SpawnError.fromErrno(code, ChildSetupStage.RESERVED_FD, detail=7)
            self.assertIs(type(error), ReservedFdError)
            assert isinstance(error, ReservedFdError)
            self.assertEqual((error.errno, error.fd, error.detail), (code, 7, 7))

    def test_message(self) -> None:
        """
        The message says which fd, that other code closed it, that the
        file now on that number was left alone, and that nothing ran.
        """
        error = SpawnError.fromErrno(
            errno.ESTALE, ChildSetupStage.RESERVED_FD, detail=3
        )
        self.assertEqual(
            str(error),
            f"[Errno {errno.ESTALE}] txspawn's reserved fd 3 was closed by other "
            "code and the number now holds another file, which was left alone; "
            "the spawn was abandoned before the program ran",
        )

    def test_pickle(self) -> None:
        """
        It survives a pickle round trip with its fd and message.
        """
        error = SpawnError.fromErrno(errno.EBADF, ChildSetupStage.RESERVED_FD, detail=5)
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is ReservedFdError
        self.assertEqual((copy.fd, str(copy)), (5, str(error)))


class UnsupportedFeatureTests(SynchronousTestCase):
    """
    L{UnsupportedFeature}.
    """

    def test_message(self) -> None:
        """
        The message names the option and the reason.
        """
        error = UnsupportedFeature("deathSignal", "the posix_spawn path cannot")
        self.assertEqual(
            str(error), "deathSignal is not supported here: the posix_spawn path cannot"
        )
        self.assertEqual(error.feature, "deathSignal")
        self.assertEqual(error.reason, "the posix_spawn path cannot")

    def test_isSpawnError(self) -> None:
        """
        It is a L{SpawnError} with C{ENOTSUP} at the C{SPAWN} stage.
        """
        error = UnsupportedFeature("x", "y")
        self.assertIsInstance(error, SpawnError)
        self.assertIsInstance(error, OSError)
        self.assertEqual(error.errno, errno.ENOTSUP)
        self.assertEqual(error.stage, ChildSetupStage.SPAWN)

    def test_pickle(self) -> None:
        """
        It survives a pickle round trip.
        """
        error = UnsupportedFeature("groups", "no setgroups here")
        copy = pickle.loads(pickle.dumps(error))
        self.assertIs(type(copy), UnsupportedFeature)
        self.assertEqual((copy.feature, copy.reason), ("groups", "no setgroups here"))
        self.assertEqual(str(copy), str(error))
