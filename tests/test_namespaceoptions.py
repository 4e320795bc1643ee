# -*- test-case-name: tests.test_namespaceoptions -*-
"""
Tests for the namespace options (L{txspawn.options.Namespaces},
L{txspawn.options.IdMapRange}): validation and contradictions when built,
map text, the planner's L{NamespacePlan}, fault injection, and the hints
of a failed namespace step's L{SpawnError}.

No child is spawned in a namespace here (the behaviour tests do that); a
few checks run a fresh Python without C{CAP_SYS_ADMIN} (C{setpriv}), to see
what an unprivileged process is refused.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import subprocess
import sys
from datetime import timedelta
from typing import Any

import attrs
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.protocol import ProcessProtocol
from twisted.trial.unittest import SynchronousTestCase

from txspawn._namespaceoptions import effectiveCapabilities
from txspawn._plan import namespaceplan as nsplan
from txspawn._plan.faultinjection import currentFault, injectChildFault
from txspawn._plan.plan import SpawnPlan
from txspawn._plan.planner import isOpenFD, planSpawn
from txspawn.errors import ChildSetupStage, SpawnError, UnsupportedFeature
from txspawn.options import ID_MAX, IdMapRange, Namespaces, SpawnOptions
from txspawn.testing import MemoryProcessReactor

__all__ = [
    "FaultInjectionTests",
    "HintTests",
    "IdMapTests",
    "NamespacesTests",
    "PlannerTests",
    "UnprivilegedTests",
]

EUID = os.geteuid()
EGID = os.getegid()

#: Whether this process may create namespaces without a user namespace.
PRIVILEGED = bool((effectiveCapabilities() or 0) >> 21 & 1)

#: Every namespace type but user.
OTHER_TYPES = ("pid", "mount", "net", "uts", "ipc", "cgroup", "time")


def build(**kwargs: Any) -> Namespaces:
    """
    C{Namespaces(**kwargs)}, for keywords made at run time.
    """
    return Namespaces(**kwargs)


def plan(namespaces: Namespaces | None, **kwargs: Any) -> SpawnPlan:
    """
    Plan C{/bin/true} with C{namespaces} and C{spawnProcess} arguments
    C{kwargs} (C{uid}, C{gid}) or other spawn options (C{groups}).
    """
    uid = kwargs.pop("uid", None)
    gid = kwargs.pop("gid", None)
    return planSpawn(
        "/bin/true",
        ["true"],
        uid=uid,
        gid=gid,
        parentEnviron=os.environb,
        isOpenFD=isOpenFD,
        options=SpawnOptions(namespaces=namespaces, **kwargs),
    )


class IdMapTests(SynchronousTestCase):
    """
    L{IdMapRange} and the maps of L{Namespaces}: their forms, their text,
    and what the kernel would refuse.
    """

    def test_range(self) -> None:
        """
        A range is three ints: ids from 0 up, a count of at least 1, and no
        id past L{ID_MAX}; anything else names C{IdMapRange}.
        """
        self.assertEqual(IdMapRange(0, 1000, 1), IdMapRange(0, 1000, 1))
        IdMapRange(ID_MAX, ID_MAX, 1)
        IdMapRange(0, 0, ID_MAX + 1)
        for args, kind in [
            ((0, 1000, 0), ValueError),
            ((-1, 1000, 1), ValueError),
            ((0, -1, 1), ValueError),
            ((ID_MAX + 1, 0, 1), ValueError),
            ((0, ID_MAX, 2), ValueError),
            ((1, 0, ID_MAX + 1), ValueError),
            ((True, 0, 1), TypeError),
            ((0, 1.0, 1), TypeError),
            ((0, 0, "1"), TypeError),
        ]:
            error = self.assertRaises(kind, IdMapRange, *args)
            self.assertTrue(str(error).startswith("IdMapRange: "), str(error))

    def test_forms(self) -> None:
        """
        A map is text (ranges separated by commas or newlines, fields by
        whitespace, as C{/proc/<pid>/uid_map} shows them), one range, or a
        sequence of ranges and triples; each is stored as a tuple of
        L{IdMapRange}.
        """
        expected = (IdMapRange(0, 1000, 1), IdMapRange(1, 100000, 65536))
        for given_ in [
            "0 1000 1,1 100000 65536",
            " 0 1000 1 , 1\t100000 65536 ,",
            b"0 1000 1\n1 100000 65536\n",
            "         0       1000          1\n         1     100000      65536\n",
            [(0, 1000, 1), [1, 100000, 65536]],
            (IdMapRange(0, 1000, 1), (1, 100000, 65536)),
            "iterator",
        ]:
            if given_ == "iterator":
                built = Namespaces(
                    user=True, uidMap=iter(expected), gidMap=iter(expected)
                )
            else:
                built = build(user=True, uidMap=given_, gidMap=given_)
            self.assertEqual((built.uidMap, built.gidMap), (expected, expected))
        one = (IdMapRange(0, 1000, 1),)
        for single in [(0, 1000, 1), [0, 1000, 1], IdMapRange(0, 1000, 1)]:
            self.assertEqual(build(user=True, uidMap=single).uidMap, one)
        self.assertEqual(IdMapRange.parse("0 1000 1,1 100000 65536"), expected)
        self.assertEqual(IdMapRange.kernelText(expected), "0 1000 1\n1 100000 65536\n")

    def assertRejects(
        self, kind: type[Exception], naming: str, **kwargs: Any
    ) -> Exception:
        """
        Assert that C{Namespaces(user=True, **kwargs)} raises C{kind} with
        a message that starts with C{naming}.
        """
        error: Exception = self.assertRaises(kind, Namespaces, user=True, **kwargs)
        self.assertTrue(str(error).startswith(naming), str(error))
        return error

    def test_badText(self) -> None:
        """
        A record of text that is not three decimal ids is refused, naming
        the map and the record's index.
        """
        for text, index in [
            ("0 1000", 0),
            ("0 1000 1,1 1001", 1),
            ("0 1000 1 1", 0),
            ("0 -1000 1", 0),
            ("0 +1000 1", 0),
            ("0 0x10 1", 0),
            ("0 1_000 1", 0),
            ("0 \u0661 1", 0),
            ("0 1000 1,1 99999999999 1", 1),
        ]:
            self.assertRejects(ValueError, f"Namespaces.uidMap[{index}]: ", uidMap=text)
        self.assertRejects(ValueError, "Namespaces.gidMap[1]: ", gidMap="0 0 1\n1 0 0")
        self.assertRejects(ValueError, "Namespaces.gidMap: ", gidMap=b"0 \xff 1")
        error = self.assertRaises(ValueError, IdMapRange.parse, "0 1 1,x")
        self.assertTrue(str(error).startswith("IdMapRange.parse[1]: "), str(error))

    def test_badMaps(self) -> None:
        """
        An empty map, overlapping ranges (inside or outside), more ranges
        than the kernel takes, more text than one write of a page, or a
        value of the wrong kind is refused, naming the map.
        """
        for empty in ["", " , \n", [], ()]:
            self.assertRejects(ValueError, "Namespaces.uidMap is empty", uidMap=empty)
        self.assertRejects(
            ValueError,
            "Namespaces.uidMap[2] overlaps Namespaces.uidMap[0] inside",
            uidMap="0 1000 10,20 2000 1,9 3000 1",
        )
        self.assertRejects(
            ValueError,
            "Namespaces.gidMap[1] overlaps Namespaces.gidMap[0] outside",
            gidMap="0 1000 10,20 1009 1",
        )
        # Adjacent ranges do not overlap.
        Namespaces(user=True, uidMap="0 1000 10,10 1010 10")
        self.assertRejects(
            ValueError,
            "Namespaces.uidMap has 341 ranges",
            uidMap=[(i, i, 1) for i in range(341)],
        )
        self.assertRejects(
            ValueError,
            "Namespaces.uidMap is more than 4095 bytes",
            uidMap=[(ID_MAX - 2 * i, ID_MAX - 2 * i, 1) for i in range(340)],
        )
        self.assertRejects(TypeError, "Namespaces.uidMap must be", uidMap=5)
        self.assertRejects(
            TypeError, "Namespaces.uidMap[1] must be", uidMap=[(0, 0, 1), 5]
        )
        self.assertRejects(
            TypeError, "Namespaces.uidMap[0]: inside", uidMap=[(0.0, 0, 1)]
        )
        self.assertRejects(
            ValueError, "Namespaces.uidMap[0]: count", uidMap=[(0, 0, 0)]
        )

    @given(st.data())
    def test_textRoundTrip(self, data: st.DataObject) -> None:
        """
        Any valid map, written as text with any mix of separators and
        whitespace, is read back as the ranges it was written from; their
        kernel text reads back the same, and is the canonical text.
        """
        counts = data.draw(
            st.lists(st.integers(1, 2**20), min_size=1, max_size=12), "counts"
        )
        ranges = []
        starts: dict[str, list[int]] = {}
        for side in ("inside", "outside"):
            order = data.draw(st.permutations(range(len(counts))), side)
            position = data.draw(st.integers(0, ID_MAX - sum(counts) - 2**20 * 12))
            starts[side] = [0] * len(counts)
            for index in order:
                position += data.draw(st.integers(0, 2**20))
                starts[side][index] = position
                position += counts[index]
        for index, count in enumerate(counts):
            ranges.append(
                IdMapRange(starts["inside"][index], starts["outside"][index], count)
            )
        spaces = st.text(" \t", min_size=1, max_size=3)
        padding = st.text(" \t", max_size=2)
        records = [
            data.draw(padding)
            + data.draw(spaces).join(str(n) for n in (r.inside, r.outside, r.count))
            + data.draw(padding)
            for r in ranges
        ]
        text = records[0]
        for record in records[1:]:
            text += data.draw(st.sampled_from([",", "\n", ",\n", "\n\n"])) + record
        text += data.draw(st.sampled_from(["", "\n", ","]))
        parsed = IdMapRange.parse(text)
        self.assertEqual(parsed, tuple(ranges))
        kernel = IdMapRange.kernelText(parsed)
        self.assertEqual(
            kernel, "".join(f"{r.inside} {r.outside} {r.count}\n" for r in ranges)
        )
        self.assertEqual(IdMapRange.parse(kernel), parsed)
        self.assertEqual(Namespaces(user=True, uidMap=text).uidMap, parsed)


class NamespacesTests(SynchronousTestCase):
    """
    L{Namespaces}: its fields, and the contradictions refused when built.
    """

    def test_defaults(self) -> None:
        """
        By default no namespace is asked for, C{setgroups} is denied,
        propagation is C{"slave"} and init is pid 1.
        """
        built = Namespaces()
        self.assertEqual(
            attrs.asdict(built, recurse=False),
            {
                **{name: False for name in ("user", *OTHER_TYPES)},
                "uidMap": None,
                "gidMap": None,
                "setgroups": "deny",
                "hostname": None,
                "loopback": False,
                "mountProc": False,
                "propagation": "slave",
                "timeOffsets": (),
                "pidInit": True,
            },
        )

    def test_frozenAndHashable(self) -> None:
        """
        A L{Namespaces} is an immutable value, and C{attrs.evolve} keeps it
        valid (its stored forms pass the checks again).
        """
        built = Namespaces(
            user=True,
            time=True,
            uidMap="0 1000 1",
            timeOffsets={"boottime": 1.25, "monotonic": -3},
        )
        self.assertRaises(
            attrs.exceptions.FrozenInstanceError, setattr, built, "pid", 1
        )
        self.assertEqual(attrs.evolve(built), built)
        self.assertEqual(hash(attrs.evolve(built)), hash(built))
        self.assertEqual(attrs.evolve(built, pid=True).timeOffsets, built.timeOffsets)
        self.assertEqual(pickle.loads(pickle.dumps(built)), built)

    def test_fieldTypes(self) -> None:
        """
        Flags are bools, C{setgroups} and C{propagation} take their words;
        anything else names the field.
        """
        for name in ("user", *OTHER_TYPES, "loopback", "mountProc", "pidInit"):
            error = self.assertRaises(TypeError, Namespaces, **{name: 1})
            self.assertEqual(str(error), f"Namespaces.{name} must be a bool, not 1")
        choices: list[tuple[str, list[str], list[object]]] = [
            ("setgroups", ["deny", "allow"], ["Deny", "", None, b"deny"]),
            ("propagation", ["slave", "private", "shared", "unchanged"], ["rslave"]),
        ]
        for name, good, bad in choices:
            for value in good:
                kwargs: dict[str, object] = {name: value}
                if value == "allow":
                    kwargs.update(user=True, gidMap="0 0 1")
                self.assertEqual(getattr(build(**kwargs), name), value)
            for wrong in bad:
                error = self.assertRaises(ValueError, Namespaces, **{name: wrong})
                self.assertTrue(
                    str(error).startswith(f"Namespaces.{name} must be one of")
                )

    def test_hostname(self) -> None:
        """
        A hostname is a str (bytes are decoded) of at most 64 bytes,
        without NUL.
        """
        self.assertEqual(
            Namespaces(uts=True, user=True, hostname=b"box").hostname, "box"
        )
        self.assertEqual(
            Namespaces(uts=True, user=True, hostname="a" * 64).hostname, "a" * 64
        )
        for bad, kind in [("a" * 65, ValueError), ("a\0b", ValueError), (5, TypeError)]:
            error = self.assertRaises(
                kind, Namespaces, uts=True, user=True, hostname=bad
            )
            self.assertTrue(str(error).startswith("Namespaces.hostname "), str(error))

    def test_timeOffsets(self) -> None:
        """
        Time offsets are seconds (ints, floats to the nanosecond,
        timedeltas; negative too) by clock, stored as C{(clock, seconds,
        nanoseconds)} in a fixed order with nanoseconds from 0.
        """

        def offsets(value: object) -> object:
            return Namespaces(user=True, time=True, timeOffsets=value).timeOffsets

        self.assertEqual(
            offsets({"boottime": 2, "monotonic": 1.5}),
            (("monotonic", 1, 500000000), ("boottime", 2, 0)),
        )
        self.assertEqual(offsets({"monotonic": -1.5}), (("monotonic", -2, 500000000),))
        self.assertEqual(
            offsets({"boottime": timedelta(days=1, microseconds=1)}),
            (("boottime", 86400, 1000),),
        )
        self.assertEqual(offsets({"monotonic": 1e-9}), (("monotonic", 0, 1),))
        self.assertEqual(offsets({}), ())
        for bad, kind, naming in [
            ({"realtime": 1}, ValueError, "Namespaces.timeOffsets: unknown clock"),
            ({"monotonic": float("nan")}, ValueError, "Namespaces.timeOffsets['mono"),
            ({"monotonic": 2**62}, ValueError, "Namespaces.timeOffsets['mono"),
            ({"monotonic": "1"}, TypeError, "Namespaces.timeOffsets['mono"),
            ({"monotonic": True}, TypeError, "Namespaces.timeOffsets['mono"),
            ([("monotonic", 1)], TypeError, "Namespaces.timeOffsets must be"),
            ((("monotonic", 1, 10**9),), ValueError, "Namespaces.timeOffsets['mono"),
            ((("monotonic", 1, 0),) * 2, ValueError, "Namespaces.timeOffsets['mono"),
        ]:
            error = self.assertRaises(
                kind, Namespaces, user=True, time=True, timeOffsets=bad
            )
            self.assertTrue(str(error).startswith(naming), str(error))

    def test_needs(self) -> None:
        """
        An option that belongs to a namespace not asked for is refused,
        naming the option and the namespace it needs.
        """
        for option, value, namespace in [
            ("uidMap", "0 0 1", "user"),
            ("gidMap", "0 0 1", "user"),
            ("hostname", "box", "uts"),
            ("loopback", True, "net"),
            ("mountProc", True, "mount"),
            ("timeOffsets", {"monotonic": 1}, "time"),
        ]:
            others = {"user": True} if namespace != "user" else {"pid": True}
            error = self.assertRaises(
                ValueError, Namespaces, **{option: value, **others}
            )
            self.assertEqual(
                str(error),
                f"Namespaces.{option} needs a {namespace} namespace: "
                f"give {namespace}=True",
            )
            build(**{option: value, namespace: True, "user": True, "pid": True})

    def test_setgroupsAllow(self) -> None:
        """
        C{setgroups="allow"} needs a gid map written by the parent: the
        default one is written by the child, which the kernel allows only
        with C{setgroups} denied.
        """
        error = self.assertRaises(ValueError, Namespaces, user=True, setgroups="allow")
        self.assertTrue(
            str(error).startswith("Namespaces.setgroups='allow' needs a gidMap")
        )
        Namespaces(user=True, setgroups="allow", gidMap=f"0 {EGID} 1")

    def test_mountProcInUserNamespace(self) -> None:
        """
        In a user namespace, a fresh C{/proc} needs a pid namespace of its
        own: the kernel mounts only the C{/proc} of a pid namespace the
        user namespace owns.
        """
        error = self.assertRaises(
            ValueError, Namespaces, user=True, mount=True, mountProc=True
        )
        self.assertTrue(
            str(error).startswith(
                "Namespaces.mountProc with a user namespace needs pid=True"
            )
        )
        Namespaces(user=True, mount=True, pid=True, mountProc=True)

    def test_privilegeWithoutUser(self) -> None:
        """
        Without a user namespace, the other types are refused to a process
        without C{CAP_SYS_ADMIN}, and accepted from one with it; with a user
        namespace they are always accepted.
        """
        for name in OTHER_TYPES:
            build(user=True, **{name: True})
            if PRIVILEGED:
                build(**{name: True})
            else:
                error = self.assertRaises(ValueError, Namespaces, **{name: True})
                self.assertEqual(
                    str(error).split(":")[0],
                    f"Namespaces.{name} needs root (CAP_SYS_ADMIN) or user=True",
                )

    def test_spawnOptions(self) -> None:
        """
        L{SpawnOptions.namespaces} is a L{Namespaces} or C{None}; C{groups}
        with a user namespace whose C{setgroups} is denied is refused, and
        allowed with C{setgroups="allow"} (or without a user namespace).
        """
        built = Namespaces(user=True)
        self.assertIs(SpawnOptions(namespaces=built).namespaces, built)
        self.assertIsNone(SpawnOptions().namespaces)
        error = self.assertRaises(TypeError, SpawnOptions, namespaces={"user": True})
        self.assertTrue(str(error).startswith("SpawnOptions.namespaces must be"))
        for groups in ([1], []):
            error = self.assertRaises(
                ValueError, SpawnOptions, groups=groups, namespaces=built
            )
            self.assertTrue(
                str(error).startswith(
                    "SpawnOptions.groups cannot be set in a user namespace with "
                    "setgroups='deny' (SpawnOptions.namespaces)"
                ),
                str(error),
            )
        SpawnOptions(
            groups=[1],
            namespaces=Namespaces(user=True, setgroups="allow", gidMap="0 0 2"),
        )
        if PRIVILEGED:
            SpawnOptions(groups=[1], namespaces=Namespaces(uts=True))

    def test_keywords(self) -> None:
        """
        C{namespaces=} is a keyword of C{spawnProcess} (here the fake
        reactor's, which makes the real checks), and its errors name the
        keyword.
        """
        reactor = MemoryProcessReactor()
        built = Namespaces(user=True)
        reactor.spawnProcess(ProcessProtocol(), "/bin/true", namespaces=built)
        self.assertEqual(reactor.spawned[0].options, {"namespaces": built})
        error = self.assertRaises(
            TypeError,
            reactor.spawnProcess,
            ProcessProtocol(),
            "/bin/true",
            namespaces=1,
        )
        self.assertTrue(
            str(error).startswith("spawnProcess(): namespaces must be"), str(error)
        )
        error = self.assertRaises(
            ValueError,
            reactor.spawnProcess,
            ProcessProtocol(),
            "/bin/true",
            groups=[0],
            namespaces=built,
        )
        self.assertTrue(
            str(error).startswith(
                "spawnProcess(): groups cannot be set in a user namespace with "
                "setgroups='deny' (namespaces)"
            ),
            str(error),
        )
        self.assertEqual(len(reactor.spawned), 1)


class PlannerTests(SynchronousTestCase):
    """
    The L{NamespacePlan} the planner makes from L{Namespaces}.
    """

    def test_none(self) -> None:
        """
        Without namespaces, or with a L{Namespaces} that asks for none, the
        plan has none, and the ids are as given.
        """
        self.assertIsNone(plan(None).namespaces)
        built = plan(Namespaces(), uid=5, gid=6)
        self.assertEqual((built.namespaces, built.uid, built.gid), (None, 5, 6))

    def test_cloneFlags(self) -> None:
        """
        Each type's C{CLONE_NEW*} flag is in C{cloneFlags}; a time namespace
        is never there (it is unshared later, with its offsets), but its
        offsets are, both clocks at 0 when none are given.
        """
        flags = {
            "user": nsplan.CLONE_NEWUSER,
            "pid": nsplan.CLONE_NEWPID,
            "mount": nsplan.CLONE_NEWNS,
            "net": nsplan.CLONE_NEWNET,
            "uts": nsplan.CLONE_NEWUTS,
            "ipc": nsplan.CLONE_NEWIPC,
            "cgroup": nsplan.CLONE_NEWCGROUP,
            "time": 0,
        }
        self.assertEqual(
            (nsplan.CLONE_NEWUSER, nsplan.CLONE_NEWPID, nsplan.CLONE_NEWNS),
            (0x10000000, 0x20000000, 0x00020000),
        )
        for name, flag in flags.items():
            built = plan(build(**{"user": True, "pidInit": False, name: True}))
            assert built.namespaces is not None
            self.assertEqual(built.namespaces.cloneFlags, nsplan.CLONE_NEWUSER | flag)
            self.assertEqual(
                built.namespaces.timeOffsets,
                b"monotonic 0 0\nboottime 0 0\n" if name == "time" else None,
            )
        everything = plan(
            Namespaces(
                user=True,
                pid=True,
                pidInit=False,
                mount=True,
                net=True,
                uts=True,
                ipc=True,
                cgroup=True,
                time=True,
                timeOffsets={"boottime": -1.25},
            )
        ).namespaces
        assert everything is not None
        self.assertEqual(everything.cloneFlags, sum(flags.values()))
        self.assertEqual(everything.timeOffsets, b"boottime -2 750000000\n")

    def test_setup(self) -> None:
        """
        Hostname, loopback, propagation and C{/proc} are planned as asked;
        propagation only with a mount namespace (C{MS_REC} is the
        engine's), and not when C{"unchanged"}.
        """
        built = plan(
            Namespaces(
                user=True,
                pid=True,
                pidInit=False,
                uts=True,
                hostname="box",
                net=True,
                loopback=True,
                mount=True,
                mountProc=True,
                propagation="private",
            )
        ).namespaces
        assert built is not None
        self.assertEqual(
            (built.hostname, built.loopback, built.mountProc, built.propagation),
            (b"box", True, True, 1 << 18),
        )
        self.assertEqual(
            (nsplan.MS_SLAVE, nsplan.MS_PRIVATE, nsplan.MS_SHARED, nsplan.MS_REC),
            (1 << 19, 1 << 18, 1 << 20, 1 << 14),
        )
        for word, flag in [
            ("slave", nsplan.MS_SLAVE),
            ("private", nsplan.MS_PRIVATE),
            ("shared", nsplan.MS_SHARED),
            ("unchanged", None),
        ]:
            mounted = plan(Namespaces(user=True, mount=True, propagation=word))
            assert mounted.namespaces is not None
            self.assertEqual(mounted.namespaces.propagation, flag)
        unmounted = plan(Namespaces(user=True, propagation="private")).namespaces
        assert unmounted is not None
        self.assertEqual(
            (unmounted.propagation, unmounted.hostname, unmounted.loopback),
            (None, None, False),
        )

    def test_selfMap(self) -> None:
        """
        The default maps map root to our own effective ids: a self-map,
        written by the child, with C{setgroups} denied; root's ids are set
        early (so the child keeps its capabilities), and the plan's own
        C{uid} and C{gid} stay unset.
        """
        built = plan(Namespaces(user=True))
        ns = built.namespaces
        assert ns is not None
        self.assertEqual(
            (ns.uidMap, ns.gidMap, ns.setgroups, ns.mapsByChild, ns.earlyIds),
            (f"0 {EUID} 1\n".encode(), f"0 {EGID} 1\n".encode(), b"deny", True, (0, 0)),
        )
        self.assertEqual((built.uid, built.gid, built.groups), (None, None, None))
        self.assertEqual(ns.cloneFlags, nsplan.CLONE_NEWUSER)

    def test_selfMapToAnotherId(self) -> None:
        """
        A self-map may map our ids to any id inside: still written by the
        child, and that id (not 0) is set by the ordinary credential steps,
        so it is the plan's C{uid} and C{gid}.
        """
        built = plan(
            Namespaces(user=True, uidMap=f"1000 {EUID} 1", gidMap=[(100, EGID, 1)])
        )
        ns = built.namespaces
        assert ns is not None
        self.assertEqual((ns.mapsByChild, ns.earlyIds), (True, None))
        self.assertEqual((built.uid, built.gid), (1000, 100))

    def test_parentWrittenMaps(self) -> None:
        """
        Any other map is written by the parent: several ranges, an id that
        is not ours, a range of more than one id, or C{setgroups}
        allowed.
        """
        for kwargs in [
            {"uidMap": f"0 {EUID} 1,1 100000 10"},
            {"uidMap": f"0 {EUID + 1} 1"},
            {"uidMap": f"0 {EUID} 2"},
            {"gidMap": f"0 {EGID} 1,1 100000 10"},
            {"gidMap": f"0 {EGID + 1} 1"},
            {"gidMap": f"0 {EGID} 1", "setgroups": "allow"},
        ]:
            ns = plan(build(user=True, **kwargs)).namespaces
            assert ns is not None
            self.assertFalse(ns.mapsByChild, kwargs)
            self.assertEqual(
                ns.setgroups, kwargs.get("setgroups", "deny").encode(), kwargs
            )
        ns = plan(
            Namespaces(user=True, uidMap="0 100000 10,10 200000 5", gidMap="7 7 1")
        ).namespaces
        assert ns is not None
        self.assertEqual(
            (ns.uidMap, ns.gidMap), (b"0 100000 10\n10 200000 5\n", b"7 7 1\n")
        )

    def test_targetIds(self) -> None:
        """
        Without C{uid}/C{gid}, the target ids are those our effective ids
        map to, else the lowest mapped; given ones are ids inside.  A
        target uid of 0 is set early with the target gid; any other is the
        plan's.
        """
        maps = {
            "uidMap": f"0 100000 5,5 {EUID} 1,6 200000 10",
            "gidMap": f"3 {EGID} 1,10 300000 10",
        }
        built = plan(build(user=True, **maps))
        assert built.namespaces is not None
        self.assertEqual(
            (built.namespaces.earlyIds, built.uid, built.gid), (None, 5, 3)
        )
        built = plan(build(user=True, **maps), uid=0, gid=12)
        assert built.namespaces is not None
        self.assertEqual(
            (built.namespaces.earlyIds, built.uid, built.gid), ((0, 12), None, None)
        )
        built = plan(build(user=True, **maps), uid=15)
        assert built.namespaces is not None
        self.assertEqual(
            (built.namespaces.earlyIds, built.uid, built.gid), (None, 15, 3)
        )
        # Our ids not mapped: the lowest mapped.
        unmapped = {"uidMap": "7 100000 5,2 200000 1", "gidMap": "9 300000 5"}
        built = plan(build(user=True, **unmapped))
        assert built.namespaces is not None
        self.assertEqual(
            (built.namespaces.earlyIds, built.uid, built.gid), (None, 2, 9)
        )
        built = plan(Namespaces(user=True, uidMap="0 100000 5", gidMap="9 300000 5"))
        assert built.namespaces is not None
        self.assertEqual(
            (built.namespaces.earlyIds, built.uid, built.gid), ((0, 9), None, None)
        )

    def test_unmappedIds(self) -> None:
        """
        With a user namespace, a C{uid}, C{gid} or group that its maps do
        not map is refused, naming the argument and what is mapped.
        """
        built = Namespaces(
            user=True, uidMap="0 100000 5", gidMap="0 300000 5", setgroups="allow"
        )
        cases: list[tuple[dict[str, Any], str]] = [
            ({"uid": 5}, "uid 5 is not mapped in the user namespace"),
            ({"gid": 9}, "gid 9 is not mapped in the user namespace"),
            ({"groups": [1, 5]}, "groups[1] 5 is not mapped in the user namespace"),
        ]
        for kwargs, message in cases:
            error = self.assertRaises(ValueError, plan, built, **kwargs)
            self.assertTrue(str(error).startswith(message), str(error))
        self.assertIn(
            "namespaces.uidMap maps 0-4",
            str(self.assertRaises(ValueError, plan, built, uid=5)),
        )
        self.assertEqual(plan(built, groups=[0, 4]).groups, (0, 4))
        # The default map maps 0 only.
        error = self.assertRaises(ValueError, plan, Namespaces(user=True), uid=EUID + 1)
        self.assertIn("namespaces.uidMap maps 0-0", str(error))

    def test_idsWithoutUserNamespace(self) -> None:
        """
        Without a user namespace there are no maps, and C{uid}, C{gid} and
        C{groups} are the ordinary ones.
        """
        if not PRIVILEGED:
            raise self.skipTest("needs CAP_SYS_ADMIN for namespaces without user")
        built = plan(Namespaces(uts=True, hostname="x"), uid=5, gid=6, groups=[7])
        ns = built.namespaces
        assert ns is not None
        self.assertEqual(
            (ns.cloneFlags, ns.uidMap, ns.gidMap, ns.setgroups, ns.earlyIds),
            (nsplan.CLONE_NEWUTS, None, None, None, None),
        )
        self.assertFalse(ns.mapsByChild)
        self.assertEqual((built.uid, built.gid, built.groups), (5, 6, (7,)))

    def test_groupsDeniedInPlanner(self) -> None:
        """
        The planner refuses C{groups} with C{setgroups} denied too, for
        callers that give them apart.
        """
        error = self.assertRaises(
            ValueError,
            nsplan.planNamespaces,
            Namespaces(user=True),
            None,
            None,
            (),
            EUID,
            EGID,
        )
        self.assertTrue(str(error).startswith("groups cannot be set"), str(error))

    def test_init(self) -> None:
        """
        With a pid namespace and C{pidInit}, the plan's C{init} is the path
        of txspawn's init (or the spawn fails as unsupported, naming
        C{pidInit}, when it is not built); without either, none.
        """
        from txspawn._kernel.initprogram import initProgram

        try:
            path: bytes | None = initProgram()
        except UnsupportedFeature as e:
            self.assertEqual(e.feature, "pidInit")
            error = self.assertRaises(
                UnsupportedFeature, plan, Namespaces(user=True, pid=True)
            )
            self.assertEqual(error.feature, "pidInit")
        else:
            ns = plan(Namespaces(user=True, pid=True)).namespaces
            assert ns is not None
            self.assertEqual(ns.init, path)
        for kwargs in [{"pid": True, "pidInit": False}, {"net": True}]:
            ns = plan(build(user=True, **kwargs)).namespaces
            assert ns is not None
            self.assertIsNone(ns.init)

    def test_fakeReactorChecksIds(self) -> None:
        """
        The fake reactor refuses what a real one refuses about ids inside
        a user namespace, with the same message.
        """
        reactor = MemoryProcessReactor()
        built = Namespaces(user=True, gidMap="0 0 3", setgroups="allow")
        cases: list[tuple[dict[str, Any], str]] = [
            ({"uid": 1}, "spawnProcess(): uid 1 is not mapped"),
            ({"groups": [3]}, "spawnProcess(): groups[0] 3 is not mapped"),
        ]
        for kwargs, message in cases:
            error = self.assertRaises(
                ValueError,
                reactor.spawnProcess,
                ProcessProtocol(),
                "/no/such/program",
                namespaces=built,
                **kwargs,
            )
            self.assertTrue(str(error).startswith(message), str(error))
        self.assertEqual(reactor.spawned, [])


class FaultInjectionTests(SynchronousTestCase):
    """
    L{injectChildFault}: the fault a plan carries to the engines.
    """

    def test_copiedIntoPlan(self) -> None:
        """
        Inside the block, every plan carries C{(stage, errno)}; outside it,
        none; blocks nest.
        """
        self.assertIsNone(currentFault())
        self.assertIsNone(plan(None).injectedFault)
        with injectChildFault(ChildSetupStage.HOSTNAME, errno.EPERM):
            self.assertEqual(plan(None).injectedFault, (21, errno.EPERM))
            with injectChildFault(ChildSetupStage.IDMAP, errno.EACCES):
                self.assertEqual(currentFault(), (18, errno.EACCES))
            self.assertEqual(currentFault(), (21, errno.EPERM))
        self.assertIsNone(plan(None).injectedFault)

    def test_badErrno(self) -> None:
        """
        The errno must be positive.
        """
        with self.assertRaises(ValueError):
            with injectChildFault(ChildSetupStage.HOSTNAME, 0):
                pass
        self.assertIsNone(currentFault())


class HintTests(SynchronousTestCase):
    """
    The hint a namespace step's L{SpawnError} gives when the cause is
    known.
    """

    def error(
        self,
        namespaces: Namespaces,
        stage: ChildSetupStage,
        err: int,
        detail: int = 0,
    ) -> SpawnError:
        """
        The error the engines raise for a failure at C{stage} with C{err}
        in a spawn planned with C{namespaces}.
        """
        return plan(namespaces).failureError(stage, err, detail)

    def assertHint(self, error: SpawnError, hint: str | None) -> None:
        """
        Assert that C{error} gives C{hint}, at the end of its message.
        """
        self.assertEqual(error.hint, hint)
        if hint is not None:
            self.assertTrue(str(error).endswith(f"): {hint}"), str(error))

    def test_exactTexts(self) -> None:
        """
        The hints say what the issue asks them to say.
        """
        self.assertEqual(
            nsplan.HINT_PRIVILEGE,
            "needs root (CAP_SYS_ADMIN) or a user namespace (user=True)",
        )
        self.assertIn("user.max_user_namespaces", nsplan.HINT_LIMIT)
        self.assertEqual(
            nsplan.HINT_SECURITY_MODULE,
            "a security module (AppArmor's unprivileged_userns restriction, "
            "SELinux) may be restricting user namespaces",
        )
        self.assertEqual(
            nsplan.HINT_PROC, "/proc is masked or over-mounted (in a container?)"
        )

    def test_creating(self) -> None:
        """
        Creating the namespaces: C{EPERM} without a user namespace needs
        root or one; with one, the system refuses user namespaces;
        C{ENOSPC} is a namespace limit, also for the time namespace's
        C{unshare} (and not for writing its offsets).
        """
        user = Namespaces(user=True, uts=True, time=True)
        error = self.error(user, ChildSetupStage.NAMESPACES, errno.EPERM)
        self.assertIsInstance(error, PermissionError)
        self.assertHint(error, nsplan.HINT_USERNS_REFUSED)
        for stage, detail in [
            (ChildSetupStage.NAMESPACES, 0),
            (ChildSetupStage.TIME_OFFSETS, 1),
        ]:
            self.assertHint(
                self.error(user, stage, errno.ENOSPC, detail), nsplan.HINT_LIMIT
            )
        self.assertHint(
            self.error(user, ChildSetupStage.TIME_OFFSETS, errno.ENOSPC, 2), None
        )
        self.assertHint(
            self.error(user, ChildSetupStage.NAMESPACES, errno.EINVAL), None
        )
        if PRIVILEGED:
            alone = Namespaces(uts=True, time=True)
            error = self.error(alone, ChildSetupStage.NAMESPACES, errno.EPERM)
            self.assertHint(error, nsplan.HINT_PRIVILEGE)
            self.assertEqual(
                str(error),
                "[Errno 1] Operation not permitted (while spawning: namespaces): "
                "needs root (CAP_SYS_ADMIN) or a user namespace (user=True)",
            )
            self.assertHint(
                self.error(alone, ChildSetupStage.TIME_OFFSETS, errno.EPERM, 1),
                nsplan.HINT_PRIVILEGE,
            )
            self.assertHint(
                self.error(alone, ChildSetupStage.HOSTNAME, errno.EPERM), None
            )

    def test_afterClone(self) -> None:
        """
        After a clone that made a user namespace, C{EPERM} or C{EACCES} at
        any step the namespace gives the capabilities for points at a
        security module; C{EPERM} mounting C{/proc} at a masked C{/proc};
        other errnos and other steps have no hint.
        """
        full = Namespaces(
            user=True, pid=True, pidInit=False, mount=True, mountProc=True, uts=True
        )
        for stage in [
            ChildSetupStage.IDMAP,
            ChildSetupStage.SETGID,
            ChildSetupStage.SETUID,
            ChildSetupStage.HOSTNAME,
            ChildSetupStage.LOOPBACK,
            ChildSetupStage.MOUNT_PROPAGATION,
            ChildSetupStage.TIME_OFFSETS,
        ]:
            for err in (errno.EPERM, errno.EACCES):
                self.assertHint(
                    self.error(full, stage, err, 2), nsplan.HINT_SECURITY_MODULE
                )
            self.assertHint(self.error(full, stage, errno.EINVAL, 2), None)
        self.assertHint(
            self.error(full, ChildSetupStage.MOUNT_PROC, errno.EPERM), nsplan.HINT_PROC
        )
        self.assertHint(
            self.error(full, ChildSetupStage.SETGROUPS, errno.EPERM),
            nsplan.HINT_SETGROUPS,
        )
        for stage in [
            ChildSetupStage.EXEC,
            ChildSetupStage.CHDIR,
            ChildSetupStage.SYNC,
        ]:
            self.assertHint(self.error(full, stage, errno.EPERM), None)
        self.assertEqual(
            self.error(full, ChildSetupStage.EXEC, errno.ENOENT).filename, "/bin/true"
        )

    def test_parentWrittenMap(self) -> None:
        """
        A map the parent wrote and the kernel refused: from a process with
        C{CAP_SETUID} and C{CAP_SETGID}, a security module (those without
        are checked by L{UnprivilegedTests}).
        """
        if (effectiveCapabilities() or 0) >> 6 & 3 != 3:
            raise self.skipTest("needs CAP_SETUID and CAP_SETGID")
        other = Namespaces(user=True, uidMap="0 100000 10", gidMap="0 100000 10")
        for detail in (1, 2, 3):
            self.assertHint(
                self.error(other, ChildSetupStage.IDMAP, errno.EPERM, detail),
                nsplan.HINT_SECURITY_MODULE,
            )

    def test_noNamespaces(self) -> None:
        """
        Without namespaces no hint is given, and the message is as it was.
        """
        error = plan(None).failureError(ChildSetupStage.SETUID, errno.EPERM)
        self.assertHint(error, None)
        self.assertEqual(
            str(error), "[Errno 1] Operation not permitted (while spawning: setuid)"
        )

    def test_pickle(self) -> None:
        """
        A L{SpawnError} keeps its hint, and its flavour, through pickling.
        """
        error = SpawnError.fromErrno(
            errno.EPERM, ChildSetupStage.MOUNT_PROC, None, 0, nsplan.HINT_PROC
        )
        copy = pickle.loads(pickle.dumps(error))
        self.assertIsInstance(copy, PermissionError)
        self.assertEqual(
            (copy.hint, copy.stage, str(copy)), (error.hint, error.stage, str(error))
        )


#: Run by L{UnprivilegedTests} in a Python without CAP_SYS_ADMIN,
#: CAP_SETUID and CAP_SETGID: what it is refused, and the hints it gets.
_UNPRIVILEGED = """
import errno, json, sys
from txspawn.errors import ChildSetupStage
from txspawn.options import Namespaces
from txspawn._plan.planner import isOpenFD, planSpawn
from txspawn.options import SpawnOptions
import os

refused = {}
for name in ("pid", "mount", "net", "uts", "ipc", "cgroup", "time"):
    try:
        Namespaces(**{name: True})
    except ValueError as e:
        refused[name] = str(e)
    Namespaces(user=True, **{name: True})
other = Namespaces(user=True, uidMap="0 100000 10", gidMap="0 100000 10")
plan = planSpawn("/bin/true", ["true"], parentEnviron=os.environb, isOpenFD=isOpenFD,
                 options=SpawnOptions(namespaces=other))
hints = {
    str(detail): plan.failureError(ChildSetupStage.IDMAP, errno.EPERM, detail).hint
    for detail in (1, 2, 3)
}
json.dump({"refused": refused, "hints": hints}, sys.stdout)
"""


class UnprivilegedTests(SynchronousTestCase):
    """
    What a process without C{CAP_SYS_ADMIN}, C{CAP_SETUID} and
    C{CAP_SETGID} is refused, and told: run in a fresh Python whose
    capabilities C{setpriv} dropped (from root).
    """

    def test_unprivileged(self) -> None:
        """
        Without C{CAP_SYS_ADMIN}, every namespace type but user needs
        C{user=True}; a map of other ids the parent wrote and the kernel
        refused is blamed on the missing capability.
        """
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise self.skipTest("setpriv(1) is not installed")
        if (effectiveCapabilities() or 0) >> 6 & 3 != 3 or os.geteuid() != 0:
            raise self.skipTest("needs root, to drop capabilities with setpriv")
        drop = "-sys_admin,-setuid,-setgid"
        output = subprocess.run(
            [
                setpriv,
                f"--bounding-set={drop}",
                f"--inh-caps={drop}",
                sys.executable,
                "-c",
                _UNPRIVILEGED,
            ],
            check=True,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        ).stdout
        result = json.loads(output)
        self.assertEqual(
            result["refused"],
            {
                name: f"Namespaces.{name} needs root (CAP_SYS_ADMIN) or user=True: "
                "without a user namespace only a privileged process can create "
                "namespaces"
                for name in OTHER_TYPES
            },
        )
        self.assertEqual(
            result["hints"],
            {
                "1": nsplan.HINT_GID_MAP,
                "2": nsplan.HINT_GID_MAP,
                "3": nsplan.HINT_UID_MAP,
            },
        )
