"""
txspawn supervise's demo: run the supervisor on examples/procs.toml until
its programs have shown what it does, then stop them all.

    .venv/bin/python examples/demo.py

What you see: every transition of every program as it happens (the web
server becoming ready once its port accepts a connection, the poller
starting only then, the worker crashing and coming back after a backoff
that doubles), and the status table printed by the control client,
C{python -m txspawn ctl -c examples/procs.toml status}, talking to this
process over the control API's unix socket.  Once the worker has been
restarted twice, every program is stopped, whole process trees, and the
demo exits 0 (1 if that did not happen within a minute).

It is also an example of embedding the supervisor in a program of your
own: a L{SupervisorService}, its event log, and the control API.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any

from txspawn.reactor import install

install()  # before anything imports twisted.internet.reactor

from twisted.internet.defer import Deferred, ensureDeferred  # noqa: E402
from twisted.internet.task import react  # noqa: E402

import txspawn  # noqa: E402
from txspawn.supervise import SupervisorService, loadConfig  # noqa: E402
from txspawn.supervise.control import listenControl  # noqa: E402

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "procs.toml"
#: The program that crashes, and how many restarts to wait for.
WORKER = "worker"
RESTARTS = 2
#: The longest the demo waits for all of it, in seconds.
PATIENCE = 60.0


def freePort() -> int:
    """
    A TCP port free on 127.0.0.1 right now, for the web server.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Progress:
    """
    Follows the supervisor's events: prints each transition, and fires
    L{done} once every program has been running and the worker has been
    restarted L{RESTARTS} times.
    """

    def __init__(self, supervisor: SupervisorService, clock: Any) -> None:
        self.supervisor = supervisor
        self.clock = clock
        self.started = clock.seconds()
        self.everRunning: set[str] = set()
        self.done: Deferred[None] = Deferred()
        #: Lines kept while another command prints, or None.
        self.held: list[str] | None = None
        self.unsubscribe = supervisor.events.subscribe(self.event)

    def hold(self) -> None:
        """
        Keep the lines of the transitions from now on, until L{release}.
        """
        self.held = []

    def release(self) -> None:
        """
        Print the lines kept since L{hold}, and the next ones at once.
        """
        held, self.held = self.held or [], None
        for line in held:
            print(line, flush=True)

    def event(self, event: Any) -> None:
        if event.kind == "transition":
            at = event.time - self.started
            pid = "" if event.pid is None else f" pid {event.pid}"
            line = (
                f"  {at:6.2f}s  {event.program:<8} {event.old:>8} -> "
                f"{event.new:<8} {event.why}{pid}"
            )
            if self.held is None:
                print(line, flush=True)
            else:
                self.held.append(line)
            if event.new == "RUNNING":
                self.everRunning.add(event.program)
        if not self.done.called and not self.missing():
            self.done.callback(None)

    def missing(self) -> list[str]:
        """
        What has not happened yet.
        """
        missing = [
            f"{name} has not been RUNNING"
            for name in self.supervisor.programNames()
            if name not in self.everRunning
        ]
        restarts = max(
            (row.restarts for row in self.supervisor.status() if row.program == WORKER),
            default=0,
        )
        if restarts < RESTARTS:
            missing.append(f"{WORKER} restarted {restarts} times, not {RESTARTS}")
        return missing


async def ctl(*args: str) -> None:
    """
    Run C{python -m txspawn ctl -c examples/procs.toml ARGS...} and print
    what it prints.
    """
    config = os.path.relpath(CONFIG)
    print(f"\n$ python -m txspawn ctl -c {config} {' '.join(args)}", flush=True)
    result = await txspawn.run(
        [sys.executable, "-m", "txspawn", "ctl", "-c", str(CONFIG), *args]
    )
    text = (result.stdout + result.stderr).decode().rstrip("\n")
    print(text + "\n", flush=True)


async def main(reactor: Any) -> None:
    os.environ.setdefault("WEB_PORT", str(freePort()))
    config = loadConfig(CONFIG)
    supervisor = SupervisorService(config, reactor, configPath=str(CONFIG))
    progress = Progress(supervisor, reactor)
    port = await listenControl(supervisor, config.control, reactor)
    print(
        f"txspawn supervise: {', '.join(supervisor.programNames())} from "
        f"{os.path.relpath(CONFIG)} (web server on 127.0.0.1:"
        f"{os.environ['WEB_PORT']})\n",
        flush=True,
    )
    supervisor.startService()
    shown = False
    try:
        await progress.done.addTimeout(PATIENCE, reactor)
        shown = True
    except Exception:
        print(
            f"\nnot within {PATIENCE:.0f}s: {'; '.join(progress.missing())}",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    finally:
        # The transitions meanwhile are printed after the commands' output.
        progress.hold()
        await ctl("status")
        if shown:
            # The poller's last lines: it reached the web server.
            await ctl("tail", "-n", "2", "poller")
        progress.release()
        print("stopping every program (whole trees)...", flush=True)
        await supervisor.stopService()
        progress.unsubscribe()
        await ctl("status")
        stopped = port.stopListening()
        if stopped is not None:
            await stopped
    print("every program stopped: no child left.")


if __name__ == "__main__":
    react(lambda reactor: ensureDeferred(main(reactor)))
