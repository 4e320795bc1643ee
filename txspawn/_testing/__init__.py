# -*- test-case-name: tests.test_testing -*-
"""
The verified fakes behind L{txspawn.testing}: a reactor and process
transports for children that do not exist, which a test plays.

What it owns: L{txspawn._testing.fakereactor} (L{MemoryProcessReactor},
checking its arguments with the real reactor's checks),
L{txspawn._testing.fakeprocess} (L{FakeProcessTransport}) and
L{txspawn._testing.fakestate} (what the code under test did to it).

What it may import: the result API's argument checks, the transport
layer's pure parts (exit statuses, lifetime options, group signals) and
the public vocabulary.  What imports it: L{txspawn.testing} only.
"""
