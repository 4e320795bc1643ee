# -*- test-case-name: tests.test_cgroupoptions -*-
"""
Tests for the cgroup options (L{txspawn.options.Cgroup},
L{txspawn.options.CgroupStats}): validation and conversion when built,
the controllers the limits need, the C{cgroup=} keyword of every entry
point, and its way into the plan.

No cgroup is created here (the behaviour tests do that): building a
L{Cgroup} never looks at the filesystem.
"""

from __future__ import annotations

import errno
import math
import os
import pathlib
import pickle
from typing import Any

import attrs
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.protocol import ProcessProtocol
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from tests.builders import ReactorTestMixin
from txspawn import ProcessResult, run
from txspawn._plan.planner import isOpenFD, planSpawn
from txspawn.errors import ChildSetupStage, SpawnError
from txspawn.interfaces import ISpawner
from txspawn.options import Cgroup, CgroupStats, SpawnOptions
from txspawn.testing import MemoryProcessReactor

__all__ = [
    "CgroupStatsTests",
    "CgroupTests",
    "KeywordTests",
    "PlanTests",
    "ResultTests",
]


def build(field: str, value: Any) -> Cgroup:
    """
    C{Cgroup(field=value)}.
    """
    kwargs: dict[str, Any] = {field: value}
    return Cgroup(**kwargs)


#: Powers of 1024 by the suffixes a size may have.
UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50}


class CgroupTests(SynchronousTestCase):
    """
    L{Cgroup}: each field checked and converted when the value is built.
    """

    def assertRejects(
        self, exception: type[Exception], field: str, value: object
    ) -> str:
        """
        Assert that C{Cgroup(field=value)} raises C{exception} whose message
        names C{Cgroup.<field>}, and return the message.
        """
        error = self.assertRaises(exception, build, field, value)
        message = str(error)
        self.assertIn(f"Cgroup.{field}", message)
        return message

    def test_defaults(self) -> None:
        """
        By default: a parent found automatically, required, no limit, and
        what is left killed when the child is reaped.
        """
        c = Cgroup()
        self.assertEqual(
            attrs.asdict(c),
            {
                "parent": None,
                "required": True,
                "memoryMax": None,
                "memoryHigh": None,
                "pidsMax": None,
                "cpuMax": None,
                "ioWeight": None,
                "killOnExit": True,
            },
        )

    def test_frozenAndHashable(self) -> None:
        """
        A L{Cgroup} is an immutable value: equal when equal, hashable,
        picklable, and C{attrs.evolve} gives back an equal value (every
        converter takes what it produced).
        """
        c = Cgroup(
            parent="/sys/fs/cgroup/x/",
            required=False,
            memoryMax="64M",
            memoryHigh=1000,
            pidsMax=5,
            cpuMax=0.5,
            ioWeight=50,
            killOnExit=False,
        )
        self.assertRaises(
            attrs.exceptions.FrozenInstanceError, setattr, c, "pidsMax", 1
        )
        self.assertEqual(
            c,
            Cgroup(
                parent="/sys/fs/cgroup/x",
                required=False,
                memoryMax=64 * 2**20,
                memoryHigh=1000,
                pidsMax=5,
                cpuMax=(50000, 100000),
                ioWeight=50,
                killOnExit=False,
            ),
        )
        self.assertEqual(attrs.evolve(c), c)
        self.assertEqual(hash(attrs.evolve(c)), hash(c))
        self.assertEqual(pickle.loads(pickle.dumps(c)), c)
        self.assertEqual(attrs.evolve(c, pidsMax=None).memoryMax, c.memoryMax)
        self.assertRaises(ValueError, attrs.evolve, c, pidsMax=0)

    @given(
        parent=st.one_of(st.none(), st.just("/sys/fs/cgroup/a/../b/")),
        required=st.booleans(),
        memory=st.one_of(st.none(), st.integers(0, 2**63 - 1)),
        pidsMax=st.one_of(st.none(), st.integers(1, 4 * 2**20)),
        cpuMax=st.one_of(
            st.none(),
            st.floats(0.01, 1000.0),
            st.tuples(
                st.one_of(st.none(), st.integers(1000, 2**44 - 1)),
                st.integers(1000, 1_000_000),
            ),
        ),
        ioWeight=st.one_of(st.none(), st.integers(1, 10000)),
    )
    def test_evolveRoundTrip(
        self,
        parent: str | None,
        required: bool,
        memory: int | None,
        pidsMax: int | None,
        cpuMax: Any,
        ioWeight: int | None,
    ) -> None:
        """
        Whatever valid values a L{Cgroup} was built from, building it again
        from its own fields (as C{attrs.evolve} does) gives an equal value.
        """
        c = Cgroup(
            parent=parent,
            required=required,
            memoryMax=memory,
            memoryHigh=memory,
            pidsMax=pidsMax,
            cpuMax=cpuMax,
            ioWeight=ioWeight,
        )
        self.assertEqual(Cgroup(**attrs.asdict(c, recurse=False)), c)
        self.assertEqual(attrs.evolve(c), c)

    def test_parent(self) -> None:
        """
        C{parent} is an absolute path, kept as text and normalised: bytes
        and path objects are accepted, C{..}, C{.}, doubled and trailing
        slashes are resolved as text.  It is not looked up: a path that
        does not exist is fine until a child is spawned.
        """
        for spec, stored in [
            (None, None),
            ("/sys/fs/cgroup/unified", "/sys/fs/cgroup/unified"),
            ("/sys/fs/cgroup/unified/", "/sys/fs/cgroup/unified"),
            ("/sys/fs//cgroup/./a/../b", "/sys/fs/cgroup/b"),
            ("//sys/fs/cgroup", "/sys/fs/cgroup"),
            ("/", "/"),
            (b"/sys/fs/cgroup/x", "/sys/fs/cgroup/x"),
            (pathlib.PurePosixPath("/sys/fs/cgroup/y"), "/sys/fs/cgroup/y"),
            ("/nonexistent/cgroup", "/nonexistent/cgroup"),
        ]:
            with self.subTest(spec=spec):
                self.assertEqual(Cgroup(parent=spec).parent, stored)

    def test_parentInvalid(self) -> None:
        """
        A relative path or one with NUL is a L{ValueError}, anything but a
        path a L{TypeError}, each naming C{Cgroup.parent}.
        """
        for value in ["", "sys/fs/cgroup", "./x", "../x", b"rel"]:
            with self.subTest(value=value):
                message = self.assertRejects(ValueError, "parent", value)
                self.assertIn("absolute", message)
        self.assertIn("NUL", self.assertRejects(ValueError, "parent", "/a\0b"))
        for bad in [1, True, ["/a"], object()]:
            with self.subTest(value=bad):
                self.assertRejects(TypeError, "parent", bad)

    def test_bools(self) -> None:
        """
        C{required} and C{killOnExit} are bools; anything else, truthy or
        not, is a L{TypeError} naming the field.
        """
        for field in ("required", "killOnExit"):
            for value in (True, False):
                self.assertIs(getattr(build(field, value), field), value)
            for bad in (1, 0, "yes", None):
                with self.subTest(field=field, value=bad):
                    self.assertRejects(TypeError, field, bad)

    def test_memorySizes(self) -> None:
        """
        C{memoryMax} and C{memoryHigh} are byte counts: an int, or text
        with a 1024-based suffix in either case (C{"64M"} is 64 MiB), or
        C{"max"} for no limit, as C{memory.max} itself reads them.
        """
        for field in ("memoryMax", "memoryHigh"):
            for spec, stored in [
                (None, None),
                ("max", None),
                (" max\n", None),
                (0, 0),
                (4096, 4096),
                ("4096", 4096),
                ("512K", 512 * 2**10),
                ("512k", 512 * 2**10),
                ("64M", 64 * 2**20),
                ("1G", 2**30),
                ("1g", 2**30),
                ("2T", 2 * 2**40),
                ("1P", 2**50),
                (" 64M\n", 64 * 2**20),
                (2**63 - 1, 2**63 - 1),
            ]:
                with self.subTest(field=field, spec=spec):
                    self.assertEqual(getattr(build(field, spec), field), stored)

    @given(st.integers(0, 2**40), st.sampled_from(sorted(UNITS)), st.booleans())
    def test_memorySizeText(self, number: int, unit: str, lower: bool) -> None:
        """
        Any count with any suffix is that many powers of 1024 bytes.
        """
        text = f"{number}{unit.lower() if lower else unit}"
        size = number * UNITS[unit]
        if size > 2**63 - 1:
            self.assertRejects(ValueError, "memoryMax", text)
        else:
            self.assertEqual(Cgroup(memoryMax=text).memoryMax, size)

    def test_memorySizesInvalid(self) -> None:
        """
        A size out of range or text that is not a size is a L{ValueError};
        a float, a bool or another type a L{TypeError}; each names the
        field.
        """
        for field in ("memoryMax", "memoryHigh"):
            for value in [-1, 2**63, "", "M", "64MB", "64 M", "1.5G", "-1", "0x10",
                          "MAX", "none", "9" * 30, "64X", "\u0661\u0662",
                          "64\u212a"]:  # fmt: skip
                with self.subTest(field=field, value=value):
                    self.assertRejects(ValueError, field, value)
            for bad in [1.0, True, b"64M", [1]]:
                with self.subTest(field=field, value=bad):
                    self.assertRejects(TypeError, field, bad)

    def test_pidsMax(self) -> None:
        """
        C{pidsMax} is C{1} to C{PID_MAX_LIMIT} (4194304), or C{None} (or
        C{"max"}) for no limit.
        """
        for spec, stored in [(None, None), ("max", None), (1, 1), (5, 5),
                              (4194304, 4194304)]:  # fmt: skip
            with self.subTest(spec=spec):
                self.assertEqual(Cgroup(pidsMax=spec).pidsMax, stored)
        for value in (0, -1, 4194305):
            with self.subTest(value=value):
                self.assertRejects(ValueError, "pidsMax", value)
        for bad in ("5", 5.0, True, [5]):
            with self.subTest(value=bad):
                self.assertRejects(TypeError, "pidsMax", bad)

    def test_cpuMaxPairs(self) -> None:
        """
        C{cpuMax} is C{(quota, period)} in microseconds, the period 1000 to
        1000000, the quota at least 1000 or C{None} (or C{"max"}) for no
        quota; a list is taken as a pair.
        """
        cases: list[tuple[Any, Any]] = [
            (None, None),
            ("max", None),
            ((50000, 100000), (50000, 100000)),
            ([50000, 100000], (50000, 100000)),
            ((1000, 1000), (1000, 1000)),
            ((2**44 - 1, 1_000_000), (2**44 - 1, 1_000_000)),
            ((None, 100000), (None, 100000)),
            (("max", 100000), (None, 100000)),
            ((300000, 100000), (300000, 100000)),
        ]
        for spec, stored in cases:
            with self.subTest(spec=spec):
                self.assertEqual(Cgroup(cpuMax=spec).cpuMax, stored)

    def test_cpuMaxPairsInvalid(self) -> None:
        """
        A period or quota out of the kernel's range is a L{ValueError}; a
        pair of the wrong types or shape a L{TypeError}; each names
        C{Cgroup.cpuMax}.
        """
        for value in [(999, 100000), (2**44, 100000), (50000, 999),
                      (50000, 1_000_001), (0, 100000), (-1, 100000),
                      (None, 0)]:  # fmt: skip
            with self.subTest(value=value):
                self.assertRejects(ValueError, "cpuMax", value)
        for bad in [(50000.0, 100000), (50000, 100000.0), ("50000", 100000),
                    (50000, None), (True, 100000), (50000,), (1, 2, 3),
                    "50000 100000", {50000: 100000}]:  # fmt: skip
            with self.subTest(value=bad):
                self.assertRejects(TypeError, "cpuMax", bad)

    def test_cpuMaxCPUs(self) -> None:
        """
        A number of CPUs is C{(round(cpus * 100000), 100000)}: C{0.5} is
        half a CPU, C{2} two; from 0.01 CPU (the smallest quota, 1000 us).
        """
        for spec, stored in [
            (0.5, (50000, 100000)),
            (1, (100000, 100000)),
            (2, (200000, 100000)),
            (1.5, (150000, 100000)),
            (0.01, (1000, 100000)),
            (0.123456, (12346, 100000)),
        ]:
            with self.subTest(spec=spec):
                self.assertEqual(Cgroup(cpuMax=spec).cpuMax, stored)

    @given(st.floats(0.01, 10000.0))
    def test_cpuMaxCPUsAny(self, cpus: float) -> None:
        """
        Any number of CPUs from 0.01 converts to the nearest quota for the
        default period, and back to (almost) the same number.
        """
        cpuMax = Cgroup(cpuMax=cpus).cpuMax
        self.assertEqual(cpuMax, (round(cpus * 100000), 100000))
        assert cpuMax is not None
        quota, period = cpuMax
        assert quota is not None
        # Half a microsecond of quota per period, at most.
        self.assertLessEqual(abs(quota / period - cpus), 0.51 / 100000)

    def test_cpuMaxCPUsInvalid(self) -> None:
        """
        No CPU, fewer than 0.01, a negative, infinite or NaN number, or
        more CPUs than the largest quota, is a L{ValueError} naming
        C{Cgroup.cpuMax}; a bool is a L{TypeError}.
        """
        for value in [0, 0.0, -1, -0.5, 0.004, math.inf, -math.inf, math.nan,
                      2**44]:  # fmt: skip
            with self.subTest(value=value):
                self.assertRejects(ValueError, "cpuMax", value)
        self.assertIn("0.01", self.assertRejects(ValueError, "cpuMax", 0.001))
        for bad in (True, False, "0.5"):
            with self.subTest(value=bad):
                self.assertRejects(TypeError, "cpuMax", bad)

    def test_ioWeight(self) -> None:
        """
        C{ioWeight} is C{1} to C{10000} or C{None}.
        """
        for value in (None, 1, 100, 10000):
            self.assertEqual(Cgroup(ioWeight=value).ioWeight, value)
        for value in (0, -1, 10001):
            with self.subTest(value=value):
                self.assertRejects(ValueError, "ioWeight", value)
        for bad in ("100", 100.0, True):
            with self.subTest(value=bad):
                self.assertRejects(TypeError, "ioWeight", bad)

    def test_controllersNeeded(self) -> None:
        """
        The controllers are those of the limits given, and no other:
        C{memory} for either memory limit, C{pids}, C{cpu}, C{io}.
        """
        cases: list[tuple[dict[str, Any], set[str]]] = [
            ({}, set()),
            ({"parent": "/x", "required": False, "killOnExit": False}, set()),
            ({"memoryMax": "max"}, set()),
            ({"memoryMax": 0}, {"memory"}),
            ({"memoryHigh": "1G"}, {"memory"}),
            ({"memoryMax": 1, "memoryHigh": 1}, {"memory"}),
            ({"pidsMax": 5}, {"pids"}),
            ({"cpuMax": 1}, {"cpu"}),
            ({"cpuMax": (None, 100000)}, {"cpu"}),
            ({"ioWeight": 10}, {"io"}),
            (
                {"memoryMax": 1, "pidsMax": 1, "cpuMax": 1, "ioWeight": 1},
                {"memory", "pids", "cpu", "io"},
            ),
        ]
        for kwargs, needed in cases:
            with self.subTest(kwargs=kwargs):
                result = Cgroup(**kwargs).controllersNeeded()
                self.assertIsInstance(result, frozenset)
                self.assertEqual(result, needed)


def stats(**kwargs: Any) -> CgroupStats:
    """
    A L{CgroupStats} with plausible values, changed by C{kwargs}.
    """
    values: dict[str, Any] = {
        "path": "/sys/fs/cgroup/txspawn/txspawn-1-2-3",
        "placement": "clone",
        "placementNote": None,
        "cpuUsageUsec": 30,
        "cpuUserUsec": 20,
        "cpuSystemUsec": 10,
        "cpuThrottledCount": None,
        "cpuThrottledUsec": None,
        "memoryPeak": None,
        "oomKills": None,
        "pidsPeak": None,
        "io": None,
    }
    values.update(kwargs)
    return CgroupStats(**values)


class CgroupStatsTests(SynchronousTestCase):
    """
    L{CgroupStats}.
    """

    def test_fieldOrder(self) -> None:
        """
        The fields are in the order of the contract, so the stats can be
        built positionally.
        """
        self.assertEqual(
            [a.name for a in attrs.fields(CgroupStats)],
            [
                "path",
                "placement",
                "placementNote",
                "cpuUsageUsec",
                "cpuUserUsec",
                "cpuSystemUsec",
                "cpuThrottledCount",
                "cpuThrottledUsec",
                "memoryPeak",
                "oomKills",
                "pidsPeak",
                "io",
            ],
        )

    def test_oomKilled(self) -> None:
        """
        C{oomKilled} is true when the kernel killed at least one process of
        the cgroup for memory; without the memory controller it is false.
        """
        for oomKills, killed in [(None, False), (0, False), (1, True), (3, True)]:
            with self.subTest(oomKills=oomKills):
                self.assertIs(stats(oomKills=oomKills).oomKilled, killed)

    def test_value(self) -> None:
        """
        Stats are frozen, equal when equal, hashable with C{io} (which is
        not part of the hash), and keep a copy of C{io}: changing the
        mapping they were built from changes nothing.
        """
        io = {"8:0": {"rbytes": 1, "wbytes": 2}}
        s = stats(io=io, memoryPeak=4096)
        io["8:0"]["rbytes"] = 99
        io["8:16"] = {}
        self.assertEqual(s.io, {"8:0": {"rbytes": 1, "wbytes": 2}})
        self.assertEqual(
            s, stats(io={"8:0": {"rbytes": 1, "wbytes": 2}}, memoryPeak=4096)
        )
        self.assertNotEqual(s, stats(io={"8:0": {"rbytes": 2}}, memoryPeak=4096))
        self.assertEqual(hash(s), hash(attrs.evolve(s)))
        self.assertRaises(attrs.exceptions.FrozenInstanceError, setattr, s, "path", "")
        self.assertEqual(pickle.loads(pickle.dumps(s)), s)
        self.assertIsNone(stats().io)


class ResultTests(SynchronousTestCase):
    """
    L{ProcessResult}'s cgroup fields.
    """

    def test_fields(self) -> None:
        """
        C{cgroup} and C{cgroupUnavailable} come last and default to C{None},
        so a result built as before is unchanged; they hold the stats and
        the reason.
        """
        base: dict[str, Any] = {
            "argv": ("true",),
            "pid": 1,
            "exitCode": 0,
            "signal": None,
            "status": 0,
            "stdout": b"",
            "stderr": b"",
            "rusage": None,
            "duration": 0.0,
        }
        names = [a.name for a in attrs.fields(ProcessResult)]
        self.assertEqual(names[: len(base)], list(base))
        self.assertEqual(names[-2:], ["cgroup", "cgroupUnavailable"])
        plain = ProcessResult(**base)
        self.assertEqual((plain.cgroup, plain.cgroupUnavailable), (None, None))
        s = stats(oomKills=1)
        result = ProcessResult(**base, cgroup=s, cgroupUnavailable=None)
        self.assertIs(result.cgroup, s)
        self.assertTrue(result.cgroup is not None and result.cgroup.oomKilled)
        self.assertEqual(
            ProcessResult(**base, cgroupUnavailable="why").cgroupUnavailable, "why"
        )


class KeywordTests(SynchronousTestCase):
    """
    The C{cgroup=} option of L{SpawnOptions} and of the entry points.
    """

    def test_spawnOptions(self) -> None:
        """
        L{SpawnOptions.cgroup} is C{None} by default, takes a L{Cgroup},
        and refuses anything else with a L{TypeError} naming
        C{SpawnOptions.cgroup}.
        """
        self.assertIsNone(SpawnOptions().cgroup)
        c = Cgroup(pidsMax=3)
        self.assertIs(SpawnOptions(cgroup=c).cgroup, c)
        for bad in (True, {"pidsMax": 3}, "cgroup", Cgroup):
            with self.subTest(value=bad):
                error = self.assertRaises(TypeError, SpawnOptions, cgroup=bad)
                self.assertIn("SpawnOptions.cgroup must be", str(error))

    def test_keyword(self) -> None:
        """
        C{spawnProcess(..., cgroup=...)} takes a L{Cgroup} (recorded by the
        fake reactor, checked by the same code as a real reactor's), and
        its message for anything else names the keyword C{cgroup}, not the
        L{SpawnOptions} field.
        """
        reactor = MemoryProcessReactor()
        c = Cgroup(memoryMax="1G")
        reactor.spawnProcess(ProcessProtocol(), "/bin/true", ["true"], cgroup=c)
        self.assertEqual(reactor.spawned[0].options, {"cgroup": c})
        reactor.spawnProcess(ProcessProtocol(), "/bin/true", ["true"], cgroup=None)
        for bad in (True, {"pidsMax": 3}):
            with self.subTest(value=bad):
                error = self.assertRaises(
                    TypeError,
                    reactor.spawnProcess,
                    ProcessProtocol(),
                    "/bin/true",
                    ["true"],
                    cgroup=bad,
                )
                message = str(error)
                self.assertIn("cgroup must be a txspawn.options.Cgroup", message)
                self.assertNotIn("SpawnOptions.cgroup", message)
        self.assertEqual(len(reactor.spawned), 2)

    def test_fieldMessageThroughKeyword(self) -> None:
        """
        A bad limit is refused when the L{Cgroup} is built, naming its
        field, before any entry point sees it.
        """
        error = self.assertRaises(ValueError, Cgroup, pidsMax=0)
        self.assertIn("Cgroup.pidsMax", str(error))


def _plan(options: SpawnOptions | None) -> Any:
    return planSpawn(
        "/bin/true",
        ["true"],
        parentEnviron=os.environb,
        isOpenFD=isOpenFD,
        options=options,
    )


class PlanTests(ReactorTestMixin, SynchronousTestCase):
    """
    The L{Cgroup} given to an entry point reaches the L{SpawnPlan} the
    engine gets, unchanged; the planner looks at no cgroup file.
    """

    engineName = "python"
    monitorName = "sigchld"

    def test_planner(self) -> None:
        """
        C{planSpawn} copies C{options.cgroup} into the plan, the same
        object; without it the plan's C{cgroup} is C{None}.  A parent that
        does not exist is no error here.
        """
        c = Cgroup(parent="/nonexistent/cgroup", pidsMax=2)
        self.assertIs(_plan(SpawnOptions(cgroup=c)).cgroup, c)
        self.assertIsNone(_plan(SpawnOptions()).cgroup)
        self.assertIsNone(_plan(None).cgroup)

    def test_throughSpawnProcessAndRun(self) -> None:
        """
        A real reactor's C{spawnProcess(..., cgroup=c)}, and L{run}'s,
        check the option and hand the engine a plan whose C{cgroup} is
        C{c}.  (The engine here records the plan and fails the spawn, so
        no child is started.)
        """
        plans: list[Any] = []

        @implementer(ISpawner)
        class Recording:
            name = "recording"

            def spawn(
                self, plan: Any, fdMap: Any, ttyName: Any, cgroupLeaf: Any = None
            ) -> Any:
                plans.append(plan)
                raise SpawnError.fromErrno(
                    errno.ENOENT, ChildSetupStage.EXEC, "/bin/true"
                )

        reactor = self.buildReactor()
        reactor.processSpawner.spawner = Recording()
        # Best effort: whether this host can give the child a cgroup is not
        # this test's business.
        c = Cgroup(required=False)
        self.assertRaises(
            SpawnError,
            reactor.spawnProcess,
            ProcessProtocol(),
            "/bin/true",
            ["true"],
            cgroup=c,
        )
        self.failureResultOf(run(["/bin/true"], reactor=reactor, cgroup=c), SpawnError)
        self.assertEqual([plan.cgroup for plan in plans], [c, c])
        self.assertIs(plans[0].cgroup, c)
