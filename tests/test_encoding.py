# -*- test-case-name: tests.test_encoding -*-
"""
Strings that cannot be encoded for the kernel, through every entry point.

A C{str} argument is encoded with the file system encoding and the
C{surrogateescape} handler (L{os.fsencode}), so a lone surrogate that
stands for an undecodable byte (C{"\\udcff"}, byte C{0xff}) is fine, and
one that stands for none (C{"\\ud800"}) cannot be encoded at all.  Whatever
the argument, the error is a L{ValueError} that names the function and the
argument, raised before any fd is opened or child started (the builder's
hygiene check), identically on every engine and monitor.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.protocol import ProcessProtocol

from tests.builders import (
    MixinBase,
    RecordingProtocol,
    makeTestCaseClasses,
    spawnAndRun,
)
from txspawn import run, stream

__all__ = ["EncodingMixin"]

#: A string no encoding handler can turn into bytes.
BAD = "x\ud800"

#: (argument, what the message names) for spawnProcess().
SPAWN_CASES: list[tuple[dict[str, Any], str]] = [
    ({"executable": "/bin/" + BAD}, "executable"),
    ({"args": ["true", BAD]}, "args[1]"),
    ({"args": [BAD]}, "args[0]"),
    ({"env": {BAD: "1"}}, f"env key {BAD!r}"),
    ({"env": {"A": BAD}}, "env['A']"),
    ({"path": "/tmp/" + BAD}, "path"),
]

#: (argument, what the message names) for run() and stream().
RUN_CASES: list[tuple[dict[str, Any], str]] = [
    ({"argv": ["/bin/" + BAD]}, "argv[0]"),
    ({"argv": ["/bin/true", BAD]}, "argv[1]"),
    ({"env": {BAD: "1"}}, f"env key {BAD!r}"),
    ({"env": {"A": BAD}}, "env['A']"),
    ({"path": "/tmp/" + BAD}, "path"),
]


class EncodingMixin(MixinBase):
    """
    Unencodable strings name the argument, from every entry point.
    """

    def assertNamed(self, error: ValueError, entry: str, named: str) -> None:
        """
        C{error}'s message names C{entry} first, then C{named}, and says
        what is wrong.
        """
        message = str(error)
        self.assertTrue(
            message.startswith(f"{entry}: {named} cannot be encoded"), message
        )

    def test_spawnProcess(self) -> None:
        """
        C{spawnProcess()}: the executable, an argument, an environment key
        or value, or the working directory.
        """
        reactor = self.buildReactor()
        for arguments, named in SPAWN_CASES:
            kwargs: dict[str, Any] = {
                "processProtocol": ProcessProtocol(),
                "executable": "/bin/true",
                "args": ["true"],
                "env": {},
            }
            kwargs.update(arguments)
            error = self.assertRaises(ValueError, reactor.spawnProcess, **kwargs)
            self.assertNamed(error, "spawnProcess()", named)

    def test_runAndStream(self) -> None:
        """
        C{run()} and C{stream()}: the program, an argument, an environment
        key or value, or the working directory.
        """
        reactor = self.buildReactor()
        for function, entry in ((run, "run()"), (stream, "stream()")):
            for arguments, named in RUN_CASES:
                kwargs: dict[str, Any] = {"argv": ["/bin/true"], "env": {}}
                kwargs.update(arguments)
                argv = kwargs.pop("argv")
                error = self.assertRaises(
                    ValueError, function, argv, reactor=reactor, **kwargs
                )
                self.assertNamed(error, entry, named)
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_surrogateEscapeIsFine(self) -> None:
        """
        A lone surrogate that C{surrogateescape} maps to a byte is not an
        error: the child gets that byte.
        """
        proto = RecordingProtocol()
        spawnAndRun(
            self,
            proto,
            "/bin/echo",
            ["echo", "\udcff"],
            env={},
        )
        self.assertEqual(proto.output.get(1), b"\xff\n")


globals().update(makeTestCaseClasses(EncodingMixin))
