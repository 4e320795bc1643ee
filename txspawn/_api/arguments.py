# -*- test-case-name: tests.test_arguments -*-
"""
The argument checks of txspawn's entry points, in one place.

C{spawnProcess()} (txspawn's reactors, a reactor after L{txspawn.install},
the fake of L{txspawn.testing}), L{txspawn.run} and L{txspawn.stream} check
everything they are given before they open an fd or start a child.  A
mistake is a L{TypeError} or L{ValueError} raised by the call itself, and
its message says which function was called and which argument is wrong::

    run(): umask must be between 0 and 0o777, not 1023

The checks live with what they check: the command in
L{txspawn._plan.argumentchecks.checkCommand} and
L{txspawn._plan.planner.planSpawn}, the spawn options in L{txspawn.options}
and L{txspawn._transport.timelimits}, the log in
L{txspawn._api.tee.checkLogFile}.  This module composes them for each entry
point and puts the caller's name on their errors (L{callError}), so that
the three entry points share one path and cannot drift apart.

Keeping C{spawnProcess} fast: its only checks beyond L{planSpawn} (which it
always ran) are one C{providedBy} for the protocol and, only when options
are given, L{splitSpawnOptions}; the caller's name is put on an error only
when one is raised.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import cast

from twisted.internet.interfaces import IProcessProtocol, IReactorProcess, IReactorTime

from txspawn._api.tee import checkLogFile
from txspawn._plan.argumentchecks import checkCommand
from txspawn._transport.groupkill import checkSeconds
from txspawn._transport.timelimits import (
    DEFAULT_KILL_AFTER,
    LIFETIME_OPTIONS,
    LifetimeOptions,
    splitLifetimeOptions,
)
from txspawn.errors import UnsupportedFeature
from txspawn.options import _OPTION_NAMES, SpawnOptions, _fromKeywords

__all__ = [
    "KILL_AFTER_DEFAULT",
    "SPAWN_OPTION_NAMES",
    "callError",
    "checkProtocol",
    "checkRunCall",
    "checkStreamArguments",
    "namingCaller",
    "resolveReactor",
    "splitSpawnOptions",
]

#: Every keyword option txspawn's C{spawnProcess} takes beyond Twisted's
#: arguments, sorted.
SPAWN_OPTION_NAMES: tuple[str, ...] = tuple(
    sorted(_OPTION_NAMES | set(LIFETIME_OPTIONS))
)


def callError(caller: str, error: Exception) -> TypeError | ValueError:
    """
    C{error}, raised by a check, as an error of the function the user
    called.

    @param caller: The entry point, as the user called it: C{"run()"},
        C{"stream()"}, C{"spawnProcess()"}.
    @param error: A L{TypeError} or L{ValueError} whose message names the
        argument.
    @return: A new L{TypeError} (for a L{TypeError}) or L{ValueError} (for
        any other) whose message starts with C{caller}.
    """
    kind = TypeError if isinstance(error, TypeError) else ValueError
    return kind(f"{caller}: {error}")


@contextmanager
def namingCaller(caller: str) -> Iterator[None]:
    """
    Re-raise a L{TypeError} or L{ValueError} from the block as an error of
    C{caller} (see L{callError}).
    """
    try:
        yield
    except (TypeError, ValueError) as error:
        raise callError(caller, error) from None


def checkProtocol(caller: str, protocol: object) -> None:
    """
    Check a C{spawnProcess} protocol: it must provide L{IProcessProtocol}
    (Twisted's C{ProcessProtocol} and its subclasses do).  Anything else
    would be connected and then fail in every callback, or, for C{None},
    drop the output without a word.

    @raise TypeError: if it does not.
    """
    if not IProcessProtocol.providedBy(protocol):
        raise TypeError(
            f"{caller}: processProtocol must provide IProcessProtocol (a "
            "twisted.internet.protocol.ProcessProtocol, say), not "
            f"{protocol!r}"
        )


def splitSpawnOptions(
    options: Mapping[str, object],
) -> tuple[LifetimeOptions, SpawnOptions | None]:
    """
    Check txspawn's keyword options to C{spawnProcess} and split them into
    what the transport arms (L{LifetimeOptions}) and what the engine does
    (L{SpawnOptions}).

    @param options: The keyword arguments beyond Twisted's; not empty.
    @return: The lifetime options, and the spawn options or C{None}.
    @raise TypeError: for an unknown keyword or a value of the wrong type.
    @raise ValueError: for a bad value or combination.
    """
    unknown = [name for name in options if name not in SPAWN_OPTION_NAMES]
    if unknown:
        raise TypeError(
            f"unexpected keyword argument {unknown[0]!r} (txspawn's spawn "
            f"options are {', '.join(SPAWN_OPTION_NAMES)})"
        )
    lifetime, rest = splitLifetimeOptions(options)
    return lifetime, _fromKeywords(rest) if rest else None


class _DefaultSeconds(float):
    """
    A default number of seconds, told apart from the same number given
    explicitly (by its type).
    """

    def __repr__(self) -> str:
        return float.__repr__(self)


#: The default of L{txspawn.run}'s and L{txspawn.stream}'s C{killAfter}:
#: 5 seconds, and "not given" (so that C{killAfter} without C{timeout} can
#: be refused, as C{spawnProcess} refuses it).
KILL_AFTER_DEFAULT: float = _DefaultSeconds(DEFAULT_KILL_AFTER)


def _checkBool(value: object, name: str) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {value!r}")


def checkRunCall(
    caller: str,
    argv: Sequence[str | bytes],
    env: object,
    path: object,
    uid: object,
    gid: object,
    stdin: object,
    timeout: object,
    killAfter: object,
    check: object,
    closePipesAfterExit: object,
    logFile: object,
    logPrefix: object,
    options: Mapping[str, object],
) -> tuple[tuple[str | bytes, ...], float | None, float | None, float | None]:
    """
    Check the arguments L{txspawn.run} and L{txspawn.stream} share, as
    L{txspawn.run} documents them: all of them, before anything happens.

    The command (C{argv}, C{env}, C{path}, C{uid}, C{gid}) gets the checks
    txspawn's C{spawnProcess} makes (L{checkCommand}), the durations those
    of the C{spawnProcess} options of the same names, and the spawn options
    those of C{spawnProcess} (L{splitSpawnOptions}); whatever the reactor.

    @param caller: C{"run()"} or C{"stream()"}, for messages.
    @param options: The other keyword arguments: L{SpawnOptions} fields.
    @return: C{argv} as a tuple, and C{timeout}, C{killAfter} and
        C{closePipesAfterExit} as L{float}s or C{None} (C{killAfter} given
        its default).
    @raise TypeError: an argument has the wrong type, or is unknown.
    @raise ValueError: an argument has a bad value.
    """
    with namingCaller(caller):
        if isinstance(argv, (str, bytes)) or not isinstance(argv, Sequence):
            raise TypeError(
                "argv must be a sequence of str or bytes (the program and its "
                f"arguments), not {argv!r}"
            )
        argvTuple = tuple(argv)
        if not argvTuple:
            raise ValueError("argv must not be empty: argv[0] is the program to run")
        for index, arg in enumerate(argvTuple):
            # Spelled with continue, and the while loops of txspawn as
            # "while True ... break": see tests/test_exceptiontable.py.
            if isinstance(arg, (str, bytes)):
                continue
            raise TypeError(f"argv[{index}] must be str or bytes, not {arg!r}")
        checkCommand(argvTuple, env, path, uid, gid)
        if stdin is not None and not isinstance(stdin, bytes):
            raise TypeError(f"stdin must be bytes or None, not {type(stdin).__name__}")
        seconds: dict[str, float | None] = {}
        for name, value, positive in [
            ("timeout", timeout, True),
            ("killAfter", killAfter, False),
            ("closePipesAfterExit", closePipesAfterExit, False),
        ]:
            seconds[name] = (
                None if value is None else checkSeconds(value, name, positive=positive)
            )
        if (
            timeout is None
            and killAfter is not None
            and not isinstance(killAfter, _DefaultSeconds)
        ):
            raise ValueError(
                "killAfter is the grace period of a timeout: give timeout too "
                "(cancelling, or kill(), sends SIGKILL at once)"
            )
        _checkBool(check, "check")
        if logFile is not None:
            checkLogFile(logFile)
        _checkBool(logPrefix, "logPrefix")
        if options:
            # run() and stream() take the lifetime options themselves: what
            # is left can only be spawn options.
            splitSpawnOptions(options)
    return (
        argvTuple,
        seconds["timeout"],
        seconds["killAfter"],
        seconds["closePipesAfterExit"],
    )


def checkStreamArguments(
    lines: object, highWater: object, lowWater: object, onOutput: object
) -> tuple[int, int]:
    """
    Check the arguments only L{txspawn.stream} takes.

    @return: C{highWater}, and C{lowWater} given its default.
    @raise TypeError: an argument has the wrong type.
    @raise ValueError: an argument has a bad value.
    """
    with namingCaller("stream()"):
        _checkBool(lines, "lines")
        if isinstance(highWater, bool) or not isinstance(highWater, int):
            raise TypeError(f"highWater must be an int (bytes), not {highWater!r}")
        if highWater < 1:
            raise ValueError(f"highWater must be at least 1, not {highWater!r}")
        if lowWater is None:
            lowWater = highWater // 4
        if isinstance(lowWater, bool) or not isinstance(lowWater, int):
            raise TypeError(
                f"lowWater must be an int (bytes) or None, not {lowWater!r}"
            )
        if not 0 <= lowWater < highWater:
            raise ValueError(
                f"lowWater must be at least 0 and below highWater ({highWater}), "
                f"not {lowWater!r}"
            )
        if onOutput is not None and not callable(onOutput):
            raise TypeError(f"onOutput must be callable or None, not {onOutput!r}")
    return highWater, lowWater


def _acceptsSpawnOptions(reactor: object) -> bool:
    """
    Whether C{reactor.spawnProcess} takes txspawn's keyword options.
    """
    from txspawn.interfaces import IReactorSpawn

    # txspawn.install(reactor) declares IReactorSpawn on the instance too.
    return IReactorSpawn.providedBy(reactor)


def resolveReactor(
    caller: str,
    reactor: object | None,
    options: Mapping[str, object],
) -> IReactorProcess:
    """
    The reactor to spawn on: C{reactor}, or the global reactor (imported
    now, never at import time of this module).

    @param caller: C{"run()"} or C{"stream()"}, for messages.
    @param options: The spawn options that will be passed to its
        C{spawnProcess}.
    @raise TypeError: if it does not provide both L{IReactorProcess} and
        L{IReactorTime}.
    @raise UnsupportedFeature: if C{options} are given and the reactor's
        C{spawnProcess} does not take them: it is not a txspawn reactor
        (L{txspawn.interfaces.IReactorSpawn}) and txspawn was not installed
        on it.  The error names the first option and says how to get a
        txspawn reactor.
    """
    if reactor is None:
        from twisted.internet import reactor as globalReactor

        reactor = globalReactor
    if not (IReactorProcess.providedBy(reactor) and IReactorTime.providedBy(reactor)):
        raise TypeError(
            f"{caller}: reactor must provide IReactorProcess and IReactorTime, "
            f"not {reactor!r}"
        )
    if options and not _acceptsSpawnOptions(reactor):
        names = ", ".join(options)
        raise UnsupportedFeature(
            next(iter(options)),
            f"{caller} was given txspawn spawn options ({names}) and its "
            f"reactor, {type(reactor).__module__}.{type(reactor).__qualname__}, "
            "is not a txspawn reactor: its spawnProcess() does not take them.  "
            "Use a txspawn reactor: call txspawn.install(reactor) on this one, "
            "install txspawn's with txspawn.reactor.install() before anything "
            "imports twisted.internet.reactor, or run under twistd or trial "
            "with --reactor=txspawn",
        )
    return cast(IReactorProcess, reactor)
