# -*- test-case-name: tests.test_wire -*-
"""
Tests for L{txspawn._plan.failurerecord}: the child-to-parent failure record.
"""

from __future__ import annotations

import errno
import os
import struct

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from txspawn._plan.failurerecord import (
    MAGIC,
    RECORD,
    ChildFailure,
    MalformedRecord,
    decodeFailure,
    encodeFailure,
    readFailure,
)
from txspawn.errors import ChildSetupStage, ReservedFdError, SpawnError

__all__ = [
    "DecodeTests",
    "ReadFailureTests",
    "RecordLayoutTests",
    "RoundTripTests",
]

int32s = st.integers(min_value=-(2**31), max_value=2**31 - 1)


class RecordLayoutTests(SynchronousTestCase):
    """
    The Python side of the record layout.

    These are the values the C engine's C{plan.h} must mirror; the
    C{WireConstantParityTests} class (below, added with the C engine)
    compares them with the constants C{txspawn._cspawn} exports.
    """

    def test_size(self) -> None:
        """
        The record is 16 bytes: atomic in a pipe (well under C{PIPE_BUF}).
        """
        self.assertEqual(RECORD.size, 16)
        self.assertLessEqual(RECORD.size, 512)

    def test_layout(self) -> None:
        """
        The record is the magic, the stage (uint32), errno and detail
        (int32), in native byte order, without padding.
        """
        data = encodeFailure(ChildSetupStage.EXEC, errno.ENOENT, -7)
        self.assertEqual(data[:4], MAGIC)
        self.assertEqual(MAGIC, b"TXSP")
        self.assertEqual(
            data,
            MAGIC
            + struct.pack("=I", 15)
            + struct.pack("=i", 2)
            + struct.pack("=i", -7),
        )

    def test_defaultDetail(self) -> None:
        """
        C{detail} defaults to C{0}.
        """
        self.assertEqual(
            decodeFailure(encodeFailure(ChildSetupStage.FDS, errno.EBADF)).detail, 0
        )


# C/Python constant parity: the C engine adds ``WireConstantParityTests``
# here.  It imports txspawn._cspawn (which must be built in CI) and asserts
# that its exported record magic, record size and every ChildSetupStage
# value equal MAGIC, RECORD.size and the enum above, and that a record
# written by the C child decodes with decodeFailure.


class RoundTripTests(SynchronousTestCase):
    """
    L{encodeFailure} and L{decodeFailure} are inverses.
    """

    @given(st.sampled_from(list(ChildSetupStage)), int32s, int32s)
    def test_roundTrip(self, stage: ChildSetupStage, code: int, detail: int) -> None:
        """
        Every stage, errno and detail decodes to what was encoded.
        """
        data = encodeFailure(stage, code, detail)
        self.assertEqual(len(data), RECORD.size)
        failure = decodeFailure(data)
        self.assertEqual(failure, ChildFailure(stage, code, detail))
        self.assertIs(type(failure.stage), ChildSetupStage)

    def test_toError(self) -> None:
        """
        A decoded record becomes the L{SpawnError} flavour for its errno,
        with its stage, detail and the given filename.
        """
        failure = decodeFailure(encodeFailure(ChildSetupStage.EXEC, errno.EACCES, 4))
        error = failure.toError(b"/bin/prog")
        self.assertIsInstance(error, PermissionError)
        self.assertIsInstance(error, SpawnError)
        self.assertEqual(
            (error.errno, error.stage, error.detail, error.filename),
            (errno.EACCES, ChildSetupStage.EXEC, 4, b"/bin/prog"),
        )


class ReservedFdRecordTests(SynchronousTestCase):
    """
    The C engine's C{RESERVED_FD} record.
    """

    def test_toError(self) -> None:
        """
        It becomes L{ReservedFdError} naming the fd (the record's detail).
        """
        failure = decodeFailure(
            encodeFailure(ChildSetupStage.RESERVED_FD, errno.EBADF, 3)
        )
        error = failure.toError()
        assert isinstance(error, ReservedFdError)
        self.assertEqual((error.errno, error.fd), (errno.EBADF, 3))


class DecodeTests(SynchronousTestCase):
    """
    Anything but one well-formed record is L{MalformedRecord}, naming the
    bytes received.
    """

    def assertMalformed(self, data: bytes, reason: str) -> None:
        """
        Assert that decoding C{data} is L{MalformedRecord} whose message
        shows the bytes and C{reason}.
        """
        error = self.assertRaises(MalformedRecord, decodeFailure, data)
        self.assertIn(repr(data), str(error))
        self.assertIn(reason, str(error))

    def test_empty(self) -> None:
        """
        No bytes at all is malformed (L{readFailure} treats EOF first).
        """
        self.assertMalformed(b"", "0 bytes")

    def test_short(self) -> None:
        """
        A truncated record is malformed.
        """
        record = encodeFailure(ChildSetupStage.EXEC, errno.ENOENT)
        self.assertMalformed(record[:7], "7 bytes")

    def test_long(self) -> None:
        """
        More than one record's worth is malformed.
        """
        record = encodeFailure(ChildSetupStage.EXEC, errno.ENOENT)
        self.assertMalformed(record + b"x", "17 bytes")

    def test_badMagic(self) -> None:
        """
        A record with the wrong magic is malformed.
        """
        data = b"XXXX" + encodeFailure(ChildSetupStage.EXEC, 2)[4:]
        self.assertMalformed(data, "bad magic")

    def test_unknownStage(self) -> None:
        """
        A stage number that L{ChildSetupStage} does not know is malformed.
        """
        for stage in [0, max(ChildSetupStage) + 1, 2**32 - 1]:
            self.assertMalformed(RECORD.pack(MAGIC, stage, 2, 0), f"stage {stage}")

    @given(st.binary(max_size=40))
    def test_garbage(self, data: bytes) -> None:
        """
        Arbitrary bytes either decode (a valid record) or raise
        L{MalformedRecord}, never anything else.
        """
        try:
            failure = decodeFailure(data)
        except MalformedRecord:
            return
        self.assertEqual(
            encodeFailure(failure.stage, failure.errno, failure.detail), data
        )


class ReadFailureTests(SynchronousTestCase):
    """
    L{readFailure} on a real pipe.
    """

    def pipe(self) -> tuple[int, int]:
        """
        A pipe whose ends are closed after the test if still open.
        """
        r, w = os.pipe()
        for fd in (r, w):
            self.addCleanup(self.closeQuietly, fd)
        return r, w

    @staticmethod
    def closeQuietly(fd: int) -> None:
        """
        Close C{fd}, which the test may already have closed.
        """
        try:
            os.close(fd)
        except OSError:
            pass

    def test_eof(self) -> None:
        """
        End-of-file without data (the child exec'd) is C{None}.
        """
        r, w = self.pipe()
        os.close(w)
        self.assertIsNone(readFailure(r))

    def test_oneRecord(self) -> None:
        """
        One record is decoded, even if the write end stays open (the read
        stops after one record).
        """
        r, w = self.pipe()
        os.write(w, encodeFailure(ChildSetupStage.SETUID, errno.EPERM, 1000))
        self.assertEqual(
            readFailure(r), ChildFailure(ChildSetupStage.SETUID, errno.EPERM, 1000)
        )

    def test_inPieces(self) -> None:
        """
        A record that arrives in several writes is reassembled.
        """
        r, w = self.pipe()
        record = encodeFailure(ChildSetupStage.CHDIR, errno.ENOENT)
        os.write(w, record[:5])
        os.write(w, record[5:11])
        os.write(w, record[11:])
        os.close(w)
        self.assertEqual(
            readFailure(r), ChildFailure(ChildSetupStage.CHDIR, errno.ENOENT, 0)
        )

    def test_short(self) -> None:
        """
        A short record followed by end-of-file is L{MalformedRecord}
        naming the bytes.
        """
        r, w = self.pipe()
        os.write(w, b"TXS")
        os.close(w)
        error = self.assertRaises(MalformedRecord, readFailure, r)
        self.assertIn("b'TXS'", str(error))

    def test_badMagic(self) -> None:
        """
        A full record with bad magic is L{MalformedRecord}.
        """
        r, w = self.pipe()
        os.write(w, b"\0" * RECORD.size)
        os.close(w)
        self.assertRaises(MalformedRecord, readFailure, r)
