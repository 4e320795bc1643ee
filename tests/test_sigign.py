# -*- test-case-name: tests.test_sigign -*-
"""
Spawning while C{SIGCHLD} is ignored (C{SIG_IGN}), on every engine and
monitor.

The kernel then reaps every child itself the moment it exits, so a
short-lived child may be gone before the engine holds it by a pidfd.  The
documented outcome (C{docs/design/monitoring.rst}, "ECHILD: status
unknown") is an ordinary transport whose C{processEnded} comes with
C{ProcessTerminated(exitCode=None, signal=None, status=None)}, and nothing
left behind.
"""

from __future__ import annotations

import signal
from typing import Any

from twisted.internet.error import ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

from tests.builders import MixinBase, makeTestCaseClasses

__all__ = ["SIGCHLDIgnoredMixin"]

#: How many children are spawned: with the Python engine and the pidfd
#: monitor, about 1 in 8 of them used to exit before its pidfd was opened.
COUNT = 200


class SIGCHLDIgnoredMixin(MixinBase):
    """
    Many short-lived children with C{SIGCHLD} set to C{SIG_IGN}.
    """

    def test_shortLivedChildren(self) -> None:
        """
        Every C{spawnProcess} of C{true} returns a transport, every
        protocol gets C{processEnded} with the status unknown (the kernel
        took it), and no fd or child is left (the builder's hygiene check).

        The reactor runs without installing signal handlers: with them, the
        sigchld monitor would replace C{SIG_IGN} with its own handler.
        """
        old = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        self.addCleanup(signal.signal, signal.SIGCHLD, old)
        reactor = self.buildReactor()
        transports: list[Any] = []
        errors: list[BaseException] = []
        reasons: list[Failure] = []

        class Counting(ProcessProtocol):
            def processEnded(self, reason: Failure) -> None:
                reasons.append(reason)
                if len(reasons) == COUNT:
                    reactor.stop()

        def spawnAll() -> None:
            for _ in range(COUNT):
                try:
                    transports.append(
                        reactor.spawnProcess(Counting(), b"/bin/true", [b"true"], {})
                    )
                except BaseException as e:
                    errors.append(e)

        reactor.callWhenRunning(spawnAll)
        self.runReactor(reactor, installSignalHandlers=False)
        self.assertEqual(errors, [])
        self.assertEqual(len(transports), COUNT)
        self.assertEqual(len(reasons), COUNT)
        for reason in reasons:
            value: Any = reason.value
            self.assertIs(type(value), ProcessTerminated)
            self.assertEqual(
                (value.exitCode, value.signal, value.status), (None, None, None)
            )
        self.assertEqual(
            {(t.pid, t.status) for t in transports},
            {(None, None)},
        )


globals().update(makeTestCaseClasses(SIGCHLDIgnoredMixin))
