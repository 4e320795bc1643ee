# -*- test-case-name: tests.test_cli -*-
"""
Tests for L{txspawn._cli.main}: C{python -m txspawn info} and the argument
handling of C{python -m txspawn bench}.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from txspawn._cli.main import buildParser, main

__all__ = ["BenchArgumentTests", "InfoTests", "assertNoInternalLabels"]


def _runModule(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("TXSPAWN_ENGINE", None)
    env.pop("TXSPAWN_MONITOR", None)
    return subprocess.run(
        [sys.executable, "-m", "txspawn", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def _leaves(mount: str) -> set[str]:
    """
    @return: Every cgroup under C{mount} named like a txspawn leaf.
    """
    return {
        os.path.join(top, name)
        for top, dirs, _ in os.walk(mount)
        for name in dirs
        if name.startswith("txspawn-")
    }


def assertNoInternalLabels(test: SynchronousTestCase, text: str) -> None:
    """
    Assert that C{text}, which users read, names no issue or issue item: no
    C{[2.9a]}-style label, no "issue 3".
    """
    test.assertNotRegex(text, r"\[\d+\.\d+[a-z]?\]")
    test.assertNotRegex(text.lower(), r"\bissues?\b")


class InfoTests(SynchronousTestCase):
    """
    C{python -m txspawn info}.
    """

    def test_sections(self) -> None:
        """
        C{info} exits 0 and prints an engine, a monitor, a features and a
        namespaces section.
        """
        result = _runModule("info")
        self.assertEqual(result.returncode, 0, result.stderr)
        for section in (
            "engine:",
            "monitor:",
            "features:",
            "namespaces:",
            "cgroups:",
        ):
            self.assertIn(f"\n{section}\n", result.stdout)

    def test_everyFeature(self) -> None:
        """
        Every feature txspawn probes is listed with C{on} or C{off}, and
        every feature that is off comes with a reason.
        """
        from txspawn._cli.main import effectiveFeatures
        from txspawn._kernel.features import FEATURE_NAMES
        from txspawn._kernel.probes import probeFeatures

        features = effectiveFeatures(probeFeatures())
        result = _runModule("info")
        lines = result.stdout.splitlines()
        for name in FEATURE_NAMES:
            matching = [line.split() for line in lines if line.split()[:1] == [name]]
            self.assertEqual(len(matching), 1, f"{name} not listed once")
            state = matching[0][1]
            self.assertIn(state, ("on", "off"))
            self.assertEqual(state == "on", features.enabled(name))
            if state == "off":
                # Why it is off and what it would give, on the next lines.
                at = lines.index(
                    next(line for line in lines if line.split()[:1] == [name])
                )
                self.assertRegex(lines[at + 1], r"^      why: \S", name)
                self.assertIn("      use: ", "\n".join(lines[at + 2 : at + 6]), name)

    def test_offFeaturesExplained(self) -> None:
        """
        Every feature txspawn knows has a plain description of what it
        gives; a feature that is off is listed with why (wrapped to 79
        columns) and with that description.
        """
        from txspawn._cli.main import describeFeatures
        from txspawn._kernel.features import (
            FEATURE_NAMES,
            FEATURE_USES,
            Features,
            FeatureState,
        )

        self.assertEqual(set(FEATURE_USES), set(FEATURE_NAMES))
        offAll = Features(
            {name: FeatureState(False, f"no {name} here") for name in FEATURE_NAMES}
        )
        lines = describeFeatures(offAll)
        self.assertTrue(all(len(line) <= 77 for line in lines), lines)
        text = "\n".join(lines)
        for name in FEATURE_NAMES:
            self.assertIn(f"\n{name}", text)
            self.assertIn(f"\n    why: no {name} here\n", text)
            use = " ".join(FEATURE_USES[name].split()[:4])
            self.assertIn(f"    use: {use}", text)
        assertNoInternalLabels(self, text)

    def test_namespaces(self) -> None:
        """
        C{info} has a namespaces section listing every namespace type and
        the self-map, parent-written map and C{/proc} questions once each,
        C{on} exactly when the real probe says it works, and each one that
        is off with why and what needs it on the next lines.
        """
        from txspawn._kernel.nsprobe import probeNamespaces

        probe = probeNamespaces()
        result = _runModule("info")
        self.assertEqual(result.returncode, 0, result.stderr)
        section = result.stdout.split("\nnamespaces:\n", 1)[1].split("\n\n", 1)[0]
        lines = section.splitlines()
        self.assertIn("from a real probe", lines[0])
        for v in probe.verdicts:
            at = [n for n, line in enumerate(lines) if line.split()[:1] == [v.name]]
            self.assertEqual(len(at), 1, f"{v.name} not listed once")
            self.assertEqual(lines[at[0]].split()[1], "on" if v.works else "off")
            if not v.works:
                self.assertRegex(lines[at[0] + 1], r"^      why: \S", v.name)
                self.assertIn("      use: ", "\n".join(lines[at[0] + 2 : at[0] + 6]))

    def test_namespacesOffExplained(self) -> None:
        """
        With every question off, each is listed with its reason (wrapped to
        79 columns) and what needs it, and the header says a user namespace
        is needed without CAP_SYS_ADMIN.
        """
        from txspawn._cli.main import describeNamespaces
        from txspawn._kernel.nsprobe import (
            NAMESPACE_FLAGS,
            NamespaceProbe,
            NamespaceVerdict,
        )

        names = [*NAMESPACE_FLAGS, "self-map", "parent-maps", "proc"]
        reason = "unshare failed with EPERM: needs root (CAP_SYS_ADMIN) or a user "
        offAll = NamespaceProbe(
            False,
            1000,
            tuple(NamespaceVerdict(n, False, "unshare", 1, reason + n) for n in names),
        )
        lines = describeNamespaces(offAll)
        self.assertTrue(all(len(line) <= 77 for line in lines), lines)
        text = "\n".join(lines)
        self.assertIn("lacks CAP_SYS_ADMIN", " ".join(text.split()))
        for name in names:
            self.assertIn(f"\n{name}", text)
            self.assertEqual(text.count(f"\n{name} "), 1)
        self.assertIn("    use: Namespaces(pid=True)", text)
        self.assertIn("    use: uidMap= or gidMap=", text)
        self.assertEqual(text.count("    why: unshare failed with EPERM"), len(names))
        assertNoInternalLabels(self, text)

    def test_cgroups(self) -> None:
        """
        C{info} has a cgroups section listing every part of cgroup support
        the probes report, once each, C{on} exactly when they say so, each
        one that is on with what was found and each one that is off with
        why and what needs it on the next lines; the probe leaves no leaf
        behind.
        """
        from txspawn._cgroup.hierarchy import cgroupMount
        from txspawn._cgroup.support import cgroupSupport

        mount = cgroupMount()
        rows = cgroupSupport()
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("TXSPAWN_ENGINE", "TXSPAWN_MONITOR")
        }
        info = subprocess.Popen(
            [sys.executable, "-m", "txspawn", "info"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        stdout, stderr = info.communicate(timeout=120)
        self.assertEqual(info.returncode, 0, stderr)
        result = subprocess.CompletedProcess(info.args, 0, stdout, stderr)
        section = result.stdout.split("\ncgroups:\n", 1)[1].split("\n\n", 1)[0]
        lines = section.splitlines()
        self.assertIn("from real probes", lines[0])
        self.assertGreaterEqual(len(rows), 2)
        for name, state, reason in rows:
            at = [n for n, line in enumerate(lines) if line[2:].startswith(name + "  ")]
            self.assertEqual(len(at), 1, f"{name} not listed once")
            line = lines[at[0]]
            self.assertEqual(line[2:].split()[len(name.split())], state, name)
            if state == "on":
                self.assertIn(reason.split()[0], line)
            else:
                self.assertRegex(lines[at[0] + 1], r"^      why: \S", name)
                self.assertIn("      use: ", "\n".join(lines[at[0] + 2 : at[0] + 8]))
        if mount is not None:
            # Leaves are named for the process that made them.
            mine = f"txspawn-{info.pid}-"
            self.assertEqual(
                {p for p in _leaves(mount) if os.path.basename(p).startswith(mine)},
                set(),
            )

    def test_cgroupsOffExplained(self) -> None:
        """
        With every part of cgroup support off, each is listed with its
        reason (wrapped to 79 columns) and what needs it; every part the
        probes can report has a plain description.
        """
        from txspawn._cli.main import CGROUP_USES, describeCgroups

        names = [
            "cgroup v2",
            "cgroup (own)",
            "cgroup parent",
            "cgroup controllers",
            "CLONE_INTO_CGROUP",
            "cgroup.kill",
        ]
        self.assertEqual(set(CGROUP_USES), set(names))
        offAll = [(name, "off", f"no {name} here, for a long reason") for name in names]
        lines = describeCgroups(offAll)
        self.assertTrue(all(len(line) <= 77 for line in lines), lines)
        text = "\n".join(lines)
        for name in names:
            self.assertEqual(text.count(f"\n{name}"), 1, name)
            self.assertIn(f"\n    why: no {name} here", text)
            use = " ".join(CGROUP_USES[name].split()[:3])
            self.assertIn(f"    use: {use}", text)
        self.assertIn("Delegate=yes", " ".join(text.split()))
        assertNoInternalLabels(self, text)

    def test_readsAsPlainWords(self) -> None:
        """
        C{info} names no issue or issue item, and explains the engine mode
        and the monitor in use in words.
        """
        result = _runModule("info")
        self.assertEqual(result.returncode, 0, result.stderr)
        assertNoInternalLabels(self, result.stdout)
        self.assertNotIn("trampoline", result.stdout)
        monitor = result.stdout.split("monitor:\n", 1)[1].split("\n\n", 1)[0]
        self.assertRegex(monitor, r"\n          \S")

    def test_cEngineVerdicts(self) -> None:
        """
        A feature only a real C{clone3} can probe is reported with the C
        engine's own verdict when the C engine is built.
        """
        from txspawn._cli.main import effectiveFeatures
        from txspawn._engine.selection import availableSpawners
        from txspawn._kernel.probes import probeFeatures

        unavailable = availableSpawners()["c"]
        if unavailable is not None:
            if os.environ.get("TXSPAWN_REQUIRE_C") == "1":
                self.fail(f"TXSPAWN_REQUIRE_C=1 but {unavailable}")
            raise self.skipTest(unavailable)
        from txspawn._engine.cengine import CSpawner

        on, _ = CSpawner.features()["clone_clear_sighand"]
        features = effectiveFeatures(probeFeatures())
        self.assertEqual(features.enabled("clone_clear_sighand"), bool(on))
        self.assertIn("C engine", features.reason("clone_clear_sighand") or "")

    def test_monitorInUse(self) -> None:
        """
        C{info} names the monitor in use and says why; with
        C{TXSPAWN_MONITOR} set, it says that the variable chose it.
        """
        result = _runModule("info")
        self.assertRegex(result.stdout, r"monitor:\n  in use: (pidfd|sigchld): \S")
        env = dict(os.environ, TXSPAWN_MONITOR="sigchld")
        forced = subprocess.run(
            [sys.executable, "-m", "txspawn", "info"],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        self.assertIn("in use: sigchld: TXSPAWN_MONITOR=sigchld", forced.stdout)

    def test_engineInUse(self) -> None:
        """
        C{info} lists the engines with their availability and names the one
        in use (or why the engine selection is unavailable).
        """
        result = _runModule("info")
        engine = result.stdout.split("engine:\n", 1)[1].split("\n\n", 1)[0]
        self.assertRegex(engine, r"in use: \w+: |engine selection unavailable")


class BenchArgumentTests(SynchronousTestCase):
    """
    Argument errors of C{python -m txspawn bench}, caught before anything
    runs.
    """

    def _main(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), out, err)
        return code, out.getvalue(), err.getvalue()

    def test_unknownScenario(self) -> None:
        """
        An unknown C{--scenario} exits 2 with a message naming the option,
        the bad name and the known names, and runs nothing.
        """
        code, out, err = self._main("bench", "--scenario", "nope")
        self.assertEqual(code, 2)
        self.assertEqual(out, "")
        self.assertIn("--scenario", err)
        self.assertIn("'nope'", err)
        self.assertIn("spawn-idle", err)

    def test_badReps(self) -> None:
        """
        C{--reps 0} exits 2 naming C{--reps}.
        """
        code, _, err = self._main("bench", "--reps", "0")
        self.assertEqual(code, 2)
        self.assertIn("--reps", err)

    def test_badSpawns(self) -> None:
        """
        C{--spawns 0} exits 2 naming C{--spawns}.
        """
        code, _, err = self._main("bench", "--spawns", "0")
        self.assertEqual(code, 2)
        self.assertIn("--spawns", err)

    def test_badIdle(self) -> None:
        """
        A negative C{--idle} exits 2 naming C{--idle}.
        """
        code, _, err = self._main("bench", "--idle", "-1")
        self.assertEqual(code, 2)
        self.assertIn("--idle", err)

    def test_noCommand(self) -> None:
        """
        C{python -m txspawn} alone prints the whole help (every command,
        with what it does) and that a command is required, on stderr, and
        exits 2 as for any other usage error.
        """
        result = _runModule()
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stdout, "")
        self.assertIn(buildParser().format_help(), result.stderr)
        for command in ("info", "bench", "supervise", "ctl"):
            self.assertRegex(result.stderr, rf"\n    {command}\s+\S")
        self.assertTrue(
            result.stderr.endswith(
                "python -m txspawn: error: a command is required:"
                " info, bench, supervise or ctl\n"
            ),
            result.stderr,
        )

    def test_helpListsScenarios(self) -> None:
        """
        C{bench --help} lists every scenario with what it measures, so the
        names are discoverable, and no internal label such as C{[2.9a]}.
        """
        from txspawn._bench._scenarios import SCENARIOS

        result = _runModule("bench", "--help")
        self.assertEqual(result.returncode, 0)
        for scenario in SCENARIOS:
            self.assertRegex(
                result.stdout,
                rf"\n  {re.escape(scenario.name)} +{re.escape(scenario.title)}",
            )
        assertNoInternalLabels(self, result.stdout)
