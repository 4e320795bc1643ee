# -*- test-case-name: tests.adversarial.test_fuzz -*-
"""
The calls L{tests.adversarial.test_fuzz} draws: every argument of every
public spawning entry point, good, bad, or a problem of this machine.

Each argument is an L{Arg}: a L{Node} that makes the value when the call is
made (an fd that is open or closed I{then}, a fresh pty, a fresh protocol),
and a L{Verdict}: C{good}; C{bad}, with the exception it calls for and the
names an error about it gives; C{fails}, a problem of this machine (a
missing program, an fd that is not open): the spawn must fail; or C{may}:
the child may fail to start or die (an rlimit too tight for it).  A value
that is a problem of this machine is an L{OnMachine}, which also knows the
value that fixes it, so that the fake reactor (which does not look at the
machine) can be compared with a real one on the fixed call.

The strategies of each argument come as L{Kinds} (good, machine, bad
values); L{composeArguments} draws a call entirely good, with a machine
problem, with one bad argument, or with each argument of any kind, and a
L{Call} holds the arguments with the verdicts of bad combinations
(C{usePTY} with C{childFDs}, C{killAfter} without C{timeout}, ...).

Inputs that hit a known bug outside the fuzz's files are left out, each
with a comment naming the test of L{tests.adversarial.test_fuzz.KnownBugTests}
that holds it.
"""

from __future__ import annotations

import io
import os
import pathlib
import re
import resource
import signal
import string
import sys
import tempfile
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import attrs
from attrs import evolve, field, frozen
from hypothesis import strategies as st
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

from tests.cgrouptransportutil import cgroupMountPath
from tests.strategies import (
    argumentStrings,
    envKeys,
    envValues,
    escapedStrings,
    hostileInts,
    intsOutside,
    junkValues,
    nulStrings,
    unencodableStrings,
)
from txspawn import SpawnError
from txspawn._plan.argumentchecks import CHILD_FD_MAX as _CHILD_FD_MAX
from txspawn.errors import UnsupportedFeature
from txspawn.options import ID_MAX, NGROUPS_MAX, Cgroup, SpawnOptions

#: Seconds a child that should end at once may take (it is a hang if not).
CHILD_TIMEOUT = 30.0

#: Whether this process may switch children to any uid, gid and groups.
ROOT = os.geteuid() == 0

#: The soft fd limit: a child fd at or above it cannot be made.
FD_SOFT_LIMIT = resource.getrlimit(resource.RLIMIT_NOFILE)[0]

#: The largest parent fd number txspawn takes (C{int}'s largest).
FD_MAX = 2**31 - 1

#: The largest child fd txspawn takes: the highest fd a process can have
#: (one below Linux's ceiling on C{fs.nr_open}; L{tests.test_plan} checks
#: its value).  Above it, a C{childFDs} key is wrong on any machine.
CHILD_FD_MAX = _CHILD_FD_MAX

#: The largest pgid (C{pid_t}'s largest).
PGID_MAX = 2**31 - 1

#: The largest int a duration may be (the largest double).
MAX_SECONDS = int(sys.float_info.max)

#: The numbers below the largest signal that are no signal (glibc keeps
#: 32 and 33 for itself).
INVALID_SIGNALS = sorted(
    set(range(1, max(signal.valid_signals()))) - signal.valid_signals()
)

#: A pgid no group has (above every pid_max) but that fits C{pid_t}.
NO_SUCH_PGID = 2**31 - 1


#: The cgroup v2 mount, or C{None}.  The v1 hierarchies are never touched.
CGROUP_MOUNT = cgroupMountPath()

#: Whether scratch parent cgroups can be made at the top of the hierarchy
#: (L{tests.adversarial.test_fuzz} makes one per test there): else every
#: C{Cgroup} but a best-effort one is a problem of this machine.
CGROUPS = CGROUP_MOUNT is not None and os.access(
    os.path.join(CGROUP_MOUNT, "cgroup.procs"), os.W_OK
)


def _offered() -> frozenset[str]:
    """
    The controllers a scratch parent made at the top offers its leaves:
    what the root cgroup enables for its children that a limit may need
    (on a hybrid host such as this one, none: memory, pids, cpu and io are
    bound to cgroup v1).
    """
    if not CGROUPS:
        return frozenset()
    assert CGROUP_MOUNT is not None
    with open(os.path.join(CGROUP_MOUNT, "cgroup.subtree_control")) as f:
        return frozenset(f.read().split()) & {"memory", "pids", "cpu", "io"}


#: See L{_offered}.
CGROUP_OFFERED = _offered()

# -- the model of one drawn call ---------------------------------------------


@frozen
class Verdict:
    """
    What an argument (or a combination of them) calls for.

    @ivar kind: C{"good"}; C{"bad"}: the call must raise C{error} naming
        one of C{names}; C{"fails"}: this machine makes the spawn fail with
        C{error}; C{"may"}: the spawn or the child may fail (C{error} at
        the call).
    @ivar error: The exception class expected.
    @ivar names: What an error about it names (one of them).
    """

    kind: str
    error: type[Exception] | None = None
    names: tuple[str, ...] = ()

    def __repr__(self) -> str:
        if self.error is None:
            return self.kind
        return f"{self.kind}:{self.error.__name__}{list(self.names)}"


GOOD = Verdict("good")


def badFor(error: type[Exception], *names: str) -> Verdict:
    return Verdict("bad", error, names)


def failsWith(error: type[Exception] = SpawnError, *names: str) -> Verdict:
    return Verdict("fails", error, names)


def mayFail(error: type[Exception] = SpawnError, *names: str) -> Verdict:
    return Verdict("may", error, names)


class Node:
    """
    A value of a drawn call, made when the call is made.
    """

    def resolve(self, ctx: Context, fixed: bool) -> object:
        """
        @param ctx: The resources of this call (fds, ptys, the reactor).
        @param fixed: Make the value with this machine's problems fixed.
        """
        raise NotImplementedError()

    def onMachine(self) -> bool:
        """
        Whether the fixed value differs from the drawn one.
        """
        return False


@frozen(repr=False)
class Lit(Node):
    """
    A plain value.
    """

    value: object

    def resolve(self, ctx: Context, fixed: bool) -> object:
        return self.value

    def __repr__(self) -> str:
        return repr(self.value)


@frozen(repr=False)
class Fresh(Node):
    """
    A value made anew for each call (a protocol, a file object, an object
    whose identity or state matters).
    """

    label: str
    make: Callable[[Context], object] = field(eq=False)

    def resolve(self, ctx: Context, fixed: bool) -> object:
        return self.make(ctx)

    def __repr__(self) -> str:
        return self.label


@frozen
class OnMachine(Node):
    """
    A value that is a problem on this machine (a program that does not
    exist, an fd that is not open), and the value that fixes it.
    """

    raw: Node
    fix: Node

    def resolve(self, ctx: Context, fixed: bool) -> object:
        return (self.fix if fixed else self.raw).resolve(ctx, fixed)

    def onMachine(self) -> bool:
        return True


@frozen
class OpenFD(Node):
    """
    An fd open in this process (C{/dev/null}).
    """

    def resolve(self, ctx: Context, fixed: bool) -> object:
        return ctx.openFD


@frozen
class ClosedFD(Node):
    """
    The first fd number at or above C{hint} that is not open when the call
    is made.
    """

    hint: int

    def resolve(self, ctx: Context, fixed: bool) -> object:
        return ctx.closedFD(self.hint)


@frozen(repr=False)
class PTYPart(Node):
    """
    The master fd, slave fd or name of the pty opened for the
    L{PTYTuple} being made.
    """

    role: str

    def resolve(self, ctx: Context, fixed: bool) -> object:
        assert ctx.currentPTY is not None
        return ctx.currentPTY[("master", "slave", "name").index(self.role)]

    def __repr__(self) -> str:
        return f"<pty {self.role}>"


@frozen
class PTYTuple(Node):
    """
    A C{usePTY=(masterfd, slavefd, ttyname)} (or a list) of nodes, which
    may use a pty opened for it (L{PTYPart}).
    """

    items: tuple[Node, ...]
    kind: type = tuple

    def resolve(self, ctx: Context, fixed: bool) -> object:
        ctx.currentPTY = ctx.pty()
        try:
            return self.kind(item.resolve(ctx, fixed) for item in self.items)
        finally:
            ctx.currentPTY = None

    def onMachine(self) -> bool:
        return any(item.onMachine() for item in self.items)


@frozen
class DictOf(Node):
    """
    A mapping made of nodes (a C{dict}, or a read-only mapping proxy).
    """

    items: tuple[tuple[Node, Node], ...]
    proxy: bool = False

    def resolve(self, ctx: Context, fixed: bool) -> object:
        made = {k.resolve(ctx, fixed): v.resolve(ctx, fixed) for k, v in self.items}
        return MappingProxyType(made) if self.proxy else made

    def onMachine(self) -> bool:
        return any(k.onMachine() or v.onMachine() for k, v in self.items)


@frozen
class SeqOf(Node):
    """
    A list or tuple made of nodes.
    """

    items: tuple[Node, ...]
    kind: type = list

    def resolve(self, ctx: Context, fixed: bool) -> object:
        return self.kind(item.resolve(ctx, fixed) for item in self.items)

    def onMachine(self) -> bool:
        return any(item.onMachine() for item in self.items)


@frozen(repr=False)
class ParentPath(Node):
    """
    A C{Cgroup.parent}, made from the call's scratch parent cgroup: the
    parent itself (C{"scratch"}, perhaps spelled with a trailing C{/} or
    C{/.}), or a path that is no cgroup v2 directory: a temporary directory
    (C{"tmp"}), a missing cgroup under the parent (C{"missing"}), a file
    of the parent (C{"file"}).
    """

    kind: str
    suffix: str = ""

    def resolve(self, ctx: Context, fixed: bool) -> object:
        if self.kind == "tmp":
            return ctx.tmp
        if self.kind == "missing":
            return ctx.cgroupParent + "/no-such-cgroup/x"
        if self.kind == "file":
            return ctx.cgroupParent + "/cgroup.procs"
        return ctx.cgroupParent + self.suffix

    def __repr__(self) -> str:
        return f"<{self.kind} parent{self.suffix}>"


@frozen(repr=False)
class CgroupNode(Node):
    """
    A C{Cgroup(parent=..., **fields)}, made at the call.

    @ivar expect: What a real reactor gives a child spawned with it:
        C{"leaf"} (a leaf of the scratch parent), C{"unavailable"} (no
        cgroup: C{cgroupUnavailable} says why), or C{"raise"}
        (L{UnsupportedFeature} at the call).
    """

    parent: Node
    fields: tuple[tuple[str, object], ...] = ()
    expect: str = "leaf"

    def resolve(self, ctx: Context, fixed: bool) -> object:
        return Cgroup(parent=self.parent.resolve(ctx, fixed), **dict(self.fields))  # type: ignore[arg-type]

    def __repr__(self) -> str:
        fields = "".join(f", {k}={v!r}" for k, v in self.fields)
        return f"Cgroup({self.parent!r}{fields})"


@frozen
class Arg:
    """
    One drawn argument: how its value is made and what it calls for.

    @ivar verdict: What the value as drawn calls for.
    @ivar fixedVerdict: What it calls for once this machine's problems are
        fixed (L{OnMachine}); C{None}: good for an argument drawn as an
        L{OnMachine}, else L{verdict}.
    """

    node: Node
    verdict: Verdict = GOOD
    fixedVerdict: Verdict | None = None

    def __repr__(self) -> str:
        fixed = "" if self.fixedVerdict is None else f", fixed {self.fixedVerdict!r}"
        return f"<{self.node!r}: {self.verdict!r}{fixed}>"

    def verdictFor(self, fixed: bool) -> Verdict:
        if not fixed:
            return self.verdict
        if self.fixedVerdict is not None:
            return self.fixedVerdict
        return GOOD if isinstance(self.node, OnMachine) else self.verdict


def firstNotGood(verdicts: list[Verdict]) -> Verdict:
    """
    The verdict of a container checked item by item, in order: that of its
    first item that is not good.
    """
    return next((v for v in verdicts if v.kind != "good"), GOOD)


@frozen
class Call:
    """
    One drawn call of an entry point.

    @ivar entry: C{"spawnProcess()"}, C{"run()"} or C{"stream()"}.
    @ivar arguments: Keyword to argument, in the order given.
    @ivar combinations: The verdicts of combinations of arguments.
    @ivar exitCode: What the child exits with when the call is good.
    """

    entry: str
    arguments: tuple[tuple[str, Arg], ...]
    combinations: tuple[Verdict, ...] = ()
    exitCode: int = 0

    def verdicts(self, fixed: bool) -> list[Verdict]:
        """
        Every verdict that is not good, for the call as drawn or fixed.
        """
        verdicts = [arg.verdictFor(fixed) for _, arg in self.arguments]
        verdicts += self.combinations
        return [v for v in verdicts if v.kind != "good"]

    def onMachine(self) -> bool:
        """
        Whether fixing this machine's problems changes the call.
        """
        return any(arg.node.onMachine() for _, arg in self.arguments)

    def kwargs(self, ctx: Context, fixed: bool) -> dict[str, Any]:
        """
        The keyword arguments, made now.
        """
        return {name: arg.node.resolve(ctx, fixed) for name, arg in self.arguments}

    def given(self, name: str) -> object:
        """
        The value of C{name} when drawn as a plain value (C{None} when not
        given), else L{NOT_LITERAL}.
        """
        for key, arg in self.arguments:
            if key == name:
                return literalValue(arg)
        return None


#: What L{literalValue} returns for a value made at the call.
NOT_LITERAL = object()


def literalValue(arg: Arg) -> object:
    """
    The value of an argument drawn as a plain value, else L{NOT_LITERAL}.
    """
    if isinstance(arg.node, Lit):
        return arg.node.value
    return NOT_LITERAL


class Context:
    """
    What the values of one call are made with, and the ptys made for it
    (closed by L{close} unless txspawn took them).

    @ivar reactor: The reactor the call is made on.
    @ivar openFD: An fd open in this process.
    @ivar tmp: A directory for log files.
    @ivar cgroupParent: The scratch parent cgroup of C{Cgroup(parent=...)}
        (any absolute path for the fakes, which do not look at it).
    @ivar currentPTY: The pty of the L{PTYTuple} being made.
    """

    def __init__(
        self,
        reactor: object,
        openFD: int,
        tmp: str,
        cgroupParent: str = "/sys/fs/cgroup/txspawn-fuzz-fake",
    ) -> None:
        self.reactor = reactor
        self.openFD = openFD
        self.tmp = tmp
        self.cgroupParent = cgroupParent
        self.currentPTY: tuple[int, int, str] | None = None
        self._made: list[tuple[int, tuple[int, int]]] = []

    def closedFD(self, hint: int) -> int:
        """
        The first fd number from C{hint} up that is not open now.
        """
        fd = hint
        while True:
            try:
                os.fstat(fd)
            except OSError:
                return fd
            fd += 1

    def pty(self) -> tuple[int, int, str]:
        """
        A new pty: (master, slave, the slave's name).
        """
        master, slave = os.openpty()
        for fd in (master, slave):
            info = os.fstat(fd)
            self._made.append((fd, (info.st_dev, info.st_ino)))
        return master, slave, os.ttyname(slave)

    def logPath(self) -> str:
        """
        A new path for a log file.
        """
        fd, path = tempfile.mkstemp(dir=self.tmp, suffix=".log")
        os.close(fd)
        return path

    def close(self) -> None:
        """
        Close the ptys made for the call that are still open as the same
        files (txspawn closes a pty it started a child on).
        """
        for fd, identity in self._made:
            try:
                info = os.fstat(fd)
            except OSError:
                continue
            if (info.st_dev, info.st_ino) == identity:
                os.close(fd)
        self._made = []


@frozen
class Outcome:
    """
    What a call did: raised C{error}, or returned C{value}.
    """

    error: Exception | None = None
    value: Any = None

    def kind(self) -> tuple[object, ...]:
        """
        What two calls must agree on: that they returned, or the exception
        class and message (object addresses left out).
        """
        if self.error is None:
            return ("returned",)
        return (type(self.error), re.sub(r"0x[0-9a-f]+", "0x?", str(self.error)))


def attempt(function: Callable[[], object]) -> Outcome:
    """
    Call C{function}: what did it do?
    """
    try:
        return Outcome(value=function())
    except Exception as error:
        return Outcome(error=error)


def describe(outcome: Outcome) -> str:
    """
    What an outcome was, for Hypothesis's statistics (C{event}).
    """
    if outcome.error is None:
        return "returned"
    return type(outcome.error).__name__


def named(name: str, message: str) -> bool:
    """
    Whether C{message} names the argument C{name} (as a word: C{env} is not
    named by C{parentEnviron}, C{argv} is by C{argv[1]}).
    """
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", message) is not None


# -- protocols -----------------------------------------------------------------


class Boom(Exception):
    """
    Raised by L{RaisingProtocol}'s callbacks.
    """


class FuzzProtocol(ProcessProtocol):
    """
    Records what a transport did to it.
    """

    def __init__(self) -> None:
        self.made = 0
        self.ended: list[Failure] = []
        self.pidAtEnd: object = "never ended"

    def makeConnection(self, transport: Any) -> None:
        self.made += 1
        ProcessProtocol.makeConnection(self, transport)

    def processEnded(self, reason: Failure) -> None:
        self.ended.append(reason)
        self.pidAtEnd = self.transport.pid  # type: ignore[union-attr]


class RaisingProtocol(FuzzProtocol):
    """
    A protocol each of whose callbacks raises: txspawn logs that and goes
    on.
    """

    def connectionMade(self) -> None:
        raise Boom("connectionMade")

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        raise Boom("childDataReceived")

    def childConnectionLost(self, childFD: int) -> None:
        raise Boom("childConnectionLost")

    def processExited(self, reason: Failure) -> None:
        raise Boom("processExited")

    def processEnded(self, reason: Failure) -> None:
        FuzzProtocol.processEnded(self, reason)
        raise Boom("processEnded")


# -- strategies: one argument --------------------------------------------------
#
# Each argument's strategies come as L{Kinds}: the values that are good, a
# problem of this machine, or bad, so that a whole call can be drawn with a
# chosen mix (L{composeArguments}): entirely good calls must spawn, and one
# bad argument among good ones must be the one the error names.

#: An argument's strategies by kind: C{"good"}, C{"machine"} (its verdict
#: is C{fails} or C{may}) and C{"bad"}; a kind an argument cannot have is
#: missing.
Kinds = dict[str, st.SearchStrategy[Arg]]


def literal(verdict: Verdict, *values: object) -> st.SearchStrategy[Arg]:
    """
    One of C{values}, with C{verdict}.
    """
    return st.sampled_from(values).map(lambda value: Arg(Lit(value), verdict))


def good(*values: object) -> st.SearchStrategy[Arg]:
    return literal(GOOD, *values)


def bad(error: type[Exception], name: str, *values: object) -> st.SearchStrategy[Arg]:
    return literal(badFor(error, name), *values)


def badValues(
    error: type[Exception], name: str, values: st.SearchStrategy[object]
) -> st.SearchStrategy[Arg]:
    return values.map(lambda value: Arg(Lit(value), badFor(error, name)))


def goodValues(values: st.SearchStrategy[object]) -> st.SearchStrategy[Arg]:
    return values.map(lambda value: Arg(Lit(value)))


def fresh(
    verdict: Verdict, label: str, make: Callable[[Context], object]
) -> st.SearchStrategy[Arg]:
    return st.just(Arg(Fresh(label, make), verdict))


def onMachine(raw: object, fix: object, verdict: Verdict) -> Arg:
    """
    A value that is a problem on this machine, and its fix.
    """
    return Arg(
        OnMachine(
            raw if isinstance(raw, Node) else Lit(raw),
            fix if isinstance(fix, Node) else Lit(fix),
        ),
        verdict,
    )


#: Good strings: C{str} and C{bytes} without NUL, and C{str} with lone
#: surrogates that encode.
goodStrings = st.one_of(argumentStrings, escapedStrings)


def badStrings(name: str) -> st.SearchStrategy[Arg]:
    """
    A string that holds NUL or cannot be encoded (a L{ValueError}).
    """
    return badValues(ValueError, name, st.one_of(nulStrings, unencodableStrings))


def notStrings(name: str, *more: object) -> st.SearchStrategy[Arg]:
    """
    A value that is no string at all (a L{TypeError}).
    """
    return badValues(
        TypeError,
        name,
        st.one_of(junkValues, hostileInts, st.sampled_from([True, *more])),
    )


def missing(strings: st.SearchStrategy[str | bytes]) -> st.SearchStrategy[str | bytes]:
    """
    Paths under a directory that does not exist.
    """
    return strings.map(
        lambda s: "/nonexistent/" + s if isinstance(s, str) else b"/nonexistent/" + s
    )


@st.composite
def mixed(
    draw: st.DrawFn,
    items: Kinds,
    want: str,
    maxSize: int,
    unique: Callable[[Arg], object] | None = None,
) -> list[Arg]:
    """
    Items of a container for a container of kind C{want}: all good; good
    and at least one of C{want} (C{"machine"} or C{"bad"}); or, for
    C{"any"}, each of any kind.
    """
    if want == "any":
        kind = st.sampled_from(sorted(items)).flatmap(lambda k: items[k])
        made = draw(st.lists(kind, max_size=maxSize, unique_by=unique))
        return made
    made = draw(st.lists(items["good"], max_size=maxSize, unique_by=unique))
    if want != "good":
        for _ in range(draw(st.integers(1, 2))):
            item = draw(items[want])
            if unique is not None and unique(item) in {unique(i) for i in made}:
                continue
            made.insert(draw(st.integers(0, len(made))), item)
    return made


def stringItems(name: str, pathLike: bool) -> Kinds:
    """
    The items of C{args} or C{argv}.

    @param pathLike: Whether a path-like object is good.
    """
    path = pathlib.PurePosixPath("/some/path")
    return {
        "good": st.one_of(
            goodValues(goodStrings), good(path) if pathLike else goodValues(goodStrings)
        ),
        "bad": st.one_of(
            badStrings(name),
            notStrings(name, None, [b"x"]),
            st.nothing() if pathLike else bad(TypeError, name, path),
        ),
    }


@st.composite
def stringLists(
    draw: st.DrawFn, name: str, pathLike: bool, want: str, first: Arg | None = None
) -> Arg:
    """
    A list or tuple of strings.  Its verdict is that of its first item that
    is not good (C{spawnProcess} checks each item in turn), or, with
    C{pathLike=False}, that of its first item of a wrong type, if any
    (L{run} checks the types of all items before their values).
    """
    items = draw(mixed(stringItems(name, pathLike), want, 5))
    if first is not None:
        items.insert(0, first)
    elif not items or items[0].node in (Lit(""), Lit(b"")):
        # An empty args, or an empty args[0], is left out: KnownBugTests.
        items.insert(0, Arg(Lit("true")))
    node = SeqOf(tuple(arg.node for arg in items), draw(st.sampled_from([list, tuple])))

    def verdict(verdicts: list[Verdict]) -> Verdict:
        if not pathLike:
            verdicts = [v for v in verdicts if v.error is TypeError] + verdicts
        return firstNotGood(verdicts)

    return Arg(
        node,
        verdict([arg.verdict for arg in items]),
        verdict([arg.verdictFor(True) for arg in items]),
    )


def argsKinds() -> Kinds:
    """
    C{spawnProcess}'s C{args} for a program that ignores them.
    """
    name = "args"
    return {
        "good": stringLists(name, True, "good"),
        # An argument beyond MAX_ARG_STRLEN: execve fails with E2BIG.
        "machine": st.just(onMachine(["true", "x" * 200_000], ["true"], failsWith())),
        "bad": st.one_of(
            stringLists(name, True, "bad"),
            bad(TypeError, name, "true", b"true", 5, None, {"a": 1}, frozenset()),
            fresh(badFor(TypeError, name), "<generator>", lambda ctx: iter(["true"])),
            # A sequence, of ints.
            bad(TypeError, name, range(3)),
            notStrings(name),
        ),
    }


#: Programs that cannot be run here: none exists, or it is no executable.
missingPrograms = st.one_of(
    missing(goodStrings),
    st.sampled_from(
        [
            "",
            b"",
            "no-such-program-txspawn-fuzz",
            "./no-such-program",
            "/etc/passwd",
            "/tmp",
            "/dev/null",
        ]
    ),
)

#: C{/bin/true} by several names (C{true} is looked up on C{PATH}: the
#: environments drawn have none, so the parent's is used).
TRUE_NAMES = ("/bin/true", b"/bin/true", "/usr/bin/../bin/true", "true", b"true")


def executableKinds() -> Kinds:
    """
    C{spawnProcess}'s C{executable} (C{/bin/sh} is drawn by the call, with
    its arguments).
    """
    name = "executable"
    return {
        "good": good(*TRUE_NAMES, pathlib.PurePosixPath("/bin/true")),
        "machine": missingPrograms.map(
            lambda program: onMachine(program, "/bin/true", failsWith())
        ),
        "bad": st.one_of(badStrings(name), notStrings(name, None, [b"/bin/true"])),
    }


def envItems(name: str) -> dict[str, st.SearchStrategy[tuple[Arg, Arg]]]:
    """
    The entries of an environment: good, or with a bad key or value.
    """
    goodKey = goodValues(envKeys.filter(lambda k: k not in ("PATH", b"PATH")))
    badKey = st.one_of(
        bad(ValueError, name, "", b"", "A=B", b"=", "=A"),
        badStrings(name),
        # Hashable, as keys are.
        badValues(
            TypeError,
            name,
            st.one_of(
                junkValues,
                hostileInts,
                st.sampled_from([True, None, (1,), pathlib.PurePosixPath("K")]),
            ),
        ),
    )
    goodValue = goodValues(envValues)
    badValue = st.one_of(
        badStrings(name), notStrings(name, None, ["x"], pathlib.PurePosixPath("v"))
    )
    return {
        "good": st.tuples(goodKey, goodValue),
        "bad": st.one_of(
            st.tuples(badKey, st.one_of(goodValue, badValue)),
            st.tuples(goodKey, badValue),
        ),
    }


@st.composite
def environments(draw: st.DrawFn, want: str, name: str = "env") -> Arg:
    """
    An C{env}: C{None} or a mapping of entries (a bad key is checked before
    its value), or, when bad, no mapping.
    """
    if want == "good" and draw(st.integers(0, 3)) == 0:
        return Arg(Lit(None))
    if want == "bad" and draw(st.integers(0, 3)) == 0:
        return draw(
            st.one_of(
                bad(TypeError, name, 5, "A=1", b"A=1", [("A", "1")]), notStrings(name)
            )
        )
    kinds = envItems(name)
    items = draw(st.lists(kinds["good"], max_size=6, unique_by=lambda kv: kv[0].node))
    if want != "good":
        for _ in range(draw(st.integers(1, 2))):
            key, value = draw(kinds["bad"])
            if key.node in {k.node for k, _ in items}:
                continue
            items.insert(draw(st.integers(0, len(items))), (key, value))
    verdicts = [k.verdict if k.verdict.kind != "good" else v.verdict for k, v in items]
    node = DictOf(tuple((k.node, v.node) for k, v in items), draw(st.booleans()))
    return Arg(node, firstNotGood(verdicts))


def envKinds(name: str = "env") -> Kinds:
    return {
        "good": environments("good", name),
        "bad": environments("bad", name),
    }


def pathKinds(name: str = "path") -> Kinds:
    """
    A working directory: good, missing or no directory, or bad.
    """
    notDirectories = st.one_of(
        missing(goodStrings), st.sampled_from(["/etc/passwd", b"/dev/null", ""])
    )
    return {
        "good": good(None, "/", b"/tmp", pathlib.PurePosixPath("/tmp"), "/tmp/", "//"),
        "machine": notDirectories.map(lambda p: onMachine(p, None, failsWith())),
        "bad": st.one_of(badStrings(name), notStrings(name, [b"/"])),
    }


def idKinds(name: str) -> Kinds:
    """
    A uid or gid: in range (anything goes for root; a failure in the child
    for anyone else), out of range, or no int.
    """
    inRange = st.one_of(st.just(0), st.integers(0, ID_MAX), st.just(ID_MAX))
    kinds: Kinds = {
        "bad": st.one_of(
            badValues(ValueError, name, intsOutside(0, ID_MAX)),
            bad(TypeError, name, True, False, "0", 0.0, [0]),
            badValues(TypeError, name, junkValues),
        )
    }
    if ROOT:
        kinds["good"] = st.one_of(good(None), goodValues(inRange))
    else:
        kinds["good"] = good(None, os.getuid() if name == "uid" else os.getgid())
        kinds["machine"] = inRange.map(lambda n: onMachine(n, None, failsWith()))
    return kinds


def childFDItems(name: str) -> dict[str, st.SearchStrategy[tuple[Arg, Arg]]]:
    """
    The entries of a C{childFDs}: child fd -> C{"r"}, C{"w"} or a parent fd.
    """
    goodKey = st.one_of(
        goodValues(st.integers(0, 30)),
        goodValues(st.integers(31, min(4000, FD_SOFT_LIMIT - 1))),
    )
    # A child cannot have an fd at or above its fd limit; no process can
    # have one above CHILD_FD_MAX.
    tooHigh = st.one_of(
        st.just(FD_SOFT_LIMIT),
        st.integers(FD_SOFT_LIMIT, CHILD_FD_MAX),
        st.just(CHILD_FD_MAX),
    ).map(lambda n: onMachine(n, 1000 + n % 64, failsWith()))
    badKey = st.one_of(
        badValues(ValueError, name, intsOutside(0, CHILD_FD_MAX)),
        bad(ValueError, name, CHILD_FD_MAX + 1, FD_MAX),
        bad(ValueError, name, True, False, "0", b"1", None, 1.5, (1,)),
    )
    goodValue = st.one_of(good("r", "w"), st.just(Arg(OpenFD())))
    closed = st.integers(3, 600).map(
        lambda hint: onMachine(ClosedFD(hint), OpenFD(), failsWith())
    )
    badValue = st.one_of(
        bad(ValueError, name, "x", "rw", "R", "", b"r", b"w", None, True, False),
        badValues(ValueError, name, intsOutside(0, FD_MAX)),
        badValues(ValueError, name, junkValues),
    )
    return {
        "good": st.tuples(goodKey, goodValue),
        "machine": st.one_of(st.tuples(tooHigh, goodValue), st.tuples(goodKey, closed)),
        "bad": st.one_of(
            st.tuples(badKey, st.one_of(goodValue, badValue)),
            st.tuples(goodKey, badValue),
        ),
    }


@st.composite
def childFDsArguments(draw: st.DrawFn, want: str, name: str = "childFDs") -> Arg:
    """
    A C{childFDs}: the default or a mapping (a bad key is checked before
    its value), or, when bad, no mapping.
    """
    if want == "good" and draw(st.integers(0, 3)) == 0:
        return Arg(Lit(None))
    if want == "bad" and draw(st.integers(0, 3)) == 0:
        return draw(
            st.one_of(
                bad(TypeError, name, 5, [0, 1], "r", b"r", (("0", "r"),)),
                badValues(TypeError, name, junkValues),
            )
        )
    kinds = childFDItems(name)
    items = draw(st.lists(kinds["good"], max_size=6, unique_by=lambda kv: kv[0].node))
    if want != "good":
        for _ in range(draw(st.integers(1, 2))):
            items.insert(draw(st.integers(0, len(items))), draw(kinds[want]))
    # Keys equal as dict keys (1, True, 1.0) are one entry, and a fixed key
    # must not merge with another either: keep the first.
    kept = []
    seen: set[object] = set()
    for key, value in items:
        fixedKey = key.node.fix if isinstance(key.node, OnMachine) else key.node
        if key.node in seen or fixedKey in seen:
            continue
        seen.update({key.node, fixedKey})
        kept.append((key, value))

    def verdict(fixed: bool) -> Verdict:
        verdicts = []
        for key, value in kept:
            keyVerdict = key.verdictFor(fixed)
            verdicts.append(
                keyVerdict if keyVerdict.kind != "good" else value.verdictFor(fixed)
            )
        return firstNotGood(verdicts)

    node = DictOf(tuple((k.node, v.node) for k, v in kept), draw(st.booleans()))
    return Arg(node, verdict(False), verdict(True))


def childFDsKinds(name: str = "childFDs") -> Kinds:
    return {want: childFDsArguments(want, name) for want in ("good", "machine", "bad")}


def ptyItems(role: str, name: str) -> Kinds:
    """
    The master or slave fd of a C{usePTY} tuple.
    """
    return {
        "good": st.just(Arg(PTYPart(role))),
        "machine": st.integers(3, 600).map(
            lambda hint: onMachine(ClosedFD(hint), PTYPart(role), failsWith())
        ),
        "bad": st.one_of(
            badValues(ValueError, name, intsOutside(0, FD_MAX)),
            bad(TypeError, name, True, False, "3", 3.0, None, b"3"),
        ),
    }


def ttyNames(name: str) -> Kinds:
    """
    The name in a C{usePTY} tuple.
    """
    return {
        "good": st.just(Arg(PTYPart("name"))),
        # The pty's fds with another name, which the child opens to make it
        # its controlling terminal.
        "machine": st.sampled_from(["/dev/null", "/nonexistent/tty"]).map(
            lambda other: onMachine(other, PTYPart("name"), mayFail())
        ),
        "bad": st.one_of(
            badValues(ValueError, name, nulStrings), bad(TypeError, name, 5, None, 1.5)
        ),
    }


@st.composite
def ptyTuples(draw: st.DrawFn, want: str, name: str = "usePTY") -> Arg:
    """
    A C{usePTY=(masterfd, slavefd, ttyname)} of a pty opened for the call.
    """
    kinds = [ptyItems("master", name), ptyItems("slave", name), ttyNames(name)]
    wanted = [
        ("good" if want == "good" else draw(st.sampled_from(["good", want])))
        for _ in kinds
    ]
    if want != "good" and want not in wanted:
        wanted[draw(st.integers(0, 2))] = want
    items = [draw(k[w]) for k, w in zip(kinds, wanted, strict=True)]
    node = PTYTuple(
        tuple(arg.node for arg in items), draw(st.sampled_from([tuple, list]))
    )
    return Arg(
        node,
        firstNotGood([arg.verdict for arg in items]),
        firstNotGood([arg.verdictFor(True) for arg in items]),
    )


def usePTYKinds(name: str = "usePTY") -> Kinds:
    """
    C{usePTY}: falsy, truthy (txspawn opens the pty), a tuple of a pty
    opened for the call, or broken.
    """
    return {
        "good": st.one_of(
            good(False, 0, None, "", b"", [], ()),
            good(True, 1, "yes", b"x", -1, 2**70, 0.5, {1: 2}),
            fresh(GOOD, "object()", lambda ctx: object()),
            ptyTuples("good", name),
        ),
        "machine": ptyTuples("machine", name),
        "bad": st.one_of(
            # A list or tuple whose length is not 3.
            bad(ValueError, name, (1, 2), [1, 2, 3, 4], (None,), ("a", "b")),
            ptyTuples("bad", name),
        ),
    }


def protocolKinds(name: str = "processProtocol") -> Kinds:
    """
    C{spawnProcess}'s protocol: a recording one, or one whose every
    callback raises.
    """
    return {
        "good": st.one_of(
            fresh(GOOD, "FuzzProtocol()", lambda ctx: FuzzProtocol()),
            fresh(GOOD, "FuzzProtocol()", lambda ctx: FuzzProtocol()),
            fresh(GOOD, "RaisingProtocol()", lambda ctx: RaisingProtocol()),
        ),
        "bad": st.one_of(
            bad(TypeError, name, None, "protocol", 5, ProcessProtocol, FuzzProtocol),
            fresh(badFor(TypeError, name), "object()", lambda ctx: object()),
        ),
    }


def secondsKinds(name: str, positive: bool) -> Kinds:
    """
    A duration (C{timeout}, C{killAfter}, C{closePipesAfterExit}); good
    ones are longer than any child here runs.
    """
    refused: list[object] = [-1, -0.5, float("nan"), float("inf"), float("-inf")]
    if positive:
        refused += [0, 0.0]
    lowest = 1 if positive else 0
    return {
        "good": st.one_of(
            good(None, CHILD_TIMEOUT * 4, 1e9, 1e300, sys.float_info.max),
            goodValues(st.one_of(st.integers(lowest, 10**30), st.just(MAX_SECONDS))),
        ),
        "bad": st.one_of(
            literal(badFor(ValueError, name), *refused),
            badValues(ValueError, name, st.integers(max_value=lowest - 1)),
            # Beyond a double (an int just above MAX_SECONDS rounds down to
            # it): infinite.
            badValues(ValueError, name, st.integers(min_value=2**1024)),
            literal(badFor(ValueError, name), 10**400, -(10**400)),
            bad(TypeError, name, "5", b"5", True, [1], 1j),
        ),
    }


#: The controller each limit of L{Cgroup} needs.
LIMIT_CONTROLLERS = {
    "memoryMax": "memory",
    "memoryHigh": "memory",
    "pidsMax": "pids",
    "cpuMax": "cpu",
    "ioWeight": "io",
}

#: Limits a child here lives with (each a controller's), and values that
#: set no limit.
LIMITS = {
    "memoryMax": (2**30, "1G", "768M", 512 * 2**20),
    "memoryHigh": (2**30, "1g", "1048576K"),
    "pidsMax": (64, 4096),
    "cpuMax": (1, 2.5, (None, 100_000), (500_000, 1_000_000), [200_000, 100_000]),
    "ioWeight": (1, 100, 10_000),
}
NO_LIMITS = {
    "memoryMax": ("max", None),
    "memoryHigh": ("max",),
    "pidsMax": ("max", None),
    "cpuMax": ("max", None),
    "ioWeight": (None,),
}


def limitsVerdict(limits: dict[str, object]) -> Verdict:
    """
    What a C{Cgroup} with C{limits} (each setting a limit) in a scratch
    parent calls for: good where the parent offers their controllers, else
    L{UnsupportedFeature} naming C{cgroup}, the first missing controller
    (in name order, as txspawn checks them) and the limits that need it.
    """
    absent = sorted({LIMIT_CONTROLLERS[name] for name in limits} - CGROUP_OFFERED)
    if not absent:
        return GOOD
    controller = absent[0]
    options = [name for name in limits if LIMIT_CONTROLLERS[name] == controller]
    return failsWith(UnsupportedFeature, "cgroup", controller, *options)


@st.composite
def cgroupFields(draw: st.DrawFn, limits: bool) -> dict[str, object]:
    """
    Fields of a L{Cgroup} but its parent: C{required} and C{killOnExit}
    perhaps, values that set no limit perhaps, and (with C{limits}) at
    least one limit.
    """
    fields: dict[str, object] = {}
    for name in ("required", "killOnExit"):
        if draw(st.booleans()):
            fields[name] = draw(st.booleans())
    for name, values in NO_LIMITS.items():
        if draw(st.integers(0, 4)) == 0:
            fields[name] = draw(st.sampled_from(values))
    if limits:
        chosen = draw(
            st.lists(
                st.sampled_from(sorted(LIMITS)), min_size=1, max_size=3, unique=True
            )
        )
        for name in chosen:
            fields[name] = draw(st.sampled_from(LIMITS[name]))
    return fields


def setLimits(fields: dict[str, object]) -> dict[str, object]:
    """
    The fields of C{fields} that set a limit.
    """
    return {
        name: value
        for name, value in fields.items()
        if name in LIMIT_CONTROLLERS and value not in ("max", None)
    }


#: Parents that are no cgroup v2 directory anywhere.
UNUSABLE_PARENTS = ("tmp", "missing", "file")


@st.composite
def scratchCgroups(draw: st.DrawFn, limits: bool) -> Arg:
    """
    A C{Cgroup} in the scratch parent: good (a leaf of it), or, with
    limits this hierarchy cannot honour, L{UnsupportedFeature} at the call
    whatever C{required} says (fixed: the same without its limits).
    """
    fields = draw(cgroupFields(limits))
    suffix = draw(st.sampled_from(["", "", "/", "/.", "//"]))
    node = CgroupNode(ParentPath("scratch", suffix), tuple(fields.items()))
    if not CGROUPS:
        return onMachine(node, None, failsWith(UnsupportedFeature, "cgroup"))
    verdict = limitsVerdict(setLimits(fields))
    if verdict.kind == "good":
        return Arg(node)
    unlimited = {k: v for k, v in fields.items() if k not in setLimits(fields)}
    fix = CgroupNode(ParentPath("scratch", suffix), tuple(unlimited.items()))
    return Arg(OnMachine(attrs.evolve(node, expect="raise"), fix), verdict)


@st.composite
def unusableCgroups(draw: st.DrawFn, required: bool) -> Arg:
    """
    A C{Cgroup} whose parent is no cgroup v2 directory: required, an
    L{UnsupportedFeature} at the call (fixed: the scratch parent); best
    effort, the child runs without a cgroup, limits or not (the parent is
    looked at first), and its transport says why.
    """
    fields = draw(cgroupFields(limits=draw(st.booleans())))
    fields["required"] = required
    parent = ParentPath(draw(st.sampled_from(UNUSABLE_PARENTS)))
    if not required:
        return Arg(CgroupNode(parent, tuple(fields.items()), "unavailable"))
    node = CgroupNode(parent, tuple(fields.items()), "raise")
    fix = CgroupNode(ParentPath("scratch"), (("required", True),))
    return onMachine(node, fix, failsWith(UnsupportedFeature, "cgroup"))


def cgroupKinds(name: str = "cgroup") -> Kinds:
    """
    C{cgroup=}: C{None}, a L{Cgroup} in the test's scratch parent cgroup
    (with limits that this hierarchy may not honour), one whose parent is
    no cgroup, or no L{Cgroup} at all.  (The fields of L{Cgroup} alone:
    L{cgroupFieldKinds}.)
    """
    return {
        "good": st.one_of(
            good(None),
            scratchCgroups(limits=False),
            unusableCgroups(required=False),
            *([scratchCgroups(limits=True)] if CGROUP_OFFERED else []),
        ),
        "machine": st.one_of(
            unusableCgroups(required=True),
            scratchCgroups(limits=True).filter(lambda arg: arg.verdict.kind != "good")
            if len(CGROUP_OFFERED) < len(LIMITS)
            else st.nothing(),
        ),
        "bad": st.one_of(
            bad(TypeError, name, "x", b"/sys/fs/cgroup", 5, True, Cgroup, [None]),
            bad(TypeError, name, {"parent": "/sys/fs/cgroup"}, ("/sys/fs/cgroup",)),
            fresh(
                badFor(TypeError, name), "SpawnOptions()", lambda ctx: SpawnOptions()
            ),
        ),
    }


def cgroupExpectation(call: Call, fixed: bool) -> str | None:
    """
    What a real reactor gives a child of C{call} for its C{cgroup}
    (L{CgroupNode.expect}), or C{None} when it has no L{Cgroup}.
    """
    for key, arg in call.arguments:
        if key != "cgroup":
            continue
        node = arg.node
        if isinstance(node, OnMachine):
            node = node.fix if fixed else node.raw
        if isinstance(node, CgroupNode):
            return node.expect
    return None


def cgroupFieldKinds() -> dict[str, Kinds]:
    """
    The fields of L{Cgroup}, each good or bad (a L{TypeError} or
    L{ValueError} naming C{Cgroup.<field>}).
    """

    def field(name: str) -> str:
        return f"Cgroup.{name}"

    def sizes(name: str) -> Kinds:
        return {
            "good": st.one_of(
                good(None, "max", 0, "0", "64M", "512k", "1G", "3t", " 2P ", 2**63 - 1),
                goodValues(st.integers(0, 2**63 - 1)),
            ),
            "bad": st.one_of(
                bad(ValueError, field(name), -1, 2**63, "64MB", "1.5G", "-1", "", "M"),
                bad(ValueError, field(name), "64\0M", "maxx", "16E", "1e6"),
                badValues(ValueError, field(name), st.integers(max_value=-1)),
                bad(TypeError, field(name), 1.5, True, b"64M", [1], object),
            ),
        }

    return {
        "parent": {
            "good": st.one_of(
                good(None, "/sys/fs/cgroup", "/x/../y/", "//a//b/.", b"/sys/fs/cgroup"),
                good(pathlib.PurePosixPath("/sys/fs/cgroup/a")),
                goodValues(goodStrings.map(lambda s: "/" + os.fsdecode(s))),
            ),
            "bad": st.one_of(
                bad(
                    ValueError,
                    field("parent"),
                    "",
                    "x",
                    "sys/fs/cgroup",
                    ".",
                    "a/..",
                    "/a\0b",
                ),
                bad(TypeError, field("parent"), 5, True, ["/x"], 1.5, object),
            ),
        },
        "required": {
            "good": good(True, False),
            "bad": bad(TypeError, field("required"), 1, 0, "yes", None),
        },
        "killOnExit": {
            "good": good(True, False),
            "bad": bad(TypeError, field("killOnExit"), 1, 0, "no", None),
        },
        "memoryMax": sizes("memoryMax"),
        "memoryHigh": sizes("memoryHigh"),
        "pidsMax": {
            "good": st.one_of(
                good(None, "max", 1, 4 * 1024 * 1024), goodValues(st.integers(1, 2**22))
            ),
            "bad": st.one_of(
                badValues(
                    ValueError, field("pidsMax"), intsOutside(1, 4 * 1024 * 1024)
                ),
                bad(TypeError, field("pidsMax"), "5", 5.0, True, [5]),
            ),
        },
        "cpuMax": {
            "good": st.one_of(
                good(None, "max", 1, 0.01, 2.5, (None, 1000), ("max", 1_000_000)),
                good([1000, 1000], (2**44 - 1, 100_000)),
                goodValues(st.floats(0.01, 10**6)),
            ),
            "bad": st.one_of(
                bad(
                    ValueError,
                    field("cpuMax"),
                    0,
                    -1,
                    0.001,
                    float("nan"),
                    float("inf"),
                    10**9,
                    (999, 100_000),
                    (1000, 999),
                    (1000, 1_000_001),
                    (2**44, 100_000),
                ),
                bad(TypeError, field("cpuMax"), "1", (1000,), (1, 2, 3), (1000, 1.5e5)),
                bad(TypeError, field("cpuMax"), ("x", 100_000), True, {1: 2}),
            ),
        },
        "ioWeight": {
            "good": st.one_of(
                good(None, 1, 10_000), goodValues(st.integers(1, 10_000))
            ),
            "bad": st.one_of(
                badValues(ValueError, field("ioWeight"), intsOutside(1, 10_000)),
                bad(TypeError, field("ioWeight"), "100", 1.0, True, [1]),
            ),
        },
    }


def optionKinds() -> dict[str, Kinds]:
    """
    Each of txspawn's spawn options (the fields of L{SpawnOptions}) and
    lifetime options.
    """
    return {
        "cgroup": cgroupKinds(),
        "umask": {
            "good": st.one_of(good(None), goodValues(st.integers(0, 0o777))),
            "bad": st.one_of(
                badValues(
                    ValueError,
                    "umask",
                    intsOutside(0, 0o777),
                ),
                bad(TypeError, "umask", True, "0o22", 1.0, [1]),
            ),
        },
        "groups": {
            "good": st.one_of(
                good(None, [], [0], ("root",), (0, "root"), {0, 1}),
                goodValues(st.lists(st.integers(0, ID_MAX), max_size=4)),
                fresh(GOOD, "iter([0])", lambda ctx: iter([0])),
            )
            if ROOT
            else good(None),
            # Group names are looked up when the spawn is planned.
            "machine": st.just(
                onMachine(
                    ["no-such-group-txspawn-fuzz"],
                    ["root"] if ROOT else None,
                    failsWith(ValueError, "groups"),
                )
            ),
            "bad": st.one_of(
                bad(TypeError, "groups", "wheel", b"x", 5, [1.5], [True], [b"root"]),
                bad(TypeError, "groups", [None]),
                bad(ValueError, "groups", [-1], [2**32], ["a\0"], [""]),
                bad(ValueError, "groups", [0] * (NGROUPS_MAX + 1)),
            ),
        },
        "newSession": {
            "good": good(True, False),
            "bad": bad(TypeError, "newSession", "yes", 1, 0, None),
        },
        "processGroup": {
            "good": st.one_of(
                good(None, 0), fresh(GOOD, "os.getpgrp()", lambda ctx: os.getpgrp())
            ),
            "machine": st.just(onMachine(NO_SUCH_PGID, 0, failsWith())),
            "bad": st.one_of(
                badValues(ValueError, "processGroup", intsOutside(0, PGID_MAX)),
                bad(TypeError, "processGroup", "x", True, False, 1.5),
            ),
        },
        "rlimits": {
            "good": good(
                {},
                {"NOFILE": (64, 64)},
                {"CORE": (0, resource.RLIM_INFINITY)},
                {resource.RLIMIT_FSIZE: (-1, -1)},
                {"RLIMIT_NOFILE": [256, 1024]},
                ((resource.RLIMIT_NOFILE, 128, 128),),
                # At the hard limit: raising it needs CAP_SYS_RESOURCE.
                MappingProxyType({"NPROC": resource.getrlimit(resource.RLIMIT_NPROC)}),
                {"FSIZE": resource.getrlimit(resource.RLIMIT_FSIZE)},
            ),
            "machine": st.one_of(
                # Too tight for a dynamically linked program.
                st.sampled_from(
                    [
                        {"NOFILE": (3, 3)},
                        {"AS": (1 << 20, 1 << 20)},
                        {"STACK": (4096, 4096)},
                    ]
                ).map(lambda limits: onMachine(limits, {}, mayFail())),
                # Above fs.nr_open: setrlimit fails in the child (EPERM).
                st.just(onMachine({"NOFILE": (2**30, 2**30)}, {}, failsWith())),
                # Above the hard limit: only with CAP_SYS_RESOURCE.
                st.just(onMachine({"NPROC": (10**6, 10**6)}, {}, mayFail())),
            ),
            "bad": st.one_of(
                bad(
                    TypeError,
                    "rlimits",
                    5,
                    "NOFILE",
                    None,
                    {"NOFILE": 5},
                    {"NOFILE": (1.0, 2)},
                    {1.5: (1, 1)},
                    {None: (1, 1)},
                    {"NOFILE": (1, 2, 3)},
                    [("NOFILE", 1, 1)],
                ),
                bad(
                    ValueError,
                    "rlimits",
                    {"BOGUS": (1, 1)},
                    {"NOFILE": (2, 1)},
                    {9999: (1, 1)},
                    {-1: (1, 1)},
                    {"NOFILE": (-5, 1)},
                    {"NOFILE": (1, 2**64)},
                    {"NOFILE": (10**400, 10**400)},
                    {"NOFILE": (1, 1), "RLIMIT_NOFILE": (2, 2)},
                ),
            ),
        },
        "deathSignal": {
            "good": st.one_of(
                good(None, signal.SIGKILL, signal.SIGTERM),
                goodValues(
                    st.sampled_from(sorted(int(s) for s in signal.valid_signals()))
                ),
            ),
            "bad": st.one_of(
                badValues(
                    ValueError,
                    "deathSignal",
                    st.one_of(
                        st.sampled_from([0, *INVALID_SIGNALS]),
                        intsOutside(1, max(signal.valid_signals())),
                    ),
                ),
                bad(TypeError, "deathSignal", "TERM", 9.0, True),
            ),
        },
        "timeout": secondsKinds("timeout", positive=True),
        "killAfter": secondsKinds("killAfter", positive=False),
        "closePipesAfterExit": secondsKinds("closePipesAfterExit", positive=False),
    }


def spawnOptionKinds() -> dict[str, Kinds]:
    """
    The fields of L{SpawnOptions}.
    """
    return {
        name: kinds
        for name, kinds in optionKinds().items()
        if name in attrs.fields_dict(SpawnOptions)
    }


#: The names of txspawn's keyword options.
OPTION_NAMES = frozenset(optionKinds())

SPAWN_KEYWORDS = OPTION_NAMES | {
    "processProtocol",
    "executable",
    "args",
    "env",
    "path",
    "uid",
    "gid",
    "usePTY",
    "childFDs",
}

RUN_KEYWORDS = OPTION_NAMES | {
    "argv",
    "reactor",
    "env",
    "path",
    "uid",
    "gid",
    "stdin",
    "check",
    "logFile",
    "logPrefix",
    "lines",
    "highWater",
    "lowWater",
    "onOutput",
}


def unknownKeywords(known: frozenset[str]) -> st.SearchStrategy[tuple[str, Arg]]:
    """
    A keyword the entry point does not take, with any value.
    """
    return st.tuples(
        st.text(string.ascii_letters, min_size=3, max_size=10).filter(
            lambda n: n not in known
        ),
        st.one_of(hostileInts, goodStrings, junkValues),
    ).map(lambda kv: (kv[0], Arg(Lit(kv[1]), badFor(TypeError, repr(kv[0])))))


# -- strategies: whole calls -------------------------------------------------------

#: How a call's arguments are drawn: all good, with a problem of this
#: machine, with one bad argument, or each argument of any kind.
MODES = ("clean", "clean", "machine", "machine", "bad", "bad", "hostile")


@st.composite
def composeArguments(
    draw: st.DrawFn,
    required: dict[str, Kinds],
    optional: dict[str, Kinds],
    known: frozenset[str],
) -> dict[str, Arg]:
    """
    The arguments of a call: every one of C{required}, some of C{optional}
    (in any order), perhaps an unknown keyword, in a mix of kinds drawn
    from L{MODES}.
    """
    kinds = {**required, **optional}
    mode = draw(st.sampled_from(MODES))
    able = sorted(name for name in kinds if "machine" in kinds[name])
    if mode == "machine" and not able:
        # Nothing here can be a problem of this machine (Cgroup's fields).
        mode = "clean"
    # The arguments that are not good, drawn among all (drawing them among
    # those given would favour the required ones).
    notGood: dict[str, str] = {}
    if mode == "machine":
        for name in draw(
            st.lists(st.sampled_from(able), min_size=1, max_size=2, unique=True)
        ):
            notGood[name] = "machine"
    elif mode == "bad":
        # One bad argument: the error must name it.
        notGood[
            draw(st.sampled_from(sorted(n for n in kinds if "bad" in kinds[n])))
        ] = "bad"
    chosen = draw(
        st.lists(st.sampled_from(sorted(optional)), unique=True, max_size=len(optional))
    )
    chosen += [name for name in notGood if name in optional and name not in chosen]
    names = list(required) + draw(st.permutations(chosen))
    wanted = {name: notGood.get(name, "good") for name in names}
    if mode == "hostile":
        for name in names:
            wanted[name] = draw(st.sampled_from(sorted(kinds[name])))
    arguments = {name: draw(kinds[name][wanted[name]]) for name in names}
    if mode in ("bad", "hostile") and draw(st.integers(0, 9)) == 9:
        name, arg = draw(unknownKeywords(known))
        arguments[name] = arg
    return arguments


def isInt(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def optionCombinations(arguments: dict[str, Arg], pty: bool) -> list[Verdict]:
    """
    The verdicts of the options that exclude each other.
    """
    combinations = []
    group = arguments.get("processGroup")
    groupGiven = group is not None and (
        not isinstance(group.node, Lit) or isInt(group.node.value)
    )
    newSession = arguments.get("newSession")
    if groupGiven and newSession is not None and literalValue(newSession) is True:
        combinations.append(badFor(ValueError, "newSession", "processGroup"))
    if groupGiven and pty:
        combinations.append(badFor(ValueError, "processGroup", "usePTY"))
    timeout = arguments.get("timeout")
    killAfter = arguments.get("killAfter")
    if (
        killAfter is not None
        and literalValue(killAfter) is not None
        and (timeout is None or literalValue(timeout) is None)
    ):
        combinations.append(badFor(ValueError, "killAfter"))
    return combinations


def wantsPTY(arg: Arg | None) -> bool:
    """
    Whether a C{usePTY} argument asks for a pty.
    """
    if arg is None:
        return False
    if isinstance(arg.node, Lit):
        return bool(arg.node.value)
    return True


def requiring(
    optional: dict[str, Kinds], required: dict[str, Kinds], names: tuple[str, ...]
) -> None:
    """
    Move the arguments C{names} from C{optional} to C{required} (a call
    drawn to test them always has them).
    """
    for name in names:
        required[name] = optional.pop(name)


@st.composite
def spawnProcessCalls(draw: st.DrawFn, always: tuple[str, ...] = ()) -> Call:
    """
    A call of C{spawnProcess}.

    @param always: Options every call has (among those drawn as any other).
    """
    required = {
        "processProtocol": protocolKinds(),
        "executable": executableKinds(),
        "args": argsKinds(),
    }
    optional = {
        "env": envKinds(),
        "path": pathKinds(),
        "uid": idKinds("uid"),
        "gid": idKinds("gid"),
        "usePTY": usePTYKinds(),
        "childFDs": childFDsKinds(),
        **optionKinds(),
    }
    requiring(optional, required, always)
    arguments = draw(composeArguments(required, optional, SPAWN_KEYWORDS))
    exitCode = 0
    executable, args = arguments["executable"], arguments["args"]
    if (
        executable.verdict.kind == args.verdict.kind == "good"
        and draw(st.integers(0, 2)) == 0
    ):
        exitCode = draw(st.integers(0, 255))
        extra = draw(st.lists(goodStrings, max_size=3))
        arguments["executable"] = Arg(Lit("/bin/sh"))
        arguments["args"] = Arg(
            Lit(
                draw(st.sampled_from([list, tuple]))(
                    ["sh", "-c", f"exit {exitCode}", *extra]
                )
            )
        )
    pty = wantsPTY(arguments.get("usePTY"))
    combinations = optionCombinations(arguments, pty)
    childFDs = arguments.get("childFDs")
    if pty and childFDs is not None and literalValue(childFDs) is not None:
        combinations.append(badFor(ValueError, "childFDs", "usePTY"))
        # With a pty, childFDs is not looked at.
        arguments["childFDs"] = evolve(childFDs, verdict=GOOD, fixedVerdict=GOOD)
    return Call(
        "spawnProcess()", tuple(arguments.items()), tuple(combinations), exitCode
    )


@st.composite
def argvArguments(draw: st.DrawFn, want: str, name: str = "argv") -> Arg:
    """
    C{run}'s and C{stream}'s C{argv} (C{sh -c "exit N"} is drawn by the
    call).
    """
    if want == "good":
        return draw(stringLists(name, False, "good", first=draw(good(*TRUE_NAMES))))
    if want == "machine":
        first = onMachine(draw(missingPrograms), "/bin/true", failsWith())
        return draw(stringLists(name, False, "good", first=first))
    return draw(
        st.one_of(
            bad(TypeError, name, "ls", b"ls", 5, None, {"ls": 1}),
            bad(ValueError, name, [], ()),
            stringLists(name, False, "bad", first=draw(good(*TRUE_NAMES))),
            notStrings(name),
        )
    )


def argvKinds() -> Kinds:
    return {want: argvArguments(want) for want in ("good", "machine", "bad")}


def logFileKinds(name: str = "logFile") -> Kinds:
    """
    C{run}'s and C{stream}'s C{logFile}.
    """

    def closed(ctx: Context) -> io.BytesIO:
        f = io.BytesIO()
        f.close()
        return f

    return {
        "good": st.one_of(
            good(None),
            fresh(GOOD, "<log path>", lambda ctx: ctx.logPath()),
            fresh(GOOD, "<log path as bytes>", lambda ctx: os.fsencode(ctx.logPath())),
            fresh(
                GOOD,
                "<log PurePath>",
                lambda ctx: pathlib.PurePosixPath(ctx.logPath()),
            ),
            fresh(GOOD, "io.BytesIO()", lambda ctx: io.BytesIO()),
        ),
        # Opened when the child is spawned: its Deferred fails.
        "machine": st.one_of(
            missing(goodStrings).map(lambda p: onMachine(p, None, failsWith(OSError))),
            st.just(onMachine("", None, failsWith(OSError))),
        ),
        "bad": st.one_of(
            badStrings(name),
            badValues(ValueError, name, unencodableStrings.map(pathlib.PurePosixPath)),
            bad(TypeError, name, 123, b"x".decode, object),
            fresh(badFor(TypeError, name), "io.StringIO()", lambda ctx: io.StringIO()),
            fresh(badFor(ValueError, name), "<closed BytesIO>", closed),
        ),
    }


def runKinds(entry: str) -> dict[str, Kinds]:
    """
    The arguments of L{run} or L{stream} but C{argv}.
    """
    kinds: dict[str, Kinds] = {
        "env": envKinds(),
        "path": pathKinds(),
        "uid": idKinds("uid"),
        "gid": idKinds("gid"),
        "stdin": {
            "good": good(None, b"", b"data\n", b"x" * 200_000),
            "bad": st.one_of(
                bad(TypeError, "stdin", "text", 5, True),
                fresh(
                    badFor(TypeError, "stdin"),
                    "bytearray()",
                    lambda ctx: bytearray(b"x"),
                ),
            ),
        },
        "check": {
            "good": good(True, False),
            "bad": bad(TypeError, "check", "yes", 1, None),
        },
        "logFile": logFileKinds(),
        "logPrefix": {
            "good": good(True, False),
            "bad": bad(TypeError, "logPrefix", "yes", 0, None),
        },
        **optionKinds(),
    }
    if entry == "stream()":
        kinds.update(
            lines={
                "good": good(True, False),
                "bad": bad(TypeError, "lines", "yes", 1, None),
            },
            highWater={
                "good": st.one_of(
                    good(1, 10, 2**20, 10**30), goodValues(st.integers(1, 2**40))
                ),
                "bad": st.one_of(
                    bad(TypeError, "highWater", "1", 1.5, True, None),
                    badValues(ValueError, "highWater", st.integers(max_value=0)),
                ),
            },
            # Whether an int is good depends on highWater: runCalls.
            lowWater={
                "good": st.one_of(good(None, 0), goodValues(st.integers(0, 20))),
                "bad": st.one_of(
                    bad(TypeError, "lowWater", "x", 1.5, True),
                    goodValues(hostileInts),
                ),
            },
            onOutput={
                "good": st.one_of(
                    good(None),
                    fresh(GOOD, "<callback>", lambda ctx: lambda chunk: None),
                ),
                "bad": bad(TypeError, "onOutput", 5, "print"),
            },
        )
    return kinds


def reactorKinds(name: str = "reactor") -> Kinds:
    return {
        "good": fresh(GOOD, "<reactor>", lambda ctx: ctx.reactor),
        "bad": bad(TypeError, name, 5, "reactor", object),
    }


@st.composite
def runCalls(draw: st.DrawFn, entry: str, always: tuple[str, ...] = ()) -> Call:
    """
    A call of L{run} or L{stream}.

    @param always: Options every call has (among those drawn as any other).
    """
    required = {"argv": argvKinds(), "reactor": reactorKinds()}
    optional = runKinds(entry)
    requiring(optional, required, always)
    arguments = draw(composeArguments(required, optional, RUN_KEYWORDS))
    exitCode = 0
    if arguments["argv"].verdict.kind == "good" and draw(st.integers(0, 2)) == 0:
        exitCode = draw(st.integers(0, 255))
        arguments["argv"] = Arg(Lit(["/bin/sh", "-c", f"exit {exitCode}"]))
    combinations = optionCombinations(arguments, pty=False)
    lowWater = arguments.get("lowWater")
    if lowWater is not None and isInt(literalValue(lowWater)):
        highWater = literalValue(arguments.get("highWater", Arg(Lit(256 * 1024))))
        low = literalValue(lowWater)
        assert isinstance(low, int)
        if isInt(highWater) and not 0 <= low < highWater:  # type: ignore[operator]
            combinations.append(badFor(ValueError, "lowWater"))
    return Call(entry, tuple(arguments.items()), tuple(combinations), exitCode)
