# -*- test-case-name: tests.test_exceptiontable -*-
"""
No loop in txspawn has a backward jump that its own C{try} does not cover.

Python checks for signals -- and so raises a Ctrl-C's C{KeyboardInterrupt}
-- on every backward jump of a loop.  CPython 3.13's compiler can emit a
loop's last backward jump outside the exception-table range of the C{try}
around the loop (a loop whose body ends with an C{if} that has no C{else},
or a C{while} whose test it copies to the bottom; CPython issues 108214 and
130279): an exception raised there skips that C{try}'s C{except} and
C{finally} clauses altogether.  That is how txspawn leaked a child on 3.13
alone: C{Process.__init__} closes the child's pipe ends in such a loop
right after the engine returned the child, and a C{KeyboardInterrupt} at
its backward jump bypassed the clause that kills the child
(C{tests.test_interrupts} found it).

Whether a given loop is compiled that way depends on the interpreter, so
this test looks at the code itself, on the Python it runs on: every
backward jump must be covered by the same handler as the loop's head.  On
3.11 it always is; the 3.13 leg of CI is where this test can fail.  The
spellings that compile correctly everywhere: an explicit C{continue} for the
case that does nothing, or an C{else} branch.
"""

from __future__ import annotations

import dis
import importlib
import pkgutil
import types
from collections.abc import Callable, Iterator

from twisted.trial.unittest import SynchronousTestCase

import txspawn

__all__ = ["ExceptionTableTests", "uncoveredBackwardJumps"]

#: Packages left out, with the reason: programs built on the public face,
#: where a Ctrl-C ends the program and no child or fd crosses the loop.
EXCLUDED = ("txspawn._bench", "txspawn._cli", "txspawn.__main__")

#: The first instruction of a C{try} or C{with} statement's handler.
_CLAUSE = "PUSH_EXC_INFO"


def _entries(code: types.CodeType) -> list[tuple[int, int, int]]:
    """
    The exception table of C{code} as C{(start, end, target)} offsets.
    """
    entries = getattr(dis.Bytecode(code), "exception_entries", [])
    return [(e.start, e.end, e.target) for e in entries]


def _codeObjects(code: types.CodeType) -> Iterator[types.CodeType]:
    """
    C{code} and every code object nested in it.
    """
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codeObjects(const)


def uncoveredBackwardJumps(code: types.CodeType) -> list[tuple[str, int | None]]:
    """
    The backward jumps of C{code} (nested functions included) from which an
    exception would miss a C{try} clause that covers the instruction they
    jump to.

    Only clauses of C{try} and C{with} statements count (their handler
    starts with C{PUSH_EXC_INFO}): the implicit handlers of inlined
    comprehensions and of generators only re-raise, so missing one of them
    changes nothing unless a real clause encloses it, which this finds
    through the chain of handlers.

    @return: C{(qualified name, line)} of each.
    """
    found = []
    for each in _codeObjects(code):
        entries = _entries(each)
        instructions = {i.offset: i for i in dis.get_instructions(each)}

        def handler(
            offset: int, entries: list[tuple[int, int, int]] = entries
        ) -> int | None:
            for start, end, target in entries:
                if start <= offset < end:
                    return target
            return None

        def clauses(
            offset: int,
            handler: Callable[[int], int | None] = handler,
            instructions: dict[int, dis.Instruction] = instructions,
        ) -> set[int]:
            # Every try/with clause an exception raised at offset reaches.
            reached: set[int] = set()
            seen: set[int] = set()
            target = handler(offset)
            while target is not None and target not in seen:
                seen.add(target)
                if instructions[target].opname == _CLAUSE:
                    reached.add(target)
                target = handler(target)
            return reached

        for instruction in instructions.values():
            if not instruction.opname.startswith("JUMP_BACKWARD"):
                continue
            if not isinstance(instruction.argval, int):
                continue
            if clauses(instruction.argval) - clauses(instruction.offset):
                line = instruction.positions.lineno if instruction.positions else None
                found.append((each.co_qualname, line))
    return found


def _modules() -> Iterator[types.ModuleType]:
    """
    Every txspawn module outside L{EXCLUDED}.
    """
    yield txspawn
    for info in pkgutil.walk_packages(txspawn.__path__, "txspawn."):
        if info.name.startswith(EXCLUDED):
            continue
        yield importlib.import_module(info.name)


def _functions(module: types.ModuleType) -> Iterator[types.FunctionType]:
    """
    The functions and methods defined in C{module}.
    """
    for value in vars(module).values():
        candidates = vars(value).values() if isinstance(value, type) else [value]
        for candidate in candidates:
            if isinstance(candidate, (staticmethod, classmethod)):
                candidate = candidate.__func__
            if isinstance(candidate, property):
                candidate = candidate.fget
            if (
                isinstance(candidate, types.FunctionType)
                and candidate.__module__ == module.__name__
            ):
                yield candidate


class ExceptionTableTests(SynchronousTestCase):
    """
    L{uncoveredBackwardJumps} over txspawn, and the detector itself.
    """

    def test_txspawn(self) -> None:
        """
        No function of txspawn has a backward jump outside its C{try}.
        """
        found = sorted(
            f"{function.__module__}:{name} line {line}"
            for module in _modules()
            for function in _functions(module)
            for name, line in uncoveredBackwardJumps(function.__code__)
        )
        self.assertEqual(found, [])

    def test_detectsTheFaultyShape(self) -> None:
        """
        The detector finds the shape CPython 3.13 miscompiles when the
        interpreter does miscompile it, and never flags the spellings this
        module's docstring recommends.
        """
        faulty = (
            "def f(opened, ends):\n"
            "    try:\n"
            "        for i, fd in enumerate(opened):\n"
            "            if fd not in ends:\n"
            "                opened[i] = -1\n"
            "    except BaseException:\n"
            "        raise\n"
        )
        fixed = (
            "def f(opened, ends):\n"
            "    try:\n"
            "        for i, fd in enumerate(opened):\n"
            "            if fd in ends:\n"
            "                continue\n"
            "            opened[i] = -1\n"
            "    except BaseException:\n"
            "        raise\n"
        )
        namespace: dict[str, types.FunctionType] = {}
        exec(compile(fixed, "fixed", "exec"), namespace)
        self.assertEqual(uncoveredBackwardJumps(namespace["f"].__code__), [])
        exec(compile(faulty, "faulty", "exec"), namespace)
        code = namespace["f"].__code__
        # Independently of the detector: where the interpreter leaves the
        # loop's last backward jump out of the try's range.
        jumps = [
            i.offset
            for i in dis.get_instructions(code)
            if i.opname.startswith("JUMP_BACKWARD")
        ]
        covered = [any(s <= j < e for s, e, _ in _entries(code)) for j in jumps]
        expected = [("f", 4)] if not all(covered) else []
        self.assertEqual(uncoveredBackwardJumps(code), expected)
