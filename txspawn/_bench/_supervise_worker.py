# -*- test-case-name: tests.test_bench_supervise -*-
"""
The supervisor processes of the C{supervise} bench rows that run on Twisted:
txspawn's L{txspawn.supervise.service.SupervisorService} (with its control
server) and Twisted's own C{twisted.runner.procmon.ProcessMonitor}.  (The
third, supervisord, is its own program.)

Run as C{python -m txspawn._bench._supervise_worker CONFIG_JSON}:

  - C{{"impl": "txspawn", "config": PATH, "log": PATH, "engine": ...,
    "monitor": ...}}: a txspawn reactor and the service the twistd plugin
    builds (L{txspawn.supervise.tap.makeService}: the programs, the control
    server on the config's C{control} endpoint, C{SIGHUP} to reload); its
    log goes to C{log}.
  - C{{"impl": "procmon", "programs": [[NAME, ARGV], ...], "log": PATH,
    "minRestartDelay": ..., "maxRestartDelay": ..., "threshold": ...}}: a
    stock C{EPollReactor} and a C{ProcessMonitor} with those programs; its
    log (the programs' output, as procmon logs it) goes to C{PATH}.

Either prints C{ready} on stdout once its service has started (txspawn's
control server may still be on its way to listening) and runs
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

    from txspawn.supervise.tap import Options, makeService

    # What twistd -n txspawn-supervise and python -m txspawn supervise run.
    options = Options()  # type: ignore[no-untyped-call]
    options.parseOptions(["--config", config["config"]])  # type: ignore[no-untyped-call]
    service = makeService(options, reactor)
    _logTo(config["log"])

    def started() -> None:
        service.startService()
        _ready()

    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.callWhenRunning(started)
    reactor.run()


def _logTo(path: str) -> None:
    from twisted.logger import globalLogBeginner, textFileLogObserver

    log = open(path, "a", encoding="utf-8")
    globalLogBeginner.beginLoggingTo(
        [textFileLogObserver(log)], redirectStandardIO=False
    )


def _procmon(config: dict[str, Any]) -> None:
    from twisted.internet import epollreactor

    epollreactor.install()  # type: ignore[no-untyped-call]
    from twisted.internet import reactor
    from twisted.runner.procmon import ProcessMonitor

    _logTo(config["log"])
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
