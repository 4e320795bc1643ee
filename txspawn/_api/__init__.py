# -*- test-case-name: tests.test_run -*-
"""
The result API: L{txspawn.run} and L{txspawn.stream}, and the argument
checks of every entry point.

What it owns:

  - L{txspawn._api.run}: run a command, get one L{ProcessResult};
  - L{txspawn._api.stream}: a child's output as it arrives
    (L{OutputStream});
  - L{txspawn._api.streambuffer}: the bounded queue between a streamed
    child and its consumer, with backpressure, and the L{OutputChunk}s it
    holds;
  - L{txspawn._api.runprotocol}: L{ChildRun}, the process protocol both
    drive (stdin, timeouts, cancellation);
  - L{txspawn._api.result}: L{ProcessResult} and the errors carrying one;
  - L{txspawn._api.tee}: L{TeeProtocol}, a child's output to a file too;
  - L{txspawn._api.arguments}: the one set of argument checks that
    C{spawnProcess}, C{run()}, C{stream()} and the fake reactor share.

These work with any L{twisted.internet.interfaces.IReactorProcess}: they
ask a reactor whether it takes spawn options through
L{txspawn.interfaces.IReactorSpawn}, never by importing the reactor layer.
A new public API for running children goes here.  What it may import:
L{txspawn._transport}, L{txspawn._plan} and the public vocabulary.  What
imports it: the reactor layer, the fakes and the public face.
"""
