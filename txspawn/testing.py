# -*- test-case-name: tests.test_testing -*-
"""
Verified fakes for unit-testing code that spawns processes, without spawning.

L{MemoryProcessReactor} is a L{twisted.internet.testing.MemoryReactorClock}
(so it also provides L{IReactorTime}: drive timeouts with
C{reactor.advance}) that provides L{IReactorProcess}.  Each C{spawnProcess}
call is recorded as a L{SpawnedProcess} and answered with a
L{FakeProcessTransport}; the protocol's C{makeConnection} runs
synchronously inside C{spawnProcess}, as it does on a real reactor.

The test then plays the child's part on the transport:

    - L{FakeProcessTransport.dataFromChild} delivers output
      (C{childDataReceived});
    - L{FakeProcessTransport.closeFromChild} closes one of the child's pipes
      (C{childConnectionLost});
    - L{FakeProcessTransport.exit} and L{FakeProcessTransport.kill} end the
      child with a classic wait status, building the same
      L{twisted.internet.error.ProcessDone}/
      L{twisted.internet.error.ProcessTerminated} reasons a real transport
      would (C{processExited}, then every pipe closed, then C{processEnded}, then
      the exit listeners);
    - L{FakeProcessTransport.stopChild} and
      L{FakeProcessTransport.continueChild} report stops and continues to a
      protocol that provides L{IProcessStateObserver}.

The transport is an L{IManagedProcessTransport} like txspawn's own: process
groups, C{terminate()}, exit listeners, C{whenEnded()}; and the reactor
honours the lifetime options (C{timeout}, C{killAfter},
C{closePipesAfterExit}) with its clock.

Whatever the code under test does to the transport (writes, closed fds,
signals, pausing) is recorded in a separate L{FakeProcessState} object,
C{transport.state}, which tests inspect.

The fakes are checked with C{verifyClass} when this module is imported, and
their behaviour is tested in C{tests.test_testing}, so they cannot drift from
the interfaces they claim.

@since: txspawn 0.1
"""

from __future__ import annotations

from twisted.internet.interfaces import (
    IConsumer,
    IProcessTransport,
    IPushProducer,
    IReactorProcess,
    IReactorTime,
)
from zope.interface.verify import verifyClass

from txspawn._testing.fakereactor import MemoryProcessReactor, SpawnedProcess
from txspawn._testing.fakestate import FakeProcessState
from txspawn._testing.faketransport import FakeProcessTransport
from txspawn.interfaces import IManagedProcessTransport

__all__ = [
    "FakeProcessState",
    "FakeProcessTransport",
    "MemoryProcessReactor",
    "SpawnedProcess",
]


# As twisted.internet.testing does for its fakes: a fake that does not
# provide what it claims fails at import, not in a user's test.
for _iface, _cls in [
    (IManagedProcessTransport, FakeProcessTransport),
    (IProcessTransport, FakeProcessTransport),
    (IPushProducer, FakeProcessTransport),
    (IConsumer, FakeProcessTransport),
    (IReactorProcess, MemoryProcessReactor),
    (IReactorTime, MemoryProcessReactor),
]:
    verifyClass(_iface, _cls)
del _iface, _cls
