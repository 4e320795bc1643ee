# -*- test-case-name: tests.test_interrupts -*-
"""
C{KeyboardInterrupt} at random points of many C{spawnProcess} calls; run
by L{tests.test_interrupts} in a process of its own (it interrupts itself,
which must not disturb the test runner).

Usage::

    interrupt_spawns.py ENGINE MONITOR VARIANT ROUNDS SEED

A txspawn reactor runs, and from inside it C{ROUNDS} children are
spawned, one at a time.  Before each spawn a one-shot C{ITIMER_REAL} timer
is armed; its C{SIGALRM} is handled by L{signal.default_int_handler}, the
handler Python installs for C{SIGINT} and that a REPL or
C{reactor.run(installSignalHandlers=False)} leaves in place, so the timer
raises C{KeyboardInterrupt} exactly as a Ctrl-C would there, through the
same mechanism (the C-level handler flags the signal, the interpreter runs
the Python handler at its next check).  (The reactor itself installs its
signal handlers: the sigchld monitor needs them to notice exits, see
C{docs/design/monitoring.rst}; C{SIGALRM} is not one of them.)  A timer, not
a thread sending C{SIGINT}: it fires within microseconds of its deadline,
without a thread that must be scheduled, so the delays, drawn from
C{[0, 1.5 T]} where C{T} is the mean duration of C{spawnProcess} measured
first (so the whole call is covered: argument checks, the engine, the
transport, C{makeConnection}, the monitor), really are where the interrupts
land.  Each round catches the C{KeyboardInterrupt} around its spawn and
cancels the timer if the spawn returned first.

C{VARIANT} is C{pipes} (C{cat} on three pipes), C{pty} (C{cat} on a pty)
or C{path} (C{cat} with a working directory, which the Python engine can
only do on its fork path).

Then every transport that C{spawnProcess} returned is ended normally (its
C{cat} is given end of file) and the reactor runs until every protocol that
got C{makeConnection} got C{processEnded}.  The facts, one JSON object on
stdout, for the test to judge:

  - C{rounds}, C{interruptedInside} (C{spawnProcess} raised),
    C{interruptedAfter} (it returned, then the timer fired),
    C{notInterrupted} (the timer was cancelled first, or the interrupt was
    swallowed and logged by C{makeConnection}'s guard, as Twisted does);
  - C{returnedEnds}: how the children of returned transports ended,
    C{[exitCode, signal]} to its count (all C{[0, None]}: ended normally);
  - C{abandonedEnds}: the same for protocols that got C{makeConnection}
    but whose C{spawnProcess} raised (their child is killed: C{[None, 9]});
  - C{eventsWithoutConnection}: protocols called although never connected;
  - C{neverEnded}: connected protocols that never got C{processEnded};
  - C{watchedLeft}, C{orphansLeft}: children the monitor or the orphan
    reaper still hold once every protocol ended;
  - C{childrenLeft}: this process's children (live or zombie), pid to
    state; C{fdsLeaked}: fd to what it is, against the fds open before the
    reactor ran;
  - C{errors}: critical or error log events other than a
    C{KeyboardInterrupt} from C{makeConnection}.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from collections import Counter
from typing import Any, cast

from tests.hygiene import childrenOf

#: Seconds the reactor may go without ending any transport before the run is
#: declared stuck.  A watchdog on progress, not a deadline for the whole run:
#: under a heavy load ending 200 children takes long, but never this long
#: without a single one ending.
STALL_TIMEOUT = 60.0


def openFDs() -> dict[int, str]:
    """
    The fds open in this process, with what each is.
    """
    result = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            result[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
    return result


def run(engine: str, monitor: str, variant: str, rounds: int, seed: int) -> Any:
    """
    The scenario of the module docstring.
    """
    from twisted.internet.protocol import ProcessProtocol
    from twisted.logger import LogLevel, formatEvent, globalLogBeginner
    from twisted.python.failure import Failure

    from txspawn._monitor.orphans import orphanCount
    from txspawn.reactor import EPollReactor

    rng = random.Random(seed)
    facts: dict[str, Any] = {}
    errors: list[str] = []
    swallowed: list[int] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_level") not in (LogLevel.error, LogLevel.critical):
            return
        failure = event.get("log_failure")
        text = formatEvent(event)
        if failure is not None and failure.check(KeyboardInterrupt):
            if "makeConnection" in text:
                swallowed.append(1)
                return
        if failure is not None:
            text += "\n" + failure.getTraceback()
        errors.append(text)

    globalLogBeginner.beginLoggingTo([cast(Any, observe)], redirectStandardIO=False)
    reactor = EPollReactor(engine=engine, monitor=monitor)
    connected: set[Any] = set()
    ended: dict[Any, tuple[int | None, int | None]] = {}
    called: set[Any] = set()

    class Recording(ProcessProtocol):
        def makeConnection(self, transport: Any) -> None:
            connected.add(self)
            ProcessProtocol.makeConnection(self, transport)

        def childDataReceived(self, childFD: int, data: bytes) -> None:
            called.add(self)

        def processEnded(self, reason: Failure) -> None:
            called.add(self)
            value: Any = reason.value
            ended[self] = (value.exitCode, value.signal)
            if watchdog:
                watchdog[0].reset(STALL_TIMEOUT)
            if connected <= set(ended) and finished:
                reactor.stop()

    if variant not in ("pipes", "pty", "path"):
        raise SystemExit(f"unknown variant {variant!r}")

    def spawn(protocol: Recording) -> Any:
        # Never with **options: CPython would return from that call through
        # C, and could run the signal handler before the transport is
        # stored here, in this caller's frame (the protocol would still
        # have it, but this program would not end its child).
        if variant == "pty":
            return reactor.spawnProcess(protocol, "/bin/cat", ["cat"], usePTY=True)
        if variant == "path":
            return reactor.spawnProcess(protocol, "/bin/cat", ["cat"], path="/")
        return reactor.spawnProcess(protocol, "/bin/cat", ["cat"])

    results: list[tuple[Recording, Any]] = []
    finished: list[bool] = []

    def end(transport: Any) -> None:
        if variant == "pty":
            # ^D at the start of a line: end of file for cat on a terminal.
            transport.write(b"\x04")
        else:
            transport.closeStdin()

    def interruptAll() -> None:
        # Warm-up: the mean duration of one spawnProcess, without timers.
        durations = []
        for _ in range(5):
            protocol = Recording()
            start = time.perf_counter()
            transport = spawn(protocol)
            durations.append(time.perf_counter() - start)
            results.append((protocol, transport))
        mean = sum(durations) / len(durations)
        facts["meanSpawnMicroseconds"] = round(mean * 1e6)
        inside = after = 0
        previous = signal.signal(signal.SIGALRM, signal.default_int_handler)
        try:
            for _ in range(rounds):
                protocol = Recording()
                delay = max(1e-6, rng.uniform(0.0, 1.5 * mean))
                transport = None
                try:
                    signal.setitimer(signal.ITIMER_REAL, delay)
                    transport = spawn(protocol)
                    signal.setitimer(signal.ITIMER_REAL, 0)
                except KeyboardInterrupt:
                    if transport is None:
                        inside += 1
                    else:
                        after += 1
                if transport is not None:
                    # txspawn called makeConnection, even if the interrupt
                    # came at the very start of ours (and was logged).
                    connected.add(protocol)
                results.append((protocol, transport))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        facts["rounds"] = rounds
        facts["interruptedInside"] = inside
        facts["interruptedAfter"] = after
        facts["notInterrupted"] = rounds - inside - after
        for _, transport in results:
            if transport is not None:
                end(transport)
        finished.append(True)
        # The watchdog counts from here: the spawns above ran without the
        # reactor turning.
        watchdog[0].reset(STALL_TIMEOUT)
        if connected <= set(ended):
            reactor.stop()

    def interruptAllOrStop() -> None:
        try:
            interruptAll()
        except BaseException:
            reactor.stop()
            raise

    baseFDs = openFDs()
    timedOut: list[bool] = []
    watchdog: list[Any] = []

    def timeout() -> None:
        timedOut.append(True)
        reactor.stop()

    def beforeShutdown() -> None:
        monitor: Any = reactor.childMonitor
        facts["watchedLeft"] = len(monitor.watching())

    reactor.addSystemEventTrigger("before", "shutdown", beforeShutdown)
    reactor.callWhenRunning(interruptAllOrStop)
    call = reactor.callLater(STALL_TIMEOUT, timeout)
    watchdog.append(call)
    reactor.run()
    if not timedOut:
        call.cancel()
    facts["timedOut"] = bool(timedOut)
    facts["swallowedInMakeConnection"] = len(swallowed)
    returned = Counter(
        json.dumps(ended.get(protocol)) for protocol, t in results if t is not None
    )
    abandoned = Counter(
        json.dumps(ended.get(protocol))
        for protocol, t in results
        if t is None and protocol in connected
    )
    facts["returnedEnds"] = dict(returned)
    facts["abandonedEnds"] = dict(abandoned)
    facts["eventsWithoutConnection"] = len(called - connected)
    facts["neverEnded"] = len(connected - set(ended))
    facts["orphansLeft"] = orphanCount()
    facts["childrenLeft"] = childrenOf(os.getpid())
    facts["fdsLeaked"] = {
        fd: what for fd, what in sorted(openFDs().items()) if baseFDs.get(fd) != what
    }
    facts["errors"] = errors
    return facts


def main(argv: list[str]) -> None:
    if len(argv) != 6:
        raise SystemExit(__doc__)
    engine, monitor, variant, rounds, seed = argv[1:]
    print(json.dumps(run(engine, monitor, variant, int(rounds), int(seed))))


if __name__ == "__main__":
    main(sys.argv)
