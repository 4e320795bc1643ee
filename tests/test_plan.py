# -*- test-case-name: tests.test_plan -*-
"""
Tests for L{txspawn._plan.planner.planSpawn}: argument validation, environment
semantics, C{childFDs}, PTYs, credentials, options and PATH resolution.
"""

from __future__ import annotations

import errno
import os
import pathlib
import shutil
import stat
import struct
import tempfile
from collections.abc import Callable, Iterable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests import hygiene
from tests.strategies import argumentStrings, childFDsArguments, environments
from txspawn._plan.argumentchecks import CHILD_FD_MAX
from txspawn._plan.plan import (
    InheritFD,
    PipeFromParent,
    PipeToParent,
    PTYSpec,
    SpawnPlan,
)
from txspawn._plan.planner import isOpenFD, planSpawn
from txspawn.errors import ChildSetupStage, SpawnError
from txspawn.options import SpawnOptions

__all__ = [
    "ArgumentTests",
    "ChildFDsTests",
    "CredentialsTests",
    "EnvironmentTests",
    "IsOpenFDTests",
    "OptionsTests",
    "PTYTests",
    "PathResolutionTests",
    "WorkingDirectoryTests",
]

#: A parent environment that finds the usual tools.
PARENT_ENV = {b"PATH": b"/usr/bin:/bin", b"HOME": b"/nonexistent"}


def openFDs(*fds: int) -> Callable[[int], bool]:
    """
    An C{isOpenFD} that claims exactly C{fds} (plus 0, 1 and 2) are open.
    """
    known = {0, 1, 2, *fds}
    return known.__contains__


def plan(executable: Any = "/bin/true", *args: Any, **kwargs: Any) -> SpawnPlan:
    """
    Call L{planSpawn} with a fixed parent environment and fd table unless
    the test gives its own.
    """
    kwargs.setdefault("parentEnviron", PARENT_ENV)
    kwargs.setdefault("isOpenFD", openFDs())
    return planSpawn(executable, *args, **kwargs)


class PlanTestCase(SynchronousTestCase):
    """
    Assertions shared by the plan tests.
    """

    def tempPath(self) -> str:
        """
        An absolute path that does not exist yet, in a private temporary
        directory removed after the test.
        """
        d = tempfile.mkdtemp(prefix="txspawn-test-plan-")
        self.addCleanup(shutil.rmtree, d, ignore_errors=True)
        return os.path.join(d, "p")

    def assertRejects(
        self,
        exception: type[Exception],
        naming: str,
        *args: Any,
        **kwargs: Any,
    ) -> Exception:
        """
        Assert that L{plan} raises C{exception} with C{naming} in its
        message, and that no fd was opened meanwhile.
        """
        before = hygiene.openFDs()
        error: Exception = self.assertRaises(exception, plan, *args, **kwargs)
        self.assertIn(naming, str(error))
        self.assertEqual(hygiene.openFDs(), before)
        return error


class ArgumentTests(PlanTestCase):
    """
    C{executable} and C{args}.
    """

    def test_defaults(self) -> None:
        """
        With only an executable, the plan has no arguments, an empty
        environment, Twisted's three pipes and nothing else.
        """
        p = plan("/bin/true")
        self.assertEqual(p.executable, b"/bin/true")
        self.assertEqual(p.candidates, (b"/bin/true",))
        self.assertEqual(p.argv, ())
        self.assertEqual(p.envp, ())
        self.assertEqual(
            p.childFDs, (PipeFromParent(0), PipeToParent(1), PipeToParent(2))
        )
        self.assertIsNone(p.pty)
        self.assertIsNone(p.cwd)
        self.assertFalse(p.newSession)
        self.assertEqual(
            (p.uid, p.gid, p.groups, p.umask, p.processGroup, p.deathSignal),
            (None,) * 6,
        )
        self.assertEqual((p.rlimits, p.signalMask), ((), ()))

    def test_strAndBytes(self) -> None:
        """
        C{str} and C{bytes} are accepted and mixed; C{str} is encoded with
        L{os.fsencode} (so undecodable bytes survive a round trip).
        """
        p = plan("/bin/true", ["true", b"b\xff", "\N{SNOWMAN}", "x\udcff"])
        self.assertEqual(p.argv, (b"true", b"b\xff", "\N{SNOWMAN}".encode(), b"x\xff"))

    def test_pathLikeExecutable(self) -> None:
        """
        A path-like C{executable} is accepted.
        """
        self.assertEqual(plan(pathlib.Path("/bin/true")).executable, b"/bin/true")

    def test_executableSeparateFromArgv0(self) -> None:
        """
        C{args[0]} is not the executable; it is passed as given.
        """
        p = plan("/bin/true", ["something else"])
        self.assertEqual(p.candidates, (b"/bin/true",))
        self.assertEqual(p.argv, (b"something else",))

    def test_argsTuple(self) -> None:
        """
        Any sequence works for C{args}.
        """
        self.assertEqual(plan("/bin/true", ("a", "b")).argv, (b"a", b"b"))

    def test_argsString(self) -> None:
        """
        A bare C{str} or C{bytes} as C{args} is a L{TypeError}, not a
        sequence of one-letter arguments.
        """
        self.assertRejects(TypeError, "args", "/bin/true", "true")
        self.assertRejects(TypeError, "args", "/bin/true", b"true")

    def test_argsNotSequence(self) -> None:
        """
        C{args} that is not a sequence (a generator, C{None}) is a
        L{TypeError}.
        """
        self.assertRejects(TypeError, "args", "/bin/true", (a for a in ["x"]))
        self.assertRejects(TypeError, "args", "/bin/true", None)

    def test_argBadType(self) -> None:
        """
        An argument that is neither C{str} nor C{bytes} is a L{TypeError}
        naming its index.
        """
        self.assertRejects(TypeError, "args[1]", "/bin/true", ["a", 1])
        self.assertRejects(TypeError, "args[0]", "/bin/true", [None])

    def test_argNUL(self) -> None:
        """
        NUL in an argument is a L{ValueError} naming its index.
        """
        self.assertRejects(ValueError, "args[1]", "/bin/true", ["a", "b\0c"])
        self.assertRejects(ValueError, "args[0]", "/bin/true", [b"\0"])

    def test_executableNUL(self) -> None:
        """
        NUL in C{executable} is a L{ValueError} naming it.
        """
        self.assertRejects(ValueError, "executable", "/bin/tr\0ue")
        self.assertRejects(ValueError, "executable", b"true\0")

    def test_executableBadType(self) -> None:
        """
        An C{executable} that is not a string is a L{TypeError} naming it.
        """
        self.assertRejects(TypeError, "executable", None)
        self.assertRejects(TypeError, "executable", 3)

    def test_executableEmpty(self) -> None:
        """
        An empty C{executable} is not found.
        """
        error = self.assertRejects(FileNotFoundError, "", "")
        assert isinstance(error, SpawnError)
        self.assertEqual(error.stage, ChildSetupStage.EXEC)

    @given(st.lists(argumentStrings, max_size=6))
    def test_argsRoundTrip(self, args: list[str | bytes]) -> None:
        """
        Every NUL-free C{str} or C{bytes} argument comes out as its
        L{os.fsencode}, in order, and decodes back to itself.
        """
        p = plan("/bin/true", args)
        self.assertEqual(p.argv, tuple(os.fsencode(a) for a in args))
        for original, encoded in zip(args, p.argv, strict=True):
            if isinstance(original, str):
                self.assertEqual(os.fsdecode(encoded), original)


class EnvironmentTests(PlanTestCase):
    """
    C{env}: empty by default, inherited with C{None}.
    """

    def test_defaultIsEmpty(self) -> None:
        """
        The default C{env} is an empty environment, not the parent's.
        """
        self.assertEqual(plan("/bin/true").envp, ())

    def test_emptyDict(self) -> None:
        """
        C{env={}} is an empty environment.
        """
        self.assertEqual(plan("/bin/true", [], {}).envp, ())

    def test_noneInherits(self) -> None:
        """
        C{env=None} is the given C{parentEnviron}, in its order; the real
        L{os.environ} is never read.
        """
        p = plan("/bin/true", [], None, parentEnviron={b"A": b"1", b"B": b"x=y"})
        self.assertEqual(p.envp, (b"A=1", b"B=x=y"))

    def test_custom(self) -> None:
        """
        A custom C{env} is encoded in order; values may contain C{=}.
        """
        p = plan("/bin/true", [], {"A": "1", b"B": b"2", "C": "a=b", "D": ""})
        self.assertEqual(p.envp, (b"A=1", b"B=2", b"C=a=b", b"D="))

    def test_keyWithEquals(self) -> None:
        """
        C{=} in a key is a L{ValueError} naming C{env}.
        """
        self.assertRejects(ValueError, "env", "/bin/true", [], {"A=B": "1"})
        self.assertRejects(ValueError, "env", "/bin/true", [], {b"=": b"1"})

    def test_emptyKey(self) -> None:
        """
        An empty key is a L{ValueError} naming C{env}.
        """
        self.assertRejects(ValueError, "env", "/bin/true", [], {"": "1"})

    def test_NUL(self) -> None:
        """
        NUL in a key or value is a L{ValueError} naming C{env}.
        """
        self.assertRejects(ValueError, "env", "/bin/true", [], {"A\0": "1"})
        self.assertRejects(ValueError, "env['A']", "/bin/true", [], {"A": "1\0"})
        self.assertRejects(ValueError, "env", "/bin/true", [], {b"A": b"\0"})

    def test_badTypes(self) -> None:
        """
        A non-mapping C{env}, or a key or value that is not a string, is a
        L{TypeError} naming C{env}.
        """
        self.assertRejects(TypeError, "env", "/bin/true", [], [("A", "1")])
        self.assertRejects(TypeError, "env", "/bin/true", [], {1: "1"})
        self.assertRejects(TypeError, "env['A']", "/bin/true", [], {"A": 1})
        self.assertRejects(TypeError, "env['A']", "/bin/true", [], {"A": None})

    def test_sameKeyTwice(self) -> None:
        """
        A C{str} and a C{bytes} key that encode alike (as
        C{twisted.web.twcgi} gives C{CONTENT_LENGTH}) are both passed, in
        C{env}'s order, as stock Twisted passes them (CPython's C{execve}
        and C{posix_spawnp} encode a mapping entry by entry); so are two
        C{str} keys that encode alike (a lone surrogate escaping the bytes
        of a UTF-8 character).
        """
        p = plan("/bin/true", [], {"A": "1", "B": "x", b"A": b"2"})
        self.assertEqual(p.envp, (b"A=1", b"B=x", b"A=2"))
        p = plan("/bin/true", [], {b"A": b"2", "A": "1"})
        self.assertEqual(p.envp, (b"A=2", b"A=1"))
        escaped = "\udcc3\udca9"
        self.assertEqual(os.fsencode(escaped), os.fsencode("\u00e9"))
        p = plan("/bin/true", [], {"\u00e9": "1", escaped: "2"})
        self.assertEqual(p.envp, ("\u00e9=1".encode(), "\u00e9=2".encode()))

    def test_sameKeyTwiceInherited(self) -> None:
        """
        An inherited C{parentEnviron} with a key twice is passed on the same
        way.
        """
        p = plan("/bin/true", [], None, parentEnviron={"A": "1", b"A": b"2"})
        self.assertEqual(p.envp, (b"A=1", b"A=2"))

    def test_sameKeyTwiceStillChecked(self) -> None:
        """
        The second entry of a key is checked like any other: NUL in its
        value is a L{ValueError} naming C{env}.
        """
        self.assertRejects(ValueError, "env", "/bin/true", [], {"A": "1", b"A": b"\0"})

    def test_badParentEnviron(self) -> None:
        """
        A bad C{parentEnviron} is reported under its own name when it is
        inherited.
        """
        self.assertRejects(
            ValueError,
            "parentEnviron",
            "/bin/true",
            [],
            None,
            parentEnviron={b"A=": b"1"},
        )

    @given(environments)
    def test_roundTrip(self, env: dict[str | bytes, str | bytes]) -> None:
        """
        Every valid environment comes out as C{KEY=VALUE} entries of its
        L{os.fsencode}d keys and values, in order (a key that encodes like
        an earlier one included).
        """
        p = plan("/bin/true", [], env)
        self.assertEqual(
            p.envp,
            tuple(os.fsencode(k) + b"=" + os.fsencode(v) for k, v in env.items()),
        )


#: Environment text with what the checks refuse or must keep apart: NUL,
#: "=", lone surrogates (some encodable by surrogateescape, some not; "é"
#: escaped byte by byte encodes like "é") and non-ASCII.
_ENV_TEXT = st.lists(
    st.sampled_from(["a", "=", "\0", "\udc80", "\ud800", "é", "\udcc3\udca9", "_"]),
    max_size=4,
).map("".join)


#: Whole keys: valid, two that encode alike, and refused ones.
_ENV_KEYS = st.sampled_from(["A", "é", "\udcc3\udca9", "A=", "", "B\0", "\ud800"])


class EncodeEnvTests(SynchronousTestCase):
    """
    L{encodeEnv}'s fast path (a dict of str, encoded in two calls) gives
    exactly what the entry-by-entry path gives, answer or error.
    """

    def assertSameAsEachEntry(self, env: dict[Any, Any]) -> None:
        from txspawn._plan.argumentchecks import _encodeEachEntry, encodeEnv

        def outcome(function: Callable[..., object]) -> object:
            try:
                return function(env, "env")
            except (TypeError, ValueError) as error:
                return (type(error), str(error))

        self.assertEqual(outcome(encodeEnv), outcome(_encodeEachEntry))

    @given(
        st.dictionaries(
            st.one_of(_ENV_KEYS, _ENV_TEXT), _ENV_TEXT, min_size=1, max_size=5
        )
    )
    def test_strDict(self, env: dict[str, str]) -> None:
        """
        Any dict of str, valid or not (keys drawn often from a few that
        clash, or are refused).
        """
        self.assertSameAsEachEntry(env)

    @given(
        st.dictionaries(
            st.one_of(_ENV_TEXT, st.binary(max_size=3)),
            st.one_of(_ENV_TEXT, st.binary(max_size=3)),
            max_size=5,
        )
    )
    def test_mixedDict(self, env: dict[Any, Any]) -> None:
        """
        str and bytes mixed (the entry-by-entry path answers, repeated
        encoded keys included).
        """
        self.assertSameAsEachEntry(env)

    def test_environ(self) -> None:
        """
        A copy of this process's environment takes the fast path and gives
        every entry, in order.
        """
        from txspawn._plan.argumentchecks import _encodeStrEnv

        env = dict(os.environ)
        fast = _encodeStrEnv(env)
        assert fast is not None
        self.assertEqual(list(fast[0]), [os.fsencode(key) for key in env])
        self.assertSameAsEachEntry(env)


class ChildFDsTests(PlanTestCase):
    """
    C{childFDs}: Twisted's C{"r"}, C{"w"} and parent fd values.
    """

    def test_default(self) -> None:
        """
        C{childFDs=None} is C{{0: "w", 1: "r", 2: "r"}}.
        """
        self.assertEqual(
            plan("/bin/true", childFDs=None).childFDs,
            (PipeFromParent(0), PipeToParent(1), PipeToParent(2)),
        )

    def test_values(self) -> None:
        """
        C{"r"}, C{"w"} and open parent fds map to the spec types, sorted by
        child fd.
        """
        p = plan(
            "/bin/true",
            childFDs={5: 9, 0: "w", 3: "r", 1: 1},
            isOpenFD=openFDs(9),
        )
        self.assertEqual(
            p.childFDs,
            (PipeFromParent(0), InheritFD(1, 1), PipeToParent(3), InheritFD(5, 9)),
        )

    def test_empty(self) -> None:
        """
        An empty C{childFDs} gives the child no fds at all.
        """
        self.assertEqual(plan("/bin/true", childFDs={}).childFDs, ())

    def test_unknownValue(self) -> None:
        """
        A value that is not C{"r"}, C{"w"} or a fd number is a L{ValueError}
        naming C{childFDs[key]}.
        """
        for value in ["x", b"r", "rw", -1, True, 1.0, None]:
            self.assertRejects(
                ValueError, "childFDs[4]", "/bin/true", childFDs={4: value}
            )

    def test_badKey(self) -> None:
        """
        A negative or non-int child fd is a L{ValueError} naming it.
        """
        for key in [-1, "0", True, 2**31, None]:
            self.assertRejects(
                ValueError, f"childFDs[{key!r}]", "/bin/true", childFDs={key: "r"}
            )

    def test_highestFD(self) -> None:
        """
        No process can have an fd at or above Linux's ceiling on
        C{fs.nr_open} (C{INT_MAX} rounded down to a multiple of the bits of
        a C{long}): such a child fd is a L{ValueError} naming C{childFDs}
        and the valid range, whatever the machine.  The fd below it is
        planned: whether the child can have it is for its C{RLIMIT_NOFILE}
        to say, as for any fd.  (A key of C{2**31 - 1} used to reach the
        engines, whose fd program had no room above it.)
        """
        longBits = 8 * struct.calcsize("l")
        pointer = struct.calcsize("P")
        # As many pointers as fit in memory bound it on 32-bit systems.
        ceiling = min(2**31 - 1, (2 ** (8 * pointer) - 1) // pointer)
        ceiling = ceiling // longBits * longBits
        if struct.calcsize("P") == 8:
            self.assertEqual(ceiling, 2**31 - 64)
        self.assertEqual(CHILD_FD_MAX, ceiling - 1)
        for key in (ceiling, ceiling + 1, 2**31 - 2, 2**31 - 1):
            error = self.assertRejects(
                ValueError, f"childFDs[{key}]", "/bin/true", childFDs={key: "r"}
            )
            self.assertIn(f"from 0 to {ceiling - 1}", str(error))
        p = plan("/bin/true", childFDs={ceiling - 1: "r", 0: "w"})
        self.assertEqual(p.childFDs, (PipeFromParent(0), PipeToParent(ceiling - 1)))

    def test_notMapping(self) -> None:
        """
        A C{childFDs} that is not a mapping is a L{TypeError}.
        """
        self.assertRejects(TypeError, "childFDs", "/bin/true", childFDs=[(0, "r")])

    def test_notOpen(self) -> None:
        """
        A parent fd that is not open is a L{SpawnError} C{EBADF} at the
        C{FDS} stage, whose detail is the child fd and whose message names
        C{childFDs}.
        """
        error = self.assertRejects(
            SpawnError, "childFDs[3]", "/bin/true", childFDs={3: 7}
        )
        assert isinstance(error, SpawnError)
        self.assertEqual(error.errno, errno.EBADF)
        self.assertEqual(error.stage, ChildSetupStage.FDS)
        self.assertEqual(error.detail, 3)

    def test_realIsOpenFD(self) -> None:
        """
        With the real L{isOpenFD}, a closed fd is refused and an open one
        accepted.
        """
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        os.close(w)
        self.assertRejects(
            SpawnError, "childFDs[0]", "/bin/true", childFDs={0: w}, isOpenFD=isOpenFD
        )
        p = plan("/bin/true", childFDs={0: r}, isOpenFD=isOpenFD)
        self.assertEqual(p.childFDs, (InheritFD(0, r),))

    @given(childFDsArguments)
    def test_anyValidMap(self, childFDs: dict[int, str | int]) -> None:
        """
        Every valid C{childFDs} map gives one spec per child fd, sorted,
        with the right kind.
        """
        p = plan("/bin/true", childFDs=childFDs)
        self.assertEqual([s.childFD for s in p.childFDs], sorted(childFDs))
        for spec in p.childFDs:
            value = childFDs[spec.childFD]
            if value == "r":
                self.assertEqual(spec, PipeToParent(spec.childFD))
            elif value == "w":
                self.assertEqual(spec, PipeFromParent(spec.childFD))
            else:
                assert isinstance(value, int)
                self.assertEqual(spec, InheritFD(spec.childFD, value))


class PTYTests(PlanTestCase):
    """
    C{usePTY}.
    """

    def test_withChildFDs(self) -> None:
        """
        C{usePTY} with C{childFDs} is Twisted's L{ValueError}, even when
        C{childFDs} is empty.
        """
        for childFDs in [{}, {0: "r"}]:
            error = self.assertRejects(
                ValueError, "childFDs", "/bin/true", usePTY=True, childFDs=childFDs
            )
            self.assertEqual(
                str(error), "Using childFDs is not supported with usePTY=True."
            )

    def test_truthy(self) -> None:
        """
        A truthy C{usePTY} asks txspawn to open the pty; the plan has a new
        session and no other fds.
        """
        for usePTY in [True, 1, "yes"]:
            p = plan("/bin/true", usePTY=usePTY)
            self.assertEqual(p.pty, PTYSpec(None))
            self.assertTrue(p.newSession)
            self.assertEqual(p.childFDs, ())

    def test_falsy(self) -> None:
        """
        A falsy C{usePTY} means pipes.
        """
        for usePTY in [False, 0, None, ()]:
            p = plan("/bin/true", usePTY=usePTY)
            self.assertIsNone(p.pty)
            self.assertEqual(len(p.childFDs), 3)

    def test_given(self) -> None:
        """
        A C{(masterfd, slavefd, ttyname)} tuple (or list) is kept, with the
        name encoded.
        """
        for usePTY in [(7, 8, "/dev/pts/9"), [7, 8, b"/dev/pts/9"]]:
            p = plan("/bin/true", usePTY=usePTY, isOpenFD=openFDs(7, 8))
            self.assertEqual(p.pty, PTYSpec((7, 8, b"/dev/pts/9")))
            self.assertTrue(p.newSession)

    def test_givenBadShape(self) -> None:
        """
        A tuple of the wrong length is a L{ValueError} naming C{usePTY}; fds
        of the wrong type a L{TypeError}; a NUL in the name a
        L{ValueError}; a closed fd a L{SpawnError}.
        """
        self.assertRejects(ValueError, "usePTY", "/bin/true", usePTY=(1, 2))
        self.assertRejects(
            TypeError, "usePTY masterfd", "/bin/true", usePTY=("1", 2, "/dev/x")
        )
        self.assertRejects(
            TypeError, "usePTY slavefd", "/bin/true", usePTY=(1, None, "/dev/x")
        )
        self.assertRejects(
            ValueError, "usePTY slavefd", "/bin/true", usePTY=(1, -2, "/dev/x")
        )
        self.assertRejects(
            ValueError, "usePTY ttyname", "/bin/true", usePTY=(1, 2, "/dev/\0")
        )
        self.assertRejects(TypeError, "usePTY ttyname", "/bin/true", usePTY=(1, 2, 3))
        error = self.assertRejects(
            SpawnError, "usePTY masterfd", "/bin/true", usePTY=(9, 2, "/dev/x")
        )
        assert isinstance(error, SpawnError)
        self.assertEqual(error.errno, errno.EBADF)

    def test_processGroup(self) -> None:
        """
        A pty child leads its own session, so joining or creating another
        process group is refused, naming the keyword C{processGroup} (as
        the entry points take it), not the L{SpawnOptions} field.
        """
        error = self.assertRejects(
            ValueError,
            "processGroup",
            "/bin/true",
            usePTY=True,
            options=SpawnOptions(processGroup=0),
        )
        self.assertTrue(
            str(error).startswith("processGroup cannot be used with usePTY"),
            str(error),
        )


class WorkingDirectoryTests(PlanTestCase):
    """
    C{path}.
    """

    def test_directory(self) -> None:
        """
        An existing directory is planned as C{cwd} bytes, from C{str},
        C{bytes} or a path object.
        """
        d = self.tempPath()
        os.mkdir(d)
        for path in [d, os.fsencode(d), pathlib.Path(d)]:
            self.assertEqual(plan("/bin/true", path=path).cwd, os.fsencode(d))

    def test_missing(self) -> None:
        """
        A C{path} that does not exist is a L{FileNotFoundError}
        L{SpawnError} at the C{CHDIR} stage, naming the path.
        """
        missing = self.tempPath()
        error = self.assertRejects(
            FileNotFoundError, missing, "/bin/true", path=missing
        )
        assert isinstance(error, SpawnError)
        self.assertEqual(error.stage, ChildSetupStage.CHDIR)
        self.assertEqual(error.errno, errno.ENOENT)
        self.assertEqual(error.filename, missing)

    def test_notDirectory(self) -> None:
        """
        A C{path} that is a file is C{ENOTDIR} at the C{CHDIR} stage.
        """
        f = self.tempPath()
        pathlib.Path(f).touch()
        error = self.assertRejects(NotADirectoryError, f, "/bin/true", path=f)
        assert isinstance(error, SpawnError)
        self.assertEqual(error.stage, ChildSetupStage.CHDIR)
        self.assertEqual(error.filename, f)

    def test_bytesFilename(self) -> None:
        """
        The error names the path as it was given, C{bytes} included.
        """
        missing = os.fsencode(self.tempPath())
        error = self.assertRejects(SpawnError, "", "/bin/true", path=missing)
        assert isinstance(error, SpawnError)
        self.assertEqual(error.filename, missing)

    def test_badPath(self) -> None:
        """
        NUL in C{path} is a L{ValueError}, a non-string a L{TypeError}, both
        naming C{path}.
        """
        self.assertRejects(ValueError, "path", "/bin/true", path="/tmp\0")
        self.assertRejects(TypeError, "path", "/bin/true", path=3)


class CredentialsTests(PlanTestCase):
    """
    C{uid} and C{gid}.
    """

    def test_valid(self) -> None:
        """
        Ints are kept; without C{groups} the plan's groups stay C{None}
        (the engines then drop supplementary groups).
        """
        p = plan("/bin/true", uid=0, gid=12345)
        self.assertEqual((p.uid, p.gid, p.groups), (0, 12345, None))

    def test_badType(self) -> None:
        """
        A bool, a string or a float is a L{TypeError} naming the argument.
        """
        for name in ["uid", "gid"]:
            for value in [True, "0", 1.0]:
                self.assertRejects(TypeError, name, "/bin/true", **{name: value})

    def test_outOfRange(self) -> None:
        """
        A negative id, or C{(uid_t)-1} and above, is a L{ValueError}.
        """
        for name in ["uid", "gid"]:
            for value in [-1, 2**32 - 1, 2**40]:
                self.assertRejects(ValueError, name, "/bin/true", **{name: value})


class OptionsTests(PlanTestCase):
    """
    L{SpawnOptions} flow into the plan.
    """

    def test_applied(self) -> None:
        """
        Every option lands in its plan field.
        """
        import resource
        import signal

        options = SpawnOptions(
            umask=0o27,
            groups=[5, 6],
            processGroup=0,
            rlimits={resource.RLIMIT_NOFILE: (10, 20)},
            deathSignal=signal.SIGTERM,
        )
        p = plan("/bin/true", uid=1000, options=options)
        self.assertEqual(p.umask, 0o27)
        self.assertEqual(p.groups, (5, 6))
        self.assertEqual(p.processGroup, 0)
        self.assertEqual(p.rlimits, ((resource.RLIMIT_NOFILE, 10, 20),))
        self.assertEqual(p.deathSignal, signal.SIGTERM)
        self.assertFalse(p.newSession)

    def test_newSession(self) -> None:
        """
        C{newSession} is planned.
        """
        self.assertTrue(
            plan("/bin/true", options=SpawnOptions(newSession=True)).newSession
        )

    def test_groupsWithoutUid(self) -> None:
        """
        C{groups} without a C{uid} is fine.
        """
        p = plan("/bin/true", options=SpawnOptions(groups=[0]))
        self.assertEqual((p.uid, p.groups), (None, (0,)))

    def test_groupNames(self) -> None:
        """
        Group names are resolved when planning.
        """
        import grp

        root = grp.getgrgid(0).gr_name
        p = plan("/bin/true", options=SpawnOptions(groups=[root, 7]))
        self.assertEqual(p.groups, (0, 7))

    def test_unknownGroupName(self) -> None:
        """
        An unknown group name is a L{ValueError} naming C{groups} and the
        index, as the keyword the entry points take (not the
        L{SpawnOptions} field).
        """
        error = self.assertRejects(
            ValueError,
            "groups[0]",
            "/bin/true",
            options=SpawnOptions(groups=["no such group, surely"]),
        )
        self.assertEqual(str(error), "groups[0]: unknown group 'no such group, surely'")

    def test_notOptions(self) -> None:
        """
        Anything but a L{SpawnOptions} is a L{TypeError} naming C{options}.
        """
        self.assertRejects(TypeError, "options", "/bin/true", options={"umask": 0})


class PathResolutionTests(PlanTestCase):
    """
    Resolving C{executable} to exec candidates.
    """

    def makeDirs(self, *contents: Iterable[str]) -> list[bytes]:
        """
        Make one temporary directory per argument, holding executable files
        with the given names.

        @return: The directories.
        """
        dirs = []
        for names in contents:
            d = self.tempPath()
            os.makedirs(d)
            for name in names:
                f = os.path.join(d, name)
                pathlib.Path(f).touch()
                os.chmod(f, 0o755)
            dirs.append(os.fsencode(d))
        return dirs

    def test_slash(self) -> None:
        """
        An executable containing C{/} is the only candidate, as given, even
        if it does not exist (execve reports that).
        """
        for exe in ["./x", "a/b", "/nonexistent/x"]:
            self.assertEqual(plan(exe).candidates, (os.fsencode(exe),))

    def test_childPATHFirst(self) -> None:
        """
        The child's C{PATH} is searched rather than the parent's, and every
        hit is a candidate, in C{PATH} order.
        """
        a, b, c = self.makeDirs(["prog"], [], ["prog"])
        p = plan(
            "prog",
            [],
            {b"PATH": b":".join([a, b, c])},
            parentEnviron={b"PATH": c},
        )
        self.assertEqual(p.candidates, (a + b"/prog", c + b"/prog"))

    def test_childPATHTwice(self) -> None:
        """
        When the child's environment has C{PATH} twice (a C{str} and a
        C{bytes} key), the first is searched: the one the child's C{getenv}
        sees.
        """
        a, b = self.makeDirs(["prog"], ["prog"])
        p = plan("prog", [], {"PATH": a, b"PATH": b})
        self.assertEqual(p.candidates, (a + b"/prog",))
        p = plan("prog", [], {b"PATH": b, "PATH": a})
        self.assertEqual(p.candidates, (b + b"/prog",))

    def test_parentPATH(self) -> None:
        """
        Without a C{PATH} in the child's environment the parent's is used.
        """
        (a,) = self.makeDirs(["prog"])
        p = plan("prog", [], {"X": "1"}, parentEnviron={b"PATH": a})
        self.assertEqual(p.candidates, (a + b"/prog",))

    def test_inheritedPATH(self) -> None:
        """
        With C{env=None} the child's environment is the parent's, PATH
        included.
        """
        (a,) = self.makeDirs(["prog"])
        p = plan("prog", [], None, parentEnviron={b"PATH": a})
        self.assertEqual(p.candidates, (a + b"/prog",))

    def test_defpath(self) -> None:
        """
        Without any C{PATH}, L{os.defpath} is searched.
        """
        p = plan("sh", parentEnviron={})
        expected = []
        for entry in os.defpath.split(":"):
            candidate = os.path.join(entry or ".", "sh")
            if os.path.exists(candidate):
                expected.append(os.fsencode(candidate))
        self.assertEqual(list(p.candidates), expected)
        self.assertTrue(expected)

    def test_emptyEntryIsCwd(self) -> None:
        """
        An empty C{PATH} entry means the current directory, which is
        C{path=} when given (the child searches after its chdir).
        """
        (a,) = self.makeDirs(["prog"])
        p = plan("prog", [], {"PATH": "/nonexistent::"}, path=a)
        self.assertEqual(p.candidates, (b"./prog",))

    def test_relativeEntryAfterChdir(self) -> None:
        """
        Relative C{PATH} entries are checked relative to C{path=}, and kept
        relative.
        """
        (a,) = self.makeDirs([])
        os.mkdir(os.path.join(a, b"bin"))
        with open(os.path.join(a, b"bin", b"prog"), "wb"):
            pass
        p = plan("prog", [], {"PATH": "bin"}, path=a)
        self.assertEqual(p.candidates, (b"bin/prog",))

    def test_nonExecutableKept(self) -> None:
        """
        A file that exists but is not executable stays a candidate, so exec
        reports C{EACCES} as C{execvp} does.
        """
        (a,) = self.makeDirs(["prog"])
        os.chmod(os.path.join(a, b"prog"), 0o644)
        p = plan("prog", [], {"PATH": a})
        self.assertEqual(p.candidates, (a + b"/prog",))
        mode = os.stat(p.candidates[0]).st_mode
        self.assertFalse(mode & stat.S_IXUSR)

    def test_notFound(self) -> None:
        """
        When the search finds nothing the plan raises L{FileNotFoundError}
        L{SpawnError} at the C{EXEC} stage, naming the executable as given.
        """
        a, b = self.makeDirs([], ["other"])
        for exe in ["prog", b"prog"]:
            error = self.assertRejects(
                FileNotFoundError, "prog", exe, [], {b"PATH": a + b":" + b}
            )
            assert isinstance(error, SpawnError)
            self.assertEqual(error.stage, ChildSetupStage.EXEC)
            self.assertEqual(error.errno, errno.ENOENT)
            self.assertEqual(error.filename, exe)

    def test_noDuplicates(self) -> None:
        """
        A directory listed twice in C{PATH} gives one candidate.
        """
        (a,) = self.makeDirs(["prog"])
        p = plan("prog", [], {"PATH": a + b":" + a})
        self.assertEqual(p.candidates, (a + b"/prog",))


class IsOpenFDTests(SynchronousTestCase):
    """
    L{isOpenFD}.
    """

    def test_openAndClosed(self) -> None:
        """
        An open fd is open; once closed it is not.
        """
        r, w = os.pipe()
        os.close(w)
        self.assertTrue(isOpenFD(r))
        os.close(r)
        self.assertFalse(isOpenFD(r))
        self.assertFalse(isOpenFD(w))
