# -*- test-case-name: tests.test_fdplan -*-
"""
Tests for L{txspawn._plan.fdremap.planFdOps}: table cases in the style of Twisted's
C{GetFileActionsTests}, and a Hypothesis model of the kernel's fd table that
the planned ops are applied to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.strategies import FdPlanCase, fdPlanCases
from txspawn._plan.fdops import CLOSE_RANGE_MAX, FdOp, FdOpCode, FdProgram
from txspawn._plan.fdremap import FD_MAX, planFdOps

__all__ = ["FdTableModel", "PlanFdOpsModelTests", "PlanFdOpsTableTests"]

DUP2 = FdOpCode.DUP2
DUP2_CLOEXEC = FdOpCode.DUP2_CLOEXEC
CLEAR = FdOpCode.CLEAR_CLOEXEC
CLOSE = FdOpCode.CLOSE
CLOSE_RANGE = FdOpCode.CLOSE_RANGE


class ModelError(Exception):
    """
    An op failed in the model as it would in the kernel; C{args[0]} is the
    errno name.
    """


class FdTableModel:
    """
    A model of one process's fd table: fd -> (open file description id,
    close-on-exec flag), with the kernel's semantics for each L{FdOpCode}.
    """

    def __init__(self, table: Mapping[int, tuple[int, bool]]) -> None:
        self.table = dict(table)

    def apply(self, op: FdOp) -> None:
        """
        Apply one op as the kernel would.

        @raise ModelError: where the syscall would fail.
        """
        if op.op == DUP2:
            # dup2(2): EBADF if the source is not open; dup2(fd, fd) returns
            # fd and changes nothing, not even FD_CLOEXEC.
            if op.fd not in self.table:
                raise ModelError("EBADF", op)
            if op.fd != op.target:
                self.table[op.target] = (self.table[op.fd][0], False)
        elif op.op == DUP2_CLOEXEC:
            # dup3(2) with O_CLOEXEC: EINVAL if both are the same.
            if op.fd == op.target:
                raise ModelError("EINVAL", op)
            if op.fd not in self.table:
                raise ModelError("EBADF", op)
            self.table[op.target] = (self.table[op.fd][0], True)
        elif op.op == CLEAR:
            if op.fd not in self.table:
                raise ModelError("EBADF", op)
            self.table[op.fd] = (self.table[op.fd][0], False)
        elif op.op == CLOSE:
            self.table.pop(op.fd, None)
        elif op.op == CLOSE_RANGE:
            if op.fd > op.target:
                raise ModelError("EINVAL", op)
            for fd in [fd for fd in self.table if op.fd <= fd <= op.target]:
                del self.table[fd]
        else:  # pragma: no cover
            raise AssertionError(f"unknown op {op!r}")

    def run(self, program: FdProgram) -> None:
        """
        Apply every op of C{program} in order.
        """
        for op in program.ops:
            self.apply(op)

    def execute(self) -> dict[int, tuple[int, bool]]:
        """
        Simulate C{execve}: the fds without close-on-exec survive.

        @return: The exec'd process's table.
        """
        return {fd: entry for fd, entry in self.table.items() if not entry[1]}


def applyAndExec(
    table: Mapping[int, tuple[int, bool]],
    fdMap: Mapping[int, int],
    keep: Sequence[int] = (),
) -> tuple[FdProgram, dict[int, tuple[int, bool]], dict[int, tuple[int, bool]]]:
    """
    Plan C{fdMap}, run it over C{table}, and exec.

    @return: The program, the table just before exec and the table after.
    """
    program = planFdOps(fdMap, keep)
    model = FdTableModel(table)
    model.run(program)
    return program, dict(model.table), model.execute()


def op(code: FdOpCode, fd: int, target: int | None = None) -> FdOp:
    """
    Shorthand for an L{FdOp}; C{target} defaults to C{fd}.
    """
    return FdOp(code, fd, fd if target is None else target)


class PlanFdOpsTableTests(SynchronousTestCase):
    """
    Exact programs for small, hand-checked inputs.
    """

    def assertProgram(
        self,
        fdMap: Mapping[int, int],
        keep: Sequence[int],
        ops: list[FdOp],
        keptFds: tuple[int, ...] = (),
    ) -> None:
        """
        Assert that planning C{fdMap} and C{keep} gives exactly C{ops} and
        C{keptFds}.
        """
        program = planFdOps(fdMap, keep)
        self.assertEqual(list(program.ops), ops)
        self.assertEqual(program.keptFds, keptFds)

    def test_nothing(self) -> None:
        """
        With no child fds and nothing kept, the program closes every fd.
        """
        self.assertProgram({}, (), [op(CLOSE_RANGE, 0, CLOSE_RANGE_MAX)])

    def test_common(self) -> None:
        """
        The usual three pipes at high numbers are three C{DUP2} and one
        C{CLOSE_RANGE(3, MAX)}.
        """
        self.assertProgram(
            {0: 5, 1: 8, 2: 10},
            (),
            [
                op(DUP2, 5, 0),
                op(DUP2, 8, 1),
                op(DUP2, 10, 2),
                op(CLOSE_RANGE, 3, CLOSE_RANGE_MAX),
            ],
        )

    def test_commonWithErrorPipe(self) -> None:
        """
        A kept fd out of the targets' way stays where it is and only shapes
        the closing ranges.
        """
        self.assertProgram(
            {0: 5, 1: 8, 2: 10},
            (12,),
            [
                op(DUP2, 5, 0),
                op(DUP2, 8, 1),
                op(DUP2, 10, 2),
                op(CLOSE_RANGE, 3, 11),
                op(CLOSE_RANGE, 13, CLOSE_RANGE_MAX),
            ],
            (12,),
        )

    def test_stayPut(self) -> None:
        """
        An identity mapping clears close-on-exec instead of a C{dup2} to
        itself, which would leave the flag set.
        """
        self.assertProgram(
            {0: 0}, (), [op(CLEAR, 0), op(CLOSE_RANGE, 1, CLOSE_RANGE_MAX)]
        )

    def test_move(self) -> None:
        """
        A move is one C{DUP2}; the source is closed by the closing range.
        """
        self.assertProgram(
            {3: 0},
            (),
            [
                op(DUP2, 0, 3),
                op(CLOSE_RANGE, 0, 2),
                op(CLOSE_RANGE, 4, CLOSE_RANGE_MAX),
            ],
        )

    def test_swap(self) -> None:
        """
        Swapping two fds relocates one of them above every mentioned fd
        first, keeping it close-on-exec so it cannot survive exec.
        """
        self.assertProgram(
            {0: 1, 1: 0},
            (),
            [
                op(DUP2_CLOEXEC, 0, 2),
                op(DUP2, 1, 0),
                op(DUP2, 2, 1),
                op(CLOSE_RANGE, 2, CLOSE_RANGE_MAX),
            ],
        )

    def test_chainNeedsNoRelocation(self) -> None:
        """
        A chain without a cycle is ordered so that nothing is overwritten
        before it has been read; no relocation is needed.
        """
        self.assertProgram(
            {0: 1, 1: 2, 2: 7},
            (),
            [
                op(DUP2, 1, 0),
                op(DUP2, 2, 1),
                op(DUP2, 7, 2),
                op(CLOSE_RANGE, 3, CLOSE_RANGE_MAX),
            ],
        )

    def test_duplicate(self) -> None:
        """
        Two child fds can share one parent fd ("2>&1"), even when the
        parent fd is itself a target.
        """
        self.assertProgram(
            {1: 2, 2: 2, 3: 1},
            (),
            [
                op(DUP2, 1, 3),
                op(DUP2, 2, 1),
                op(CLEAR, 2),
                op(CLOSE_RANGE, 0, 0),
                op(CLOSE_RANGE, 4, CLOSE_RANGE_MAX),
            ],
        )

    def test_keepCollides(self) -> None:
        """
        A kept fd that is a target is moved out of the way with
        C{DUP2_CLOEXEC} first, and its new number is reported.
        """
        self.assertProgram(
            {0: 5, 1: 6, 2: 7},
            (1,),
            [
                op(DUP2_CLOEXEC, 1, 8),
                op(DUP2, 5, 0),
                op(DUP2, 6, 1),
                op(DUP2, 7, 2),
                op(CLOSE_RANGE, 3, 7),
                op(CLOSE_RANGE, 9, CLOSE_RANGE_MAX),
            ],
            (8,),
        )

    def test_keepOrder(self) -> None:
        """
        C{keptFds} lists the final numbers in the order C{keep} gave them.
        """
        program = planFdOps({4: 0, 0: 4}, (4, 9, 0))
        self.assertEqual(program.keptFds, (10, 9, 11))

    def test_keepTwice(self) -> None:
        """
        A fd given twice in C{keep} is moved once.
        """
        program = planFdOps({3: 5}, (3, 3))
        self.assertEqual(program.keptFds, (6, 6))
        self.assertEqual(program.ops[0], op(DUP2_CLOEXEC, 3, 6))
        self.assertEqual(
            [o.op for o in program.ops].count(DUP2_CLOEXEC),
            1,
        )

    def test_acceptsAnyMapping(self) -> None:
        """
        C{fdMap} may be any L{Mapping} and C{keep} any sequence.
        """
        from types import MappingProxyType

        self.assertEqual(
            planFdOps(MappingProxyType({0: 3}), [4]),
            planFdOps({0: 3}, (4,)),
        )

    def test_negative(self) -> None:
        """
        A negative fd anywhere is a L{ValueError} naming where it was.
        """
        for fdMap, keep, where in [
            ({-1: 3}, (), "fdMap key"),
            ({0: -3}, (), "fdMap[0]"),
            ({0: 3}, (-2,), "keep"),
        ]:
            e = self.assertRaises(ValueError, planFdOps, fdMap, keep)
            self.assertIn(where, str(e))

    def test_tooLarge(self) -> None:
        """
        An fd above C{INT_MAX} is refused, and so is a plan that would need
        a relocation beyond it.
        """
        e = self.assertRaises(ValueError, planFdOps, {0: FD_MAX + 1})
        self.assertIn("fdMap[0]", str(e))
        e = self.assertRaises(ValueError, planFdOps, {FD_MAX: 0, 0: FD_MAX})
        self.assertIn("no fd number left", str(e))

    def test_badTypes(self) -> None:
        """
        A non-int fd (including L{bool}) or a non-mapping C{fdMap} is a
        L{TypeError} naming the argument.
        """
        for fdMap, keep, where in [
            ({"0": 3}, (), "fdMap key"),
            ({0: "3"}, (), "fdMap[0]"),
            ({0: True}, (), "fdMap[0]"),
            ({0: 3.0}, (), "fdMap[0]"),
            ({0: 3}, ("4",), "keep"),
            ([(0, 3)], (), "fdMap"),
        ]:
            e = self.assertRaises(
                TypeError,
                planFdOps,
                fdMap,
                keep,
            )
            self.assertIn(where, str(e))


class FdTableModelTests(SynchronousTestCase):
    """
    The model itself behaves as the kernel does on the points the planner
    relies on.
    """

    def test_dup2SelfKeepsCloexec(self) -> None:
        """
        C{dup2(fd, fd)} changes nothing, not even close-on-exec.
        """
        model = FdTableModel({3: (1, True)})
        model.apply(op(DUP2, 3, 3))
        self.assertEqual(model.table, {3: (1, True)})

    def test_dup2ClearsCloexecOnTarget(self) -> None:
        """
        C{dup2} replaces the target, which is not close-on-exec.
        """
        model = FdTableModel({3: (1, True), 4: (2, True)})
        model.apply(op(DUP2, 3, 4))
        self.assertEqual(model.table, {3: (1, True), 4: (1, False)})

    def test_dup3(self) -> None:
        """
        C{dup3(O_CLOEXEC)} keeps the copy close-on-exec and refuses
        C{fd == target}.
        """
        model = FdTableModel({3: (1, False)})
        model.apply(op(DUP2_CLOEXEC, 3, 9))
        self.assertEqual(model.table[9], (1, True))
        self.assertRaises(ModelError, model.apply, op(DUP2_CLOEXEC, 3, 3))

    def test_badSource(self) -> None:
        """
        Reading a closed fd is C{EBADF}.
        """
        model = FdTableModel({})
        for code in (DUP2, DUP2_CLOEXEC, CLEAR):
            self.assertRaises(ModelError, model.apply, op(code, 3, 4))

    def test_close(self) -> None:
        """
        C{CLOSE} and C{CLOSE_RANGE} (inclusive) ignore fds that are not open.
        """
        model = FdTableModel({n: (n, False) for n in range(6)})
        model.apply(op(CLOSE, 0))
        model.apply(op(CLOSE, 0))
        model.apply(op(CLOSE_RANGE, 2, 4))
        self.assertEqual(sorted(model.table), [1, 5])

    def test_execDropsCloexec(self) -> None:
        """
        Exec keeps only the fds without close-on-exec.
        """
        model = FdTableModel({0: (1, False), 1: (1, True)})
        self.assertEqual(model.execute(), {0: (1, False)})


class PlanFdOpsModelTests(SynchronousTestCase):
    """
    Property tests: the planned ops, applied to a model fd table, give the
    child exactly what was asked for.
    """

    def checkCase(self, case: FdPlanCase) -> FdProgram:
        """
        Plan C{case}, run it over its table and exec, and assert the child
        and the kept fds are exactly right.

        @return: The program.
        """
        program, beforeExec, child = applyAndExec(case.table, case.fdMap, case.keep)
        expected = {c: (case.table[p][0], False) for c, p in case.fdMap.items()}
        self.assertEqual(child, expected)
        # Kept fds point at the kept objects, close-on-exec, just before
        # exec; and they never land on a child fd.
        self.assertEqual(len(program.keptFds), len(case.keep))
        for parentFD, finalFD in zip(case.keep, program.keptFds, strict=True):
            self.assertEqual(beforeExec[finalFD], (case.table[parentFD][0], True))
            self.assertNotIn(finalFD, case.fdMap)
        # Nothing else is open before exec, close-on-exec or not.
        self.assertEqual(set(beforeExec), set(case.fdMap) | set(program.keptFds))
        return program

    @given(fdPlanCases())
    @settings(max_examples=500)
    def test_childGetsExactlyTheMap(self, case: FdPlanCase) -> None:
        """
        After the ops and exec the child has exactly the requested fds, each
        a copy of the requested parent object without close-on-exec, and
        the kept fds survive until exec at the reported numbers.
        """
        self.checkCase(case)

    @given(fdPlanCases())
    @settings(max_examples=200)
    def test_opsAreWellFormed(self, case: FdPlanCase) -> None:
        """
        No op is a no-op C{dup2} to itself; every C{CLOSE_RANGE} has
        C{fd <= target}; the program ends with closing ranges that end at
        C{CLOSE_RANGE_MAX}; relocations stay just above the mentioned fds.
        """
        program = planFdOps(case.fdMap, case.keep)
        mentioned = set(case.fdMap) | set(case.fdMap.values()) | set(case.keep)
        top = max(mentioned, default=-1)
        seenClose = False
        for o in program.ops:
            if o.op in (DUP2, DUP2_CLOEXEC):
                self.assertNotEqual(o.fd, o.target)
                self.assertFalse(seenClose)
            if o.op == DUP2_CLOEXEC:
                self.assertGreater(o.target, top)
                self.assertLessEqual(o.target, top + len(case.fdMap) + len(mentioned))
            if o.op == CLOSE_RANGE:
                seenClose = True
                self.assertLessEqual(o.fd, o.target)
        self.assertEqual(program.ops[-1].op, CLOSE_RANGE)
        self.assertEqual(program.ops[-1].target, CLOSE_RANGE_MAX)

    @given(fdPlanCases(), st.integers(min_value=0, max_value=3000))
    @settings(max_examples=200)
    def test_opCountIndependentOfTable(self, case: FdPlanCase, extra: int) -> None:
        """
        The number of ops is bounded by the size of the map and of C{keep},
        whatever the parent's table holds: the same plan is correct over a
        table with thousands of extra open fds, none of which survive.
        """
        program = self.checkCase(case)
        self.assertLessEqual(
            len(program.ops), 3 * len(case.fdMap) + 2 * len(case.keep) + 1
        )
        table = dict(case.table)
        for n in range(extra):
            table.setdefault(30 + n, (n % 7, n % 2 == 0))
        self.checkCase(FdPlanCase(table, case.fdMap, case.keep))

    def test_bigMapIsLinear(self) -> None:
        """
        A map of 1000 fds rotated by one (one big cycle) costs one
        relocation: 1000 C{DUP2}, one C{DUP2_CLOEXEC} and the closing ops.
        """
        n = 1000
        fdMap = {fd: (fd + 1) % n for fd in range(n)}
        table = {fd: (fd, True) for fd in range(n)}
        program, _, child = applyAndExec(table, fdMap)
        self.assertEqual(child, {c: (p, False) for c, p in fdMap.items()})
        codes = [o.op for o in program.ops]
        self.assertEqual(codes.count(DUP2), n)
        self.assertEqual(codes.count(DUP2_CLOEXEC), 1)
        self.assertEqual(len(codes), n + 2)

    def test_manySwaps(self) -> None:
        """
        Each disjoint swap needs exactly one relocation.
        """
        fdMap: dict[int, int] = {}
        for a in range(0, 20, 2):
            fdMap[a] = a + 1
            fdMap[a + 1] = a
        table = {fd: (fd, False) for fd in range(20)}
        program, _, child = applyAndExec(table, fdMap)
        self.assertEqual(child, {c: (p, False) for c, p in fdMap.items()})
        codes = [o.op for o in program.ops]
        self.assertEqual(codes.count(DUP2_CLOEXEC), 10)
