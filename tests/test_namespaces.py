"""
Namespaced children, as root, on every engine x monitor: the world a child
reports (C{tests/helpers/nsworld.py}) is the one its
L{txspawn.options.Namespaces} asked for, through C{spawnProcess},
L{txspawn.run} and L{txspawn.stream}.

The option's validation (the fake reactor's answers against a real
one's) is in L{tests.test_namespaces_validation}; the exit statuses
through txspawn's init in L{tests.test_namespaces_init}; both engines
against each other in L{tests.test_namespaces_differential}; failures in
L{tests.test_namespaces_errors}; an unprivileged parent in
L{tests.test_namespaces_unprivileged}.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
from typing import Any

from tests.builders import makeTestCaseClasses
from tests.nsutil import (
    ANY_PYTHON,
    NSWORLD,
    WorldMixin,
    clocks,
    splitMap,
    userNamespacesUnavailable,
)
from tests.test_run import runInReactor, succeeded
from txspawn import ProcessResult, run, stream
from txspawn.options import IdMapRange, Namespaces

# <linux/if.h>
IFF_UP = 0x1
IFF_LOOPBACK = 0x8
IFF_RUNNING = 0x40
# <linux/prctl.h>
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
#: CAP_SYS_ADMIN's bit in CapEff.
CAP_SYS_ADMIN = 1 << 21

_NOT_ROOT = None if os.geteuid() == 0 else "needs root (CAP_SYS_ADMIN)"
_NO_USERNS = userNamespacesUnavailable()


class NamespaceWorldMixin(WorldMixin):
    """
    What a namespaced child sees, as asked.
    """

    if _NOT_ROOT or _NO_USERNS:
        skip = _NOT_ROOT or _NO_USERNS

    def assertOnly(self, *kinds: str, **options: Any) -> dict[str, Any]:
        """
        Spawn with C{Namespaces(**{kind: True for kind in kinds}, **options)}
        and check that exactly those namespaces are new.
        """
        asked: dict[str, Any] = dict.fromkeys(kinds, True)
        report, proto = self.spawnWorld(Namespaces(**asked, **options))
        self.assertEqual(proto.endedReason.value.exitCode, 0)
        self.assertNamespaces(report, dict.fromkeys(kinds, True))
        return report

    def test_none(self) -> None:
        """
        C{namespaces=None} and an empty L{Namespaces} leave the child in
        every one of this process's namespaces.
        """
        for namespaces in (None, Namespaces()):
            report, _ = self.spawnWorld(namespaces)
            self.assertNamespaces(report, {})

    def test_pidAlone(self) -> None:
        """
        C{pid=True} alone (root): a new pid namespace only.
        """
        report = self.assertOnly("pid")
        self.assertEqual(report["ns"]["pid_for_children"], report["ns"]["pid"])

    def test_mountAlone(self) -> None:
        """
        C{mount=True} alone (root): a new mount namespace only.
        """
        self.assertOnly("mount")

    def test_netAlone(self) -> None:
        """
        C{net=True} alone (root): a new network namespace only, whose C{lo}
        is down: 127.0.0.1 is unreachable.
        """
        report = self.assertOnly("net")
        self.assertEqual(report["loFlags"] & IFF_UP, 0)
        self.assertNotEqual(report["loopback"], "ok")

    def test_utsAlone(self) -> None:
        """
        C{uts=True} alone (root): a new UTS namespace only, with this
        host's name.
        """
        report = self.assertOnly("uts")
        self.assertEqual(report["hostname"], socket.gethostname())

    def test_ipcAlone(self) -> None:
        """
        C{ipc=True} alone (root): a new IPC namespace only.
        """
        self.assertOnly("ipc")

    def test_cgroupAlone(self) -> None:
        """
        C{cgroup=True} alone (root): a new cgroup namespace only.
        """
        self.assertOnly("cgroup")

    def test_timeAlone(self) -> None:
        """
        C{time=True} alone (root): a new time namespace only (the command
        itself is in it, not only its children).
        """
        report = self.assertOnly("time")
        self.assertEqual(report["ns"]["time_for_children"], report["ns"]["time"])

    def test_userSelfMap(self) -> None:
        """
        C{user=True}: a new user namespace only, root inside mapped to our
        own euid and egid (one id each), C{setgroups} denied, every id 0,
        with capabilities inside.
        """
        report = self.assertOnly("user")
        self.assertEqual(splitMap(report["uid_map"]), [[0, os.geteuid(), 1]])
        self.assertEqual(splitMap(report["gid_map"]), [[0, os.getegid(), 1]])
        self.assertEqual(report["setgroups"], "deny")
        self.assertEqual((report["uid"], report["gid"]), ([0] * 3, [0] * 3))
        self.assertTrue(report["capEff"] & CAP_SYS_ADMIN)

    def test_selfMapOtherInsideId(self) -> None:
        """
        A self-map to another inside id: the child runs as that id inside,
        without capabilities.
        """
        report = self.assertOnly(
            "user",
            uidMap=f"1000 {os.geteuid()} 1",
            gidMap=((1000, os.getegid(), 1),),
        )
        self.assertEqual(splitMap(report["uid_map"]), [[1000, os.geteuid(), 1]])
        self.assertEqual(splitMap(report["gid_map"]), [[1000, os.getegid(), 1]])
        self.assertEqual((report["uid"], report["gid"]), ([1000] * 3, [1000] * 3))
        self.assertEqual(report["capEff"], 0)

    def test_parentWrittenMap(self) -> None:
        """
        A map of ids that are not ours (written by the parent, as root):
        exactly as asked, root inside, C{setgroups} denied by default.
        """
        report = self.assertOnly("user", uidMap="0 100000 1000", gidMap="0 100000 1000")
        self.assertEqual(splitMap(report["uid_map"]), [[0, 100000, 1000]])
        self.assertEqual(splitMap(report["gid_map"]), [[0, 100000, 1000]])
        self.assertEqual(report["setgroups"], "deny")
        self.assertEqual((report["uid"], report["gid"]), ([0] * 3, [0] * 3))
        self.assertTrue(report["capEff"] & CAP_SYS_ADMIN)

    def test_multiRangeMaps(self) -> None:
        """
        Several ranges, given as text, tuples and L{IdMapRange}s, with
        C{setgroups="allow"}: the kernel shows exactly those ranges.
        """
        report = self.assertOnly(
            "user",
            uidMap="0 100000 1000,1000 200000 10",
            gidMap=(IdMapRange(0, 100000, 1000), (1000, 200000, 10)),
            setgroups="allow",
        )
        expected = [[0, 100000, 1000], [1000, 200000, 10]]
        self.assertEqual(splitMap(report["uid_map"]), expected)
        self.assertEqual(splitMap(report["gid_map"]), expected)
        self.assertEqual(report["setgroups"], "allow")

    def test_idsInside(self) -> None:
        """
        With a user namespace, C{spawnProcess}'s C{uid} and C{gid} are ids
        inside it; C{groups=} works where C{setgroups} is allowed.
        """
        ranges = "0 100000 2000"
        report, _ = self.spawnWorld(
            Namespaces(user=True, uidMap=ranges, gidMap=ranges, setgroups="allow"),
            uid=1000,
            gid=1001,
            groups=[5, 1002],
        )
        self.assertEqual((report["uid"], report["gid"]), ([1000] * 3, [1001] * 3))
        self.assertEqual(report["groups"], [5, 1002])
        self.assertEqual(report["capEff"], 0)

    def test_idsInsideSetgroupsDenied(self) -> None:
        """
        C{uid} and C{gid} inside a user namespace whose C{setgroups} is
        denied (the default): the child gets them (no supplementary groups
        to drop is asked for).
        """
        ranges = "0 100000 2000"
        report, _ = self.spawnWorld(
            Namespaces(user=True, uidMap=ranges, gidMap=ranges), uid=1000, gid=1000
        )
        self.assertEqual((report["uid"], report["gid"]), ([1000] * 3, [1000] * 3))
        self.assertEqual(report["setgroups"], "deny")

    def test_pidInit(self) -> None:
        """
        A pid namespace with a fresh C{/proc}: txspawn's init is pid 1, the
        command pid 2 (its parent), and C{/proc} lists those two only.
        """
        report = self.assertOnly("pid", "mount", mountProc=True)
        self.assertEqual((report["pid"], report["ppid"]), (2, 1))
        self.assertEqual(report["procPids"], [1, 2])
        self.assertEqual(report["nspid"][-1], 2)
        self.assertEqual(report["procMountCount"], 2)

    def test_pidNoInit(self) -> None:
        """
        C{pidInit=False}: the command itself is pid 1, its parent outside
        (ppid 0), alone in C{/proc}.
        """
        report = self.assertOnly("pid", "mount", mountProc=True, pidInit=False)
        self.assertEqual((report["pid"], report["ppid"]), (1, 0))
        self.assertEqual(report["procPids"], [1])

    def test_pidInitUser(self) -> None:
        """
        The same with a user namespace: init pid 1, the command pid 2,
        only they in C{/proc}.
        """
        report = self.assertOnly("user", "pid", "mount", mountProc=True)
        self.assertEqual((report["pid"], report["ppid"]), (2, 1))
        self.assertEqual(report["procPids"], [1, 2])

    def test_procUnchangedWithoutMountProc(self) -> None:
        """
        Without C{mountProc} the child's C{/proc} is the parent's: it lists
        this process too.
        """
        report = self.assertOnly("pid", "mount")
        self.assertIn(os.getpid(), report["procPids"])
        self.assertEqual(report["procMountCount"], 1)

    def test_hostname(self) -> None:
        """
        C{hostname} is the child's; ours is unchanged.
        """
        before = socket.gethostname()
        report = self.assertOnly("uts", hostname="txspawn-ns-test")
        self.assertEqual(report["hostname"], "txspawn-ns-test")
        self.assertEqual(socket.gethostname(), before)

    def test_hostnameUser(self) -> None:
        """
        The same from a user namespace.
        """
        report = self.assertOnly("user", "uts", hostname="inside")
        self.assertEqual(report["hostname"], "inside")

    def test_loopback(self) -> None:
        """
        C{loopback=True}: C{lo} is up and running, and a TCP connection over
        127.0.0.1 works.
        """
        report = self.assertOnly("net", loopback=True)
        flags = IFF_UP | IFF_RUNNING | IFF_LOOPBACK
        self.assertEqual(report["loFlags"] & flags, flags)
        self.assertEqual(report["loopback"], "ok")

    def test_loopbackUser(self) -> None:
        """
        The same from a user namespace.
        """
        report = self.assertOnly("user", "net", loopback=True)
        self.assertEqual(report["loopback"], "ok")

    def assertClocks(
        self, namespaces: Namespaces, monotonic: float, boottime: float
    ) -> None:
        """
        The child's clocks, less the offsets, fall between our readings of
        the same clocks before the spawn and after its end.
        """
        before = clocks()
        report, _ = self.spawnWorld(namespaces)
        after = clocks()
        for index, clock, offset in [
            (0, "monotonic", monotonic),
            (1, "boottime", boottime),
        ]:
            self.assertTrue(
                before[index] <= report[clock] - offset <= after[index],
                f"{clock} {report[clock]} - {offset} not in "
                f"{before[index]}..{after[index]}",
            )

    def test_timeOffsets(self) -> None:
        """
        C{timeOffsets}: the child's C{CLOCK_MONOTONIC} and C{CLOCK_BOOTTIME}
        are ours plus the offsets.
        """
        self.assertClocks(
            Namespaces(time=True, timeOffsets={"monotonic": 1000, "boottime": 2000.5}),
            1000,
            2000.5,
        )

    def test_timeOffsetsUserPid(self) -> None:
        """
        The same from a user namespace with txspawn's init as pid 1 (the
        command is init's child: in the time namespace too).
        """
        self.assertClocks(
            Namespaces(user=True, pid=True, time=True, timeOffsets={"monotonic": 7}),
            7,
            0,
        )

    def test_timeOffsetsParentWrittenMap(self) -> None:
        """
        The same with a map written by the parent whose root is another id
        outside: the child's ids change (so the kernel makes it
        non-dumpable, and its C{/proc/self} files belong to a root it
        cannot see), yet its offsets apply.
        """
        ranges = "0 100000 2000"
        self.assertClocks(
            Namespaces(
                user=True,
                time=True,
                uidMap=ranges,
                gidMap=ranges,
                timeOffsets={"monotonic": 11},
            ),
            11,
            0,
        )

    def test_parentStaysDumpable(self) -> None:
        """
        A spawn whose child changes ids (root inside a map written by the
        parent) leaves this process dumpable: the kernel resets the
        dumpable flag of the child's memory when its credentials change,
        and a child sharing our memory until it execs must not take ours
        with it.
        """
        libc = ctypes.CDLL(None, use_errno=True)
        before = libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)
        self.addCleanup(libc.prctl, PR_SET_DUMPABLE, before, 0, 0, 0)
        libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
        ranges = "0 100000 2000"
        self.spawnWorld(Namespaces(user=True, uidMap=ranges, gidMap=ranges))
        self.assertEqual(libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1)

    def test_timeWithoutOffsets(self) -> None:
        """
        A time namespace without offsets: the clocks are ours.
        """
        self.assertClocks(Namespaces(time=True), 0, 0)

    def test_everything(self) -> None:
        """
        Every namespace at once, every option: all as asked.
        """
        report = self.assertOnly(
            "user",
            "pid",
            "mount",
            "net",
            "uts",
            "ipc",
            "cgroup",
            "time",
            hostname="all",
            loopback=True,
            mountProc=True,
            timeOffsets={"monotonic": 5},
        )
        self.assertEqual(
            (report["pid"], report["procPids"], report["hostname"], report["loopback"]),
            (2, [1, 2], "all", "ok"),
        )
        self.assertEqual(splitMap(report["uid_map"]), [[0, os.geteuid(), 1]])

    def runCoroutine(self, main: Any) -> Any:
        """
        Run C{main()} in a fresh reactor; its result (or raise its failure).
        """
        return succeeded(runInReactor(self, self.buildReactor(), main))

    def test_run(self) -> None:
        """
        L{txspawn.run} takes C{namespaces=}: the child is pid 2 of a pid
        namespace and exits 0.
        """
        namespaces = Namespaces(user=True, pid=True, mount=True, mountProc=True)

        async def main() -> ProcessResult:
            return await run(
                [ANY_PYTHON, NSWORLD.encode()],
                reactor=self._reactors[-1],
                namespaces=namespaces,
                path="/",
            )

        result = self.runCoroutine(main)
        report = json.loads(result.stdout)
        self.assertEqual((report["pid"], report["procPids"]), (2, [1, 2]))
        self.assertEqual((result.exitCode, result.signal, result.status), (0, None, 0))

    def test_stream(self) -> None:
        """
        L{txspawn.stream} takes C{namespaces=}: the child's hostname comes
        through the stream.
        """
        namespaces = Namespaces(user=True, uts=True, hostname="streamed")

        async def main() -> tuple[bytes, ProcessResult]:
            outputStream = stream(
                [ANY_PYTHON, NSWORLD.encode()],
                reactor=self._reactors[-1],
                namespaces=namespaces,
                path="/",
            )
            data = b"".join([chunk.data async for chunk in outputStream])
            return data, await outputStream.result

        data, result = self.runCoroutine(main)
        self.assertEqual(json.loads(data)["hostname"], "streamed")
        self.assertEqual(result.exitCode, 0)


globals().update(makeTestCaseClasses(NamespaceWorldMixin))
