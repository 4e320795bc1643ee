"""
A test run without network: a new network namespace with only lo up.  The
tests can serve and connect on 127.0.0.1, and nothing else is reachable:
any other address fails at once with ENETUNREACH (no route), rather than
hanging or reaching a real server.
"""

from __future__ import annotations

import os
import sys
import tempfile

from twisted.internet import task
from twisted.internet.defer import Deferred

import txspawn
from txspawn.options import Namespaces

OFFLINE = Namespaces(
    user=True,  # any user may create the others inside it
    net=True,  # a network namespace of its own: only lo, and it is down...
    loopback=True,  # ...until txspawn brings it up (127.0.0.1 and ::1)
)

# The suite under test: any test runner works the same way.
TESTS = """
import errno, socket, unittest

class OfflineTests(unittest.TestCase):
    def test_loopback(self):
        with socket.create_server(("127.0.0.1", 0)) as server:
            port = server.getsockname()[1]
            with socket.create_connection(("127.0.0.1", port)) as client:
                peer, _ = server.accept()
                with peer:
                    client.sendall(b"ping")
                    self.assertEqual(peer.recv(4), b"ping")

    def test_noOutside(self):
        # 192.0.2.1 (TEST-NET-1) stands for any address but our own.
        with self.assertRaises(OSError) as raised:
            socket.create_connection(("192.0.2.1", 80), timeout=5)
        self.assertEqual(raised.exception.errno, errno.ENETUNREACH)
"""


async def example(reactor: object) -> txspawn.ProcessResult:
    with tempfile.TemporaryDirectory() as directory:
        with open(os.path.join(directory, "test_offline.py"), "w") as f:
            f.write(TESTS)
        result = await txspawn.run(
            [sys.executable, "-m", "unittest", "-v", "test_offline"],
            reactor=reactor,
            path=directory,
            namespaces=OFFLINE,
        )
    print(result.stderr.decode().strip())  # unittest reports on stderr
    print(result.describeEnd())
    return result


def main(reactor: object) -> Deferred[txspawn.ProcessResult]:
    return Deferred.fromCoroutine(example(reactor))


if __name__ == "__main__":
    from txspawn.reactor import install

    install()
    task.react(main)
