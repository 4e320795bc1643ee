"""
The C{namespaces=} option is validated alike everywhere: the fake reactor
of L{txspawn.testing} gives the answers a real reactor gives, through
C{spawnProcess}, L{txspawn.run} and L{txspawn.stream}; and
L{txspawn.options.SpawnOptions} carries a L{Namespaces}.
"""

from __future__ import annotations

from typing import Any

from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.builders import RecordingProtocol, makeTestCaseClasses
from tests.nsutil import WorldMixin
from txspawn import run, stream
from txspawn.options import Namespaces, SpawnOptions
from txspawn.testing import MemoryProcessReactor

#: A user namespace mapping ten ids, groups allowed.
_TEN = Namespaces(
    user=True, uidMap="0 100000 10", gidMap="0 100000 10", setgroups="allow"
)

#: Calls whose answer (an exception, or none) must be the same from a real
#: reactor and from the fake one: C{spawnProcess} keywords, and the type of
#: exception expected.
_VALIDATION_TABLE: list[tuple[dict[str, Any], str | None]] = [
    ({"namespaces": "user"}, "TypeError"),
    ({"namespaces": {"user": True}}, "TypeError"),
    # groups with setgroups denied
    ({"namespaces": Namespaces(user=True), "groups": [5]}, "ValueError"),
    ({"namespaces": _TEN, "groups": [5]}, None),
    # ids must be mapped
    ({"namespaces": _TEN, "uid": 9, "gid": 9}, None),
    ({"namespaces": Namespaces(user=True), "uid": 1000}, "ValueError"),
    ({"namespaces": _TEN, "gid": 10}, "ValueError"),
    ({"namespaces": _TEN, "groups": [5, 10]}, "ValueError"),
    ({"namespaces": None}, None),
]


class FakeReactorValidationMixin(WorldMixin):
    """
    The fake reactor of L{txspawn.testing} answers C{namespaces=} as the
    real reactors do.
    """

    def fakeAnswer(self, call: Any, kwargs: dict[str, Any]) -> tuple[str, str] | None:
        """
        What C{call(fakeReactor, kwargs)} raises or fails its L{Deferred}
        with (type name and message), or C{None}.
        """
        try:
            ended = call(MemoryProcessReactor(), kwargs)
        except (TypeError, ValueError) as e:
            return type(e).__name__, str(e)
        outcome: list[tuple[str, str] | None] = []
        ended.addBoth(lambda result: outcome.append(_answerOf(result)))
        # A child that started (on the fake) ends only when told: no error.
        return outcome[0] if outcome else None

    def realAnswer(self, call: Any, kwargs: dict[str, Any]) -> tuple[str, str] | None:
        """
        What C{call(realReactor, kwargs)} raises or fails its L{Deferred}
        with, or C{None}; a child it started runs to its end.
        """
        reactor = self.buildReactor()
        outcome: list[tuple[str, str] | None] = []

        def begin() -> None:
            try:
                ended = call(reactor, kwargs)
            except (TypeError, ValueError) as e:
                outcome.append((type(e).__name__, str(e)))
                reactor.stop()
                return
            ended.addBoth(lambda result: outcome.append(_answerOf(result)))
            ended.addBoth(lambda _: reactor.stop())

        reactor.callWhenRunning(begin)
        self.runReactor(reactor)
        return outcome[0]

    def assertSameAnswers(self, call: Any) -> None:
        for kwargs, expected in _VALIDATION_TABLE:
            fake = self.fakeAnswer(call, kwargs)
            self.assertEqual(fake, self.realAnswer(call, kwargs), kwargs)
            self.assertEqual(None if fake is None else fake[0], expected, kwargs)

    def test_spawnProcess(self) -> None:
        """
        C{spawnProcess}: every call of the table gets the same exception
        (type and message), or none, from both reactors.
        """

        def call(reactor: Any, kwargs: dict[str, Any]) -> Any:
            proto = RecordingProtocol()
            reactor.spawnProcess(proto, "/bin/true", ["true"], childFDs={}, **kwargs)
            return proto.ended

        self.assertSameAnswers(call)

    def test_run(self) -> None:
        """
        L{txspawn.run}: the same.
        """
        self.assertSameAnswers(
            lambda reactor, kwargs: run(["/bin/true"], reactor=reactor, **kwargs)
        )

    def test_stream(self) -> None:
        """
        L{txspawn.stream}: the same.
        """
        self.assertSameAnswers(
            lambda reactor, kwargs: (
                stream(["/bin/true"], reactor=reactor, **kwargs).result
            )
        )


def _answerOf(result: object) -> tuple[str, str] | None:
    """
    The validation error a L{Deferred}'s result is (type name and message),
    or C{None} for any other result.
    """
    if isinstance(result, Failure) and result.check(TypeError, ValueError):
        return type(result.value).__name__, str(result.value)
    return None


class SpawnOptionsTests(SynchronousTestCase):
    """
    L{SpawnOptions} carries a L{Namespaces}.
    """

    def test_options(self) -> None:
        """
        C{SpawnOptions(namespaces=...)} takes a L{Namespaces} (default
        C{None}) and refuses C{groups} with C{setgroups} denied in a user
        namespace, naming the option.
        """
        namespaces = Namespaces(user=True)
        self.assertIs(SpawnOptions(namespaces=namespaces).namespaces, namespaces)
        self.assertIsNone(SpawnOptions().namespaces)
        with self.assertRaises(ValueError) as caught:
            SpawnOptions(namespaces=namespaces, groups=[5])
        self.assertIn("setgroups", str(caught.exception))


globals().update(makeTestCaseClasses(FakeReactorValidationMixin))
