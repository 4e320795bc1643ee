# -*- test-case-name: tests.test_orphans -*-
"""
Reactors stopped with children alive under a real, exhausted
C{RLIMIT_NPROC}; run by L{tests.test_orphans} as an unprivileged user (the
limit does not apply to root).

Usage::

    orphans_nproc.py closure
    orphans_nproc.py run ENGINE MONITOR
    orphans_nproc.py iterate ENGINE MONITOR

C{closure} imports what C{run} needs and prints, as JSON, the
C{[source, destination]} pairs of every non-stdlib package it loaded (the
destination relative to a new import root): the test copies them, with
this file, into a directory the unprivileged user can read, and runs
C{run} there with C{python -I}.

C{run} (the directory holding this file goes first on C{sys.path}):

  1. reactor 1 spawns four children blocked on pipes A (three) and B
     (one), lowers C{RLIMIT_NPROC} to 1 (no thread or process can be
     created) and stops: its children are orphaned while no thread can
     start;
  2. the three children of pipe A are released and exit (zombies, unless
     reaped); the limit is set to the lowest value at which this user can
     create no task while those zombies exist;
  3. reactor 2 spawns a child: it succeeds only if the zombies are reaped
     before the engine runs; then the limit is restored, one more child is
     spawned, and reactor 2 stops with both alive;
  4. every remaining child is released; once the reaper threads are done,
     nothing may be left: no orphan, no child (live or zombie), no fd.

C{iterate}: reactor 1 stops with three children alive while no thread can
start (they are left pending); they exit; reactor 2, which spawns nothing,
runs one iteration: the pending orphans' zombies must be gone after it
(before it, nothing has reaped them), with nothing left at the end.

The facts are printed as one JSON object on stdout; the test judges them.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import sysconfig
import threading
from typing import Any

#: The name of txspawn's orphan-reaper threads.
REAPER = "txspawn-orphan-reaper"


def imports() -> dict[str, Any]:
    """
    Import everything C{run} uses from outside the standard library.
    """
    from twisted.internet.protocol import ProcessProtocol
    from twisted.logger import LogLevel, formatEvent, globalLogPublisher

    from txspawn._engine.selection import availableSpawners
    from txspawn._monitor.orphans import orphanCount, reaper
    from txspawn.reactor import EPollReactor

    return {
        "ProcessProtocol": ProcessProtocol,
        "LogLevel": LogLevel,
        "formatEvent": formatEvent,
        "globalLogPublisher": globalLogPublisher,
        "availableSpawners": availableSpawners,
        "orphanCount": orphanCount,
        "reaper": reaper,
        "EPollReactor": EPollReactor,
    }


def closure() -> list[list[str]]:
    """
    The C{[source, destination]} pairs of the non-stdlib packages loaded by
    L{imports} and by a short run of every engine and monitor (some modules
    are only imported when used).
    """
    ns = imports()
    for engine, reason in ns["availableSpawners"]().items():
        for monitor in ("pidfd", "sigchld") if reason is None else ():
            reactor = ns["EPollReactor"](engine=engine, monitor=monitor)

            def spawnAndStop(reactor: Any = reactor) -> None:
                try:
                    reactor.spawnProcess(ns["ProcessProtocol"](), "/bin/true", ["true"])
                finally:
                    reactor.stop()

            reactor.callWhenRunning(spawnAndStop)
            reactor.run()
    joinReapers(30.0)
    paths = sysconfig.get_paths()
    stdlib = [os.path.realpath(paths[key]) for key in ("stdlib", "platstdlib")]
    # A venv's platstdlib holds its site-packages.
    site = [os.path.realpath(paths[key]) for key in ("purelib", "platlib")]

    def under(path: str, roots: list[str]) -> bool:
        return any(path.startswith(root + os.sep) for root in roots)

    def inStdlib(path: str) -> bool:
        real = os.path.realpath(path)
        return under(real, stdlib) and not under(real, site)

    pairs: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names or name == "__main__":
            continue
        path = getattr(module, "__file__", None)
        if path is None or inStdlib(path):
            continue
        if "." in name:
            # Only the first level below a namespace package (zope.interface
            # below zope): a regular package is copied whole.
            if name.count(".") != 1 or getattr(sys.modules[top], "__file__", None):
                continue
        if os.path.basename(path).startswith("__init__."):
            pairs[os.path.dirname(path)] = name.replace(".", os.sep)
        elif "." not in name:
            pairs[path] = os.path.basename(path)
    return [[source, dest] for source, dest in sorted(pairs.items())]


def childrenOf(pid: int) -> dict[int, str]:
    """
    The children of C{pid}, live or zombie, with their state letter.
    """
    found = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rfind(b")") + 2 :].split()
            if int(fields[1]) == pid:
                found[int(name)] = fields[0].decode("ascii")
    return found


def openFDs() -> set[int]:
    """
    The fds open in this process.
    """
    listed = {int(name) for name in os.listdir("/proc/self/fd")}
    result = set()
    for fd in listed:
        try:
            os.fstat(fd)
        except OSError:
            continue
        result.add(fd)
    return result


def canCreateTask() -> bool:
    """
    Whether this user may create one more task now (a child, reaped at once:
    unlike a thread, its slot is given back by the time C{waitpid} returns).
    """
    try:
        pid = os.posix_spawn("/bin/true", ["true"], {})
    except BlockingIOError:
        return False
    os.waitpid(pid, 0)
    return True


def setProcessLimit(soft: int) -> None:
    """
    Set the soft C{RLIMIT_NPROC}, keeping the hard one.
    """
    resource.setrlimit(
        resource.RLIMIT_NPROC, (soft, resource.getrlimit(resource.RLIMIT_NPROC)[1])
    )


def exhaustProcessLimit(ceiling: int) -> int:
    """
    Set the soft C{RLIMIT_NPROC} to the highest value at which this user
    can create no task now (the tasks it has, wherever they are).

    @return: That value.
    """
    for soft in range(1, ceiling):
        setProcessLimit(soft)
        if canCreateTask():
            setProcessLimit(soft - 1)
            return soft - 1
    raise RuntimeError(f"no task could be created under a limit of {ceiling}")


def joinReapers(timeout: float) -> None:
    """
    Wait for every orphan-reaper thread to finish.
    """
    for thread in threading.enumerate():
        if thread.name == REAPER:
            thread.join(timeout)


def run(engine: str, monitor: str) -> dict[str, Any]:
    """
    The scenario of the module docstring.
    """
    ns = imports()
    facts: dict[str, Any] = {"uid": os.getuid()}
    errors: list[str] = []
    warnings: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        level = event.get("log_level")
        text = ns["formatEvent"](event)
        if "log_failure" in event:
            text += "\n" + event["log_failure"].getTraceback()
        if level in (ns["LogLevel"].error, ns["LogLevel"].critical):
            errors.append(text)
        elif level == ns["LogLevel"].warn:
            warnings.append(text)

    ns["globalLogPublisher"].addObserver(observe)
    facts["engineUnavailable"] = ns["availableSpawners"]().get(engine, "unknown")
    if facts["engineUnavailable"] is not None:
        return facts
    soft = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    ceiling = soft if soft != resource.RLIM_INFINITY else 4096
    reactor1 = ns["EPollReactor"](engine=engine, monitor=monitor)
    reactor2 = ns["EPollReactor"](engine=engine, monitor=monitor)
    baseFDs = openFDs()
    pipeA, pipeB, pipeC = (os.pipe2(os.O_CLOEXEC) for _ in range(3))

    def spawn(reactor: Any, pipe: tuple[int, int]) -> int:
        transport = reactor.spawnProcess(
            ns["ProcessProtocol"](),
            "/bin/sh",
            ["sh", "-c", "read x <&3"],
            childFDs={0: "w", 1: "r", 2: "r", 3: pipe[0]},
        )
        pid: int = transport.pid
        return pid

    first: list[int] = []
    second: list[int] = []

    def phase1() -> None:
        try:
            for pipe in (pipeA, pipeA, pipeA, pipeB):
                first.append(spawn(reactor1, pipe))
            setProcessLimit(1)
            facts["taskRefusedAtShutdown"] = not canCreateTask()
        finally:
            reactor1.stop()

    reactor1.callWhenRunning(phase1)
    reactor1.run()
    facts["orphansAfterStop"] = ns["orphanCount"]()
    os.close(pipeA[1])
    for pid in first[:3]:
        try:
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            pass
    mine = childrenOf(os.getpid())
    facts["zombiesBeforeSpawn"] = sum(mine.get(pid) == "Z" for pid in first[:3])
    exhaustProcessLimit(ceiling)
    facts["exhaustedBeforeSpawn"] = not canCreateTask()

    def phase2() -> None:
        try:
            try:
                second.append(spawn(reactor2, pipeC))
            except Exception as e:
                facts["spawnError"] = repr(e)
            mine = childrenOf(os.getpid())
            facts["zombiesAfterSpawn"] = sum(pid in mine for pid in first[:3])
            setProcessLimit(soft)
            second.append(spawn(reactor2, pipeC))
        finally:
            reactor2.stop()

    reactor2.callWhenRunning(phase2)
    reactor2.run()
    facts["orphansAfterSecondStop"] = ns["orphanCount"]()
    os.close(pipeB[1])
    os.close(pipeC[1])
    joinReapers(30.0)
    facts["orphansLeft"] = ns["orphanCount"]()
    facts["childrenLeft"] = childrenOf(os.getpid())
    for pipe in (pipeA, pipeB, pipeC):
        os.close(pipe[0])
    facts["fdsLeaked"] = {
        fd: os.readlink(f"/proc/self/fd/{fd}") for fd in sorted(openFDs() - baseFDs)
    }
    facts["errors"] = errors
    facts["warnings"] = warnings
    return facts


def iterate(engine: str, monitor: str) -> dict[str, Any]:
    """
    The C{iterate} scenario of the module docstring.
    """
    ns = imports()
    facts: dict[str, Any] = {"uid": os.getuid()}
    errors: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_level") in (ns["LogLevel"].error, ns["LogLevel"].critical):
            text = ns["formatEvent"](event)
            if "log_failure" in event:
                text += "\n" + event["log_failure"].getTraceback()
            errors.append(text)

    ns["globalLogPublisher"].addObserver(observe)
    facts["engineUnavailable"] = ns["availableSpawners"]().get(engine, "unknown")
    if facts["engineUnavailable"] is not None:
        return facts
    soft = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    reactor1 = ns["EPollReactor"](engine=engine, monitor=monitor)
    reactor2 = ns["EPollReactor"](engine=engine, monitor=monitor)
    baseFDs = openFDs()
    readEnd, writeEnd = os.pipe2(os.O_CLOEXEC)
    pids: list[int] = []

    def phase1() -> None:
        try:
            for _ in range(3):
                transport = reactor1.spawnProcess(
                    ns["ProcessProtocol"](),
                    "/bin/sh",
                    ["sh", "-c", "read x <&3"],
                    childFDs={0: "w", 1: "r", 2: "r", 3: readEnd},
                )
                pids.append(transport.pid)
            setProcessLimit(1)
            facts["taskRefusedAtShutdown"] = not canCreateTask()
        finally:
            reactor1.stop()

    reactor1.callWhenRunning(phase1)
    reactor1.run()
    facts["pendingAfterStop"] = len(ns["reaper"].pending)
    os.close(writeEnd)
    for pid in pids:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)

    def zombies() -> int:
        mine = childrenOf(os.getpid())
        return sum(mine.get(pid) == "Z" for pid in pids)

    def beforeIteration() -> None:
        # Runs before reactor 2's first wait; what it schedules runs after.
        facts["zombiesBeforeIteration"] = zombies()
        reactor2.callLater(0, afterIteration)

    def afterIteration() -> None:
        facts["zombiesAfterIteration"] = zombies()
        facts["pendingAfterIteration"] = len(ns["reaper"].pending)
        reactor2.stop()

    reactor2.callWhenRunning(reactor2.callLater, 0, beforeIteration)
    reactor2.run()
    setProcessLimit(soft)
    joinReapers(30.0)
    facts["orphansLeft"] = ns["orphanCount"]()
    facts["childrenLeft"] = childrenOf(os.getpid())
    os.close(readEnd)
    facts["fdsLeaked"] = {
        fd: os.readlink(f"/proc/self/fd/{fd}") for fd in sorted(openFDs() - baseFDs)
    }
    facts["errors"] = errors
    return facts


def main(argv: list[str]) -> None:
    if argv[1:] == ["closure"]:
        print(json.dumps(closure()))
    elif len(argv) == 4 and argv[1] in ("run", "iterate"):
        # Run with -I: this directory (the copied packages) is the import root.
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        scenario = run if argv[1] == "run" else iterate
        print(json.dumps(scenario(argv[2], argv[3])))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
