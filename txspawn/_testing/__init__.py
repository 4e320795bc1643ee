# -*- test-case-name: tests.test_testing -*-
"""
The verified fakes behind L{txspawn.testing}: a reactor and process
transports for children that do not exist, which a test plays.

What it owns: L{txspawn._testing.fakereactor} (L{MemoryProcessReactor},
checking its arguments with the real reactor's checks), the fake process
transport in two halves, L{txspawn._testing.fakechild} (the child the test
plays, and the protocol callbacks that drives) and
L{txspawn._testing.faketransport} (L{FakeProcessTransport}: what the code
under test does to it, as writes, closes, signals and timers), and
L{txspawn._testing.fakestate} (the record of what was done).

What it may import: the result API's argument checks, the plan's
checks, the transport layer's pure parts (exit statuses, exit listeners,
lifetime options, group signals) and the public vocabulary.  What imports
it: L{txspawn.testing} only.
"""
