# -*- test-case-name: tests.test_interrupts -*-
"""
A C{KeyboardInterrupt} at any point of C{spawnProcess} leaves no child, no
zombie and no fd behind, on every engine and monitor.

With Python's own C{SIGINT} handler in place (a REPL,
C{reactor.run(installSignalHandlers=False)}), a Ctrl-C during a spawn is
raised at the interpreter's next check for signals, which may come right
after the engine's clone returned and before anything stored the child:
stock Twisted leaks a child there, and txspawn did too (41 interrupts of
41 on the C engine).  The helper L{tests.helpers.interrupt_spawns}
interrupts many spawns at random points with a timer whose handler is that
same C{SIGINT} handler, in a process of its own so that the test runner is
never interrupted, and reports what is left; the assertions hold for every
interrupt point, so the test cannot be flaky: it passes only if no point
leaks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from tests.builders import MixinBase, makeTestCaseClasses

__all__ = ["InterruptedSpawnMixin"]

#: The helper program.
HELPER = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "helpers", "interrupt_spawns.py"
)
#: The checkout's root (holding the C{txspawn} package).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Spawns per run: over 200 random interrupt points, about half of them
#: land inside C{spawnProcess}.
ROUNDS = 200
#: The seed of the interrupt delays (the delays are reproducible; where
#: they land depends on the machine).
SEED = 11
#: How a child ends when its transport was returned (its C{cat} got end of
#: file) and when C{spawnProcess} raised after C{makeConnection} (killed).
ENDED_NORMALLY = json.dumps([0, None])
KILLED = json.dumps([None, 9])


class InterruptedSpawnMixin(MixinBase):
    """
    C{spawnProcess} interrupted by C{KeyboardInterrupt} at random points.
    """

    def interrupt(self, variant: str) -> dict[str, Any]:
        """
        Run the helper for this class's engine and monitor.

        @param variant: C{"pipes"}, C{"pty"} or C{"path"} (see the helper).
        @return: The facts it reports.
        """
        # This checkout's txspawn first, whatever is installed.
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [ROOT, *filter(None, [env.get("PYTHONPATH")])]
        )
        result = subprocess.run(
            [
                sys.executable,
                HELPER,
                self.engineName,
                self.monitorName,
                variant,
                str(ROUNDS),
                str(SEED),
            ],
            env=env,
            capture_output=True,
            timeout=600,
        )
        self.assertEqual(result.returncode, 0, result.stderr.decode(errors="replace"))
        facts: dict[str, Any] = json.loads(result.stdout)
        return facts

    def check(self, variant: str) -> None:
        """
        Every interrupted spawn left nothing; every other one ended
        normally.
        """
        facts = self.interrupt(variant)
        self.assertEqual(
            {
                key: facts[key]
                for key in (
                    "timedOut",
                    "neverEnded",
                    "eventsWithoutConnection",
                    "watchedLeft",
                    "orphansLeft",
                    "childrenLeft",
                    "fdsLeaked",
                    "errors",
                )
            },
            {
                "timedOut": False,
                "neverEnded": 0,
                "eventsWithoutConnection": 0,
                "watchedLeft": 0,
                "orphansLeft": 0,
                "childrenLeft": {},
                "fdsLeaked": {},
                "errors": [],
            },
        )
        # With a pty too: cat closes its terminal just before it exits, and
        # the transport no longer hangs the terminal up (SIGHUP) in between.
        self.assertLessEqual(set(facts["returnedEnds"]), {ENDED_NORMALLY}, facts)
        self.assertLessEqual(set(facts["abandonedEnds"]), {KILLED})
        # The run tested something: interrupts did land inside spawnProcess.
        self.assertGreater(facts["interruptedInside"], 0, facts)

    def test_pipes(self) -> None:
        """
        C{cat} on three pipes: a C{KeyboardInterrupt} anywhere in
        C{spawnProcess} leaves no child, zombie, fd or watched child; a
        protocol that got C{makeConnection} gets C{processEnded} (its child
        killed with C{SIGKILL}), one that did not is never called; a
        transport that was returned ends normally.
        """
        self.check("pipes")

    def test_pty(self) -> None:
        """
        The same with C{usePTY=True}: the pty is closed too.
        """
        self.check("pty")

    def test_path(self) -> None:
        """
        The same with a working directory, which the Python engine can only
        set on its fork path (C{os.fork} instead of C{posix_spawn}).
        """
        self.check("path")


globals().update(makeTestCaseClasses(InterruptedSpawnMixin))
