# -*- test-case-name: tests.test_features -*-
"""
Tests for L{txspawn._kernel.features} and L{txspawn._kernel.probes}: the
kernel/libc probes, their caching, the override hook and the reasons.
"""

from __future__ import annotations

import errno
import os

from twisted.trial.unittest import SynchronousTestCase

from tests.hygiene import openFDs
from txspawn._kernel import features as _features
from txspawn._kernel.features import FEATURE_NAMES, Features, FeatureState
from txspawn._kernel.probes import _Cache, _fromErrno, probeFeatures


def _kernel() -> tuple[int, int]:
    major, minor = os.uname().release.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()))


class ProbeTests(SynchronousTestCase):
    """
    The probes, run on this machine (Linux 6.x, glibc 2.36).
    """

    def test_allNamesProbed(self) -> None:
        """
        L{probeFeatures} has a verdict and a non-empty reason for every name
        of L{FEATURE_NAMES}.
        """
        features = probeFeatures(refresh=True)
        self.assertEqual(sorted(features), sorted(FEATURE_NAMES))
        for name in FEATURE_NAMES:
            self.assertIsInstance(features.enabled(name), bool)
            self.assertTrue(features.reason(name))

    def test_modernKernelFeaturesOn(self) -> None:
        """
        On this kernel (>= 5.11) and glibc (>= 2.34) every feature that a
        Python-level probe can see is on.
        """
        if _kernel() < (5, 11):
            raise self.skipTest(f"kernel {os.uname().release} is older than 5.11")
        features = probeFeatures(refresh=True)
        for name in (
            _features.PIDFD_OPEN,
            _features.WAITID_PIDFD,
            _features.PIDFD_SEND_SIGNAL,
            _features.CLOSE_RANGE,
            _features.CLOSE_RANGE_CLOEXEC,
            _features.SPAWN_ADDCLOSEFROM,
            _features.SPAWN_ADDCHDIR,
            _features.OPENPTY,
        ):
            self.assertTrue(features.enabled(name), (name, features.reason(name)))

    def test_clone3(self) -> None:
        """
        C{clone3} is probed without creating a process: here it is on (or
        off with the reason naming ENOSYS/EPERM, as a seccomp filter may
        block it), and C{CLONE_PIDFD} follows it.
        """
        features = probeFeatures(refresh=True)
        if features.enabled(_features.CLONE3):
            self.assertTrue(features.enabled(_features.CLONE_PIDFD))
            self.assertIn("clone3", features.reason(_features.CLONE_PIDFD))
        else:
            self.assertRegex(features.reason(_features.CLONE3), "ENOSYS|EPERM")
            self.assertIn("C engine", features.reason(_features.CLONE_PIDFD))

    def test_cEngineOnly(self) -> None:
        """
        The clone3 flags only a real clone3 can probe are off at the Python
        level, with their minimum kernel and why: C{CLONE_CLEAR_SIGHAND} is
        left to the C engine, C{CLONE_INTO_CGROUP} to the cgroups probe
        (L{txspawn._cgroup.support}), which clones into a real leaf.
        """
        features = probeFeatures()
        for name, minimum, why in [
            (_features.CLONE_CLEAR_SIGHAND, "5.5", "probed by the C engine"),
            (_features.CLONE_INTO_CGROUP, "5.7", "the cgroups section probes it"),
        ]:
            self.assertFalse(features.enabled(name))
            self.assertIn("only starting a real child tells", features.reason(name))
            self.assertIn(why, features.reason(name))
            self.assertIn(minimum, features.reason(name))

    def test_everyFeatureHasAUse(self) -> None:
        """
        Every feature has a plain description of what it gives txspawn (or
        that txspawn does without it), for C{python -m txspawn info}.
        """
        self.assertEqual(set(_features.FEATURE_USES), set(FEATURE_NAMES))
        for name, use in _features.FEATURE_USES.items():
            self.assertRegex(use, r"^(it would|txspawn does not|spawning)", name)

    def test_probesLeakNothing(self) -> None:
        """
        Probing opens no fd that outlives it and starts no process.
        """
        before = openFDs()
        probeFeatures(refresh=True)
        self.assertEqual(openFDs(), before)

    def test_cached(self) -> None:
        """
        L{probeFeatures} probes once and returns the cached object after.
        """
        first = probeFeatures()
        self.assertIs(probeFeatures(), first)
        refreshed = probeFeatures(refresh=True)
        self.assertEqual(refreshed, first)


class FeaturesTests(SynchronousTestCase):
    """
    L{Features}: queries, overrides, description.
    """

    def setUp(self) -> None:
        self.features = Features(
            {
                _features.PIDFD_OPEN: FeatureState(True, "works"),
                _features.CLONE3: FeatureState(False, "ENOSYS (needs Linux 5.3)"),
            }
        )

    def test_enabledAndReason(self) -> None:
        """
        C{enabled} and C{reason} return the stored verdict.
        """
        self.assertTrue(self.features.enabled(_features.PIDFD_OPEN))
        self.assertFalse(self.features.enabled(_features.CLONE3))
        self.assertEqual(
            self.features.reason(_features.CLONE3), "ENOSYS (needs Linux 5.3)"
        )

    def test_unknownName(self) -> None:
        """
        An unknown feature name raises L{KeyError} naming it and the known
        ones.
        """
        e = self.assertRaises(KeyError, self.features.enabled, "teleport")
        self.assertIn("teleport", str(e))
        self.assertIn(_features.PIDFD_OPEN, str(e))
        self.assertRaises(KeyError, self.features.reason, "teleport")

    def test_override(self) -> None:
        """
        C{override} returns a new L{Features} with one verdict replaced and
        leaves the original alone.
        """
        off = self.features.override(_features.PIDFD_OPEN, False, "test says no")
        self.assertFalse(off.enabled(_features.PIDFD_OPEN))
        self.assertEqual(off.reason(_features.PIDFD_OPEN), "test says no")
        self.assertTrue(self.features.enabled(_features.PIDFD_OPEN))
        self.assertFalse(off.enabled(_features.CLONE3))

    def test_overrideProbed(self) -> None:
        """
        The probed features can be overridden too (how tests force the
        SIGCHLD fallback).
        """
        probed = probeFeatures()
        off = probed.override(_features.PIDFD_OPEN, False, "forced")
        self.assertFalse(off.enabled(_features.PIDFD_OPEN))
        self.assertIsNot(off, probed)
        self.assertIs(probeFeatures(), probed)

    def test_overrideNewName(self) -> None:
        """
        The C engine can add a verdict under a name of its own.
        """
        more = self.features.override("clone_vfork", True, "C engine")
        self.assertTrue(more.enabled("clone_vfork"))

    def test_describe(self) -> None:
        """
        C{describe} gives C{(name, "on"/"off", reason)} rows in
        L{FEATURE_NAMES} order, then other names sorted.
        """
        more = self.features.override("zzz", True, "extra")
        self.assertEqual(
            more.describe(),
            [
                (_features.PIDFD_OPEN, "on", "works"),
                (_features.CLONE3, "off", "ENOSYS (needs Linux 5.3)"),
                ("zzz", "on", "extra"),
            ],
        )

    def test_describeProbed(self) -> None:
        """
        The probed features describe every feature.
        """
        rows = probeFeatures().describe()
        self.assertEqual([r[0] for r in rows], list(FEATURE_NAMES))
        self.assertTrue(all(r[1] in ("on", "off") for r in rows))


class ReasonTests(SynchronousTestCase):
    """
    The reasons recorded for probes that fail.
    """

    def test_enosys(self) -> None:
        """
        C{ENOSYS} names the minimum kernel; the verdict is cached.
        """
        state = _fromErrno(OSError(errno.ENOSYS, "x"), "pidfd_open", "Linux 5.3")
        self.assertFalse(state.enabled)
        self.assertTrue(state.cacheable)
        self.assertIn("this system does not have pidfd_open", state.reason)
        self.assertIn("ENOSYS", state.reason)
        self.assertIn("Linux 5.3", state.reason)

    def test_eperm(self) -> None:
        """
        C{EPERM} is reported as a filter (seccomp), cached.
        """
        state = _fromErrno(OSError(errno.EPERM, "x"), "clone3", "Linux 5.3")
        self.assertIn("clone3 is refused (EPERM)", state.reason)
        self.assertIn("seccomp", state.reason)
        self.assertTrue(state.cacheable)

    def test_transient(self) -> None:
        """
        C{EMFILE}, C{ENFILE}, C{ENOMEM}, C{EAGAIN} and C{EINTR} are transient:
        off for now, but not cacheable.
        """
        for code in (errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EAGAIN):
            state = _fromErrno(OSError(code, "x"), "openpty", "devpts")
            self.assertFalse(state.enabled)
            self.assertFalse(state.cacheable)
            self.assertIn("transiently", state.reason)
            self.assertIn(errno.errorcode[code], state.reason)

    def test_otherErrno(self) -> None:
        """
        Any other errno is named in the reason, with the minimum.
        """
        state = _fromErrno(OSError(errno.EINVAL, "x"), "thing", "Linux 9.9")
        self.assertIn("EINVAL", state.reason)
        self.assertIn("Linux 9.9", state.reason)


class CacheTests(SynchronousTestCase):
    """
    The probe cache.
    """

    def test_cachesFinalVerdicts(self) -> None:
        """
        A result whose verdicts are all final is probed once.
        """
        calls = []

        def probe() -> Features:
            calls.append(1)
            return Features({"a": FeatureState(True, "ok")})

        cache = _Cache(probe)
        first = cache.get(False)
        self.assertIs(cache.get(False), first)
        self.assertEqual(len(calls), 1)
        cache.get(True)
        self.assertEqual(len(calls), 2)

    def test_transientNotCached(self) -> None:
        """
        A result with a transient verdict (EMFILE) is returned but probed
        again next time, so a later call can see the feature on.
        """
        results = [
            Features({"a": FeatureState(False, "EMFILE", cacheable=False)}),
            Features({"a": FeatureState(True, "ok")}),
        ]
        cache = _Cache(lambda: results.pop(0))
        self.assertFalse(cache.get(False).enabled("a"))
        second = cache.get(False)
        self.assertTrue(second.enabled("a"))
        self.assertIs(cache.get(False), second)
