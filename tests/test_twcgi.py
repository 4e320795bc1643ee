# -*- test-case-name: tests.test_twcgi -*-
"""
Twisted's CGI resource (L{twisted.web.twcgi.CGIScript}) served from a
txspawn reactor, on every engine and monitor.

C{CGIScript.render} builds an environment holding C{CONTENT_LENGTH} twice,
under a C{str} key (the body's length) and a C{bytes} key (the request's
C{Content-Length} header).  Stock Twisted passes both entries to the child;
so must txspawn, or every request with a body fails.
"""

from __future__ import annotations

import ast
import os
import sys
from typing import Any

from twisted.internet import tcp
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ClientFactory, Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web import resource, server, twcgi

from tests.builders import MixinBase, makeTestCaseClasses

__all__ = ["CGIRequestMixin"]

#: The CGI script: it reports every C{CONTENT_LENGTH} entry of its raw
#: environment, what C{os.environ} says, and the body it read on stdin.
_SCRIPT = """\
#!{python}
import os, sys
entries = open("/proc/self/environ", "rb").read().split(b"\\0")
lengths = [e for e in entries if e.startswith(b"CONTENT_LENGTH=")]
body = sys.stdin.buffer.read()
report = repr((lengths, os.environb.get(b"CONTENT_LENGTH"), body))
sys.stdout.write("Content-Type: text/plain\\r\\n\\r\\n" + report)
"""

#: The request body.
BODY = b"hello, cgi\n"

# Twisted's first listening port opens one fd (/dev/null) that it keeps for
# the life of the process, to accept-and-close connections under EMFILE.
# Open it now, as any earlier listen would have, so that the per-test fd
# check does not count it as this test's leak.
tcp._reservedFD.reserve()


class _HTTPClient(Protocol):
    """
    Send one raw HTTP/1.0 request and collect the whole response, which
    ends when the server closes the connection.

    @ivar response: Everything the server sent.
    @ivar done: Fires with L{response} when the connection is lost.
    """

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.response = b""
        self.done: Deferred[bytes] = Deferred()

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(self.request)

    def dataReceived(self, data: bytes) -> None:
        self.response += data

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.done.callback(self.response)


class CGIRequestMixin(MixinBase):
    """
    A real CGI request with a body, through C{twisted.web} on a txspawn
    reactor.
    """

    def writeScript(self) -> str:
        """
        Write the CGI script, executable, in a fresh directory.

        @return: Its path.
        """
        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        path = os.path.join(directory, "report.cgi")
        with open(path, "w") as f:
            f.write(_SCRIPT.format(python=sys.executable))
        os.chmod(path, 0o755)
        return path

    def request(self, reactor: Any, resource: Any, request: bytes) -> bytes:
        """
        Serve C{resource} on a loopback port of C{reactor}, send C{request}
        to it, and return the whole response once the server closed the
        connection and the port stopped listening.
        """
        site = server.Site(resource, reactor=reactor)
        client = _HTTPClient(request)

        def start() -> None:
            port = reactor.listenTCP(0, site, interface="127.0.0.1")
            factory = ClientFactory.forProtocol(lambda: client)
            reactor.connectTCP("127.0.0.1", port.getHost().port, factory)
            client.done.addCallback(lambda _: port.stopListening())
            client.done.addBoth(lambda _: reactor.stop())

        reactor.callWhenRunning(start)
        self.runReactor(reactor)
        return client.response

    def test_postWithBody(self) -> None:
        """
        A POST with a body to a L{twcgi.CGIScript} runs the script with both
        C{CONTENT_LENGTH} entries C{CGIScript} built (as stock Twisted
        passes them), C{os.environ} seeing the first, and the body on its
        stdin; the response is the script's output.
        """
        reactor = self.buildReactor()
        root = resource.Resource()
        root.putChild(
            b"report.cgi", twcgi.CGIScript(self.writeScript(), reactor=reactor)
        )
        response = self.request(
            reactor,
            root,
            b"POST /report.cgi HTTP/1.0\r\n"
            b"Host: localhost\r\n"
            b"Content-Type: text/plain\r\n"
            b"Content-Length: %d\r\n"
            b"\r\n" % (len(BODY),) + BODY,
        )
        head, _, body = response.partition(b"\r\n\r\n")
        self.assertEqual(head.split(b"\r\n")[0], b"HTTP/1.0 200 OK", response)
        length = b"%d" % (len(BODY),)
        self.assertEqual(
            ast.literal_eval(body.decode("ascii")),
            ([b"CONTENT_LENGTH=" + length] * 2, length, BODY),
        )


globals().update(makeTestCaseClasses(CGIRequestMixin))
