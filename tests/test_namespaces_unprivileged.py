"""
The namespace suite as an unprivileged user: the parent runs as nobody
(C{setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all}),
with the distribution's Python and a throwaway, world-readable copy of
txspawn and its dependencies (L{tests.nsutil.portableTree}; the venv lives
under root's home, which nobody cannot enter).  It runs
C{tests/helpers/nsdriver.py}, which spawns C{nsworld.py} in namespaces on
both engines and prints what each reported; the assertions are made here.

Self-maps work unprivileged, with every namespace below a user namespace;
a map of ids that are not ours must be written from outside and the
kernel refuses it (C{IDMAP}, C{EPERM}, the map's detail), on both engines
alike; a pid namespace without a user namespace is refused when built
(see L{tests.test_namespaces_errors}).
"""

from __future__ import annotations

import errno
import os
import shutil
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.hygiene import HygieneMixin
from tests.nsutil import MountHygiene, normalise, splitMap, userNamespacesUnavailable
from tests.test_namespaces_errors import ENGINES, NOBODY, case, runDriver

_SETPRIV = shutil.which("setpriv") or ""
_NO_USERNS = userNamespacesUnavailable()
#: Nobody's uid and gid.
ID = 65534
CAP_SYS_ADMIN = 1 << 21
IFF_UP = 0x1


class UnprivilegedTests(MountHygiene, HygieneMixin, SynchronousTestCase):
    """
    Namespaced spawns from a parent running as nobody, on both engines.
    """

    def setUp(self) -> None:
        if os.geteuid() != 0 or not _SETPRIV:
            raise self.skipTest("needs root and setpriv(1) to become nobody")
        if _NO_USERNS:
            raise self.skipTest(_NO_USERNS)
        self.setUpHygiene()
        self.setUpMounts()

    def results(self, namespaces: dict[str, Any], **more: Any) -> list[dict[str, Any]]:
        """
        Spawn C{nsworld.py} with C{Namespaces(**namespaces)} as nobody on
        each engine; the results, in L{ENGINES} order.
        """
        job = {
            "cases": [
                case(engine, namespaces, anyUser=True, **more) for engine in ENGINES
            ]
        }
        return runDriver(self, job, [_SETPRIV, *NOBODY], anyUser=True)

    def worlds(self, namespaces: dict[str, Any], **more: Any) -> dict[str, Any]:
        """
        The world nobody's child reports; the same (normalised) on both
        engines, and it exited 0.
        """
        results = self.results(namespaces, **more)
        normalised = []
        for result in results:
            self.assertEqual(result.get("reason"), ["ProcessDone", 0, None, 0], result)
            offsets = {
                clock: float(seconds)
                for clock, seconds in namespaces.get("timeOffsets", {}).items()
            }
            before, after = result["clocks"]
            normalised.append(
                normalise(result["world"], result["parentNs"], before, after, offsets)
            )
        self.assertEqual(normalised[0], normalised[1])
        self.assertEqual(
            (normalised[0]["monotonic"], normalised[0]["boottime"]), (True, True)
        )
        world: dict[str, Any] = results[0]["world"]
        self.assertEqual(
            {k for k, v in normalised[0]["ns"].items() if v == "new"},
            _expectedNew(namespaces),
        )
        return world

    def test_selfMap(self) -> None:
        """
        C{user=True}: root inside is nobody outside, one id each, with
        C{setgroups} denied and capabilities inside.
        """
        world = self.worlds({"user": True})
        self.assertEqual(splitMap(world["uid_map"]), [[0, ID, 1]])
        self.assertEqual(splitMap(world["gid_map"]), [[0, ID, 1]])
        self.assertEqual(world["setgroups"], "deny")
        self.assertEqual((world["uid"], world["gid"]), ([0] * 3, [0] * 3))
        self.assertTrue(world["capEff"] & CAP_SYS_ADMIN)

    def test_selfMapOtherInsideId(self) -> None:
        """
        A self-map to inside id 1000: the child is 1000 inside, without
        capabilities.
        """
        world = self.worlds(
            {"user": True, "uidMap": f"1000 {ID} 1", "gidMap": f"1000 {ID} 1"}
        )
        self.assertEqual((world["uid"], world["gid"]), ([1000] * 3, [1000] * 3))
        self.assertEqual(world["capEff"], 0)

    def test_pidInit(self) -> None:
        """
        A pid namespace with a fresh C{/proc}: init pid 1, the command pid 2,
        only they in C{/proc}.
        """
        world = self.worlds(
            {"user": True, "pid": True, "mount": True, "mountProc": True}
        )
        self.assertEqual(
            (world["pid"], world["ppid"], world["procPids"]), (2, 1, [1, 2])
        )

    def test_pidNoInit(self) -> None:
        """
        C{pidInit=False}: the command is pid 1.
        """
        world = self.worlds(
            {
                "user": True,
                "pid": True,
                "mount": True,
                "mountProc": True,
                "pidInit": False,
            }
        )
        self.assertEqual((world["pid"], world["ppid"], world["procPids"]), (1, 0, [1]))

    def test_hostnameLoopbackIpcCgroup(self) -> None:
        """
        Hostname, C{lo} up with 127.0.0.1 reachable, new IPC and cgroup
        namespaces.
        """
        world = self.worlds(
            {
                "user": True,
                "uts": True,
                "net": True,
                "ipc": True,
                "cgroup": True,
                "hostname": "nobodys",
                "loopback": True,
            }
        )
        self.assertEqual(world["hostname"], "nobodys")
        self.assertTrue(world["loFlags"] & IFF_UP)
        self.assertEqual(world["loopback"], "ok")

    def test_time(self) -> None:
        """
        Time offsets apply (checked by L{worlds}).
        """
        self.worlds(
            {
                "user": True,
                "time": True,
                "timeOffsets": {"monotonic": 50, "boottime": 60},
            }
        )

    def test_everything(self) -> None:
        """
        Every namespace and option at once.
        """
        world = self.worlds(
            {
                "user": True,
                "pid": True,
                "mount": True,
                "net": True,
                "uts": True,
                "ipc": True,
                "cgroup": True,
                "time": True,
                "hostname": "all",
                "loopback": True,
                "mountProc": True,
                "timeOffsets": {"monotonic": 9},
            }
        )
        self.assertEqual(
            (world["pid"], world["hostname"], world["loopback"]), (2, "all", "ok")
        )

    def assertRefused(self, namespaces: dict[str, Any], detail: int) -> None:
        """
        The spawn fails with C{IDMAP}, C{EPERM}, C{detail}, the same on both
        engines (the hygiene after each case is checked by L{runDriver}).
        """
        results = self.results(namespaces)
        for result in results:
            self.assertIn("error", result)
            error = result["error"]
            self.assertEqual(
                (error["type"], error["stage"], error["errno"], error["detail"]),
                ("SpawnPermissionError", "IDMAP", errno.EPERM, detail),
            )
        self.assertEqual(results[0]["error"], results[1]["error"])

    def test_uidMapNotOurs(self) -> None:
        """
        A uid map of an id that is not ours: C{uid_map} refused (detail 3).
        """
        self.assertRefused({"user": True, "uidMap": "0 1000 1"}, 3)

    def test_gidMapNotOurs(self) -> None:
        """
        A gid map of an id that is not ours: C{gid_map} refused (detail 2).
        """
        self.assertRefused({"user": True, "gidMap": "0 1000 1"}, 2)

    def test_twoRanges(self) -> None:
        """
        Two ranges, one of them ours: still refused.
        """
        self.assertRefused({"user": True, "uidMap": f"0 {ID} 1,1 100000 1"}, 3)

    def test_setgroupsAllowed(self) -> None:
        """
        Our own ids with C{setgroups} allowed (so the parent writes the
        maps): the kernel refuses the gid map (detail 2).
        """
        self.assertRefused(
            {
                "user": True,
                "uidMap": f"0 {ID} 1",
                "gidMap": f"0 {ID} 1",
                "setgroups": "allow",
            },
            2,
        )


def _expectedNew(namespaces: dict[str, Any]) -> set[str]:
    """
    The C{/proc/self/ns} names that must be new for C{namespaces}.
    """
    names = {
        "user": ["user"],
        "pid": ["pid", "pid_for_children"],
        "mount": ["mnt"],
        "net": ["net"],
        "uts": ["uts"],
        "ipc": ["ipc"],
        "cgroup": ["cgroup"],
        "time": ["time", "time_for_children"],
    }
    return {
        name for option, new in names.items() if namespaces.get(option) for name in new
    }
