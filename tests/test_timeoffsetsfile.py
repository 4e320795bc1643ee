"""
The time namespace's offsets file (C{/proc/self/timens_offsets}) when the
early ids change the child's uid, on every engine x monitor.

With a map written by the parent whose root is another id outside, the
early ids (step 3) change the child's uid, so the kernel makes it
non-dumpable and its C{/proc/self} files the host root's: the file must be
opened before them and written at step 8 through that fd.  In the Python
engine with a pid namespace the time step runs in pid 1, which must open
its own file (the fork child's would name the fork child's namespace).
The fd must then not reach the command, and a failure after the open must
report the same stage, errno and detail on both engines.  (Failing to open
the file is C{TIME_OFFSETS} 2 at that point in both engines; no fault is
injected there, as in the C engine, and nothing here makes the open fail.)
"""

from __future__ import annotations

import errno
import json
import os
from typing import Any

from tests.builders import (
    MixinBase,
    RecordingProtocol,
    makeTestCaseClasses,
    spawnAndRun,
)
from tests.nsutil import ANY_PYTHON, MountHygiene, userNamespacesUnavailable
from txspawn.errors import ChildSetupStage, SpawnError
from txspawn.options import Namespaces

_NOT_ROOT = None if os.geteuid() == 0 else "needs root (a map of other ids)"
_NO_USERNS = userNamespacesUnavailable()

#: Root inside is 100000 outside: not our euid, so the early ids change it.
_MAP = "0 100000 1000"

#: The command: the offsets of its time namespace (its own, once exec'd),
#: its open fds (fstat over the low numbers: listing /proc/self/fd would
#: add the listing's own fd) and its ids inside.
_REPORT = b"""
import json, os
fds = []
for fd in range(256):
    try:
        os.fstat(fd)
    except OSError:
        continue
    fds.append(fd)
with open("/proc/self/timens_offsets") as f:
    offsets = f.read().split()
print(json.dumps({"offsets": offsets, "fds": fds, "uid": os.getuid()}))
"""

#: Name -> the Namespaces options besides the map and the time namespace.
_SHAPES: dict[str, dict[str, Any]] = {
    "noPid": {},
    "pidInit": {"pid": True},
    "pidAlone": {"pid": True, "pidInit": False},
}


def _namespaces(**options: Any) -> Namespaces:
    return Namespaces(
        user=True,
        time=True,
        uidMap=_MAP,
        gidMap=_MAP,
        timeOffsets={"monotonic": 13, "boottime": 2},
        **options,
    )


class OffsetsFileMixin(MountHygiene, MixinBase):
    """
    The offsets apply, and their file stays in the child's setup.
    """

    if _NOT_ROOT or _NO_USERNS:
        skip = _NOT_ROOT or _NO_USERNS

    def setUp(self) -> None:
        self.setUpMounts()
        super().setUp()

    def test_offsetsAfterIdsChange(self) -> None:
        """
        With and without a pid namespace (init or not), the command's time
        namespace has the offsets, its uid inside is 0 (the early ids ran:
        100000 outside), and its only fds are its three standard ones (the
        offsets file does not reach it: closed once written, close-on-exec,
        and the fd program closes every fd it does not keep anyway).
        """
        got = {}
        for name, options in _SHAPES.items():
            proto = RecordingProtocol()
            spawnAndRun(
                self,
                proto,
                ANY_PYTHON,
                [ANY_PYTHON, b"-c", _REPORT],
                env={},
                path="/",
                namespaces=_namespaces(**options),
            )
            out = proto.output.get(1, b"")
            self.assertEqual(
                proto.endedReason.value.exitCode,
                0,
                f"{name}: {out!r} {proto.output.get(2, b'')!r}",
            )
            got[name] = json.loads(out)
        expected = {
            "offsets": ["monotonic", "13", "0", "boottime", "2", "0"],
            "fds": [0, 1, 2],
            "uid": 0,
        }
        self.assertEqual(got, dict.fromkeys(_SHAPES, expected))

    def test_failuresAfterTheOpen(self) -> None:
        """
        A step failing after the file was opened (the early ids, the time
        namespace's unshare) reports its own stage, errno and detail, the
        same on both engines, whichever process makes it (the Python
        engine's pid 1 sets the early ids), and leaves nothing (the
        hygiene checks: fds, children).
        """
        from txspawn._plan.faultinjection import injectChildFault

        got = []
        faults = [(ChildSetupStage.SETGID, 0), (ChildSetupStage.TIME_OFFSETS, 1)]
        for name, options in _SHAPES.items():
            for stage, _ in faults:
                reactor = self.buildReactor()
                proto = RecordingProtocol()
                with injectChildFault(stage, errno.EXFULL):
                    with self.assertRaises(SpawnError) as caught:
                        reactor.spawnProcess(
                            proto,
                            ANY_PYTHON,
                            [ANY_PYTHON, b"-c", b""],
                            env={},
                            path="/",
                            namespaces=_namespaces(**options),
                        )
                e = caught.exception
                got.append((name, e.stage, e.errno, e.detail))
        self.assertEqual(
            got,
            [
                (name, stage, errno.EXFULL, detail)
                for name in _SHAPES
                for stage, detail in faults
            ],
        )


globals().update(makeTestCaseClasses(OffsetsFileMixin))
