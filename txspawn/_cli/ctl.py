# -*- test-case-name: tests.test_supervise_ctl -*-
"""
C{python -m txspawn ctl}: drive a running supervisor through its control
API (L{txspawn.supervise.client.ControlClient})::

    python -m txspawn ctl [-c procs.toml | -s ENDPOINT] COMMAND

    status                       the status table
    start NAME | stop NAME | restart NAME
                                 NAME: a program, an instance (worker:1) or all;
                                 answers once done, with the status rows
    signal SIG NAME              SIG: HUP, SIGHUP or 1
    tail [-f] [--stderr] [-n N] INSTANCE
    events [-f] [--since N] [--json]
    reload                       reload the config; print what changed

The endpoint is C{-s}'s, else the C{[supervisor] control} of the config
given with C{-c}, else that of C{./procs.toml}.

Exit status: 0 done; 1 the request failed (an unknown program, a program
that went C{FATAL}, a config with errors at reload); 2 no supervisor
listening (or no config to find it from) or a usage error; 3 refused (this
user may not drive the supervisor).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from txspawn.supervise.client import (
    ControlClient,
    ControlError,
    ControlRefused,
    SupervisorNotListening,
)

__all__ = ["buildParser", "formatEvent", "main", "resolveEndpoint"]

#: Exit statuses.
OK, FAILED, UNREACHABLE, REFUSED = 0, 1, 2, 3

#: The config looked for when neither -c nor -s is given.
DEFAULT_CONFIG = "procs.toml"


class _CannotResolve(Exception):
    """
    No endpoint can be found: the message says why.
    """


def buildParser() -> argparse.ArgumentParser:
    """
    The parser of C{ctl}'s arguments.
    """
    parser = argparse.ArgumentParser(
        prog="python -m txspawn ctl",
        description="Drive a running txspawn supervisor through its control API.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "-c", "--config", help=f"the supervisor's config (default: ./{DEFAULT_CONFIG})"
    )
    where.add_argument(
        "-s",
        "--server",
        metavar="ENDPOINT",
        help="the control endpoint (unix:path=..., tcp:PORT:interface=127.0.0.1)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("status", help="the status table")
    for action in ("start", "stop", "restart"):
        sub = commands.add_parser(
            action, help=f"{action} a program, an instance or all"
        )
        sub.add_argument("name")
    signal = commands.add_parser(
        "signal", help="send a signal to each instance's child"
    )
    signal.add_argument("signal", help="HUP, SIGHUP or 1")
    signal.add_argument("name")
    tail = commands.add_parser("tail", help="the last lines of an instance's log")
    tail.add_argument("-f", "--follow", action="store_true", help="then follow it")
    tail.add_argument("--stderr", action="store_true", help="the stderr log")
    tail.add_argument(
        "-n",
        "--lines",
        type=int,
        default=None,
        metavar="N",
        help="how many lines (default: 100, or 10 with -f)",
    )
    tail.add_argument("name", metavar="INSTANCE")
    events = commands.add_parser("events", help="the supervisor's events")
    events.add_argument("-f", "--follow", action="store_true", help="then follow them")
    events.add_argument(
        "--since",
        type=int,
        default=0,
        metavar="N",
        help="only the events after sequence number N",
    )
    events.add_argument("--json", action="store_true", help="one JSON object a line")
    commands.add_parser("reload", help="reload the config; restart what changed")
    return parser


def resolveEndpoint(server: str | None, config: str | None) -> str:
    """
    The control endpoint: C{server}, else the control endpoint of the config
    C{config} (or C{./procs.toml}), read from its C{[supervisor]} table
    alone (L{controlOfFile}): quick, and a config whose programs have
    errors still gives it, so that C{ctl reload} can show the supervisor's
    own report of those errors.

    @raise _CannotResolve: There is no config to read it from.
    """
    if server:
        return server
    import tomllib

    from txspawn.supervise._controlfile import controlOfFile

    path = config or DEFAULT_CONFIG
    try:
        endpoint = controlOfFile(path, os.environ)
    except OSError as error:
        hint = "" if config else " (give -c CONFIG or -s ENDPOINT)"
        raise _CannotResolve(f"cannot read {path}: {error.strerror}{hint}") from None
    except tomllib.TOMLDecodeError as error:
        raise _CannotResolve(f"{path}: not TOML: {error}") from None
    if endpoint is None:
        raise _CannotResolve(
            f"no control endpoint in {path}: [supervisor] control must be a "
            "string whose ${VARIABLES} are all set"
        )
    return endpoint


def formatEvent(event: dict[str, Any]) -> str:
    """
    One event (a L{SupervisorEvent.toJSON} dict), for a person: its time
    (UTC), sequence number, program and what happened.
    """
    when = event.get("time")
    stamp = "-"
    if isinstance(when, int | float):
        moment = datetime.datetime.fromtimestamp(when, datetime.UTC)
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    kind = event.get("kind", "?")
    program = event.get("program") or "-"
    if event.get("old") is not None or event.get("new") is not None:
        what = f"{event.get('old')} -> {event.get('new')}"
        if kind != "transition":
            what = f"{kind} {what}"
    else:
        what = str(kind)
    details = [str(event["why"])] if event.get("why") else []
    if event.get("pid") is not None:
        details.append(f"pid {event['pid']}")
    if event.get("errno") is not None:
        details.append(f"errno {event['errno']}")
    tail = f": {'; '.join(details)}" if details else ""
    return f"{stamp} #{event.get('seq')} {program} {what}{tail}"


def _table(rows: list[dict[str, Any]]) -> str:
    from txspawn.supervise._table import formatRows

    return formatRows(rows)


def _run(client: ControlClient, args: argparse.Namespace) -> int:
    out = sys.stdout
    command = args.command
    if command == "status":
        print(_table(client.status()), file=out)
    elif command in ("start", "stop", "restart"):
        action: Callable[[str], list[dict[str, Any]]] = getattr(client, command)
        print(_table(action(args.name)), file=out)
    elif command == "signal":
        number: str | int = int(args.signal) if args.signal.isdigit() else args.signal
        print(_table(client.signal(args.name, number)), file=out)
    elif command == "tail":
        stream = "stderr" if args.stderr else "stdout"
        binary = out.buffer
        if args.follow:
            lines = 10 if args.lines is None else args.lines
            for chunk in client.follow(args.name, lines, stream):
                binary.write(chunk)
                binary.flush()
        else:
            binary.write(
                client.tail(
                    args.name, 100 if args.lines is None else args.lines, stream
                )
            )
            binary.flush()
    elif command == "events":
        events = (
            client.followEvents(args.since)
            if args.follow
            else client.events(args.since)
        )
        for event in events:
            print(
                json.dumps(event) if args.json else formatEvent(event),
                file=out,
                flush=True,
            )
    elif command == "reload":
        changes = client.reload()
        for key, names in changes.items():
            print(f"{key}: {', '.join(names) if names else '-'}", file=out)
    return OK


def main(argv: Sequence[str]) -> int:
    """
    Run C{ctl} with C{argv} (the arguments after C{ctl}).

    @return: The exit status (see the module's docstring).
    """
    parser = buildParser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exit:
        return exit.code if isinstance(exit.code, int) else UNREACHABLE
    err = sys.stderr
    try:
        endpoint = resolveEndpoint(args.server, args.config)
        client = ControlClient(endpoint)
    except (_CannotResolve, ValueError) as error:
        print(f"ctl: {error}", file=err)
        return UNREACHABLE
    try:
        return _run(client, args)
    except SupervisorNotListening as error:
        print(f"ctl: {error}", file=err)
        return UNREACHABLE
    except ControlRefused as error:
        print(f"ctl: refused: {error}", file=err)
        return REFUSED
    except ControlError as error:
        print(f"ctl: {args.command} failed: {error.message}", file=err)
        rows = (error.body or {}).get("programs")
        if rows:
            print(_table(rows), file=sys.stdout)
        return FAILED
    except KeyboardInterrupt:
        # The way out of -f.
        return OK
    except BrokenPipeError:
        # The reader went (ctl tail | head): nothing more to say, and
        # nothing to flush at exit either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return OK
