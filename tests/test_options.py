# -*- test-case-name: tests.test_options -*-
"""
Tests for L{txspawn.options.SpawnOptions}: defaults, normalisation and
validation errors that name the option.
"""

from __future__ import annotations

import grp
import resource
import signal
from typing import Any

import attrs
from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.strategies import HOSTILE_INT_EDGES
from txspawn.options import ID_MAX, NGROUPS_MAX, SpawnOptions

__all__ = ["SpawnOptionsTests"]

INF = resource.RLIM_INFINITY

#: The largest C{pid_t}.
PID_MAX = 2**31 - 1

#: Each int option's valid range, inclusive, by the C type it becomes
#: (C{mode_t} masked to the permission bits, C{pid_t}, C{gid_t} but
#: C{(gid_t)-1}, C{rlim_t} with C{-1} for C{RLIM_INFINITY}); a
#: C{deathSignal} is a valid signal besides.
INT_RANGES: dict[str, tuple[int, int]] = {
    "umask": (0, 0o777),
    "processGroup": (0, PID_MAX),
    "groups": (0, ID_MAX),
    "rlimits": (-1, 2**64 - 1),
    "deathSignal": (1, max(signal.valid_signals())),
}


def intOption(name: str, value: int) -> dict[str, Any]:
    """
    The keyword arguments of L{SpawnOptions} that give the int option
    C{name} the value C{value} (a gid in C{groups}, both limits of one
    rlimit).
    """
    if name == "groups":
        return {name: [value]}
    if name == "rlimits":
        return {name: {"NOFILE": (value, value)}}
    return {name: value}


class SpawnOptionsTests(SynchronousTestCase):
    """
    L{SpawnOptions}.
    """

    def assertRejects(
        self, exception: type[Exception], naming: str, **kwargs: Any
    ) -> Exception:
        """
        Assert that C{SpawnOptions(**kwargs)} raises C{exception} whose
        message contains C{naming}.
        """
        error: Exception = self.assertRaises(exception, SpawnOptions, **kwargs)
        self.assertIn(naming, str(error))
        return error

    def test_defaults(self) -> None:
        """
        By default nothing is changed from the parent.
        """
        o = SpawnOptions()
        self.assertEqual(
            (o.umask, o.groups, o.newSession, o.processGroup, o.rlimits),
            (None, None, False, None, ()),
        )
        self.assertIsNone(o.deathSignal)
        self.assertIsNone(o.groupIDs())

    def test_frozenAndHashable(self) -> None:
        """
        Options are immutable values: equal when equal, hashable, and
        C{attrs.evolve} keeps them valid.
        """
        o = SpawnOptions(umask=0o22, rlimits={"NOFILE": (1, 2)}, groups=[1])
        self.assertRaises(attrs.exceptions.FrozenInstanceError, setattr, o, "umask", 1)
        self.assertEqual(
            o, SpawnOptions(umask=0o22, rlimits={"NOFILE": (1, 2)}, groups=(1,))
        )
        self.assertEqual(hash(o), hash(attrs.evolve(o)))
        self.assertEqual(attrs.evolve(o, umask=0).rlimits, o.rlimits)

    def test_umask(self) -> None:
        """
        C{umask} is C{0} to C{0o777}; other ints are a L{ValueError}, other
        types a L{TypeError}, both naming C{umask}.
        """
        self.assertEqual(SpawnOptions(umask=0).umask, 0)
        self.assertEqual(SpawnOptions(umask=0o777).umask, 0o777)
        for bad in [-1, 0o1000]:
            self.assertRejects(ValueError, "SpawnOptions.umask", umask=bad)
        for wrong in ["022", True, 1.0]:
            self.assertRejects(TypeError, "SpawnOptions.umask", umask=wrong)

    def test_groups(self) -> None:
        """
        C{groups} is any iterable of gids and names, stored as a tuple.
        """
        self.assertEqual(SpawnOptions(groups=[1, "wheel"]).groups, (1, "wheel"))
        self.assertEqual(SpawnOptions(groups=iter([3])).groups, (3,))
        self.assertEqual(SpawnOptions(groups=[]).groups, ())
        self.assertEqual(SpawnOptions(groups=[]).groupIDs(), ())

    def test_groupsInvalid(self) -> None:
        """
        A string instead of a sequence, a bad entry type, an out-of-range
        gid, an empty name, or too many groups are refused, naming
        C{groups}.
        """
        self.assertRejects(TypeError, "SpawnOptions.groups", groups="wheel")
        self.assertRejects(TypeError, "SpawnOptions.groups", groups=5)
        self.assertRejects(TypeError, "SpawnOptions.groups[1]", groups=[1, 2.0])
        self.assertRejects(TypeError, "SpawnOptions.groups[0]", groups=[True])
        self.assertRejects(TypeError, "SpawnOptions.groups[0]", groups=[b"wheel"])
        self.assertRejects(ValueError, "SpawnOptions.groups[0]", groups=[-1])
        self.assertRejects(ValueError, "SpawnOptions.groups[0]", groups=[ID_MAX + 1])
        self.assertRejects(ValueError, "SpawnOptions.groups[0]", groups=[""])
        self.assertRejects(
            ValueError, "SpawnOptions.groups", groups=[0] * (NGROUPS_MAX + 1)
        )

    def test_groupIDs(self) -> None:
        """
        L{SpawnOptions.groupIDs} resolves names in order with the given
        lookup, and reports unknown names naming their index.
        """
        table = {"staff": 50}

        def getgrnam(name: str) -> grp.struct_group:
            return grp.struct_group((name, "x", table[name], []))

        o = SpawnOptions(groups=[3, "staff"])
        self.assertEqual(o.groupIDs(getgrnam), (3, 50))
        error = self.assertRaises(
            ValueError, SpawnOptions(groups=[1, "nope"]).groupIDs, getgrnam
        )
        self.assertIn("SpawnOptions.groups[1]", str(error))

    def test_newSession(self) -> None:
        """
        C{newSession} must be a bool.
        """
        self.assertTrue(SpawnOptions(newSession=True).newSession)
        self.assertRejects(TypeError, "SpawnOptions.newSession", newSession=1)

    def test_processGroup(self) -> None:
        """
        C{processGroup} is C{None}, C{0} or a positive pgid that fits
        C{pid_t}.
        """
        self.assertEqual(SpawnOptions(processGroup=0).processGroup, 0)
        self.assertEqual(SpawnOptions(processGroup=42).processGroup, 42)
        self.assertEqual(SpawnOptions(processGroup=PID_MAX).processGroup, PID_MAX)
        self.assertRejects(ValueError, "SpawnOptions.processGroup", processGroup=-1)
        # Beyond pid_t: the Python engine used to truncate 2**32 and 2**64
        # to 0 (a new group) and the C engine to refuse them unnamed.
        for pgid in (PID_MAX + 1, 2**32, 2**64, 10**400):
            error = self.assertRejects(
                ValueError, "SpawnOptions.processGroup", processGroup=pgid
            )
            self.assertIn(str(PID_MAX), str(error))
        self.assertRejects(TypeError, "SpawnOptions.processGroup", processGroup="0")
        self.assertRejects(TypeError, "SpawnOptions.processGroup", processGroup=False)

    def test_sessionAndGroup(self) -> None:
        """
        C{newSession} and C{processGroup} together are a L{ValueError}
        naming both.
        """
        error = self.assertRejects(
            ValueError, "SpawnOptions.newSession", newSession=True, processGroup=0
        )
        self.assertIn("processGroup", str(error))

    def test_rlimits(self) -> None:
        """
        C{rlimits} accepts resource numbers and names (with or without
        C{RLIMIT_}), infinity as C{RLIM_INFINITY} or C{2**64 - 1}, and is
        stored as sorted triples.
        """
        o = SpawnOptions(
            rlimits={
                resource.RLIMIT_NOFILE: (10, 20),
                "CORE": (0, INF),
                "RLIMIT_STACK": (INF, 2**64 - 1),
                resource.RLIMIT_CPU: [5, 5],
            }
        )
        expected = sorted(
            [
                (resource.RLIMIT_NOFILE, 10, 20),
                (resource.RLIMIT_CORE, 0, INF),
                (resource.RLIMIT_STACK, INF, INF),
                (resource.RLIMIT_CPU, 5, 5),
            ]
        )
        self.assertEqual(list(o.rlimits), expected)

    def test_rlimitsInvalid(self) -> None:
        """
        Unknown resources, bad pairs, negative or huge values and a soft
        limit above the hard one are refused, naming the resource.
        """
        nofile = resource.RLIMIT_NOFILE
        self.assertRejects(ValueError, "unknown resource", rlimits={"BOGUS": (1, 1)})
        self.assertRejects(ValueError, "unknown resource", rlimits={999: (1, 1)})
        self.assertRejects(TypeError, "SpawnOptions.rlimits", rlimits={1.0: (1, 1)})
        self.assertRejects(TypeError, "SpawnOptions.rlimits", rlimits=[(1, 1)])
        self.assertRejects(TypeError, "RLIMIT_NOFILE", rlimits={nofile: 5})
        self.assertRejects(TypeError, "RLIMIT_NOFILE", rlimits={nofile: (1, 2, 3)})
        self.assertRejects(TypeError, "RLIMIT_NOFILE] soft", rlimits={nofile: ("1", 2)})
        self.assertRejects(ValueError, "RLIMIT_NOFILE] soft", rlimits={nofile: (-2, 2)})
        self.assertRejects(
            ValueError, "RLIMIT_NOFILE] hard", rlimits={nofile: (1, 2**64)}
        )
        self.assertRejects(ValueError, "exceeds", rlimits={nofile: (3, 2)})
        self.assertRejects(ValueError, "exceeds", rlimits={nofile: (INF, 2)})
        self.assertRejects(
            ValueError, "given twice", rlimits={nofile: (1, 2), "NOFILE": (1, 2)}
        )

    @given(
        st.integers(min_value=-1, max_value=2**64 - 1),
        st.integers(min_value=-1, max_value=2**64 - 1),
    )
    def test_rlimitOrder(self, soft: int, hard: int) -> None:
        """
        A pair is accepted exactly when C{soft <= hard}, with infinity above
        every finite value.
        """

        def key(v: int) -> int:
            return 2**64 if v in (-1, 2**64 - 1) else v

        if key(soft) <= key(hard):
            o = SpawnOptions(rlimits={"NOFILE": (soft, hard)})
            ((_, s, h),) = o.rlimits
            self.assertEqual((key(s), key(h)), (key(soft), key(hard)))
        else:
            self.assertRejects(ValueError, "exceeds", rlimits={"NOFILE": (soft, hard)})

    @given(
        st.sampled_from(sorted(INT_RANGES)),
        st.one_of(st.sampled_from(HOSTILE_INT_EDGES), st.integers()),
    )
    def test_intsFitTheirCType(self, name: str, value: int) -> None:
        """
        Every int option takes exactly the ints its C type can hold (and
        that are valid for it): any other is a L{ValueError} naming the
        option, never truncated by an engine nor refused by one with an
        error of its own.
        """
        low, high = INT_RANGES[name]
        valid = low <= value <= high
        if name == "deathSignal":
            valid = value in signal.valid_signals()
        if valid:
            SpawnOptions(**intOption(name, value))
        else:
            self.assertRejects(
                ValueError, f"SpawnOptions.{name}", **intOption(name, value)
            )

    def test_deathSignal(self) -> None:
        """
        C{deathSignal} is a valid signal number (an L{signal.Signals} works).
        """
        self.assertEqual(SpawnOptions(deathSignal=signal.SIGKILL).deathSignal, 9)
        self.assertEqual(
            type(SpawnOptions(deathSignal=signal.SIGKILL).deathSignal), int
        )
        for bad in [0, -1, 4096]:
            self.assertRejects(ValueError, "SpawnOptions.deathSignal", deathSignal=bad)
        for wrong in ["TERM", True]:
            self.assertRejects(TypeError, "SpawnOptions.deathSignal", deathSignal=wrong)
