# -*- test-case-name: tests.test_wire -*-
"""
The child-to-parent failure record.

Between clone and exec the child can only report a failure through a pipe
whose write end is close-on-exec: if exec succeeds the kernel closes it and
the parent reads end-of-file; if any setup step fails the child writes one
fixed-size record and calls C{_exit(127)}.

This module is the only place the record format is defined in Python; the C
engine's C{plan.h} mirrors it and C{tests/test_wire.py} checks that the two
agree.  The record is 16 bytes, well under C{PIPE_BUF}, so it is written
atomically::

    uint32 magic   b"TXSP"
    uint32 stage   a ChildSetupStage value
    int32  errno
    int32  detail  stage-specific (e.g. the rlimit resource number)

Native byte order: both ends are the same machine.
"""

from __future__ import annotations

import errno as _errno
import os
import struct

from attrs import frozen

from txspawn.errors import ChildSetupStage, SpawnError

__all__ = [
    "MAGIC",
    "RECORD",
    "ChildFailure",
    "MalformedRecord",
    "decodeFailure",
    "encodeFailure",
    "readFailure",
]

MAGIC = b"TXSP"
RECORD = struct.Struct("=4sIii")


class MalformedRecord(RuntimeError):
    """
    The error pipe carried something that is not exactly one record.

    This is an internal error of txspawn (or memory corruption), never a
    user error; the bytes received are in the message.
    """


@frozen
class ChildFailure:
    """
    A decoded failure record.
    """

    stage: ChildSetupStage
    errno: int
    detail: int

    def toError(self, filename: str | bytes | None = None) -> SpawnError:
        """
        Turn this record into the L{SpawnError} raised to the user.
        """
        return SpawnError.fromErrno(self.errno, self.stage, filename, self.detail)


def encodeFailure(stage: ChildSetupStage, errno: int, detail: int = 0) -> bytes:
    """
    Encode one failure record.
    """
    return RECORD.pack(MAGIC, int(stage), errno, detail)


def decodeFailure(data: bytes) -> ChildFailure:
    """
    Decode exactly one failure record.

    @raise MalformedRecord: if C{data} is not one well-formed record.
    """
    if len(data) != RECORD.size:
        raise MalformedRecord(
            f"child error pipe carried {len(data)} bytes, "
            f"expected {RECORD.size}: {data!r}"
        )
    magic, stage, errno, detail = RECORD.unpack(data)
    if magic != MAGIC:
        raise MalformedRecord(f"bad magic in child error record: {data!r}")
    try:
        knownStage = ChildSetupStage(stage)
    except ValueError:
        raise MalformedRecord(
            f"unknown stage {stage} in child error record: {data!r}"
        ) from None
    return ChildFailure(knownStage, errno, detail)


def readFailure(fd: int) -> ChildFailure | None:
    """
    Read the error pipe until end-of-file or one whole record.

    @return: L{None} on end-of-file with no data (the child exec'd), else
        the decoded record.
    @raise MalformedRecord: on a short or malformed record.
    """
    data = b""
    while len(data) < RECORD.size:
        try:
            chunk = os.read(fd, RECORD.size - len(data))
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            continue
        except OSError as e:  # pragma: no cover - defensive
            if e.errno == _errno.EINTR:
                continue
            raise
        if not chunk:
            break
        data += chunk
    if not data:
        return None
    return decodeFailure(data)
