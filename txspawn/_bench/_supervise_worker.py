# -*- test-case-name: tests.test_bench_supervise -*-
"""
The supervisor processes of the C{supervise} bench rows that run on Twisted:
txspawn's L{txspawn.supervise.service.SupervisorService} (with its control
server) and Twisted's own C{twisted.runner.procmon.ProcessMonitor}.  (The
third, supervisord, is its own program.)

Run as C{python -m txspawn._bench._supervise_worker CONFIG_JSON}:

  - C{{"impl": "txspawn", "config": PATH, "engine": ..., "monitor": ...}}:
    a txspawn reactor, the service on the TOML config at C{PATH} and the
    control server on the config's C{control} endpoint, as the twistd
    plugin builds them.
  - C{{"impl": "procmon", "programs": [[NAME, ARGV], ...], "log": PATH,
    "minRestartDelay": ..., "maxRestartDelay": ..., "threshold": ...}}: a
    stock C{EPollReactor} and a C{ProcessMonitor} with those programs; its
    log (the programs' output, as procmon logs it) goes to C{PATH}.

Either prints C{ready} on stdout once its service has started and runs
until C{SIGTERM}, which stops the service (the reactor waits for the
Deferred C{stopService} returns, when it returns one) and exits.

Nothing here is public API.
"""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["main"]


def _txspawn(config: dict[str, Any]) -> None:
    from twisted.internet.main import installReactor

    from txspawn.reactor import EPollReactor

    reactor = EPollReactor(engine=config.get("engine"), monitor=config.get("monitor"))
    installReactor(reactor)  # type: ignore[no-untyped-call]

    from txspawn.supervise import loadConfig
    from txspawn.supervise.control import listenControl
    from txspawn.supervise.service import SupervisorService

    path = config["config"]
    loaded = loadConfig(path)
    service = SupervisorService(loaded, reactor, configPath=path)

    def started() -> None:
        service.startService()
        d = listenControl(service, loaded.control, reactor)
        d.addCallback(lambda _: _ready())
        d.addErrback(_fail, reactor)

    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.callWhenRunning(started)
    reactor.run()


def _procmon(config: dict[str, Any]) -> None:
    from twisted.internet import epollreactor

    epollreactor.install()  # type: ignore[no-untyped-call]
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver
    from twisted.runner.procmon import ProcessMonitor

    log = open(config["log"], "a", encoding="utf-8")
    globalLogBeginner.beginLoggingTo(
        [textFileLogObserver(log)], redirectStandardIO=False
    )
    monitor = ProcessMonitor(reactor=reactor)
    for name in ("minRestartDelay", "maxRestartDelay", "threshold"):
        if name in config:
            setattr(monitor, name, config[name])
    for name, argv in config["programs"]:
        monitor.addProcess(name, argv)

    def started() -> None:
        monitor.startService()
        _ready()

    reactor.addSystemEventTrigger("before", "shutdown", monitor.stopService)
    reactor.callWhenRunning(started)
    reactor.run()


def _ready() -> None:
    sys.stdout.write("ready\n")
    sys.stdout.flush()


def _fail(failure: Any, reactor: Any) -> None:
    sys.stderr.write(f"could not start: {failure.getErrorMessage()}\n")
    sys.stdout.write("failed\n")
    sys.stdout.flush()
    reactor.stop()


def main(argv: list[str]) -> int:
    """
    Run one supervisor until C{SIGTERM}.

    @param argv: C{[CONFIG_JSON]}.
    @return: The exit code.
    """
    config = json.loads(argv[0])
    if config["impl"] == "txspawn":
        _txspawn(config)
    elif config["impl"] == "procmon":
        _procmon(config)
    else:
        sys.stderr.write(f"unknown impl {config['impl']!r}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
