"""
Namespace spawns that fail: each step's failure is a L{SpawnError} raised
synchronously by C{spawnProcess}, with its stage, errno and detail, and a
hint where the cause is known; nothing is left behind (no child, zombie,
fd or mount).

  - every step, on every engine x monitor, through
    L{txspawn._plan.faultinjection.injectChildFault} (some of them cannot
    be made to fail on demand);
  - C{ENOSPC}: C{user.max_user_namespaces} set to 0 inside a throwaway
    user namespace (never on the host);
  - C{EPERM}: an unprivileged pid namespace without a user namespace,
    refused when the value is built, and the kernel's answer past that
    check (as nobody, through C{setpriv});
  - mount propagation: in a scratch mount namespace whose mounts are
    shared, a child's mount never reaches the parent (and with
    C{propagation="shared"} it does).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.builders import RecordingProtocol, makeTestCaseClasses
from tests.hygiene import HygieneMixin
from tests.nsutil import (
    ANY_PYTHON,
    NSDRIVER,
    NSWORLD,
    MountHygiene,
    WorldMixin,
    portableTree,
    userNamespacesUnavailable,
)
from txspawn.errors import ChildSetupStage, SpawnError
from txspawn.options import Namespaces

_NOT_ROOT = None if os.geteuid() == 0 else "needs root (CAP_SYS_ADMIN)"
_NO_USERNS = userNamespacesUnavailable()
#: The tools, or C{""} when missing (the tests needing them skip).
_SETPRIV = shutil.which("setpriv") or ""
_UNSHARE = shutil.which("unshare") or ""
#: Drop to nobody, no groups, no capabilities at all.
NOBODY = ["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]

#: <linux/sched.h> (C{os.CLONE_NEWPID} is Python 3.12+).
CLONE_NEWPID = 0x20000000

#: An errno no real step fails with here, so a result carrying it can only
#: come from the injection.
INJECTED = errno.EXFULL

#: Every namespace and every step, the maps written by the child itself.
EVERYTHING: dict[str, Any] = dict(
    user=True,
    pid=True,
    mount=True,
    net=True,
    uts=True,
    ipc=True,
    cgroup=True,
    time=True,
    hostname="faulty",
    loopback=True,
    mountProc=True,
    timeOffsets={"monotonic": 1},
)
#: The same with maps written by the parent (and without a time namespace:
#: see L{tests.test_namespaces}'s C{test_timeOffsetsParentWrittenMap}).
PARENT_MAPS: dict[str, Any] = dict(
    {k: v for k, v in EVERYTHING.items() if k not in ("time", "timeOffsets")},
    uidMap="0 100000 1000",
    gidMap="0 100000 1000",
)

#: (stage, detail it reports, the Namespaces options that reach it).
FAULTS: list[tuple[ChildSetupStage, int, dict[str, Any]]] = [
    (ChildSetupStage.NAMESPACES, 0, EVERYTHING),
    (ChildSetupStage.IDMAP, 1, EVERYTHING),
    (ChildSetupStage.IDMAP, 1, PARENT_MAPS),
    (ChildSetupStage.SYNC, 0, PARENT_MAPS),
    (ChildSetupStage.SETGID, 0, EVERYTHING),
    (ChildSetupStage.SETUID, 0, EVERYTHING),
    (ChildSetupStage.HOSTNAME, 0, EVERYTHING),
    (ChildSetupStage.LOOPBACK, 0, EVERYTHING),
    (ChildSetupStage.MOUNT_PROPAGATION, 0, EVERYTHING),
    (ChildSetupStage.MOUNT_PROC, 0, EVERYTHING),
    (ChildSetupStage.TIME_OFFSETS, 1, EVERYTHING),
    (ChildSetupStage.INIT, 0, EVERYTHING),
]


class InjectedFaultMixin(WorldMixin):
    """
    Each step failing (by injection) raises its L{SpawnError} at once and
    leaves nothing behind (the hygiene checks after each test: fds,
    children and zombies, mounts).
    """

    if _NOT_ROOT or _NO_USERNS:
        skip = _NOT_ROOT or _NO_USERNS

    def failure(self, stage: ChildSetupStage, options: dict[str, Any]) -> SpawnError:
        """
        The error C{spawnProcess} raises with C{stage} failing.
        """
        from txspawn._plan.faultinjection import injectChildFault

        reactor = self.buildReactor()
        proto = RecordingProtocol()
        with injectChildFault(stage, INJECTED):
            with self.assertRaises(SpawnError) as caught:
                reactor.spawnProcess(
                    proto,
                    ANY_PYTHON,
                    [ANY_PYTHON, NSWORLD.encode()],
                    env={},
                    path="/",
                    namespaces=Namespaces(**options),
                )
        self.assertEqual(proto.events, [], "the protocol was connected")
        error: SpawnError = caught.exception
        return error

    def test_everyStep(self) -> None:
        """
        Each step fails with its own stage, the errno and the detail.
        """
        got = []
        for stage, _, options in FAULTS:
            e = self.failure(stage, options)
            got.append((e.stage, e.errno, e.detail))
        self.assertEqual(
            got, [(stage, INJECTED, detail) for stage, detail, _ in FAULTS]
        )

    def test_noInjectionNoFailure(self) -> None:
        """
        Without an injection the same configurations spawn (so each failure
        above is the injected one).
        """
        for options in (EVERYTHING, PARENT_MAPS):
            report, proto = self.spawnWorld(Namespaces(**options))
            self.assertEqual(proto.endedReason.value.exitCode, 0)
            self.assertEqual(report["pid"], 2)

    def test_hints(self) -> None:
        """
        Known causes get a hint in the message: EPERM creating namespaces
        (root or a user namespace), ENOSPC (C{user.max_user_namespaces}),
        EPERM writing a map after a successful clone (a security module),
        EPERM mounting C{/proc} (masked, in a container).
        """
        from txspawn._plan.faultinjection import injectChildFault

        for stage, err, words in [
            (ChildSetupStage.NAMESPACES, errno.EPERM, "user namespace"),
            (ChildSetupStage.NAMESPACES, errno.ENOSPC, "max_user_namespaces"),
            (ChildSetupStage.IDMAP, errno.EPERM, "security module"),
            (ChildSetupStage.IDMAP, errno.EACCES, "security module"),
            (ChildSetupStage.MOUNT_PROC, errno.EPERM, "/proc"),
        ]:
            reactor = self.buildReactor()
            with injectChildFault(stage, err):
                with self.assertRaises(SpawnError) as caught:
                    reactor.spawnProcess(
                        RecordingProtocol(),
                        ANY_PYTHON,
                        [ANY_PYTHON, b"-c", b""],
                        namespaces=Namespaces(**EVERYTHING),
                    )
            self.assertEqual(
                (caught.exception.stage, caught.exception.errno), (stage, err)
            )
            self.assertIn(words, str(caught.exception))


globals().update(makeTestCaseClasses(InjectedFaultMixin))


class ExecFailureMixin(WorldMixin):
    """
    A command that cannot be executed fails the spawn the same way with a
    pid namespace (its exec happens in init's child) as without one.
    """

    if _NOT_ROOT or _NO_USERNS:
        skip = _NOT_ROOT or _NO_USERNS

    def execFailure(self, namespaces: Namespaces | None) -> tuple[object, ...]:
        """
        What spawning a file without execute permission (for anyone, root
        included) raises.
        """
        fd, path = tempfile.mkstemp(prefix="txspawn-noexec-")
        os.close(fd)
        self.addCleanup(os.unlink, path)
        reactor = self.buildReactor()
        proto = RecordingProtocol()
        with self.assertRaises(SpawnError) as caught:
            reactor.spawnProcess(proto, path, [path], namespaces=namespaces)
        self.assertEqual(proto.events, [], "the protocol was connected")
        e = caught.exception
        named = e.filename == path
        return (type(e).__name__, e.stage, e.errno, e.detail, named)

    def test_execFailure(self) -> None:
        """
        C{EXEC}, C{EACCES}, the file named: the same under txspawn's init
        (with and without a user namespace) and with the command as pid 1.
        """
        expected = self.execFailure(None)
        self.assertEqual(expected[1:], (ChildSetupStage.EXEC, errno.EACCES, 0, True))
        for namespaces in [
            Namespaces(pid=True),
            Namespaces(user=True, pid=True, mount=True, mountProc=True),
            Namespaces(user=True, pid=True, pidInit=False),
        ]:
            self.assertEqual(self.execFailure(namespaces), expected, namespaces)


globals().update(makeTestCaseClasses(ExecFailureMixin))


def runDriver(
    test: SynchronousTestCase,
    job: dict[str, Any],
    prefix: list[str],
    anyUser: bool = False,
    mountsKept: bool = True,
) -> list[dict[str, Any]]:
    """
    Run C{nsdriver.py} with C{job} under the command C{prefix} and return
    its results.

    @param anyUser: Run it from the throwaway tree (L{portableTree}) with
        the distribution's Python, for a user that cannot enter root's
        home.
    @param mountsKept: Check that each case left the driver's mount table
        as it was (C{False} where a mount propagating to it is expected).
    """
    if anyUser:
        tree = portableTree()
        argv = [*prefix, ANY_PYTHON.decode(), os.path.join(tree, "nsdriver.py")]
        env = {"PYTHONPATH": tree, "PATH": os.defpath}
    else:
        argv = [*prefix, sys.executable, NSDRIVER]
        env = dict(os.environ)
    done = subprocess.run(
        [*argv, json.dumps(job)], capture_output=True, env=env, cwd="/", check=False
    )
    test.assertEqual(done.returncode, 0, done.stderr.decode(errors="replace"))
    results: list[dict[str, Any]] = json.loads(done.stdout)
    for result in results:
        test.assertEqual(
            (result["fdsAdded"], result["children"], result["mountsUnchanged"]),
            ({}, [], result["mountsUnchanged"] if not mountsKept else True),
            {k: v for k, v in result.items() if k != "world"},
        )
    return results


def case(engine: str, namespaces: dict[str, Any] | None, **more: Any) -> dict[str, Any]:
    """
    One case of a driver job: C{nsworld.py} with C{namespaces}.
    """
    tree = portableTree() if more.pop("anyUser", False) else None
    return {
        "engine": engine,
        "namespaces": namespaces,
        "python": ANY_PYTHON.decode(),
        "nsworld": os.path.join(tree, "nsworld.py") if tree else NSWORLD,
        **more,
    }


ENGINES = ("c", "python")


class KernelRefusalTests(MountHygiene, HygieneMixin, SynchronousTestCase):
    """
    Failures the kernel really gives, each with a parent of its own (in a
    throwaway user namespace, or as nobody).
    """

    def setUp(self) -> None:
        if _NOT_ROOT or _NO_USERNS or not _SETPRIV or not _UNSHARE:
            raise self.skipTest(
                _NOT_ROOT or _NO_USERNS or "needs setpriv(1) and unshare(1)"
            )
        self.setUpHygiene()
        self.setUpMounts()

    def test_enospc(self) -> None:
        """
        With C{user.max_user_namespaces} 0 (in a throwaway user namespace:
        the host's is never touched), C{user=True} fails with stage
        C{NAMESPACES}, C{ENOSPC}, and a hint naming the setting, on both
        engines; the host's setting is unchanged.
        """
        with open("/proc/sys/user/max_user_namespaces") as f:
            hostLimit = f.read()
        job = {
            "maxUserNamespaces": 0,
            "cases": [case(engine, {"user": True}) for engine in ENGINES],
        }
        results = runDriver(self, job, [_UNSHARE, "--user", "--map-root-user"])
        for result in results:
            error = result["error"]
            self.assertEqual(
                (error["stage"], error["errno"], error["detail"]),
                ("NAMESPACES", errno.ENOSPC, 0),
            )
            self.assertIn("max_user_namespaces", error["message"])
        self.assertEqual(results[0]["error"], results[1]["error"])
        with open("/proc/sys/user/max_user_namespaces") as f:
            self.assertEqual(f.read(), hostLimit)

    def test_epermRefusedWhenBuilt(self) -> None:
        """
        As nobody, every namespace type but user, without C{user=True}, is
        refused when the L{Namespaces} is built: a L{ValueError} saying it
        needs root or a user namespace.
        """
        kinds = ("pid", "mount", "net", "uts", "ipc", "cgroup", "time")
        job = {
            "cases": [case("c", {kind: True}, anyUser=True) for kind in kinds]
            + [case("c", {"user": True, "pid": True}, anyUser=True)]
        }
        results = runDriver(self, job, [_SETPRIV, *NOBODY], anyUser=True)
        for kind, result in zip(kinds, results[:-1], strict=True):
            self.assertEqual(result["build"]["type"], "ValueError", kind)
            self.assertIn(
                "needs root (CAP_SYS_ADMIN) or user=True", result["build"]["message"]
            )
        self.assertEqual(results[-1]["reason"][:2], ["ProcessDone", 0])

    def test_epermFromTheKernel(self) -> None:
        """
        Past that check (a hand-made plan given to the engine), the
        kernel's C{EPERM} for an unprivileged C{CLONE_NEWPID} is stage
        C{NAMESPACES}, C{EPERM}, with the hint, on both engines.
        """
        job = {
            "cases": [
                case(engine, None, anyUser=True, rawFlags=CLONE_NEWPID)
                for engine in ENGINES
            ]
        }
        results = runDriver(self, job, [_SETPRIV, *NOBODY], anyUser=True)
        for result in results:
            error = result["error"]
            self.assertEqual(
                (error["stage"], error["errno"]), ("NAMESPACES", errno.EPERM)
            )
            self.assertIn("user namespace", error["message"])


class PropagationTests(MountHygiene, HygieneMixin, SynchronousTestCase):
    """
    A child's mounts stay in its mount namespace: checked in a scratch
    mount namespace (C{unshare --mount --propagation shared}) whose mounts
    are shared, so that anything the child's propagation lets through would
    show up in the driver's mount table.
    """

    def setUp(self) -> None:
        if _NOT_ROOT or not _UNSHARE:
            raise self.skipTest(_NOT_ROOT or "needs unshare(1)")
        self.setUpHygiene()
        self.setUpMounts()

    def seen(self, namespaces: dict[str, Any], leaks: bool = False) -> list[bool]:
        """
        Whether a tmpfs the child mounts shows in the driver's mount table
        while the child runs, per engine.
        """
        target = tempfile.mkdtemp(dir=self.tmp)
        job = {
            "cases": [
                case(
                    engine,
                    namespaces,
                    args=["--mount-tmpfs", target, "--ready"],
                    mountAt=target,
                )
                for engine in ENGINES
            ]
        }
        prefix = [_UNSHARE, "--mount", "--propagation", "shared"]
        results = runDriver(self, job, prefix, mountsKept=not leaks)
        for result in results:
            self.assertEqual(result["world"]["mounted"], "ok", result)
            self.assertEqual(result["reason"][:2], ["ProcessDone", 0])
        return [result["seen"] for result in results]

    def test_slaveByDefault(self) -> None:
        """
        By default (slave) the child's mount does not reach the parent.
        """
        self.assertEqual(self.seen({"mount": True}), [False, False])

    def test_private(self) -> None:
        """
        Nor with C{propagation="private"}.
        """
        self.assertEqual(
            self.seen({"mount": True, "propagation": "private"}), [False, False]
        )

    def test_sharedLeaks(self) -> None:
        """
        With C{propagation="shared"} (and C{"unchanged"}, the mounts being
        shared here) it does: the check above can fail.
        """
        self.assertEqual(
            self.seen({"mount": True, "propagation": "shared"}, leaks=True),
            [True, True],
        )
        self.assertEqual(
            self.seen({"mount": True, "propagation": "unchanged"}, leaks=True),
            [True, True],
        )

    def test_userNamespace(self) -> None:
        """
        A mount namespace owned by a new user namespace is less privileged:
        the kernel turns its shared mounts into slaves, so not even
        C{propagation="shared"} lets the child's mount through.
        """
        self.assertEqual(
            self.seen({"user": True, "mount": True, "propagation": "shared"}),
            [False, False],
        )
