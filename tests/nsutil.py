# -*- test-case-name: tests.test_namespaces,tests.test_namespaces_differential -*-
"""
Helpers for the namespace tests: the C{nsworld.py} reporting child, what
the parent's own world looks like, a mount-leak check, the processes of a
namespace found through C{/proc}, and a throwaway copy of txspawn that an
unprivileged user can import.

Every namespace test spawns C{tests/helpers/nsworld.py} with a Python that
any uid can run (L{ANY_PYTHON}): inside a user namespace whose root is
some unprivileged id outside, this venv's interpreter (under root's home)
is out of reach.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.python.failure import Failure

from tests.builders import MixinBase, RecordingProtocol, spawnAndRun
from tests.engineutil import pythonForAnyUser

__all__ = [
    "ANY_PYTHON",
    "NSWORLD",
    "NS_KINDS",
    "LineProtocol",
    "MountHygiene",
    "WorldMixin",
    "clocks",
    "mountinfo",
    "namespaceProcesses",
    "normalise",
    "offsetsOf",
    "parentNamespaces",
    "portableTree",
    "reasonOf",
    "splitMap",
    "userNamespacesUnavailable",
]

HERE = os.path.dirname(os.path.abspath(__file__))
#: The reporting child.
NSWORLD = os.path.join(HERE, "helpers", "nsworld.py")
#: The driver that runs namespaced spawns in another process (as nobody,
#: in a throwaway user namespace, in a scratch mount namespace).
NSDRIVER = os.path.join(HERE, "helpers", "nsdriver.py")
#: A Python every uid can execute (see L{pythonForAnyUser}).
ANY_PYTHON = (pythonForAnyUser() or sys.executable).encode()

#: The C{/proc/self/ns} names of the namespaces L{txspawn.options.Namespaces}
#: creates, by its attribute name.
NS_KINDS: Mapping[str, str] = {
    "user": "user",
    "pid": "pid",
    "mount": "mnt",
    "net": "net",
    "uts": "uts",
    "ipc": "ipc",
    "cgroup": "cgroup",
    "time": "time",
}


def parentNamespaces() -> dict[str, int]:
    """
    This process's namespace inodes, by C{/proc/self/ns} name.
    """
    return {
        name: os.stat(f"/proc/self/ns/{name}").st_ino
        for name in sorted(os.listdir("/proc/self/ns"))
    }


def mountinfo() -> list[str]:
    """
    This process's mount table (C{/proc/self/mountinfo} lines).
    """
    with open("/proc/self/mountinfo") as f:
        return f.read().splitlines()


def namespaceProcesses(kind: str, inode: int) -> list[int]:
    """
    Every process (zombies included) whose C{/proc/<pid>/ns/<kind>} is the
    namespace C{inode}.
    """
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}/ns/{kind}").st_ino == inode:
                found.append(int(name))
        except OSError:
            continue  # gone meanwhile
    return sorted(found)


def splitMap(text: str | None) -> list[list[int]]:
    """
    A C{uid_map}/C{gid_map} as the kernel prints it, as C{[inside, outside,
    count]} triples.
    """
    if text is None:
        return []
    return [[int(n) for n in line.split()] for line in text.splitlines()]


def reasonOf(reason: Failure) -> tuple[str, int | None, int | None, int | None]:
    """
    What a C{processEnded} reason says: its type's name, exit code, signal
    and raw status (L{twisted.internet.error.ProcessDone} has no
    C{signal}).
    """
    value = reason.value
    return (
        type(value).__name__,
        getattr(value, "exitCode", None),
        getattr(value, "signal", None),
        getattr(value, "status", None),
    )


def _probe(argv: list[str]) -> str | None:
    """
    Why C{argv} (a util-linux probe) fails here, or C{None}.
    """
    tool = shutil.which(argv[0])
    if tool is None:
        return f"{argv[0]}(1) is not installed"
    done = subprocess.run([tool, *argv[1:]], capture_output=True, check=False)
    if done.returncode != 0:
        return f"{' '.join(argv)}: {done.stderr.decode(errors='replace').strip()}"
    return None


def userNamespacesUnavailable() -> str | None:
    """
    Why this process cannot make a user namespace with a time namespace in
    it (the most the tests ask for), or C{None}.
    """
    return _probe(["unshare", "--user", "--map-root-user", "--time", "true"])


def clocks() -> tuple[float, float]:
    """
    This process's C{CLOCK_MONOTONIC} and C{CLOCK_BOOTTIME}.
    """
    return (
        time.clock_gettime(time.CLOCK_MONOTONIC),
        time.clock_gettime(time.CLOCK_BOOTTIME),
    )


def offsetsOf(namespaces: Any) -> dict[str, float]:
    """
    The time offsets of a L{txspawn.options.Namespaces}, in seconds, by
    clock name.
    """
    return {
        clock: seconds + nanoseconds / 1e9
        for clock, seconds, nanoseconds in namespaces.timeOffsets
    }


def normalise(
    report: Mapping[str, Any],
    parent: Mapping[str, int],
    before: Sequence[float],
    after: Sequence[float],
    offsets: Mapping[str, float],
) -> dict[str, Any]:
    """
    An C{nsworld.py} report with what differs between any two spawns of
    the same configuration taken out: namespace inodes become C{"new"} or
    C{"parent"}; pids seen from outside the child's pid namespace, and C{/proc}'s
    listing unless it is a fresh one of the child's pid namespace, become
    C{None}; each clock, less its offset, becomes whether it lies between
    the parent's readings C{before} the spawn and C{after} its end.
    """
    world = dict(report)
    world["ns"] = {
        name: "new" if inode != parent.get(name) else "parent"
        for name, inode in report["ns"].items()
    }
    if world["ns"]["pid"] != "new":
        world["pid"] = world["ppid"] = None
        world["nspid"] = len(report["nspid"])
        world["procPids"] = None
    else:
        # The first is the pid as the parent sees it.
        world["nspid"] = report["nspid"][1:]
        if report["procMountCount"] < 2:
            world["procPids"] = None
    for index, clock in enumerate(("monotonic", "boottime")):
        value = report[clock] - offsets.get(clock, 0)
        world[clock] = before[index] <= value <= after[index]
    return world


class MountHygiene:
    """
    Checks, after the test, that this process's mount table is the same as
    before it: a namespaced child's mounts (a fresh C{/proc}, a tmpfs) must
    stay in its own mount namespace.
    """

    def setUpMounts(self: Any) -> None:
        """
        Record the mount table now, and compare after the test.
        """
        before = mountinfo()
        self.addCleanup(lambda: self.assertEqual(mountinfo(), before, "mounts leaked"))


class LineProtocol(RecordingProtocol):
    """
    A L{RecordingProtocol} calling C{onLine(transport, line)} for each
    complete line of the child's stdout.
    """

    def __init__(self, onLine: Callable[[Any, bytes], object]) -> None:
        super().__init__()
        self._onLine = onLine
        self._partial = b""

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        super().childDataReceived(childFD, data)
        if childFD != 1:
            return
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            self._onLine(self.transport, line)


class WorldMixin(MountHygiene, MixinBase):
    """
    Spawn C{nsworld.py} in namespaces and read its report; the mount table
    is checked after every test.
    """

    def setUp(self) -> None:
        self.setUpMounts()
        super().setUp()

    def spawnWorld(
        self,
        namespaces: object,
        *worldArgs: str,
        proto: RecordingProtocol | None = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], RecordingProtocol]:
        """
        Spawn C{nsworld.py} with C{namespaces=namespaces} (and C{kwargs} for
        C{spawnProcess}) and run the reactor until it ended.

        @return: Its report and its protocol.
        """
        if proto is None:
            proto = RecordingProtocol()
        kwargs.setdefault("env", {})
        kwargs.setdefault("path", "/")
        spawnAndRun(
            self,
            proto,
            ANY_PYTHON,
            [ANY_PYTHON, NSWORLD.encode(), *(a.encode() for a in worldArgs)],
            namespaces=namespaces,
            **kwargs,
        )
        out = proto.output.get(1, b"")
        try:
            report: dict[str, Any] = json.loads(out.split(b"\n", 1)[0])
        except ValueError:
            self.fail(
                f"no report: stdout {out!r}, stderr {proto.output.get(2, b'')!r}, "
                f"reason {proto.endedReason!r}"
            )
        return report, proto

    def assertNamespaces(
        self, report: Mapping[str, Any], asked: Mapping[str, bool]
    ) -> None:
        """
        Every namespace the child was asked to get differs from this
        process's; every other one is this process's own.

        @param asked: L{NS_KINDS} key to whether it was asked for.
        """
        parent = parentNamespaces()
        got = {
            attr: report["ns"][name] != parent[name] for attr, name in NS_KINDS.items()
        }
        expected = {attr: bool(asked.get(attr)) for attr in NS_KINDS}
        self.assertEqual(got, expected, f"child {report['ns']} parent {parent}")


_TREE: list[str] = []

#: The packages (top-level names in site-packages) that txspawn needs at
#: run time, Twisted's dependencies included.
_DEPENDENCIES = (
    "twisted",
    "attr",
    "attrs",
    "zope",
    "automat",
    "constantly",
    "incremental",
    "hyperlink",
    "idna",
    "typing_extensions.py",
)


def portableTree() -> str:
    """
    A directory under C{/tmp} that any user can read, holding a copy of
    txspawn (with its extension and init program), the packages it needs,
    C{nsworld.py} and C{nsdriver.py}: a user who cannot enter root's home,
    where the venv lives, runs the driver with the distribution's Python
    and this directory on C{PYTHONPATH}.  Made once per test process and
    removed when it exits.
    """
    if _TREE:
        return _TREE[0]
    import twisted
    import txspawn

    tree = tempfile.mkdtemp(prefix="txspawn-ns-tree-")
    atexit.register(shutil.rmtree, tree, True)
    os.chmod(tree, 0o755)
    skip = shutil.ignore_patterns("__pycache__", "test", "tests", "*.pyc")
    shutil.copytree(
        os.path.dirname(os.path.abspath(txspawn.__file__)),
        os.path.join(tree, "txspawn"),
        ignore=skip,
    )
    sitePackages = os.path.dirname(os.path.dirname(os.path.abspath(twisted.__file__)))
    for name in _DEPENDENCIES:
        source = os.path.join(sitePackages, name)
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(tree, name), ignore=skip)
        else:
            shutil.copy(source, tree)
    shutil.copy(NSWORLD, tree)
    shutil.copy(NSDRIVER, tree)
    for root, dirs, files in os.walk(tree):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            path = os.path.join(root, name)
            os.chmod(path, 0o755 if os.stat(path).st_mode & 0o100 else 0o644)
    _TREE.append(tree)
    return tree
