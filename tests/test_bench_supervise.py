# -*- test-case-name: tests.test_bench_supervise -*-
"""
Tests for the C{supervise} row of the benchmark (L{txspawn._bench._supervise}
and its modules), on tiny sizes.

They prove that the program the supervisors run keeps its protocol, that
the log check finds what it is meant to find, that each supervisor gets the
config meant for it, that the table applies issue 15's goals, and that the
whole row runs end to end against the three supervisors and leaves no
program behind.  They assert nothing about speed.
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import time

from twisted.trial.unittest import SynchronousTestCase

from txspawn._bench._creference import CReference
from txspawn._bench._driver import BenchOptions, BenchRun
from txspawn._bench._report import formatReport, toJSON
from txspawn._bench._scenarios import QUICK, defaultScenarios, selectScenarios
from txspawn._bench._supervise import (
    FULL_SIZES,
    QUICK_SIZES,
    SUPERVISE_SCENARIO,
    SuperviseRun,
    SuperviseSizes,
    chooseAnchors,
    runSupervise,
    sizesFor,
)
from txspawn._bench._supervise_anchors import (
    LOG_BACKUPS,
    LOG_MAX_BYTES,
    ProgramSpec,
    procmonConfig,
    supervisordConfig,
    txspawnConfig,
)
from txspawn._bench._supervise_child import (
    EXIT,
    START,
    WAITING,
    buildChild,
    lineText,
    readRecords,
)
from txspawn._bench._supervise_measure import (
    CpuSample,
    LogCheck,
    Restarts,
    checkLogs,
    cpuOf,
    spewLines,
)
from txspawn._bench._supervise_report import (
    percentile,
    superviseJSON,
    superviseRows,
    superviseTable,
)
from txspawn.supervise import loadConfig

_HAVE_CC = shutil.which(os.environ.get("CC") or "cc") is not None
_HAVE_SUPERVISOR = importlib.util.find_spec("supervisor") is not None


def _scratch(test: SynchronousTestCase) -> str:
    directory = tempfile.mkdtemp()
    test.addCleanup(shutil.rmtree, directory, True)
    return directory


def _child(test: SynchronousTestCase) -> str:
    if not _HAVE_CC:
        raise test.skipTest("no C compiler (cc or $CC) on PATH")
    built = buildChild(_scratch(test))
    assert built.binary is not None, built.reason
    return built.binary


def _stamps(directory: str, limit: int) -> tuple[str, str]:
    stamps = os.path.join(directory, "stamps")
    limitFile = os.path.join(directory, "limit")
    open(stamps, "wb").close()
    with open(limitFile, "w") as f:
        f.write(f"{limit}\n")
    return stamps, limitFile


def _waitRecords(path: str, count: int) -> None:
    # Wait for a child's records (it writes them; nothing else to wait on).
    deadline = time.monotonic() + 60
    while len(readRecords(path)) < count:
        assert time.monotonic() < deadline, f"{count} records never came"
        time.sleep(0.001)


class ChildTests(SynchronousTestCase):
    """
    The program the supervisors run (L{buildChild}).
    """

    def test_restartUnderLimit(self) -> None:
        """
        A C{restart} run whose index is within the limit stamps its start
        and its exit and exits 0 at once; the next run has the next index.
        """
        child = _child(self)
        stamps, limit = _stamps(_scratch(self), 2)
        for _ in range(2):
            subprocess.run([child, "restart", stamps, limit], check=True, timeout=60)
        records = readRecords(stamps)
        self.assertEqual(
            [(r.kind, r.index) for r in records],
            [(START, 1), (EXIT, 1), (START, 2), (EXIT, 2)],
        )
        self.assertLessEqual(records[0].ns, records[1].ns)
        self.assertLess(records[1].ns, records[2].ns)

    def test_restartOverLimitWaits(self) -> None:
        """
        A C{restart} run past the limit waits for C{SIGUSR1}: its exit
        stamp comes after the signal was sent.
        """
        child = _child(self)
        stamps, limit = _stamps(_scratch(self), 0)
        process = subprocess.Popen([child, "restart", stamps, limit])
        self.addCleanup(process.wait)
        self.addCleanup(process.kill)
        _waitRecords(stamps, 1)
        sent = time.monotonic_ns()
        process.send_signal(signal.SIGUSR1)
        self.assertEqual(process.wait(60), 0)
        start, end = readRecords(stamps)
        self.assertEqual((start.kind, end.kind, start.pid), (START, EXIT, process.pid))
        self.assertGreater(end.ns, sent)

    def test_spew(self) -> None:
        """
        C{spew} waits for C{SIGUSR1}, then writes the numbered lines
        L{lineText} gives, up to the line L{spewLines} names, and stamps
        its wait, its start and its end.
        """
        child = _child(self)
        stamps, _ = _stamps(_scratch(self), 0)
        total = 200_000
        output = os.path.join(os.path.dirname(stamps), "out")
        with open(output, "wb") as out:
            process = subprocess.Popen([child, "spew", stamps, str(total)], stdout=out)
        self.addCleanup(process.wait)
        self.addCleanup(process.kill)
        _waitRecords(stamps, 1)
        self.assertEqual(os.path.getsize(output), 0)  # it waits for SIGUSR1
        process.send_signal(signal.SIGUSR1)
        self.assertEqual(process.wait(60), 0)
        final = spewLines(total)
        expected = b"".join(lineText(n) for n in range(final + 1))
        with open(output, "rb") as f:
            self.assertEqual(f.read(), expected)
        kinds = [r.kind for r in readRecords(stamps)]
        self.assertEqual(kinds, [WAITING, START, EXIT])

    def test_spewLines(self) -> None:
        """
        L{spewLines} is the first line at which the bytes written reach the
        total, as adding up L{lineText} says.
        """
        for total in (1, 32, 33, 7760, 7761, 15520, 100_003):
            written, n = 0, 0
            while True:
                written += len(lineText(n))
                if written >= total:
                    break
                n += 1
            self.assertEqual(spewLines(total), n, total)

    def test_noCompiler(self) -> None:
        """
        Without a compiler the build says why, and gives no binary.
        """
        built = buildChild(_scratch(self), "no-such-compiler-here")
        self.assertIsNone(built.binary)
        self.assertIn("no-such-compiler-here", built.reason)

    def test_compilerFails(self) -> None:
        """
        A compiler that fails (static and dynamic) gives no binary, and its
        exit status as the reason.
        """
        built = buildChild(_scratch(self), "false")
        self.assertIsNone(built.binary)
        self.assertIn("exited 1", built.reason)

    def test_static(self) -> None:
        """
        Where the C library links statically, the child is static (no
        program interpreter: no dynamic loader before its start stamp) and
        the reason says so; else it is dynamic.
        """
        directory = _scratch(self)
        built = buildChild(directory)
        if built.binary is None:
            raise self.skipTest(built.reason)
        static = built.reason.endswith("-static")
        self.assertEqual(_hasInterpreter(built.binary), not static, built.reason)


def _hasInterpreter(path: str) -> bool:
    """
    Whether an ELF64 executable names a program interpreter (a
    C{PT_INTERP} program header): whether it is dynamically linked.
    """
    with open(path, "rb") as f:
        data = f.read()
    (offset,) = struct.unpack_from("<Q", data, 32)
    size, count = struct.unpack_from("<HH", data, 54)
    return any(
        struct.unpack_from("<I", data, offset + n * size)[0] == 3 for n in range(count)
    )


class NoCompilerTests(SynchronousTestCase):
    """
    Without a C compiler the row measures nothing and says why.
    """

    def test_noCompiler(self) -> None:
        """
        The run records the build's failure and starts no supervisor.
        """
        lines: list[str] = []
        run = runSupervise(
            QUICK_SIZES, _scratch(self), lines.append, compiler="no-such-cc"
        )
        self.assertIn("no-such-cc", run.errors["child"])
        self.assertEqual((run.restarts, run.idle, run.logs), ({}, {}, {}))
        self.assertIn("child: ", "\n".join(superviseTable(run)))


def _killWaiting(stamps: str) -> None:
    """
    Kill the run that waits for C{SIGUSR1} (the last one, if it has not
    stamped its exit), once its shell loop is gone.
    """
    records = readRecords(stamps)
    if records and records[-1].kind == START:
        try:
            os.kill(records[-1].pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class RestartsTests(SynchronousTestCase):
    """
    L{Restarts} drives the C{restart} program in batches.
    """

    def test_batch(self) -> None:
        """
        A batch of N lets N runs exit, each restarted (here by a shell loop,
        the simplest supervisor), gives N latencies, and leaves a new run
        waiting.
        """
        child = _child(self)
        stamps, limit = _stamps(_scratch(self), 0)
        loop = subprocess.Popen(
            [
                "sh",
                "-c",
                'while :; do "$0" restart "$1" "$2"; done',
                child,
                stamps,
                limit,
            ]
        )
        self.addCleanup(_killWaiting, stamps)
        self.addCleanup(loop.wait)
        self.addCleanup(loop.kill)
        restarts = Restarts(stamps, limit)
        restarts.waitFirst(60)
        latencies = restarts.batch(3, 60)
        self.assertEqual(len(latencies), 3)
        self.assertTrue(all(value > 0 for value in latencies), latencies)
        waiting = readRecords(stamps)[-1]
        self.assertEqual((waiting.kind, waiting.index), (START, 4))
        self.assertEqual(len(restarts.batch(2, 60)), 2)


class CpuTests(SynchronousTestCase):
    """
    L{cpuOf} reads a process's CPU time.
    """

    def test_busy(self) -> None:
        """
        CPU time spent by this process shows in both measures.
        """
        before = cpuOf(os.getpid())
        spent = time.process_time()
        while time.process_time() - spent < 0.3:
            pass
        used = cpuOf(os.getpid()) - before
        self.assertGreaterEqual(used.seconds, 0.25)
        self.assertGreaterEqual(used.ticks, 0.2)
        self.assertGreaterEqual(used.switches, 0)


def _writeLog(directory: str, files: list[bytes]) -> str:
    """
    Write a log's files, oldest first; return the current file's path.
    """
    path = os.path.join(directory, "spew.out")
    for n, data in enumerate(files):
        age = len(files) - 1 - n
        with open(path if age == 0 else f"{path}.{age}", "wb") as f:
            f.write(data)
    return path


def _lines(first: int, last: int) -> bytes:
    return b"".join(lineText(n) for n in range(first, last + 1))


class CheckLogsTests(SynchronousTestCase):
    """
    L{checkLogs} finds lost, split and garbled lines and checks timestamps.
    """

    def check(self, files: list[bytes]) -> LogCheck:
        return checkLogs(_writeLog(_scratch(self), files))

    def test_whole(self) -> None:
        """
        Lines cut at line ends across four files: every one found, nothing
        lost, split or garbled; no timestamps.
        """
        found = self.check(
            [_lines(5, 9), _lines(10, 19), _lines(20, 20), _lines(21, 30)]
        )
        self.assertEqual(found, LogCheck(4, 26, 5, 30, 0, 0, 0, None))

    def test_split(self) -> None:
        """
        A line cut in two by a rotation is one split line, not lost.
        """
        line = lineText(10)
        found = self.check([_lines(0, 9) + line[:7], line[7:] + _lines(11, 12)])
        self.assertEqual((found.lines, found.lost, found.split), (13, 0, 1))
        self.assertEqual(found.broken, 0)

    def test_leadingFragment(self) -> None:
        """
        The oldest file starting with the end of a line (its start rotated
        away) is a split line.
        """
        found = self.check([lineText(4)[3:] + _lines(5, 6)])
        self.assertEqual((found.first, found.split, found.broken), (5, 1, 0))

    def test_lost(self) -> None:
        """
        A missing line is lost.
        """
        found = self.check([_lines(0, 3) + _lines(5, 6)])
        self.assertEqual((found.lost, found.lines), (1, 6))

    def test_garbled(self) -> None:
        """
        A line that is not one the program wrote is garbled (and the line
        it replaces lost), as is a last file ending inside a line.
        """
        found = self.check([_lines(0, 1) + b"0000000002 xyz\n" + _lines(3, 3)])
        self.assertEqual((found.broken, found.lost), (1, 1))
        found = self.check([_lines(0, 1) + lineText(2)[:5]])
        self.assertEqual(found.broken, 1)

    def test_timestamps(self) -> None:
        """
        Timestamps that never go back are monotonic; one going back, or a
        line without one among stamped lines, is not.
        """

        def stamped(stamps: list[str]) -> bytes:
            return b"".join(
                s.encode() + b" " + lineText(n) for n, s in enumerate(stamps)
            )

        early, late = "2026-12-05T11:00:00.000001Z", "2026-12-05T11:00:00.000002Z"
        self.assertIs(self.check([stamped([early, early, late])]).timestamps, True)
        self.assertIs(self.check([stamped([late, early])]).timestamps, False)
        mixed = stamped([early]) + lineText(1)
        self.assertIs(self.check([mixed]).timestamps, False)

    def test_markers(self) -> None:
        """
        The supervisor's marker lines are skipped.
        """
        marker = b"--- txspawn: spawned pid 12 ---\n"
        found = self.check([marker + _lines(0, 2) + marker])
        self.assertEqual((found.lines, found.broken), (3, 0))


class ConfigTests(SynchronousTestCase):
    """
    Each supervisor gets the settings each role means.
    """

    def test_txspawn(self) -> None:
        """
        The TOML loads: the restart program restarts always with no delay
        and never gives up; the logged one rotates at 10 MiB with 3 backups
        and timestamps; instances are kept.
        """
        directory = _scratch(self)
        programs = [
            ProgramSpec("r", ("/bin/true",), "restart"),
            ProgramSpec("s", ("/bin/sleep", "1"), "sleep", 3),
            ProgramSpec("f", ("/nonexistent",), "fail"),
            ProgramSpec("l", ("/bin/true",), "spew"),
        ]
        path = os.path.join(directory, "procs.toml")
        with open(path, "w") as f:
            f.write(txspawnConfig(programs, f"unix:path={directory}/c", directory))
        config = loadConfig(path)
        r, s, f_, log = (config.programs[n] for n in "rsfl")
        self.assertEqual(r.restart, "always")
        self.assertEqual(
            (r.backoff.initial, r.backoff.resetAfter, r.backoff.giveUpAfter),
            (0, 0, None),
        )
        self.assertEqual(r.ready.after, 0)
        self.assertEqual(s.instances, 3)
        self.assertIsNone(f_.backoff.giveUpAfter)
        self.assertEqual(
            (log.logs.maxBytes, log.logs.backups, log.logs.timestamps),
            (LOG_MAX_BYTES, LOG_BACKUPS, True),
        )
        self.assertEqual(log.restart, "never")

    def test_supervisord(self) -> None:
        """
        The INI file: the restart program has no start delay, restarts and
        never gives up; the logged one rotates like txspawn's.
        """
        programs = [
            ProgramSpec("r", ("/bin/true",), "restart"),
            ProgramSpec("s", ("/bin/sleep", "1"), "sleep", 3),
            ProgramSpec("l", ("/bin/true",), "spew"),
        ]
        parser = configparser.RawConfigParser()
        parser.read_string(supervisordConfig(programs, "/d", "/d/logs"))
        r = parser["program:r"]
        self.assertEqual(
            (r["startsecs"], r["autorestart"], r["startretries"]),
            ("0", "true", "1000000"),
        )
        self.assertEqual(parser["program:s"]["numprocs"], "3")
        log = parser["program:l"]
        self.assertEqual(log["stdout_logfile"], "/d/logs/l.out")
        self.assertEqual(log["stdout_logfile_maxbytes"], str(LOG_MAX_BYTES))
        self.assertEqual(log["stdout_logfile_backups"], str(LOG_BACKUPS))

    def test_procmon(self) -> None:
        """
        procmon has no instances: one name each; the restart program's
        monitor restarts with no delay.
        """
        config = procmonConfig(
            [
                ProgramSpec("s", ("/bin/sleep", "1"), "sleep", 2),
                ProgramSpec("r", ("/bin/true",), "restart"),
            ],
            "/d/log",
        )
        self.assertEqual(
            config["programs"],
            [
                ["s_0", ["/bin/sleep", "1"]],
                ["s_1", ["/bin/sleep", "1"]],
                ["r", ["/bin/true"]],
            ],
        )
        self.assertEqual((config["minRestartDelay"], config["maxRestartDelay"]), (0, 0))
        sleeping = procmonConfig([ProgramSpec("s", ("/bin/sleep",), "sleep")], "/d")
        self.assertNotIn("minRestartDelay", sleeping)


class WiringTests(SynchronousTestCase):
    """
    The row in the registry and the sizes.
    """

    def test_registry(self) -> None:
        """
        C{--scenario supervise} selects the row, which the default (and
        C{--quick}) set runs.
        """
        self.assertEqual(selectScenarios(["supervise"]), [SUPERVISE_SCENARIO])
        self.assertIn(SUPERVISE_SCENARIO, defaultScenarios())

    def test_sizes(self) -> None:
        """
        The full sizes are issue 15's; C{--quick} is smaller.
        """
        self.assertEqual(
            (FULL_SIZES.restarts, FULL_SIZES.programs, FULL_SIZES.idleSeconds),
            (200, 200, 30.0),
        )
        self.assertEqual((FULL_SIZES.failSeconds, FULL_SIZES.logBytes), (60.0, 2**30))
        self.assertIs(sizesFor(QUICK), QUICK_SIZES)
        self.assertEqual(QUICK_SIZES.restarts, 40)
        self.assertLess(QUICK_SIZES.idleSeconds, FULL_SIZES.idleSeconds)

    def test_anchors(self) -> None:
        """
        C{--only} keeps txspawn with the txspawn column and procmon with the
        twisted one; supervisord always runs.
        """
        self.assertEqual(
            chooseAnchors(["txspawn", "twisted", "c"]),
            ("txspawn", "procmon", "supervisord"),
        )
        self.assertEqual(chooseAnchors(["c"]), ("supervisord",))
        self.assertEqual(chooseAnchors(["txspawn"]), ("txspawn", "supervisord"))


def _run(**values: object) -> SuperviseRun:
    run = SuperviseRun(
        SuperviseSizes(4, 2, 3, 1.0, 2, 1, 1.0, 1000),
        anchors=("txspawn", "procmon", "supervisord"),
        idleWindow=10.0,
        failWindow=10.0,
    )
    for name, value in values.items():
        setattr(run, name, value)
    return run


def _rows(run: SuperviseRun) -> dict[str, object]:
    return {row.key: row for row in superviseRows(run)}


class ReportTests(SynchronousTestCase):
    """
    The row's table applies the goals of issue 15.
    """

    def test_percentile(self) -> None:
        """
        Nearest rank: the median of 1..4 is 2, the 95th of 1..20 is 19.
        """
        self.assertEqual(percentile([4, 1, 3, 2], 0.5), 2)
        self.assertEqual(percentile(list(range(1, 21)), 0.95), 19)
        self.assertIsNone(percentile([], 0.5))

    def test_restartGoal(self) -> None:
        """
        Restart latency meets its goal only at or under both anchors'.
        """
        under = _run(
            restarts={"txspawn": [1.0], "procmon": [2.0], "supervisord": [1000.0]}
        )
        row = superviseRows(under)[0]
        self.assertEqual((row.key, row.met), ("restart-p50", True))
        self.assertEqual(row.ratio("procmon"), 0.5)
        over = _run(
            restarts={"txspawn": [3.0], "procmon": [2.0], "supervisord": [1000.0]}
        )
        self.assertIs(superviseRows(over)[0].met, False)

    def test_idleGoal(self) -> None:
        """
        Idle CPU meets its goal at 1% of supervisord's or under (or none at
        all); the status goal is the p95 under 100 ms.
        """
        met = _rows(
            _run(
                idle={
                    "txspawn": CpuSample(0.0009, 0.0, 0),
                    "supervisord": CpuSample(0.1, 0.1, 10),
                },
                status={"txspawn": [10.0] * 19 + [200.0]},
            )
        )
        self.assertIs(met["idle-cpu"].met, True)  # type: ignore[attr-defined]
        self.assertIs(met["status-p95"].met, True)  # type: ignore[attr-defined]
        missed = _rows(
            _run(
                idle={
                    "txspawn": CpuSample(0.002, 0.0, 0),
                    "supervisord": CpuSample(0.1, 0.1, 10),
                },
                status={"txspawn": [10.0] * 18 + [200.0] * 2},
            )
        )
        self.assertIs(missed["idle-cpu"].met, False)  # type: ignore[attr-defined]
        self.assertIs(missed["status-p95"].met, False)  # type: ignore[attr-defined]

    def test_logGoals(self) -> None:
        """
        The log rows: throughput at least supervisord's, at most 4 files,
        nothing lost (the lines missing at the end included), split or
        garbled, timestamps monotonic.
        """
        final = spewLines(1000)
        good = LogCheck(4, final + 1, 0, final, 0, 0, 0, True)
        short = LogCheck(5, final, 0, final - 1, 0, 2, 1, None)
        rows = _rows(
            _run(
                logs={"txspawn": good, "supervisord": short},
                logSeconds={"txspawn": [1.0, 9.0, 1.0], "supervisord": [2.0]},
            )
        )
        for key in (
            "log-throughput",
            "log-files",
            "log-lost",
            "log-split",
            "log-broken",
            "log-timestamps",
        ):
            self.assertIs(rows[key].met, True, key)  # type: ignore[attr-defined]
        self.assertEqual(rows["log-lost"].values["supervisord"], 1.0)  # type: ignore[attr-defined]
        bad = _rows(
            _run(
                logs={"txspawn": short, "supervisord": good},
                logSeconds={"txspawn": [2.0], "supervisord": [1.0]},
            )
        )
        for key in ("log-throughput", "log-files", "log-lost", "log-split"):
            self.assertIs(bad[key].met, False, key)  # type: ignore[attr-defined]

    def test_everyGoalExplained(self) -> None:
        """
        Every row with a goal says why, when it is missed.
        """
        full = _run(
            restarts={"txspawn": [9.0], "procmon": [1.0], "supervisord": [1.0]},
            idle={"txspawn": CpuSample(1, 1, 1), "supervisord": CpuSample(1, 1, 1)},
            status={"txspawn": [500.0]},
            fail={"txspawn": CpuSample(1, 1, 1)},
            failStatus={"txspawn": [500.0]},
            logs={"txspawn": LogCheck(9, 1, 0, 0, 5, 5, 5, False)},
            logSeconds={"txspawn": [9.0], "supervisord": [1.0]},
        )
        full.logs["supervisord"] = LogCheck(4, 1, 0, 0, 0, 0, 0, None)
        goals = [row for row in superviseRows(full) if row.goal is not None]
        self.assertTrue(all(row.met is False for row in goals), goals)
        text = "\n".join(superviseTable(full))
        for row in goals:
            self.assertIn(f"  {row.key}: ", text)
        self.assertEqual(text.count("The goal: "), len(goals))

    def test_tableAndJSON(self) -> None:
        """
        The table has a line per measure with the ratios and the verdicts,
        the errors as notes; the JSON is plain JSON; a bench run with only
        this row prints only its table.
        """
        run = _run(
            restarts={"txspawn": [3.0], "procmon": [2.0], "supervisord": [1000.0]},
            errors={"idle procmon": "it fell over"},
        )
        text = "\n".join(superviseTable(run))
        self.assertIn("restart latency p50", text)
        self.assertIn("tx/proc", text)
        self.assertIn("MISS", text)
        self.assertIn("idle procmon: it fell over", text)
        self.assertIn("restart-p50: txspawn 3.0, procmon 2.0", text)
        self.assertIn("no more than", text)
        json.dumps(superviseJSON(run))
        bench = BenchRun(
            BenchOptions(QUICK, [SUPERVISE_SCENARIO]),
            CReference(None, "not built"),
            [],
            {
                "kernel": "k",
                "cpus": 2,
                "python": "3",
                "twisted": "t",
                "txspawn": "x",
            },
            1.0,
            run,
        )
        report = formatReport(bench)
        self.assertIn("restart latency p50", report)
        self.assertNotIn("txspawn/twisted", report)
        self.assertEqual(
            json.loads(json.dumps(toJSON(bench)))["supervise"]["rows"][0]["key"],
            "restart-p50",
        )


def _processesRunning(binary: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                first = f.read().split(b"\0", 1)[0]
        except OSError:
            continue
        if first == binary.encode():
            found.append(int(name))
    return found


class EndToEndTests(SynchronousTestCase):
    """
    The whole row against the three supervisors, on tiny sizes.
    """

    def test_tiny(self) -> None:
        """
        Every phase gives its measures for every supervisor that has them;
        txspawn's log is whole, rotated and stamped; nothing the row
        started is left running.
        """
        if not _HAVE_CC:
            raise self.skipTest("no C compiler (cc or $CC) on PATH")
        if not _HAVE_SUPERVISOR:
            raise self.skipTest("the supervisor package is not installed")
        sizes = SuperviseSizes(4, 2, 3, 0.5, 2, 1, 1.0, 25 * 2**20, 2)
        scratch = _scratch(self)
        lines: list[str] = []
        run = runSupervise(sizes, scratch, lines.append)
        self.assertEqual(run.errors, {})
        self.assertEqual(
            {impl: len(samples) for impl, samples in run.restarts.items()},
            {"txspawn": 4, "procmon": 4, "supervisord": 4},
        )
        self.assertEqual(set(run.idle), {"txspawn", "procmon", "supervisord"})
        self.assertEqual(set(run.fail), {"txspawn", "procmon", "supervisord"})
        self.assertEqual(
            {impl: len(samples) for impl, samples in run.status.items()},
            {"txspawn": 2, "supervisord": 2},
        )
        self.assertEqual(
            {impl: len(samples) for impl, samples in run.statusCommand.items()},
            {"txspawn": 1, "supervisord": 1},
        )
        self.assertTrue(run.failState["txspawn"].startswith("FATAL"), run.failState)
        check = run.logs["txspawn"]
        self.assertEqual(
            (check.lost, check.split, check.broken, check.timestamps),
            (0, 0, 0, True),
        )
        self.assertTrue(2 <= check.files <= 4, check)
        self.assertEqual(check.last, spewLines(sizes.logBytes))
        self.assertIn("supervisord", run.logs)
        self.assertEqual(
            {impl: len(seconds) for impl, seconds in run.logSeconds.items()},
            {"txspawn": 2, "supervisord": 2},
        )
        binary = os.path.join(scratch, "supervise", "supervise_child")
        self.assertEqual(_processesRunning(binary), [])
