# -*- test-case-name: tests.test_bench -*-
"""
The cgroup rows of C{python -m txspawn bench} (C{--scenario cgroup}): what
a cgroup of its own adds to a spawn.  Each leaf row spawns C{/bin/true}
with C{cgroup=Cgroup()}: txspawn creates a fresh leaf, places the child in
it, reads its statistics at the end and removes it; the plain row beside it
spawns the same child without one, on the same worker.

Both rows of a pair run on one worker (one per engine: the C engine places
the child with C{clone3(CLONE_INTO_CGROUP)}, the Python engine's child
writes its own pid to the leaf's C{cgroup.procs}), one batch each per
repetition, back to back, so each repetition gives one paired difference
(leaf minus plain, in microseconds: the cost of the cgroup, a fixed amount
of work whatever the spawn's own cost) and one paired ratio.  A sample ends
one reactor turn after the spawn's last callback (L{Task.settle}) in both
rows: for a leaf row that is C{processTreeEnded}, and the sample ends once
the leaf is removed, so creating, placing, reading and removing are all
counted.

The leaves are made in a parent made for the run under the cgroup v2 mount
(L{benchParent}), removed after it; where that cannot be made (not root),
txspawn finds a parent itself, as it would for any user.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Callable, Iterator

from txspawn._bench._model import Pair, Params, Scenario, Setup, Task, pairedRow

__all__ = ["CGROUP_SCENARIOS", "GOAL_US", "SUITE", "benchParent", "removeTree"]

#: The suite's name, also a C{--scenario} name selecting every row of it.
SUITE = "cgroup"

#: The most a cgroup of its own may add to a spawn, at the median, in
#: microseconds.
GOAL_US = 150.0

_MEASURES = (
    "the time from spawnProcess to the end of everything the spawn made, "
    "for /bin/true with 3 pipes (one reactor turn after processEnded, or "
    "with a cgroup after processTreeEnded and the leaf's removal)"
)
_WHY = (
    "a cgroup of its own (create the leaf, place the child, read its "
    f"statistics, remove the leaf) must add at most {GOAL_US:.0f} us to a "
    "spawn, so that a build system can give one to every job"
)


def _plan(
    engine: str, cgroup: bool, **extra: object
) -> Callable[[Params], tuple[Setup, Task]]:
    def plan(p: Params) -> tuple[Setup, Task]:
        options: dict[str, object] = {"cgroup": {}} if cgroup else {}
        options.update(extra)
        task = Task("spawn", p.spawnCount, "/bin/true", options, settle=True)
        return Setup(engine=engine), task

    return plan


def _row(
    name: str,
    title: str,
    what: str,
    plan: Callable[[Params], tuple[Setup, Task]],
    *pairs: Pair,
) -> Scenario:
    return pairedRow(
        name, title, f"{_MEASURES}, {what}", plan, SUITE, "difference", pairs
    )


def _leafPair(plain: str) -> Pair:
    return Pair(plain, None, _WHY, differenceGoal=GOAL_US)


_FORK_WHY = (
    "what the cgroup adds on the path it makes the Python engine take "
    "(posix_spawn cannot place a child in a cgroup: the child is forked, "
    "then writes its own pid to the leaf's cgroup.procs)"
)

#: The suite's rows, in report order.
CGROUP_SCENARIOS: tuple[Scenario, ...] = (
    _row(
        "cg-plain-c", "plain spawn, C engine", "C engine, no cgroup", _plan("c", False)
    ),
    _row(
        "cg-leaf-c",
        "spawn with its own leaf, C engine",
        "C engine, in a leaf cgroup of its own (CLONE_INTO_CGROUP)",
        _plan("c", True),
        _leafPair("cg-plain-c"),
    ),
    _row(
        "cg-plain-py",
        "plain spawn, Python engine",
        "Python engine, no cgroup (posix_spawn)",
        _plan("python", False),
    ),
    _row(
        "cg-fork-py",
        "spawn with path='/', Python engine",
        "Python engine, no cgroup, with path='/' (which takes the fork path, "
        "as a cgroup does)",
        _plan("python", False, path="/"),
    ),
    _row(
        "cg-leaf-py",
        "spawn with its own leaf, Python engine",
        "Python engine, in a leaf cgroup of its own (the forked child writes "
        "cgroup.procs)",
        _plan("python", True),
        _leafPair("cg-plain-py"),
        Pair("cg-fork-py", None, _FORK_WHY),
    ),
)

#: How long L{removeTree} retries a cgroup the kernel still calls busy.
_REMOVE_SECONDS = 2.0


def removeTree(path: str) -> None:
    """
    Kill every process in the cgroup C{path} and its descendants, and remove
    them all, deepest first; a cgroup still busy (its killed processes not
    yet gone) is retried for a bounded time.

    @param path: A cgroup v2 directory.
    @raise OSError: if one cannot be removed in time.
    """
    try:
        # A worker that died mid-batch may have left a child: the kernel
        # kills the whole subtree.
        with open(os.path.join(path, "cgroup.kill"), "w") as f:
            f.write("1")
    except FileNotFoundError:
        return
    deadline = time.monotonic() + _REMOVE_SECONDS
    for top, _dirs, _files in sorted(os.walk(path), key=lambda w: -len(w[0])):
        while True:
            try:
                os.rmdir(top)
                break
            except OSError as e:
                if e.errno == errno.ENOENT:
                    break
                if e.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.001)


#: The name of a run's parent, before the driver's pid.
_PREFIX = "txspawn-bench-"


def _sweepStale(mount: str, log: Callable[[str], None]) -> None:
    """
    Remove the parents of earlier runs whose driver is gone (killed before
    it could remove its own).
    """
    try:
        names = os.listdir(mount)
    except OSError:
        return
    for name in names:
        pid = name[len(_PREFIX) :]
        if not name.startswith(_PREFIX) or not pid.isdigit():
            continue
        if os.path.exists(f"/proc/{pid}"):
            continue  # its run may still be going
        try:
            removeTree(os.path.join(mount, name))
        except OSError as e:
            log(f"cgroup rows: could not remove a stale {name}: {e}")
        else:
            log(f"cgroup rows: removed {name}, left by a run that died")


@contextlib.contextmanager
def benchParent(log: Callable[[str], None]) -> Iterator[str | None]:
    """
    A parent cgroup for the run's leaves: C{txspawn-bench-<pid>} at the top
    of the cgroup v2 mount, removed (with anything left in it) afterwards.

    @param log: Told where the leaves go.
    @return: A context manager giving the parent's path, or C{None} where it
        cannot be made (no cgroup v2 mount, or not allowed): the leaves then
        go where txspawn finds a parent itself (or the rows report why they
        cannot).
    """
    try:
        from txspawn._cgroup.hierarchy import cgroupMount
    except ImportError as e:
        log(f"cgroup rows: no txspawn cgroup layer here ({e})")
        yield None
        return
    mount = cgroupMount()
    if mount is None:
        log("cgroup rows: no cgroup v2 hierarchy is mounted")
        yield None
        return
    _sweepStale(mount, log)
    path = os.path.join(mount, f"{_PREFIX}{os.getpid()}")
    try:
        os.mkdir(path, 0o755)
    except OSError as e:
        log(f"cgroup rows: cannot make {path} ({e}): txspawn finds a parent itself")
        yield None
        return
    log(f"cgroup rows: leaves in {path} (removed after the run)")
    try:
        yield path
    finally:
        removeTree(path)
