# -*- test-case-name: tests.test_namespaces_unprivileged -*-
"""
Run namespaced spawns in this process and print one JSON line with what
happened to each: for the namespace tests that need a parent other than the
test process (one running as nobody, one inside a throwaway user namespace,
one inside a scratch mount namespace).

Usage::

    nsdriver.py JOB

C{JOB} is JSON::

    {"maxUserNamespaces": 0,          # optional: write it first (only ever
                                      # inside a throwaway user namespace)
     "cases": [{"engine": "c", "monitor": "pidfd",
                "namespaces": {...},  # Namespaces(**...), or null
                "spawn": {...},       # more spawnProcess keywords
                "python": "/usr/bin/python3", "nsworld": "/path/nsworld.py",
                "args": [...],        # nsworld.py's arguments
                "mountAt": "/dir",    # optional: once the child printed
                                      # "ready", look for a mount on /dir
                                      # in this process's mountinfo
                "rawFlags": 0},       # optional: spawn a hand-made plan
                                      # with these clone flags on the
                                      # engine itself (no validation)
               ...]}

Each case's result: C{world} (the report) and C{reason} (type, exit code,
signal, status), or C{build} (the error building the L{Namespaces}) or
C{error} (a L{SpawnError}: stage name, errno, detail, message); then
C{seen} (whether the mount was found at C{mountAt}); C{clocks}: this
process's C{CLOCK_MONOTONIC} and C{CLOCK_BOOTTIME} before the spawn and
after its end; C{parentNs}: this process's namespace inodes; and the
hygiene after it: C{fdsUnchanged}, C{children} (left, alive or zombie),
C{mountsUnchanged}.

It imports only txspawn, Twisted and the standard library: it runs from
the throwaway copy of L{tests.nsutil.portableTree} too.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

__all__: list[str] = []


def _fds() -> set[int]:
    listed = {int(name) for name in os.listdir("/proc/self/fd")}
    out = set()
    for fd in listed:
        try:
            os.fstat(fd)
        except OSError:
            continue
        out.add(fd)
    return out


def _children() -> list[int]:
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat[stat.rfind(b")") + 2 :].split()[1]) == me:
            found.append(int(name))
    return sorted(found)


def _mountinfo() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return f.read().splitlines()


def _clocks() -> list[float]:
    return [
        time.clock_gettime(time.CLOCK_MONOTONIC),
        time.clock_gettime(time.CLOCK_BOOTTIME),
    ]


def _namespaces() -> dict[str, int]:
    return {
        name: os.stat(f"/proc/self/ns/{name}").st_ino
        for name in sorted(os.listdir("/proc/self/ns"))
    }


def _errorOf(e: BaseException) -> dict[str, Any]:
    stage = getattr(e, "stage", None)
    return {
        "type": type(e).__name__,
        "stage": None if stage is None else stage.name,
        "errno": getattr(e, "errno", None),
        "detail": getattr(e, "detail", None),
        "message": str(e),
    }


def _rawSpawn(case: dict[str, Any]) -> dict[str, Any]:
    """
    Spawn a hand-made plan with C{rawFlags} as clone flags on the engine
    itself: the kernel's answer, past the validation that would refuse it.
    """
    from txspawn._engine.selection import selectSpawner
    from txspawn._plan.namespaceplan import NamespacePlan
    from txspawn._plan.plan import SpawnPlan

    exe = case["python"].encode()
    plan = SpawnPlan(
        executable=exe,
        candidates=(exe,),
        argv=(exe, b"-c", b"pass"),
        envp=(),
        namespaces=NamespacePlan(cloneFlags=case["rawFlags"]),
    )
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        spawner = selectSpawner(case["engine"])
        try:
            handle = spawner.spawn(plan, {0: null, 1: null, 2: null}, None)
        except Exception as e:
            return {"error": _errorOf(e)}
        os.waitpid(handle.pid, 0)
        if handle.pidfd is not None:
            os.close(handle.pidfd)
        return {"error": None}
    finally:
        os.close(null)


def _spawn(case: dict[str, Any]) -> dict[str, Any]:
    from twisted.internet.protocol import ProcessProtocol

    from txspawn.options import Namespaces
    from txspawn.reactor import EPollReactor

    try:
        namespaces = (
            None if case["namespaces"] is None else Namespaces(**case["namespaces"])
        )
    except Exception as e:
        return {"build": _errorOf(e)}

    result: dict[str, Any] = {}
    reactor = EPollReactor(engine=case["engine"], monitor=case.get("monitor", "pidfd"))
    output: dict[int, bytes] = {1: b"", 2: b""}

    class Proto(ProcessProtocol):
        def childDataReceived(self, fd: int, data: bytes) -> None:
            output[fd] = output.get(fd, b"") + data
            if fd == 1 and b"ready\n" in output[1] and "seen" not in result:
                target = case["mountAt"]
                result["seen"] = any(line.split()[4] == target for line in _mountinfo())
                assert self.transport is not None
                self.transport.closeStdin()

        def processEnded(self, reason: Any) -> None:
            value = reason.value
            result["reason"] = [
                type(value).__name__,
                getattr(value, "exitCode", None),
                getattr(value, "signal", None),
                getattr(value, "status", None),
            ]
            reactor.stop()

    def spawn() -> None:
        try:
            reactor.spawnProcess(
                Proto(),
                case["python"],
                [case["python"], case["nsworld"], *case.get("args", [])],
                env={},
                path="/",
                namespaces=namespaces,
                **case.get("spawn", {}),
            )
        except Exception as e:
            result["error"] = _errorOf(e)
            reactor.stop()

    reactor.callWhenRunning(spawn)
    reactor.run(installSignalHandlers=False)
    # Released as tests.builders does, so that the fd check sees only what
    # the spawn itself left.
    reactor._signals.uninstall()
    for reader in list(getattr(reactor, "_internalReaders", ())):
        reactor.removeReader(reader)
        reader.connectionLost(None)
    getattr(reactor, "_internalReaders", set()).clear()
    reactor.disconnectAll()
    for call in reactor.getDelayedCalls():
        call.cancel()
    poller = getattr(reactor, "_poller", None)
    if poller is not None:
        poller.close()
    if "reason" in result:
        try:
            result["world"] = json.loads(output[1].split(b"\n", 1)[0])
        except ValueError:
            result["world"] = None
            result["stdout"] = output[1].decode(errors="replace")
            result["stderr"] = output[2].decode(errors="replace")
    return result


def main(argv: list[str]) -> None:
    """
    Run the job in C{argv[1]} and print the results.
    """
    job = json.loads(argv[1])
    if "maxUserNamespaces" in job:
        with open("/proc/sys/user/max_user_namespaces", "w") as f:
            f.write(str(job["maxUserNamespaces"]))
    # One plain spawn per engine first: what Twisted and the engines open
    # once per process (not per spawn) is then open before the first count.
    for engine in sorted({case["engine"] for case in job["cases"]}):
        _spawn({**job["cases"][0], "engine": engine, "namespaces": None, "args": []})
    results = []
    for case in job["cases"]:
        fds, children, mounts = _fds(), _children(), _mountinfo()
        before = _clocks()
        if "rawFlags" in case:
            result = _rawSpawn(case)
        else:
            result = _spawn(case)
        result["clocks"] = [before, _clocks()]
        result["parentNs"] = _namespaces()
        result["fdsUnchanged"] = _fds() == fds
        result["fdsAdded"] = {
            fd: os.readlink(f"/proc/self/fd/{fd}") for fd in sorted(_fds() - fds)
        }
        result["children"] = [pid for pid in _children() if pid not in children]
        result["mountsUnchanged"] = _mountinfo() == mounts
        results.append(result)
    print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv)
