# -*- test-case-name: tests.test_cli -*-
"""
The command line: C{python -m txspawn info}, C{python -m txspawn bench},
C{python -m txspawn supervise} and C{python -m txspawn ctl}.

C{info} says which engine and monitor txspawn would use here, and why,
lists every kernel and libc feature probed, with the reason for each one
that is off, which namespaces a child can get here (from a real probe,
L{txspawn._kernel.nsprobe}), with the reason for each one it cannot, and
what a cgroup of its own per child can have here (from real probes too,
L{txspawn._cgroup.support}), with the reason for each part that is off.
C{bench} runs the side-by-side benchmark (txspawn, stock Twisted, a C
C{posix_spawn} loop) and prints medians and ratios.  C{supervise} runs the
process supervisor (L{txspawn._cli.supervise}) and C{ctl} drives a running
one (L{txspawn._cli.ctl}): each parses its own arguments.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from txspawn._kernel.features import Features
    from txspawn._kernel.nsprobe import NamespaceProbe

__all__ = [
    "buildParser",
    "describeCgroups",
    "describeFeatures",
    "describeNamespaces",
    "effectiveFeatures",
    "infoReport",
    "main",
]


def _section(title: str, lines: Sequence[str]) -> list[str]:
    return [title, *(f"  {line}" for line in lines), ""]


def _failure(e: BaseException) -> str:
    return f"unavailable ({type(e).__name__}: {e})"


#: What each C engine mode means for the user.
_MODE_MEANINGS = {
    "clone3": "the child runs on the parent's memory until it starts its "
    "program, so a spawn costs the same whatever the parent's size",
    "clone": "the child runs on the parent's memory until it starts its "
    "program, so a spawn costs the same whatever the parent's size",
    "fork-like": "the child gets a copy-on-write copy of the parent, so "
    "spawning costs more the more memory the parent holds",
}

#: What each monitor means for the user.
_MONITOR_MEANINGS = {
    "pidfd": "each child is watched through a file descriptor of its own: no "
    "SIGCHLD handler, so spawning works from any thread and beside other "
    "code that handles SIGCHLD",
    "sigchld": "a SIGCHLD handler wakes the reactor, which then checks each "
    "of its own children by pid (never waitpid(-1))",
}

#: What the Python engine does, for when it is in use.
_PYTHON_ENGINE = (
    "posix_spawn when the options allow it, else fork (which costs more the "
    "more memory the parent holds)"
)

#: Where the lines after an "in use" or "c mode" entry start.
_INDENT = " " * 8
#: The width the wrapped lines of C{info} fit in.
_WIDTH = 79


def _wrapped(text: str, first: str, rest: str) -> list[str]:
    """
    C{text} wrapped to L{_WIDTH} columns (less the section's indent), the
    first line starting with C{first}, the others with C{rest}.
    """
    return textwrap.wrap(
        text,
        _WIDTH - 2,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _engineLines() -> list[str]:
    try:
        from txspawn._engine.selection import availableSpawners, selectSpawner
    except ImportError as e:
        return [f"engine selection {_failure(e)}"]
    lines = []
    available = availableSpawners()
    for name, reason in available.items():
        lines.append(f"{name:<8} {'available' if reason is None else 'off: ' + reason}")
    if available.get("c") is None:
        from txspawn._engine.cengine import CSpawner

        mode, modeWhy = CSpawner().mode()
        lines.append(f"c mode   {mode}: {modeWhy}")
        if mode in _MODE_MEANINGS:
            lines += _wrapped(_MODE_MEANINGS[mode], " " * 9, " " * 9)
    requested = os.environ.get("TXSPAWN_ENGINE")
    try:
        spawner = selectSpawner()
    except Exception as e:
        lines.append(f"in use: none: {type(e).__name__}: {e}")
        return lines
    name = str(getattr(spawner, "name", type(spawner).__name__))
    if requested:
        why = f"TXSPAWN_ENGINE={requested}"
    else:
        skipped = [n for n, r in available.items() if r is not None]
        why = "the best available engine"
        if skipped:
            why += " (" + ", ".join(f"{n} is off" for n in skipped) + ")"
    lines.append(f"in use: {name}: {why}")
    if name == "python":
        lines += _wrapped(_PYTHON_ENGINE, _INDENT, _INDENT)
    return lines


def _monitorLines() -> list[str]:
    try:
        from twisted.internet.epollreactor import EPollReactor

        from txspawn._monitor.selection import selectMonitor
    except ImportError as e:
        return [f"monitor selection {_failure(e)}"]
    requested = os.environ.get("TXSPAWN_MONITOR")
    try:
        # A scratch reactor: selection may need one to build the monitor,
        # and must not touch (or install) the global reactor.
        monitor = selectMonitor(EPollReactor())  # type: ignore[no-untyped-call]
    except Exception as e:
        return [f"in use: none: {type(e).__name__}: {e}"]
    name = str(getattr(monitor, "name", type(monitor).__name__))
    reason = getattr(monitor, "reason", None)
    if requested:
        why = f"TXSPAWN_MONITOR={requested}"
    elif isinstance(reason, str) and reason:
        why = reason
    elif name == "pidfd":
        why = "the kernel supports pidfd_open and waitid(P_PIDFD)"
    else:
        why = "pidfd is unavailable (see the features below)"
    lines = [f"in use: {name}: {why}"]
    if name in _MONITOR_MEANINGS:
        lines += _wrapped(_MONITOR_MEANINGS[name], _INDENT, _INDENT)
    return lines


def effectiveFeatures(features: Features) -> Features:
    """
    The feature verdicts C{info} reports: the Python-level probes, with the
    ones only a real C{clone3} can settle taken from the C engine's own probe
    when the C engine is built.

    @param features: The Python-level probes (L{probeFeatures}).
    @return: C{features}, with the C engine's verdicts applied.
    """
    try:
        from txspawn._engine.cengine import CSpawner
    except ImportError:
        return features.override(
            "clone_clear_sighand",
            False,
            "only the C engine can use it, and it is not available here (see "
            "engine above)",
        )
    on, why = CSpawner.features()["clone_clear_sighand"]
    if on is None:
        return features
    return features.override(
        "clone_clear_sighand",
        on,
        "C engine probe: clone3 accepted it" if on else f"C engine: {why}",
    )


def describeFeatures(features: Features) -> list[str]:
    """
    The features section of C{info}: one line per feature that is on (how
    it was found); for each one that is off, why (C{why:}) and what it
    would give txspawn, or what txspawn does without it (C{use:}).

    @param features: The verdicts to describe.
    @return: The lines, without the section's indent.
    """
    from txspawn._kernel.features import FEATURE_USES

    lines = ["on: how it was found.  off: why, and what it would give."]
    return lines + _verdictLines(features.describe(), FEATURE_USES.get, wrapOn=False)


def _verdictLines(
    rows: Sequence[tuple[str, str, str]],
    use: Callable[[str], str | None],
    wrapOn: bool = True,
) -> list[str]:
    """
    The lines of one section of C{info}, the same for every section: each
    part that is C{"on"} on one line with what was found; each that is off
    on its own line, then why (C{why:}) and what needs it (C{use:}, when
    C{use(name)} says).

    @param rows: C{(name, "on" | "off", reason)} for each part.
    @param wrapOn: Whether an C{"on"} line's reason is wrapped, under
        itself (the kernel features' are short and never are).
    """
    width = max((len(name) for name, _, _ in rows), default=0)
    lines: list[str] = []
    for name, state, reason in rows:
        if state == "on":
            if wrapOn:
                lines += _wrapped(reason, f"{name:<{width}}  on  ", " " * (width + 6))
            else:
                lines.append(f"{name:<{width}}  on  {reason}")
            continue
        lines.append(f"{name:<{width}}  {state}")
        lines += _wrapped(reason, "    why: ", " " * 9)
        text = use(name)
        if text is not None:
            lines += _wrapped(text, "    use: ", " " * 9)
    return lines


def _featureLines() -> list[str]:
    try:
        from txspawn._kernel.probes import probeFeatures
    except ImportError as e:
        return [f"feature probes {_failure(e)}"]
    return describeFeatures(effectiveFeatures(probeFeatures()))


#: What each namespace question of the probe gives, in a user's words.
_NAMESPACE_USES = {
    "self-map": "Namespaces(user=True) with the default maps (you are root "
    "inside), at the cost of a plain spawn",
    "parent-maps": "uidMap= or gidMap= with several ranges or with ids that "
    "are not your own",
    "proc": "Namespaces(pid=True, mount=True, mountProc=True): a /proc that "
    "shows only the namespace's processes",
}


def describeNamespaces(probe: NamespaceProbe) -> list[str]:
    """
    The namespaces section of C{info}: how the probe ran, then one line per
    namespace type and per map or C{/proc} question that works; for each
    one that does not, why (C{why:}) and what needs it (C{use:}).

    @param probe: The probe's verdicts.
    @return: The lines, without the section's indent.
    """
    how = "from a real probe: a child per namespace calls unshare()"
    if probe.privileged:
        how += " (this process has CAP_SYS_ADMIN: no user namespace needed)"
    else:
        how += (
            " with a user namespace (this process lacks CAP_SYS_ADMIN, so "
            "every other namespace needs user=True)"
        )
    rows = [(v.name, "on" if v.works else "off", v.reason) for v in probe.verdicts]
    return _wrapped(how, "", "") + _verdictLines(
        rows, lambda name: _NAMESPACE_USES.get(name, f"Namespaces({name}=True)")
    )


def _namespaceLines() -> list[str]:
    try:
        from txspawn._kernel.nsprobe import probeNamespaces
    except ImportError as e:
        return [f"namespace probe {_failure(e)}"]
    try:
        probe = probeNamespaces()
    except OSError as e:
        return [f"namespace probe {_failure(e)}"]
    return describeNamespaces(probe)


#: What each part of cgroup support gives, in a user's words.
CGROUP_USES = {
    "cgroup v2": "cgroup=Cgroup(...): a cgroup of its own for each child, "
    "placed at spawn, measured, and killed as a whole tree",
    "cgroup (own)": "finding a parent: this process's own cgroup, when it is "
    "delegated to us",
    "cgroup parent": "Cgroup() without parent=: where the children's cgroups "
    "are made.  Give Cgroup(parent=...) a cgroup v2 directory you may write "
    "to, or run under a systemd unit or scope with Delegate=yes",
    "cgroup controllers": "the limits: memoryMax and memoryHigh need the "
    "memory controller, pidsMax pids, cpuMax cpu, ioWeight io.  Placement, "
    "tree kill, the end of the tree and cpu.stat work without any",
    "CLONE_INTO_CGROUP": "the C engine clones the child straight into its "
    "cgroup, so it is there from its first instruction, at the cost of a "
    "plain spawn; without it the child moves itself (cgroup.procs) before "
    "it runs the command",
    "cgroup.kill": "killTree(), and timeouts and terminate() with a cgroup, "
    "kill the whole tree at once, daemons that left the session included",
}


def describeCgroups(rows: Sequence[tuple[str, str, str]]) -> list[str]:
    """
    The cgroups section of C{info}: one line per part of cgroup support
    that is on (what was found); for each one that is off, why (C{why:})
    and what needs it (C{use:}).

    @param rows: L{txspawn._cgroup.support.cgroupSupport}'s verdicts:
        C{(name, "on" or "off", reason)}.
    @return: The lines, without the section's indent.
    """
    lines = _wrapped(
        "from real probes: a leaf made and removed, and a child cloned into it",
        "",
        "",
    )
    return lines + _verdictLines(rows, CGROUP_USES.get)


def _cgroupLines() -> list[str]:
    try:
        from txspawn._cgroup.support import cgroupSupport
    except ImportError as e:
        return [f"cgroup probe {_failure(e)}"]
    try:
        rows = cgroupSupport()
    except Exception as e:
        return [f"cgroup probe {_failure(e)}"]
    return describeCgroups(rows)


def infoReport() -> str:
    """
    @return: The text C{python -m txspawn info} prints.
    """
    import twisted
    import txspawn

    uname = os.uname()
    out = [
        f"txspawn {txspawn.__version__} (Python {platform.python_version()}, "
        f"Twisted {twisted.__version__}, "
        f"{uname.sysname} {uname.release} {uname.machine})",
        "",
    ]
    out += _section("engine:", _engineLines())
    out += _section("monitor:", _monitorLines())
    out += _section("features:", _featureLines())
    out += _section("namespaces:", _namespaceLines())
    out += _section("cgroups:", _cgroupLines())
    return "\n".join(out)


def buildParser() -> argparse.ArgumentParser:
    """
    @return: The parser for C{python -m txspawn}.
    """
    from txspawn._bench._scenarios import SCENARIOS, SUITES

    parser = argparse.ArgumentParser(
        prog="python -m txspawn",
        description="txspawn: fast, race-free process spawning for Twisted.",
        epilog="Run 'python -m txspawn COMMAND --help' for a command's options.",
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", title="commands"
    )
    commands.add_parser(
        "info",
        help="show which engine and monitor txspawn uses here, and why, what "
        "this kernel and libc offer, and which namespaces and cgroup features "
        "work here",
        description="Show which engine (what starts children) and monitor "
        "(what notices their exits) txspawn uses on this machine, and why, and "
        "every kernel and libc feature it looks for: why each one that is off "
        "is off, and what it would give; and which namespaces a child can "
        "get here, from a real probe, and why any cannot; and what a cgroup "
        "of its own per child can have here (the cgroup v2 mount, a parent, "
        "its controllers, CLONE_INTO_CGROUP, cgroup.kill), from real probes, "
        "and why any part is off.",
    )
    bench = commands.add_parser(
        "bench",
        help="benchmark txspawn against stock Twisted and a C posix_spawn loop",
        description="Time txspawn, stock Twisted and a C posix_spawn + waitpid "
        "loop (the practical limit) side by side, and print medians and ratios.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="scenarios:\n"
        + "\n".join(
            f"  {s.name:<15} {s.title}"
            + (
                ""
                if s.default
                else f" (in {s.suite})"
                if s.suite
                else " (not in the default set)"
            )
            for s in SCENARIOS
        )
        + "\n\nsuites (a --scenario name for all their rows, timed row against "
        "row):\n"
        + "\n".join(f"  {name:<15} the rows marked 'in {name}'" for name in SUITES),
    )
    bench.add_argument(
        "--quick",
        action="store_true",
        help="smaller sizes (1000 idle children, 5 repetitions): about a minute",
    )
    bench.add_argument(
        "--scenario",
        action="append",
        metavar="NAME",
        help="run only this scenario (repeatable; 'all' for every scenario, "
        "'namespaces' for the namespace suite, 'cgroup' for the cgroup "
        "suite; a row compared with other rows "
        "brings them along)",
    )
    bench.add_argument("--reps", type=int, help="timed repetitions per scenario")
    bench.add_argument(
        "--spawns",
        type=int,
        help="spawns per timed batch in the spawn* scenarios (fewer, with more "
        "--reps, interleaves the columns more finely)",
    )
    bench.add_argument("--idle", type=int, help="idle children in the *-idle scenarios")
    bench.add_argument("--json", metavar="FILE", help="also write every sample here")
    bench.add_argument(
        "--engine", help="txspawn engine for the txspawn column (python, c)"
    )
    bench.add_argument(
        "--monitor", help="txspawn monitor for the txspawn column (pidfd, sigchld)"
    )
    bench.add_argument("--cc", metavar="COMMAND", help="C compiler (default $CC or cc)")
    bench.add_argument(
        "--only",
        action="append",
        choices=("txspawn", "twisted", "c"),
        help="run only these columns (repeatable)",
    )
    # Listed for the help only: main() hands their arguments to their own
    # parsers (DELEGATED) before this parser sees them.
    commands.add_parser(
        "supervise",
        help="run the process supervisor on a TOML config, in the foreground; "
        "or convert a supervisord config (--convert)",
        add_help=False,
    )
    commands.add_parser(
        "ctl",
        help="control a running supervisor: status, start, stop, restart, "
        "signal, tail, events, reload",
        add_help=False,
    )
    return parser


def _superviseMain(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    from txspawn._cli.supervise import main as superviseMain

    return superviseMain(argv, out, err)


def _ctlMain(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    from txspawn._cli.ctl import main as ctlMain

    # ctl prints to sys.stdout/sys.stderr itself.
    return ctlMain(argv)


#: The commands whose arguments their own C{main} parses: everything after
#: the command's name is theirs.
DELEGATED: dict[str, Callable[[Sequence[str], TextIO, TextIO], int]] = {
    "supervise": _superviseMain,
    "ctl": _ctlMain,
}


def main(
    argv: Sequence[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """
    Run the command line.

    @param argv: The arguments (without the program name); C{None} for
        C{sys.argv[1:]}.
    @param out: Where reports go (default C{sys.stdout}).
    @param err: Where progress and errors go (default C{sys.stderr}).
    @return: The exit code.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in DELEGATED:
        return DELEGATED[argv[0]](argv[1:], out, err)
    parser = buildParser()
    args = parser.parse_args(argv)
    if args.command is None:
        # No command: the whole help, not just argparse's one-line usage, and
        # the usage-error status argparse gives any other bad command line.
        err.write(parser.format_help())
        err.write(
            f"\n{parser.prog}: error: a command is required: "
            "info, bench, supervise or ctl\n"
        )
        return 2
    if args.command == "info":
        out.write(infoReport())
        return 0
    from txspawn._cli.bench import benchCommand

    return benchCommand(args, out, err)
