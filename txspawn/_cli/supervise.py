# -*- test-case-name: tests.test_supervise_cli -*-
"""
C{python -m txspawn supervise}: the supervisor in the foreground, and the
supervisord config converter.

C{python -m txspawn supervise procs.toml} is the short form of C{twist
txspawn-supervise -c procs.toml}: the same service
(L{txspawn.supervise.tap.makeService}: the programs, the control API, and
C{SIGHUP} to reload), on txspawn's reactor, logging to stderr.  C{SIGTERM}
or C{SIGINT} stops every program, whole trees, and it exits 0 once every
child is gone.

C{python -m txspawn supervise --convert supervisord.conf [-o procs.toml]}
writes the equivalent TOML config (L{convertSupervisord}) and lists on
stderr what it could not convert.
"""

from __future__ import annotations

import argparse
import configparser
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["buildParser", "convert", "main", "runSupervisor"]

#: What C{main} calls itself in messages.
PROG = "python -m txspawn supervise"


def buildParser() -> argparse.ArgumentParser:
    """
    @return: The parser for C{python -m txspawn supervise}.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run txspawn's process supervisor in the foreground on a "
        "TOML config: programs started in dependency order, restarted with "
        "backoff, stopped as whole trees, controlled with 'python -m txspawn "
        "ctl'.  SIGHUP reloads the config; SIGTERM or SIGINT stops every "
        "program and exits once every child is gone.  Or, with --convert, "
        "convert a supervisord config to a TOML config.",
    )
    parser.add_argument(
        "config",
        nargs="?",
        default="procs.toml",
        help="the config file (default: procs.toml)",
    )
    parser.add_argument(
        "--convert",
        metavar="SUPERVISORD_CONF",
        help="convert this supervisord config to TOML instead of running; what "
        "cannot be converted is listed on stderr",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="with --convert: write the TOML here (a new file) instead of to stdout",
    )
    return parser


def convert(source: str, output: str | None, out: TextIO, err: TextIO) -> int:
    """
    Convert a supervisord config to TOML.

    @param source: The supervisord config file.
    @param output: A file to create with the TOML, or C{None} for C{out}.
    @param out: Where the TOML goes without C{output}.
    @param err: Where what could not be converted, and errors, go.
    @return: The exit code: 0, or 1 if the config could not be read or
        converted, or C{output} exists.
    """
    from txspawn.supervise.convert import convertSupervisord

    try:
        with open(source, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        err.write(f"{PROG}: cannot read {source!r}: {e.strerror}\n")
        return 1
    try:
        toml, notes = convertSupervisord(text)
    except configparser.Error as e:
        err.write(f"{PROG}: {source} is not a supervisord config: {e}\n")
        return 1
    if output is None:
        out.write(toml)
    else:
        try:
            # "x": never overwrite a config that is already there.
            with open(output, "x", encoding="utf-8") as f:
                f.write(toml)
        except OSError as e:
            err.write(f"{PROG}: cannot create {output!r}: {e.strerror}\n")
            return 1
    for note in notes:
        err.write(f"not converted: {note}\n")
    if notes:
        err.write(
            f"{len(notes)} setting(s) not converted (also listed at the top of "
            "the TOML)\n"
        )
    return 0


def runSupervisor(configPath: str, err: TextIO) -> int:
    """
    Run the supervisor on a config in the foreground until C{SIGTERM} or
    C{SIGINT} (or the reactor stops), logging to C{err}.

    Installs txspawn's reactor: call it in a process that has none yet.

    @param configPath: The config file.
    @param err: Where the log and errors go.
    @return: The exit code: 0 once every program is stopped; 1 if the
        config is not valid or cannot be read, or the supervisor could not
        be built or its control API could not listen.
    """
    from twisted.logger import globalLogBeginner, textFileLogObserver
    from twisted.python import usage

    from txspawn.supervise.tap import Options, makeService

    options = Options()  # type: ignore[no-untyped-call]
    try:
        options.parseOptions(["--config", configPath])  # type: ignore[no-untyped-call]
    except usage.UsageError as e:
        err.write(f"{PROG}: {e}\n")
        return 1
    reactor: Any = options["reactor"]
    try:
        supervisor = makeService(options)
    except Exception as e:
        err.write(f"{PROG}: {e}\n")
        return 1
    globalLogBeginner.beginLoggingTo(
        [textFileLogObserver(err)], redirectStandardIO=False
    )
    reactor.callWhenRunning(supervisor.startService)
    # The reactor waits for the Deferred stopService returns, which fires
    # once every program's tree is gone.
    reactor.addSystemEventTrigger("before", "shutdown", supervisor.stopService)
    reactor.run()
    control = supervisor.getServiceNamed("control")  # type: ignore[no-untyped-call]
    if getattr(control, "listenFailure", None) is not None:
        return 1
    return 0


def main(
    argv: Sequence[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """
    Run C{python -m txspawn supervise}.

    @param argv: The arguments after C{supervise}; C{None} for
        C{sys.argv[2:]}.
    @param out: Where the converted TOML goes (default C{sys.stdout}).
    @param err: Where the log and errors go (default C{sys.stderr}).
    @return: The exit code.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    parser = buildParser()
    args = parser.parse_args(sys.argv[2:] if argv is None else argv)
    if args.convert is not None:
        return convert(args.convert, args.output, out, err)
    if args.output is not None:
        parser.error("-o/--output goes with --convert")
    return runSupervisor(os.fspath(args.config), err)
