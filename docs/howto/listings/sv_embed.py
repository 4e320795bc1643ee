"""
A supervisor driven from Python: started, asked to start a program and
its dependency, to restart another, then stopped, printing every
transition and the status table on the way.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Mapping
from typing import Any

from twisted.internet import task
from twisted.internet.defer import Deferred

from txspawn.supervise import (
    SupervisorEvent,
    SupervisorService,
    formatTable,
    loadConfig,
)

HERE = os.path.dirname(os.path.abspath(__file__))


async def example(
    reactor: Any, configPath: str, environ: Mapping[str, str]
) -> list[SupervisorEvent]:
    config = loadConfig(configPath, environ)
    supervisor = SupervisorService(
        config, reactor, configPath=configPath, environ=environ
    )
    events: list[SupervisorEvent] = []

    def transition(event: SupervisorEvent) -> None:
        events.append(event)
        if event.kind == "transition":
            print(f"{event.program}: {event.old} -> {event.new} ({event.why})")

    unsubscribe = supervisor.events.subscribe(transition)
    supervisor.startService()
    try:
        # Fires once web, then poller (which depends on it), is RUNNING.
        await supervisor.start("poller")
        # Fires once worker is RUNNING again.
        await supervisor.restart("worker")
        print(formatTable(supervisor.status()))
    finally:
        # Fires once every program's process tree is gone.
        await supervisor.stopService()
        unsubscribe()
    return events


def freePort() -> int:
    """
    A TCP port nothing listens on now, for the web server.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main(reactor: object) -> Deferred[list[SupervisorEvent]]:
    # The config's files (socket, logs) go beside it: use a copy in a
    # fresh directory.
    directory = tempfile.mkdtemp(prefix="sv_embed-")
    configPath = os.path.join(directory, "procs.toml")
    shutil.copy(os.path.join(HERE, "sv_procs.toml"), configPath)
    environ = {**os.environ, "WEB_PORT": str(freePort())}
    d = Deferred.fromCoroutine(example(reactor, configPath, environ))

    def cleanUp(result: object) -> object:
        shutil.rmtree(directory, ignore_errors=True)
        return result

    return d.addBoth(cleanUp)


if __name__ == "__main__":
    from txspawn.reactor import install

    install()
    task.react(main)
