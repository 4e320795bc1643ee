# -*- test-case-name: tests.test_nsprobe -*-
"""
Tests for L{txspawn._kernel.nsprobe}: the real namespace probe behind
C{python -m txspawn info}.

The probe's verdicts are checked against an independent oracle, util-linux
C{unshare(1)} asked the same question, as this user and (through
C{setpriv}) as C{nobody}; the hints against real failures where a test can
cause one without touching the host (C{user.max_user_namespaces} set to 0
inside a throwaway user namespace), and against the table of known causes
otherwise.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import tempfile
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.hygiene import childrenOf, openFDs
from txspawn._kernel import nsprobe
from txspawn._kernel.nsprobe import (
    NAMESPACE_FLAGS,
    PARENT_MAPS,
    PROC,
    SELF_MAP,
    NamespaceProbe,
    NamespaceVerdict,
    probeNamespaces,
    runProbe,
)

__all__ = ["HintTests", "ProbeTests", "StandaloneTests"]

#: The questions, in the order the probe answers them.
QUESTIONS = [*NAMESPACE_FLAGS, SELF_MAP, PARENT_MAPS, PROC]

#: util-linux C{unshare}'s option for each namespace type.
_UNSHARE_OPTIONS = {
    "user": "-U",
    "pid": "-p",
    "mount": "-m",
    "net": "-n",
    "uts": "-u",
    "ipc": "-i",
    "cgroup": "-C",
    "time": "-T",
}

#: A system Python without txspawn's dependencies, for the standalone run.
SYSTEM_PYTHON = "/usr/bin/python3"
#: The unprivileged user of the setpriv runs.
NOBODY = 65534


def _unshareWorks(
    privileged: bool, name: str, prefix: tuple[str, ...] = ()
) -> bool | None:
    """
    The oracle: whether util-linux C{unshare} can do what the probe's
    question C{name} asks (C{None}: it cannot tell, for L{PARENT_MAPS}).
    """
    if name == PARENT_MAPS:
        return None
    user = () if privileged else ("-U",)
    if name == SELF_MAP:
        argv: tuple[str, ...] = ("-Ur",)
    elif name == PROC:
        argv = (
            (*user, "-r", "-pfm", "--mount-proc") if user else ("-pfm", "--mount-proc")
        )
    else:
        argv = (*user, _UNSHARE_OPTIONS[name])
    result = subprocess.run(
        [*prefix, "unshare", *argv, "/bin/true"], capture_output=True, timeout=60
    )
    return result.returncode == 0


def _mountinfo() -> str:
    with open("/proc/self/mountinfo") as f:
        return f.read()


def _needUnshare(test: SynchronousTestCase) -> None:
    if shutil.which("unshare") is None:
        raise test.skipTest("util-linux unshare is not installed (the oracle)")


def _needRoot(test: SynchronousTestCase) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        raise test.skipTest("needs root and setpriv to run as another user")


class ProbeTests(SynchronousTestCase):
    """
    The probe in this process, as whoever runs the tests.
    """

    def test_matchesUnshare(self) -> None:
        """
        Every namespace type, the self-map and the fresh C{/proc} are
        reported working exactly when util-linux C{unshare} can do the
        same as this user; each verdict has a reason, and a failure names
        its step and errno.
        """
        _needUnshare(self)
        probe = runProbe()
        self.assertEqual([v.name for v in probe.verdicts], QUESTIONS)
        for v in probe.verdicts:
            expected = _unshareWorks(probe.privileged, v.name)
            if expected is not None:
                self.assertEqual(v.works, expected, v)
            self.assertTrue(v.reason, v)
            if not v.works:
                self.assertTrue(v.step, v)
                self.assertIn(v.step + " failed with ", v.reason)

    def test_parentMapsAsRoot(self) -> None:
        """
        As root, the parent can write a map of other ids (the C{unshare}
        oracle cannot: it needs C{newuidmap}).
        """
        probe = runProbe()
        if not (os.geteuid() == 0 and probe.verdict("user").works):
            raise self.skipTest("needs root and user namespaces")
        self.assertTrue(probe.verdict(PARENT_MAPS).works)

    def test_privileged(self) -> None:
        """
        C{privileged} is whether this process has C{CAP_SYS_ADMIN}; without
        it, the namespace types are said to need a user namespace.
        """
        with open("/proc/self/status") as f:
            capEff = next(line for line in f if line.startswith("CapEff:"))
        admin = bool(int(capEff.split()[1], 16) & (1 << 21))
        probe = runProbe()
        self.assertEqual(probe.privileged, admin)
        self.assertEqual(probe.euid, os.geteuid())

    def test_leavesNothing(self) -> None:
        """
        A probe leaves no child, no fd and no mount behind.
        """
        fds = openFDs()
        children = childrenOf(os.getpid())
        mounts = _mountinfo()
        runProbe()
        self.assertEqual(openFDs(), fds)
        self.assertEqual(childrenOf(os.getpid()), children)
        self.assertEqual(_mountinfo(), mounts)

    def test_cached(self) -> None:
        """
        L{probeNamespaces} probes once per process: the second call returns
        the same verdicts without a child.
        """
        first = probeNamespaces()
        self.assertIs(probeNamespaces(), first)

    def test_transientNotCached(self) -> None:
        """
        A verdict with a transient errno (here C{EAGAIN}) is not cached.
        """
        verdict = nsprobe._verdict("pid", (5, errno.EAGAIN), True, "")
        self.assertFalse(verdict.works)
        transient = NamespaceProbe(False, os.geteuid(), (verdict,))
        calls: list[NamespaceProbe] = []

        def fakeRun() -> NamespaceProbe:
            calls.append(transient)
            return transient

        cache: dict[tuple[int, int], NamespaceProbe] = {}
        self.assertIs(nsprobe._cached(fakeRun, cache), transient)
        self.assertIs(nsprobe._cached(fakeRun, cache), transient)
        self.assertEqual((len(calls), cache), (2, {}))

    def test_unavailable(self) -> None:
        """
        L{NamespaceProbe.unavailable} is C{None} when everything asked for
        works, else the first failure's name and reason.
        """
        probe = NamespaceProbe(
            False,
            1000,
            (
                NamespaceVerdict("user", True, "", 0, "unshare() works"),
                NamespaceVerdict("pid", False, "unshare", 1, "it failed"),
            ),
        )
        self.assertIsNone(probe.unavailable("user"))
        self.assertEqual(probe.unavailable("user", "pid"), "pid: it failed")
        self.assertRaises(KeyError, probe.unavailable, "nope")


def _copyModule(test: SynchronousTestCase) -> str:
    """
    A copy of the probe module alone, in a directory anyone can read.
    """
    directory = tempfile.mkdtemp()
    test.addCleanup(shutil.rmtree, directory)
    os.chmod(directory, 0o755)
    copy = os.path.join(directory, "nsprobe.py")
    shutil.copy(nsprobe.__file__, copy)
    os.chmod(copy, 0o644)
    return copy


def _standalone(
    test: SynchronousTestCase, prefix: list[str], shell: str = ""
) -> dict[str, Any]:
    """
    Run a copy of the module alone (no txspawn, no site-packages: C{-I
    -S}) under the system Python, with C{prefix} before it (or as the last
    command of C{shell}), and parse its JSON.
    """
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        raise test.skipTest(f"no {SYSTEM_PYTHON}")
    command = [SYSTEM_PYTHON, "-I", "-S", _copyModule(test), "--json"]
    if shell:
        command = ["sh", "-c", shell + ' "$@"', "sh", *command]
    result = subprocess.run(
        [*prefix, *command], capture_output=True, text=True, timeout=120, cwd="/"
    )
    test.assertEqual(result.returncode, 0, result.stderr)
    document: dict[str, Any] = json.loads(result.stdout)
    return document


class StandaloneTests(SynchronousTestCase):
    """
    The module run on its own: under the system Python with only the
    standard library, and as an unprivileged user.
    """

    def test_nobody(self) -> None:
        """
        As C{nobody} (through C{setpriv}, no capabilities), the probe runs
        with only the standard library, needs a user namespace for every
        type, and agrees with C{unshare} run as C{nobody}; a map of other
        ids is refused with C{EPERM} and the reason says it needs root.
        """
        _needRoot(self)
        _needUnshare(self)
        setpriv = [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            "--inh-caps=-all",
        ]
        document = _standalone(self, setpriv)
        self.assertIs(document["privileged"], False)
        self.assertEqual(document["euid"], NOBODY)
        verdicts = {v["name"]: v for v in document["verdicts"]}
        self.assertEqual(list(verdicts), QUESTIONS)
        for name, v in verdicts.items():
            expected = _unshareWorks(False, name, tuple(setpriv))
            if expected is not None:
                self.assertEqual(v["works"], expected, v)
        if verdicts["user"]["works"]:
            maps = verdicts[PARENT_MAPS]
            self.assertEqual((maps["works"], maps["errno"]), (False, errno.EPERM))
            self.assertIn("needs CAP_SETUID and CAP_SETGID (root)", maps["reason"])
            self.assertIn("with a user namespace", verdicts["pid"]["reason"])

    def test_noSpace(self) -> None:
        """
        With C{user.max_user_namespaces} at 0 (inside a throwaway user
        namespace, never on the host) and no capabilities, every question
        fails at C{unshare} with C{ENOSPC}, and the reason names the sysctl
        and its value.
        """
        _needRoot(self)
        _needUnshare(self)
        if not probeNamespaces().verdict(SELF_MAP).works:
            raise self.skipTest("needs user namespaces")
        document = _standalone(
            self,
            ["unshare", "-Ur"],
            "echo 0 > /proc/sys/user/max_user_namespaces && "
            "exec setpriv --bounding-set=-all --inh-caps=-all",
        )
        self.assertIs(document["privileged"], False)
        for v in document["verdicts"]:
            self.assertEqual((v["works"], v["step"]), (False, "unshare"), v)
            self.assertEqual(v["errno"], errno.ENOSPC, v)
            self.assertIn("user.max_user_namespaces = 0", v["reason"])

    def test_text(self) -> None:
        """
        Without C{--json}, one line per question: name, on or off, reason.
        """
        if not os.access(SYSTEM_PYTHON, os.X_OK):
            raise self.skipTest(f"no {SYSTEM_PYTHON}")
        result = subprocess.run(
            [SYSTEM_PYTHON, "-I", "-S", _copyModule(self)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.splitlines()
        self.assertEqual([line.split()[0] for line in lines], QUESTIONS)
        for line in lines:
            self.assertIn(line.split()[1], ("on", "off"))


class HintTests(SynchronousTestCase):
    """
    The reason of each known failure names its likely cause.
    """

    def test_ePermWithoutUser(self) -> None:
        """
        C{EPERM} from C{unshare}: it needs root or a user namespace.
        """
        v = nsprobe._verdict("pid", (1, errno.EPERM), True, "")
        self.assertEqual((v.works, v.step, v.errno), (False, "unshare", errno.EPERM))
        self.assertIn(
            "unshare failed with EPERM: needs root (CAP_SYS_ADMIN) or a user namespace",
            v.reason,
        )

    def test_ePermPrivileged(self) -> None:
        """
        C{EPERM} for a process that has C{CAP_SYS_ADMIN}: a seccomp filter.
        """
        v = nsprobe._verdict("net", (1, errno.EPERM), False, "")
        self.assertIn("seccomp", v.reason)

    def test_noSpace(self) -> None:
        """
        C{ENOSPC}: the C{user.max_*_namespaces} limits, with their values.
        """
        v = nsprobe._verdict("net", (1, errno.ENOSPC), True, "")
        self.assertIn("user.max_user_namespaces = ", v.reason)
        self.assertIn("user.max_net_namespaces = ", v.reason)

    def test_afterClone(self) -> None:
        """
        C{EPERM} or C{EACCES} writing a map after a successful C{unshare}:
        a security module restricting user namespaces.
        """
        for err in (errno.EPERM, errno.EACCES):
            v = nsprobe._verdict(SELF_MAP, (4, err), True, "")
            self.assertEqual(v.step, "uid_map")
            self.assertIn("made, then refused", v.reason)
            self.assertIn("security module", v.reason)

    def test_proc(self) -> None:
        """
        C{EPERM} mounting C{/proc}: masked C{/proc}, as in a container.
        """
        v = nsprobe._verdict(PROC, (7, errno.EPERM), True, "")
        self.assertEqual(v.step, "mount /proc")
        self.assertIn("masked", v.reason)

    def test_tooOld(self) -> None:
        """
        C{EINVAL} for the time namespace: the kernel is older than 5.6 or
        built without it.
        """
        v = nsprobe._verdict("time", (1, errno.EINVAL), True, "")
        self.assertIn("older than Linux 5.6", v.reason)

    def test_died(self) -> None:
        """
        A probe child that died without an answer is reported as such.
        """
        v = nsprobe._verdict("ipc", (-1, 0), True, "")
        self.assertFalse(v.works)
        self.assertIn("died", v.reason)
