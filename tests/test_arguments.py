"""
Tests for L{txspawn._api.arguments}: C{spawnProcess()}, L{txspawn.run} and
L{txspawn.stream} check every argument at the call, through one path, and an
error names the function called and the argument; spawn options given to a
reactor that does not take them raise L{UnsupportedFeature}.
"""

from __future__ import annotations

import io
import math
import os
import string
import tempfile
from collections.abc import Callable
from typing import Any

from attrs import frozen
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.protocol import ProcessProtocol
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from tests.builders import MixinBase, ReactorTestMixin, makeTestCaseClasses
from tests.hygiene import childrenOf, openFDs
from txspawn import TeeProtocol, UnsupportedFeature, run, stream
from txspawn._api.arguments import (
    KILL_AFTER_DEFAULT,
    SPAWN_OPTION_NAMES,
    callError,
    resolveReactor,
    splitSpawnOptions,
)
from txspawn._api.tee import checkLogFile
from txspawn._plan.argumentchecks import CHILD_FD_MAX
from txspawn._reactor.spawner import installSpawner, uninstallSpawner
from txspawn._transport.timelimits import LIFETIME_OPTIONS, LifetimeOptions
from txspawn.interfaces import IReactorSpawn
from txspawn.options import SpawnOptions
from txspawn.testing import MemoryProcessReactor

#: The entry points, by the name their errors give.
ENTRY_POINTS = ("spawnProcess()", "run()", "stream()")
RUN_ENTRY_POINTS = ("run()", "stream()")


def closedBytesIO() -> io.BytesIO:
    """
    A binary file object that is closed.
    """
    f = io.BytesIO()
    f.close()
    return f


def textWrapper() -> io.TextIOWrapper:
    """
    A text file object (over a L{io.BytesIO}).
    """
    return io.TextIOWrapper(io.BytesIO())


def call(reactor: object, entry: str, arguments: dict[str, Any]) -> object:
    """
    Call the entry point C{entry} with C{arguments}, on top of a valid call
    that would run C{/bin/true}.
    """
    if entry == "spawnProcess()":
        kwargs: dict[str, Any] = {
            "processProtocol": ProcessProtocol(),
            "executable": "/bin/true",
            "args": ["true"],
        }
        kwargs.update(arguments)
        return reactor.spawnProcess(**kwargs)  # type: ignore[attr-defined]
    kwargs = {"argv": ["/bin/true"], "reactor": reactor}
    kwargs.update(arguments)
    argv = kwargs.pop("argv")
    function: Callable[..., object] = run if entry == "run()" else stream
    return function(argv, **kwargs)


@frozen
class BadCall:
    """
    A call of an entry point with one bad argument.

    @ivar entry: C{"spawnProcess()"}, C{"run()"} or C{"stream()"}.
    @ivar named: What the error message must name.
    @ivar error: The exception expected.
    @ivar arguments: The keyword arguments of the call (see L{call}).
    """

    entry: str
    named: str
    error: type[Exception]
    arguments: dict[str, Any]


def bad(name: str, *values: Any) -> st.SearchStrategy[dict[str, Any]]:
    """
    C{{name: value}} for one of C{values} (a callable value is called, so
    that each example gets a fresh object).
    """
    return st.sampled_from(values).map(
        lambda value: {name: value() if callable(value) else value}
    )


#: (entry points, what the message names, exception, arguments).
CASES: list[tuple[tuple[str, ...], str, type[Exception], Any]] = [
    # The command.
    (ENTRY_POINTS, "env", TypeError, bad("env", 5, "A=1", [("A", "1")])),
    (ENTRY_POINTS, "env", TypeError, bad("env", {1: "x"}, {"A": 1}, {"A": None})),
    (
        ENTRY_POINTS,
        "env",
        ValueError,
        bad("env", {"A=B": "1"}, {"": "1"}, {"A": "x\0"}, {"A\0": "1"}),
    ),
    (ENTRY_POINTS, "path", TypeError, bad("path", 5, 1.5, [b"/"])),
    (ENTRY_POINTS, "path", ValueError, bad("path", "/tmp\0", b"\0")),
    (ENTRY_POINTS, "uid", TypeError, bad("uid", "0", True, 1.5)),
    (ENTRY_POINTS, "uid", ValueError, bad("uid", -1, 2**32)),
    (ENTRY_POINTS, "gid", TypeError, bad("gid", "0", False)),
    (ENTRY_POINTS, "gid", ValueError, bad("gid", -5, 2**40)),
    # The spawn options.
    (ENTRY_POINTS, "umask", TypeError, bad("umask", "0o22", True, 1.0)),
    (ENTRY_POINTS, "umask", ValueError, bad("umask", 0o1777, -1)),
    (ENTRY_POINTS, "processGroup", TypeError, bad("processGroup", "x", False)),
    (
        ENTRY_POINTS,
        "processGroup",
        ValueError,
        # Beyond pid_t: the Python engine used to truncate 2**32 to 0.
        bad("processGroup", -1, 2**31, 2**32, 2**64),
    ),
    (ENTRY_POINTS, "newSession", TypeError, bad("newSession", "yes", 1, None)),
    (ENTRY_POINTS, "groups", TypeError, bad("groups", "wheel", 5, [1.5])),
    (ENTRY_POINTS, "groups", ValueError, bad("groups", [-1], ["a\0"], [""])),
    (ENTRY_POINTS, "rlimits", TypeError, bad("rlimits", 5, {"NOFILE": 5})),
    (
        ENTRY_POINTS,
        "rlimits",
        ValueError,
        bad("rlimits", {"BOGUS": (1, 1)}, {"NOFILE": (2, 1)}),
    ),
    (ENTRY_POINTS, "deathSignal", TypeError, bad("deathSignal", "TERM", 9.0)),
    (ENTRY_POINTS, "deathSignal", ValueError, bad("deathSignal", 0, 1000)),
    (
        ENTRY_POINTS,
        "processGroup",
        ValueError,
        st.just({"newSession": True, "processGroup": 0}),
    ),
    # Durations.
    (ENTRY_POINTS, "timeout", TypeError, bad("timeout", "5", True, [1])),
    (
        ENTRY_POINTS,
        "timeout",
        ValueError,
        # 10**400 is beyond a float: it used to raise OverflowError.
        bad("timeout", 0, -1, math.nan, math.inf, 10**400, -(10**400)),
    ),
    (
        ENTRY_POINTS,
        "killAfter",
        ValueError,
        st.floats(0, 100).map(lambda seconds: {"killAfter": seconds}),
    ),
    (
        ENTRY_POINTS,
        "killAfter",
        ValueError,
        st.sampled_from([-0.5, 10**400]).map(
            lambda seconds: {"timeout": 1, "killAfter": seconds}
        ),
    ),
    (
        ENTRY_POINTS,
        "closePipesAfterExit",
        ValueError,
        bad("closePipesAfterExit", -1, math.inf, 10**400),
    ),
    (
        ENTRY_POINTS,
        "closePipesAfterExit",
        TypeError,
        bad("closePipesAfterExit", "1", b"1"),
    ),
    # run() and stream().
    (RUN_ENTRY_POINTS, "argv", TypeError, bad("argv", "ls", b"ls", 5, None)),
    (RUN_ENTRY_POINTS, "argv", ValueError, bad("argv", [], ())),
    (RUN_ENTRY_POINTS, "argv[1]", TypeError, bad("argv", ["ls", None], ["ls", 3])),
    (RUN_ENTRY_POINTS, "argv[0]", ValueError, bad("argv", ["l\0s"], [b"\0"])),
    (RUN_ENTRY_POINTS, "argv[1]", ValueError, bad("argv", ["ls", "\ud800"])),
    (RUN_ENTRY_POINTS, "stdin", TypeError, bad("stdin", "text", 5)),
    (RUN_ENTRY_POINTS, "check", TypeError, bad("check", "yes", 1, None)),
    (RUN_ENTRY_POINTS, "logPrefix", TypeError, bad("logPrefix", "yes", 0, None)),
    (
        RUN_ENTRY_POINTS,
        "logFile",
        TypeError,
        bad(
            "logFile", 123, io.StringIO, object, lambda: io.TextIOWrapper(io.BytesIO())
        ),
    ),
    (
        RUN_ENTRY_POINTS,
        "logFile",
        ValueError,
        # A path that cannot be encoded used to fail the Deferred only.
        bad(
            "logFile",
            closedBytesIO,
            "l\0g",
            "/tmp/l\ud800g",
            lambda: _PathLike("\udfff"),
        ),
    ),
    (RUN_ENTRY_POINTS, "reactor", TypeError, bad("reactor", object, 5)),
    # stream() alone.
    (("stream()",), "lines", TypeError, bad("lines", "yes", 1)),
    (("stream()",), "highWater", TypeError, bad("highWater", "1", 1.5, True)),
    (("stream()",), "highWater", ValueError, bad("highWater", 0, -1)),
    (
        ("stream()",),
        "lowWater",
        ValueError,
        st.just({"highWater": 10, "lowWater": 10}),
    ),
    (("stream()",), "onOutput", TypeError, bad("onOutput", 5, "print")),
    # spawnProcess() alone.
    (
        ("spawnProcess()",),
        "processProtocol",
        TypeError,
        bad("processProtocol", None, object, "protocol"),
    ),
    (("spawnProcess()",), "executable", TypeError, bad("executable", 5, None)),
    (("spawnProcess()",), "executable", ValueError, bad("executable", "tr\0e")),
    (("spawnProcess()",), "args", TypeError, bad("args", "true", 5)),
    (("spawnProcess()",), "args[1]", TypeError, bad("args", ["true", 5])),
    (("spawnProcess()",), "args[0]", ValueError, bad("args", ["t\0"])),
    (
        ("spawnProcess()",),
        "usePTY",
        ValueError,
        bad("usePTY", (1, 2), [1, 2, 3, 4]),
    ),
    (("spawnProcess()",), "childFDs", TypeError, bad("childFDs", 5, [0, 1])),
    (
        ("spawnProcess()",),
        "childFDs",
        ValueError,
        # Beyond the highest fd a process can have: 2**31 - 1 used to get
        # an error of the C engine's fd program or the fd planner.
        bad(
            "childFDs",
            {0: "x"},
            {-1: "r"},
            {"0": "r"},
            {2**31 - 1: "r"},
            {CHILD_FD_MAX + 1: "r", 0: "r"},
        ),
    ),
    (
        ("spawnProcess()",),
        "processGroup",
        ValueError,
        # Named as the keyword (it used to be SpawnOptions.processGroup).
        st.just({"usePTY": True, "processGroup": 0}),
    ),
]

#: Every keyword some entry point knows.
KNOWN_KEYWORDS = frozenset(SPAWN_OPTION_NAMES) | {
    "self",
    "processProtocol",
    "executable",
    "args",
    "env",
    "path",
    "uid",
    "gid",
    "usePTY",
    "childFDs",
    "argv",
    "reactor",
    "stdin",
    "check",
    "logFile",
    "logPrefix",
    "lines",
    "highWater",
    "lowWater",
    "onOutput",
}


def validExtras(entry: str) -> st.SearchStrategy[dict[str, Any]]:
    """
    Valid arguments to go with a bad one, so that it is not always alone.
    """
    common: dict[str, st.SearchStrategy[Any]] = {
        "env": st.just({"A": "1", b"B": b"2"}),
        "umask": st.integers(0, 0o777),
        "rlimits": st.just({"NOFILE": (64, 64)}),
        "deathSignal": st.just(9),
        "processGroup": st.just(0),
    }
    if entry != "spawnProcess()":
        common.update(stdin=st.binary(max_size=8), check=st.booleans())
    return st.fixed_dictionaries({}, optional=common)


@st.composite
def badCalls(draw: st.DrawFn) -> BadCall:
    """
    A call of one entry point with one bad argument, and maybe some valid
    ones.
    """
    if draw(st.integers(0, len(CASES))) == len(CASES):
        # An unknown keyword.
        entry = draw(st.sampled_from(ENTRY_POINTS))
        name = draw(
            st.text(string.ascii_letters, min_size=3, max_size=12).filter(
                lambda name: name not in KNOWN_KEYWORDS
            )
        )
        arguments: dict[str, Any] = {name: draw(st.integers())}
        named = repr(name)
        error: type[Exception] = TypeError
    else:
        entries, named, error, strategy = CASES[draw(st.integers(0, len(CASES) - 1))]
        entry = draw(st.sampled_from(entries))
        arguments = draw(strategy)
    extras = draw(validExtras(entry))
    for name in arguments:
        extras.pop(name, None)
    if "newSession" in arguments:
        extras.pop("processGroup", None)
    return BadCall(entry, named, error, {**extras, **arguments})


class BadArgumentsMixin(MixinBase):
    """
    Bad arguments through every entry point on a txspawn reactor.
    """

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.differing_executors],
    )
    @given(badCall=badCalls())
    def test_badArguments(self, badCall: BadCall) -> None:
        """
        Whatever the entry point and the bad argument, the call raises the
        right L{TypeError} or L{ValueError}, whose message starts with the
        function called and names the argument, and nothing was opened,
        started or scheduled: the fds and children of this process are
        the same after the call as before it.
        """
        reactor = self.reactorForProperty()
        fdsBefore = openFDs()
        childrenBefore = set(childrenOf(os.getpid()))
        with self.assertRaises(badCall.error) as caught:
            call(reactor, badCall.entry, badCall.arguments)
        message = str(caught.exception)
        self.assertTrue(
            message.startswith(f"{badCall.entry}: "),
            f"{message!r} does not name {badCall.entry}",
        )
        self.assertIn(badCall.named, message)
        self.assertNotIn("SpawnOptions", message)
        self.assertEqual(openFDs(), fdsBefore)
        self.assertEqual(set(childrenOf(os.getpid())), childrenBefore)
        self.assertEqual(reactor.getDelayedCalls(), [])

    def reactorForProperty(self) -> Any:
        """
        One reactor for every example of the property.
        """
        reactor = getattr(self, "_propertyReactor", None)
        if reactor is None:
            reactor = self._propertyReactor = self.buildReactor()
        return reactor


globals().update(makeTestCaseClasses(BadArgumentsMixin))


class MessageTests(SynchronousTestCase):
    """
    The mistakes the issue names, each raised at the call, naming the
    function and the argument (on the fake reactor: nothing reaches it).
    """

    def assertCallRaises(
        self,
        error: type[Exception],
        entry: str,
        named: str,
        **arguments: Any,
    ) -> str:
        reactor = MemoryProcessReactor()
        with self.assertRaises(error) as caught:
            call(reactor, entry, arguments)
        message = str(caught.exception)
        self.assertTrue(message.startswith(f"{entry}: "), message)
        self.assertIn(named, message)
        self.assertEqual(reactor.spawned, [])
        return message

    def test_runAndStream(self) -> None:
        """
        C{logFile=123}, C{processGroup='x'}, C{umask=0o1777}, an unknown
        keyword (named as the user's, not C{SpawnOptions.__init__()}'s),
        C{logFile=io.StringIO()}, C{check="yes"}, C{logPrefix="yes"} and
        C{killAfter} without C{timeout} all raise at the call of C{run()}
        and C{stream()}.
        """
        for entry in RUN_ENTRY_POINTS:
            self.assertCallRaises(TypeError, entry, "logFile", logFile=123)
            self.assertCallRaises(TypeError, entry, "processGroup", processGroup="x")
            message = self.assertCallRaises(ValueError, entry, "umask", umask=0o1777)
            self.assertEqual(
                message, f"{entry}: umask must be between 0 and 0o777, not 1023"
            )
            message = self.assertCallRaises(TypeError, entry, "'bogus'", bogus=1)
            self.assertNotIn("SpawnOptions", message)
            self.assertIn("umask", message)
            self.assertCallRaises(TypeError, entry, "logFile", logFile=io.StringIO())
            self.assertCallRaises(TypeError, entry, "check", check="yes")
            self.assertCallRaises(TypeError, entry, "logPrefix", logPrefix="yes")
            self.assertCallRaises(ValueError, entry, "killAfter", killAfter=2)

    def test_killAfterDefault(self) -> None:
        """
        C{killAfter} left at its default, or C{None}, is fine without
        C{timeout}; with one, the default is 5 seconds.
        """
        for killAfter in (KILL_AFTER_DEFAULT, None):
            run(["prog"], reactor=MemoryProcessReactor(), killAfter=killAfter)
        self.assertEqual(KILL_AFTER_DEFAULT, 5.0)
        self.assertEqual(repr(KILL_AFTER_DEFAULT), "5.0")

    def test_spawnProcessProtocol(self) -> None:
        """
        C{spawnProcess} refuses a protocol that is C{None} or does not
        provide C{IProcessProtocol}, naming it (the fake as the real).
        """
        for protocol in (None, object()):
            self.assertCallRaises(
                TypeError, "spawnProcess()", "processProtocol", processProtocol=protocol
            )

    def test_spawnProcessUnknownKeyword(self) -> None:
        """
        An unknown keyword is an error of C{spawnProcess()} naming it, not
        of C{SpawnOptions.__init__()}.
        """
        message = self.assertCallRaises(TypeError, "spawnProcess()", "'umsak'", umsak=1)
        self.assertNotIn("SpawnOptions", message)

    def test_spawnOptionsItself(self) -> None:
        """
        L{SpawnOptions} built directly still names its fields as its own.
        """
        with self.assertRaises(ValueError) as caught:
            SpawnOptions(umask=0o1777)
        self.assertIn("SpawnOptions.umask", str(caught.exception))

    def test_callError(self) -> None:
        """
        L{callError} keeps L{TypeError}s and makes any other error (a
        L{UnicodeEncodeError}, say) a plain L{ValueError}, with the caller
        first.
        """
        error = callError("run()", TypeError("x must be y"))
        self.assertEqual((type(error), str(error)), (TypeError, "run(): x must be y"))
        unicodeError = UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates")
        self.assertIs(type(callError("run()", unicodeError)), ValueError)

    def test_splitSpawnOptions(self) -> None:
        """
        L{splitSpawnOptions} splits the lifetime options from the spawn
        options, checked.
        """
        lifetime, options = splitSpawnOptions({"timeout": 2, "umask": 0o22})
        self.assertEqual(lifetime, LifetimeOptions(timeout=2.0))
        self.assertEqual(options, SpawnOptions(umask=0o22))
        lifetime, options = splitSpawnOptions({"closePipesAfterExit": 1})
        self.assertIsNone(options)
        self.assertEqual(
            set(SPAWN_OPTION_NAMES),
            {field.name for field in SpawnOptions.__attrs_attrs__}
            | set(LIFETIME_OPTIONS),
        )


class LogFileTests(SynchronousTestCase):
    """
    L{checkLogFile}: what can be a log.  The tee writes C{bytes} (and then
    flushes), so a log file object must be a binary file.
    """

    def test_paths(self) -> None:
        """
        A path is accepted (without being opened), unless it holds NUL or
        cannot be encoded with the file system encoding.
        """
        for path in ("/nonexistent/log", b"log", _PathLike("log")):
            self.assertTrue(checkLogFile(path))
        for path in ("l\0g", b"\0", "l\ud800g", _PathLike("\udfff")):
            error = self.assertRaises(ValueError, checkLogFile, path)
            self.assertTrue(str(error).startswith("logFile "), str(error))

    def test_binaryFiles(self) -> None:
        """
        Binary file objects that can be written are accepted.
        """
        with tempfile.TemporaryFile() as f:
            self.assertFalse(checkLogFile(f))
        self.assertFalse(checkLogFile(io.BytesIO()))
        with open(os.devnull, "ab", buffering=0) as raw:
            self.assertFalse(checkLogFile(raw))

    def test_textFiles(self) -> None:
        """
        Text files are refused: C{io.StringIO}, an C{open()} without C{"b"},
        C{sys.stderr}, anything whose C{mode} has no C{"b"}.
        """
        with open(os.devnull, "w") as text:
            for logFile in (io.StringIO(), text, textWrapper(), _ModeOnly("w")):
                error = self.assertRaises(TypeError, checkLogFile, logFile)
                self.assertIn("binary", str(error))
        self.assertFalse(checkLogFile(_ModeOnly("wb")))

    def test_notFiles(self) -> None:
        """
        Anything without C{write} and C{flush} methods is refused.
        """
        for logFile in (123, object(), _WriteOnly(), None):
            self.assertRaises(TypeError, checkLogFile, logFile)

    def test_closedOrReadOnly(self) -> None:
        """
        A closed file, or one that cannot be written, is refused.
        """
        self.assertRaises(ValueError, checkLogFile, closedBytesIO())
        with open(os.devnull, "rb") as readOnly:
            error = self.assertRaises(ValueError, checkLogFile, readOnly)
        self.assertIn("writing", str(error))

    def test_teeProtocol(self) -> None:
        """
        L{TeeProtocol} makes the same check.
        """
        self.assertRaises(TypeError, TeeProtocol, ProcessProtocol(), io.StringIO())
        self.assertRaises(ValueError, TeeProtocol, ProcessProtocol(), closedBytesIO())


class _PathLike:
    def __init__(self, path: str) -> None:
        self._path = path

    def __fspath__(self) -> str:
        return self._path


class _ModeOnly:
    """
    A file-like object that is not an L{io.IOBase} and says its mode.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass


class _WriteOnly:
    def write(self, data: bytes) -> int:
        return len(data)


class StockReactorTests(ReactorTestMixin, SynchronousTestCase):
    """
    Spawn options given to L{run} and L{stream} with a stock Twisted
    reactor (one C{txspawn.install} was not called on).
    """

    engineName = "stock"
    monitorName = "stock"

    def buildReactor(self) -> Any:
        from twisted.internet.epollreactor import EPollReactor

        reactor = EPollReactor()
        # Closed (poller, waker) by the hygiene check.
        self._reactors.append(reactor)
        return reactor

    def test_unsupported(self) -> None:
        """
        L{UnsupportedFeature} names the option and says how to get a
        txspawn reactor, instead of Twisted's L{TypeError} failing the
        Deferred; nothing is spawned.
        """
        reactor = self.buildReactor()
        fdsBefore = openFDs()
        for entry in RUN_ENTRY_POINTS:
            for options in ({"processGroup": 0}, {"umask": 0o22, "newSession": True}):
                with self.assertRaises(UnsupportedFeature) as caught:
                    call(reactor, entry, options)
                error = caught.exception
                self.assertEqual(error.feature, next(iter(options)))
                message = str(error)
                for needed in (
                    entry,
                    *options,
                    "txspawn.install(reactor)",
                    "txspawn.reactor.install()",
                    "--reactor=txspawn",
                ):
                    self.assertIn(needed, message)
        self.assertEqual(openFDs(), fdsBefore)
        self.assertNoNewChildren()
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_badValueFirst(self) -> None:
        """
        A bad option value is a L{ValueError} on any reactor: the values are
        checked before the reactor is asked.
        """
        reactor = self.buildReactor()
        self.assertRaises(ValueError, call, reactor, "run()", {"umask": 0o1777})

    def test_withoutOptions(self) -> None:
        """
        Without spawn options, the stock reactor is fine.
        """
        reactor = self.buildReactor()
        self.assertIs(resolveReactor("run()", reactor, {}), reactor)

    def test_installed(self) -> None:
        """
        After C{txspawn.install(reactor)}, the stock reactor takes the
        options: the spawn goes through txspawn (whose error for a missing
        program fails the Deferred).
        """
        reactor = self.buildReactor()
        installSpawner(reactor)
        self.addCleanup(uninstallSpawner, reactor)
        d = run(["/nonexistent/program"], reactor=reactor, processGroup=0)
        self.failureResultOf(d, FileNotFoundError)

    def test_provides(self) -> None:
        """
        txspawn's reactors and the fake provide L{IReactorSpawn}; a stock
        reactor does not.
        """
        from txspawn.reactor import EPollReactor

        reactor = EPollReactor()
        self._reactors.append(reactor)
        for provider in (reactor, MemoryProcessReactor()):
            self.assertTrue(verifyObject(IReactorSpawn, provider))
        self.assertFalse(IReactorSpawn.providedBy(self.buildReactor()))

    def test_providesWhileInstalled(self) -> None:
        """
        A stock reactor provides L{IReactorSpawn} while C{txspawn.install}
        is in place, and no longer once it is uninstalled; a txspawn
        reactor, which provides it through its class, keeps it.
        """
        from txspawn.reactor import EPollReactor

        stock = self.buildReactor()
        installSpawner(stock)
        self.assertTrue(IReactorSpawn.providedBy(stock))
        uninstallSpawner(stock)
        self.assertFalse(IReactorSpawn.providedBy(stock))

        ours = EPollReactor()
        self._reactors.append(ours)
        installSpawner(ours)
        uninstallSpawner(ours)
        self.assertTrue(IReactorSpawn.providedBy(ours))
