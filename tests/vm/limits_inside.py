"""
The in-VM half of tests/test_cgroup_limits.py: cgroup v2 limits enforced for
real, on a pure cgroup v2 host (tools/vm.sh boots one), through txspawn's
public API, on both engines.

Run as root on such a host (it makes cgroups at the top of the hierarchy and
moves itself into one)::

    python tests/vm/limits_inside.py

It prints one line C{TXSPAWN-VM-RESULT <json>}: what each scenario observed
(the test module asserts on it; nothing is asserted here, so that every
observation reaches the test).  A scenario that raised records C{"error"}
(its traceback) instead.

Phases, one reactor each:
  - C{c}: the C engine, the parent found automatically (this process is in
    the root cgroup, so C{<mount>/txspawn}, with the controllers enabled at
    the root as needed);
  - C{python}: the Python engine, with this process moved first into a
    cgroup of its own (C{<mount>/txspawn-vm-job}) given as the parent, so
    that enabling a controller there has to move this process into a leaf
    of its own (the "no internal processes" rule).

Each phase, in this order: a spawn with no limit (no controller enabled),
memoryMax=64M with a 200 MB allocation (run(), then spawnProcess for the
exit reason), memoryMax=512M with the same allocation (the control),
pidsMax=5 with a child that forks 6 times, cpuMax of 20% with a busy child,
cpuMax of "max" (the control); the parent's cgroup.subtree_control is
recorded after each.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Generator
from typing import Any

from twisted.internet import defer
from twisted.internet.error import ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

import txspawn
from txspawn.options import Cgroup, CgroupStats
from txspawn.reactor import EPollReactor

MARK = "TXSPAWN-VM-RESULT"
PYTHON = sys.executable
#: Generous: a Python starts in seconds under software emulation.
TIMEOUT = 300.0
MB = 1 << 20

# Touches every page (bytes * n fills them): a calloc'd bytearray would stay
# unbacked and never meet memory.max.
ALLOCATE = "b = b'x' * (200 << 20); print(len(b))"

# Forks 6 times; each child waits on a pipe so that all stay alive.  Prints
# what each fork did ("ok" or the errno's name) as JSON.
FORKS = """
import errno, json, os
r, w = os.pipe()
results, kids = [], []
for _ in range(6):
    try:
        pid = os.fork()
    except OSError as e:
        results.append(errno.errorcode.get(e.errno, str(e.errno)))
        continue
    if pid == 0:
        os.close(w)
        os.read(r, 1)
        os._exit(0)
    kids.append(pid)
    results.append("ok")
os.close(w)
for pid in kids:
    os.waitpid(pid, 0)
print(json.dumps(results))
"""

# Reads the limit files of its own cgroup, as the kernel has them, and
# prints them as JSON.
LIMIT_FILES = """
import json, os
with open("/proc/self/mountinfo") as f:
    mount = next(
        line.split(" - ")[0].split()[4]
        for line in f
        if line.split(" - ")[1].split()[0] == "cgroup2"
    )
with open("/proc/self/cgroup") as f:
    own = next(line[3:].strip() for line in f if line.startswith("0::"))
here = mount + own
found = {}
for name in ("memory.max", "memory.high", "pids.max", "cpu.max", "io.weight"):
    with open(os.path.join(here, name)) as f:
        found[name] = f.read().strip()
print(json.dumps(found))
"""

# Busy for 1 s of wall-clock time: with a 20% quota the cgroup is throttled
# in every period (100 ms).  Not less than 20%: the child's Python starts
# under the quota too, and that takes about a second of CPU under emulation
# (at 1% the scenario took 90 s).
BUSY = """
import time
end = time.monotonic() + 1.0
while time.monotonic() < end:
    pass
"""


def cgroupMount() -> str:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] == "cgroup2":
                return fields[4]
    raise SystemExit("no cgroup2 mount")


def readWords(path: str) -> list[str]:
    with open(path) as f:
        return sorted(f.read().split())


def ownCgroup() -> str:
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].strip()
    return "?"


def statsDict(stats: CgroupStats | None) -> dict[str, Any] | None:
    if stats is None:
        return None
    return {
        "path": stats.path,
        "placement": stats.placement,
        "placementNote": stats.placementNote,
        "cpuUsageUsec": stats.cpuUsageUsec,
        "cpuThrottledCount": stats.cpuThrottledCount,
        "cpuThrottledUsec": stats.cpuThrottledUsec,
        "memoryPeak": stats.memoryPeak,
        "oomKills": stats.oomKills,
        "oomKilled": stats.oomKilled,
        "pidsPeak": stats.pidsPeak,
    }


class Ended(ProcessProtocol):
    """
    Collects a spawnProcess child's exit reason.
    """

    def __init__(self) -> None:
        # A list: a Deferred fired with a Failure would errback.
        self.ended: defer.Deferred[list[Failure]] = defer.Deferred()

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback([reason])


class Phase:
    """
    One engine's scenarios, on one reactor.
    """

    def __init__(self, engine: str, parent: str | None, parentPath: str) -> None:
        self.engine = engine
        self.parent = parent
        self.parentPath = parentPath
        self.reactor = EPollReactor(engine=engine)
        self.out: dict[str, Any] = {"engine": engine, "parent": parentPath}
        self.subtree: list[dict[str, Any]] = []
        self.out["subtreeControl"] = self.subtree

    def cgroup(self, **limits: Any) -> Cgroup:
        return Cgroup(parent=self.parent, **limits)

    def run(self, code: str, cgroup: Cgroup) -> defer.Deferred[Any]:
        return txspawn.run(
            [PYTHON, "-S", "-c", code],
            reactor=self.reactor,
            timeout=TIMEOUT,
            cgroup=cgroup,
        )

    def record(self, step: str) -> None:
        try:
            enabled: list[str] | None = readWords(
                os.path.join(self.parentPath, "cgroup.subtree_control")
            )
        except FileNotFoundError:
            enabled = None  # not made yet
        self.subtree.append(
            {"step": step, "enabled": enabled, "ownCgroup": ownCgroup()}
        )

    @defer.inlineCallbacks
    def scenario(
        self, name: str, body: Callable[[], Generator[Any, Any, dict[str, Any]]]
    ) -> Generator[Any, Any, None]:
        start = time.monotonic()
        try:
            self.out[name] = yield defer.inlineCallbacks(body)()
        except Exception:
            self.out[name] = {"error": traceback.format_exc()}
        self.out[name]["seconds"] = round(time.monotonic() - start, 2)
        try:
            self.record(name)
        except Exception:
            self.subtree.append({"step": name, "error": traceback.format_exc()})

    def plain(self) -> Generator[Any, Any, dict[str, Any]]:
        result = yield self.run("pass", self.cgroup())
        return {"exitCode": result.exitCode, "stats": statsDict(result.cgroup)}

    def oomRun(self) -> Generator[Any, Any, dict[str, Any]]:
        result = yield self.run(ALLOCATE, self.cgroup(memoryMax="64M"))
        return {
            "exitCode": result.exitCode,
            "signal": result.signal,
            "stats": statsDict(result.cgroup),
        }

    def oomSpawn(self) -> Generator[Any, Any, dict[str, Any]]:
        proto = Ended()
        self.reactor.spawnProcess(
            proto,
            PYTHON,
            [PYTHON, "-S", "-c", ALLOCATE],
            env=None,
            cgroup=self.cgroup(memoryMax="64M"),
        )
        [reason] = yield proto.ended
        value = reason.value
        return {
            "reasonType": type(value).__name__,
            "isProcessTerminated": isinstance(value, ProcessTerminated),
            "signal": getattr(value, "signal", None),
            "exitCode": getattr(value, "exitCode", None),
            "stats": statsDict(getattr(value, "cgroup", None)),
        }

    def memoryControl(self) -> Generator[Any, Any, dict[str, Any]]:
        result = yield self.run(ALLOCATE, self.cgroup(memoryMax="512M"))
        return {
            "exitCode": result.exitCode,
            "signal": result.signal,
            "stdout": result.stdout.decode(errors="replace").strip(),
            "stats": statsDict(result.cgroup),
        }

    def pids(self) -> Generator[Any, Any, dict[str, Any]]:
        result = yield self.run(FORKS, self.cgroup(pidsMax=5))
        return {
            "exitCode": result.exitCode,
            "forks": json.loads(result.stdout) if result.exitCode == 0 else None,
            "stderr": result.stderr.decode(errors="replace")[-2000:],
            "stats": statsDict(result.cgroup),
        }

    def cpuLimited(self) -> Generator[Any, Any, dict[str, Any]]:
        result = yield self.run(BUSY, self.cgroup(cpuMax=(20000, 100000)))
        return {"exitCode": result.exitCode, "stats": statsDict(result.cgroup)}

    def cpuControl(self) -> Generator[Any, Any, dict[str, Any]]:
        result = yield self.run(BUSY, self.cgroup(cpuMax=(None, 100000)))
        return {"exitCode": result.exitCode, "stats": statsDict(result.cgroup)}

    def limitFiles(self) -> Generator[Any, Any, dict[str, Any]]:
        limits = self.cgroup(
            memoryMax="256M",
            memoryHigh="128M",
            pidsMax=50,
            cpuMax=(50000, 100000),
            ioWeight=200,
        )
        result = yield self.run(LIMIT_FILES, limits)
        return {
            "exitCode": result.exitCode,
            "files": json.loads(result.stdout) if result.exitCode == 0 else None,
            "stderr": result.stderr.decode(errors="replace")[-2000:],
        }

    @defer.inlineCallbacks
    def all(self) -> Generator[Any, Any, None]:
        self.out["ownCgroupBefore"] = ownCgroup()
        self.record("start")
        yield self.scenario("plain", self.plain)
        yield self.scenario("oomRun", self.oomRun)
        yield self.scenario("oomSpawn", self.oomSpawn)
        yield self.scenario("memoryControl", self.memoryControl)
        yield self.scenario("pids", self.pids)
        yield self.scenario("cpuLimited", self.cpuLimited)
        yield self.scenario("cpuControl", self.cpuControl)
        yield self.scenario("limitFiles", self.limitFiles)
        self.out["ownCgroupAfter"] = ownCgroup()

    def go(self) -> dict[str, Any]:
        reactor = self.reactor
        failures: list[str] = []

        def done(result: object) -> None:
            if isinstance(result, Failure):
                failures.append(result.getTraceback())
            reactor.stop()

        reactor.callWhenRunning(lambda: self.all().addBoth(done))
        reactor.run(installSignalHandlers=False)
        if failures:
            self.out["error"] = failures[0]
        return self.out


def listFiles() -> None:
    """
    Print the files this program reads from its interpreter's and the
    checkout's trees (tools/vm.sh copies them into the VM: TXSPAWN_VM_BUNDLE):
    every module it imports, with the engines' lazily imported ones, the
    interpreter and its shared library.
    """
    import pkgutil

    import twisted.internet.inotify  # noqa: F401  (the leaf remover's)

    for info in pkgutil.walk_packages(txspawn.__path__, "txspawn."):
        if "._bench" not in info.name and "._cli" not in info.name:
            __import__(info.name)
    for engine in ("c", "python"):
        EPollReactor(engine=engine)
    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)}
    roots.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    files = {sys.executable, os.path.realpath(sys.executable)}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path:
            files.add(os.path.abspath(path))
            cached = getattr(module, "__cached__", None)
            if cached:
                files.add(os.path.abspath(cached))
    with open("/proc/self/maps") as f:
        files.update(line.split()[-1] for line in f if "/" in line)
    files.add(os.path.join(sys.prefix, "pyvenv.cfg"))
    for path in sorted(files):
        real = os.path.realpath(path)
        if os.path.isfile(path) and any(
            real.startswith(r + os.sep) or path.startswith(r + os.sep) for r in roots
        ):
            print(path)


def secondsSinceStart() -> float:
    """
    How long this process has run (from /proc: imports included).
    """
    with open("/proc/self/stat") as f:
        startTicks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return round(uptime - startTicks / os.sysconf("SC_CLK_TCK"), 2)


def main() -> None:
    if sys.argv[1:] == ["--list-files"]:
        listFiles()
        return
    mount = cgroupMount()
    out: dict[str, Any] = {
        "importSeconds": secondsSinceStart(),
        "kernel": platform.release(),
        "mount": mount,
        "rootControllers": readWords(os.path.join(mount, "cgroup.controllers")),
        "rootEnabledBefore": readWords(os.path.join(mount, "cgroup.subtree_control")),
        "ownCgroup": ownCgroup(),
    }
    try:
        out["c"] = Phase("c", None, os.path.join(mount, "txspawn")).go()
    except Exception:
        out["c"] = {"error": traceback.format_exc()}
    out["rootEnabledAfterC"] = readWords(os.path.join(mount, "cgroup.subtree_control"))
    try:
        # A cgroup of this process's own, given as the parent.  The root
        # offers its children what the C phase enabled there; the test
        # needs memory, pids and cpu, so ask for them in case it failed.
        job = os.path.join(mount, "txspawn-vm-job")
        os.makedirs(job, exist_ok=True)
        with open(os.path.join(mount, "cgroup.subtree_control"), "w") as f:
            f.write("+memory +pids +cpu")
        with open(os.path.join(job, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
        out["python"] = Phase("python", job, job).go()
    except Exception:
        out["python"] = {"error": traceback.format_exc()}
    out["seconds"] = secondsSinceStart()
    print(MARK, json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
