# -*- test-case-name: tests.test_cgroup_parent,tests.test_cgroup_leaf -*-
"""
Helpers for the tests of the cgroup layer (L{txspawn._cgroup}): a scratch
cgroup of the test's own under the cgroup v2 mount, removed after the
test with whatever was made in it; the C{hugetlb} controller (the only
one this hybrid host's cgroup v2 offers) enabled at the root for the
test; and child processes started in a given cgroup (C{sh} writes itself
into C{cgroup.procs}, then execs), so that "this process" semantics (the
move of our own process into a leaf) are tested in a child, never in the
test runner.

The v1 hierarchies are never touched, and the test runner's own process
is never moved.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shlex
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from twisted.trial.unittest import SkipTest

from txspawn._cgroup.hierarchy import cgroupMount

__all__ = [
    "CHILD_PYTHON",
    "NOBODY",
    "allLeaves",
    "childInCgroup",
    "enableHugetlbAtRoot",
    "makeScratchCgroup",
    "mountOrSkip",
    "runInCgroup",
    "waitEmpty",
]

#: The uid and gid of nobody.
NOBODY = 65534
#: The Python the children run (this venv's: it imports txspawn).
CHILD_PYTHON = sys.executable
#: The repository, for a child's C{PYTHONPATH}.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mountOrSkip() -> str:
    """
    The cgroup v2 mount; skip when there is none, or we are not root (the
    tests make cgroups at its top).
    """
    mount = cgroupMount()
    if mount is None:
        raise SkipTest("no cgroup v2 hierarchy is mounted")
    if os.geteuid() != 0:
        raise SkipTest("making scratch cgroups at the top of the hierarchy needs root")
    return mount


def _killAndRemove(path: str) -> None:
    """
    Kill what is in C{path} and its descendants, and remove them all,
    waiting for the killed processes (bounded).
    """
    if not os.path.isdir(path):
        return
    for _ in range(100000):
        try:
            with open(os.path.join(path, "cgroup.kill"), "w") as f:
                f.write("1")
        except FileNotFoundError:
            return
        busy = False
        for root, dirs, _ in os.walk(path, topdown=False):
            for name in [*dirs, None]:
                target = root if name is None else os.path.join(root, name)
                if name is None and root != path:
                    continue
                try:
                    os.rmdir(target)
                except FileNotFoundError:
                    pass
                except OSError:
                    busy = True
        if not busy:
            return
        os.sched_yield()
    raise AssertionError(f"scratch cgroup {path} could not be removed")


def makeScratchCgroup(testCase: Any, name: str = "") -> str:
    """
    A new cgroup C{<mount>/txspawn-test-<random>} for this test, killed and
    removed (with everything made in it) after the test.
    """
    mount = mountOrSkip()
    path = os.path.join(mount, f"txspawn-test-{name}{secrets.token_hex(4)}")
    os.mkdir(path)
    testCase.addCleanup(_killAndRemove, path)
    return path


def enableHugetlbAtRoot(testCase: Any) -> None:
    """
    Enable C{hugetlb} in the root cgroup's C{cgroup.subtree_control} (the
    root is exempt from the "no internal processes" rule), so that a
    scratch cgroup offers it to its children; disabled again after the
    test if it was off before (unless another cgroup still uses it).
    """
    mount = mountOrSkip()
    with open(os.path.join(mount, "cgroup.controllers")) as f:
        if "hugetlb" not in f.read().split():
            raise SkipTest("this cgroup v2 hierarchy does not offer hugetlb")
    control = os.path.join(mount, "cgroup.subtree_control")
    with open(control) as f:
        if "hugetlb" in f.read().split():
            return
    with open(control, "w") as f:
        f.write("+hugetlb")

    def disable() -> None:
        try:
            with open(control, "w") as f:
                f.write("-hugetlb")
        except OSError:
            pass  # still enabled below the root by someone

    testCase.addCleanup(disable)


def allLeaves(path: str) -> list[str]:
    """
    The cgroups below C{path}, as paths relative to it.
    """
    found = []
    for root, dirs, _ in os.walk(path):
        for name in dirs:
            found.append(os.path.relpath(os.path.join(root, name), path))
    return sorted(found)


def _placeAndExec(cgroup: str, argv: Sequence[str]) -> list[str]:
    """
    An argv that writes its own pid into C{cgroup}'s C{cgroup.procs} (as
    the user running it: root here) and then execs C{argv}.
    """
    procs = shlex.quote(os.path.join(cgroup, "cgroup.procs"))
    command = " ".join(shlex.quote(a) for a in argv)
    return ["/bin/sh", "-c", f"echo $$ > {procs} && exec {command}"]


def childInCgroup(
    testCase: Any, cgroup: str, argv: Sequence[str] = ("sleep", "1000")
) -> subprocess.Popen[bytes]:
    """
    A child of this process running C{argv} in C{cgroup}; killed and reaped
    after the test.  Returns once it is in the cgroup.
    """
    proc = subprocess.Popen(
        _placeAndExec(cgroup, ["/bin/sh", "-c", 'echo in; exec "$@"', "sh", *argv]),
        stdout=subprocess.PIPE,
    )

    def reap() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()

    testCase.addCleanup(reap)
    assert proc.stdout is not None
    if proc.stdout.readline() != b"in\n":
        raise AssertionError(f"the child did not start in {cgroup}")
    return proc


def runInCgroup(
    cgroup: str,
    script: str,
    args: Sequence[str] = (),
    user: int | None = None,
    python: str = CHILD_PYTHON,
    pythonPath: str = REPO,
    wrapper: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> Any:
    """
    Run the Python C{script} in a child placed in C{cgroup} (as C{user}
    when given: placed by root, then dropped with C{setpriv}), and return
    what it printed as JSON on its last line.

    @param wrapper: A command the child execs after being placed, before
        the Python (C{unshare ...}); the Python's argv is appended.
    """
    argv = [python, "-c", script, *args]
    if user is not None:
        argv = [
            "setpriv",
            f"--reuid={user}",
            f"--regid={user}",
            "--clear-groups",
            *argv,
        ]
    argv = [*wrapper, *argv]
    childEnv = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": pythonPath}
    childEnv.update(env or {})
    done = subprocess.run(
        _placeAndExec(cgroup, argv),
        capture_output=True,
        env=childEnv,
        check=False,
        cwd="/",
    )
    if done.returncode != 0:
        raise AssertionError(
            f"child failed ({done.returncode}):\n{done.stderr.decode()}"
        )
    lines = done.stdout.decode().strip().splitlines()
    return json.loads(lines[-1])


def waitEmpty(path: str) -> None:
    """
    Wait until no process is left in the cgroup C{path}: C{cgroup.events}
    read, then C{poll}ed for C{POLLPRI} (how kernfs says it changed)
    until it says C{populated 0}.
    """
    fd = os.open(os.path.join(path, "cgroup.events"), os.O_RDONLY | os.O_CLOEXEC)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLPRI)
        while True:
            if b"populated 0" in os.pread(fd, 4096, 0):
                return
            poller.poll()
    finally:
        os.close(fd)
