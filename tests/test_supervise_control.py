# -*- test-case-name: tests.test_supervise_control -*-
"""
Tests for L{txspawn.supervise.control} (the control API, served by
C{twisted.web}) and L{txspawn.supervise.client} (its synchronous client).

A real supervisor (L{SupervisorService} with real children on txspawn's
reactor, both engines x both monitors) serves a unix socket in a temporary
directory; the client runs in a thread of its own, as C{ctl} would in
another process.  Permissions are checked with a client that really runs
as another uid (C{nobody}, through C{setpriv}).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import threading
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.error import CannotListenError
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from twisted.trial.unittest import SkipTest, SynchronousTestCase
from zope.interface import implementer

import txspawn
from tests.builders import makeTestCaseClasses
from tests.controlutil import (
    SLEEPER,
    Supervised,
    SupervisorMixin,
    linesOf,
    program,
    rawRequest,
    shortTempDir,
)
from txspawn.supervise._endpoint import (
    ControlAddress,
    controlAddress,
    isLoopback,
    joinEndpoint,
    splitEndpoint,
)
from txspawn.supervise.client import ControlClient, ControlError
from txspawn.supervise.config import parseConfig
from txspawn.supervise.control import listenControl
from txspawn.supervise.service import ProgramFailed, SupervisorService
from txspawn.testing import MemoryProcessReactor

#: The stdlib-only client run as another user (the system python cannot
#: import txspawn): one request, the status code and JSON body printed, or
#: the errno of a refused connect.
OTHER_USER_CLIENT = """
import json, socket, sys
path, method, target = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(path)
except OSError as e:
    print(json.dumps({"connectErrno": e.errno}))
    sys.exit(0)
head = f"{method} {target} HTTP/1.0\\r\\nHost: x\\r\\nContent-Length: 0\\r\\n\\r\\n"
s.sendall(head.encode())
data = b""
while chunk := s.recv(65536):
    data += chunk
head, _, body = data.partition(b"\\r\\n\\r\\n")
print(json.dumps({"status": int(head.split()[1]), "body": json.loads(body)}))
"""


class ControlMixin(SupervisorMixin):
    """
    The control API over a real supervisor.
    """

    def test_status(self) -> None:
        """
        C{GET /v1/status} answers the service's own status rows, as JSON.
        """

        async def scenario(s: Supervised) -> None:
            await s.call(s.client.start, "web")
            rows = await s.call(s.client.status)
            self.assertEqual([row["name"] for row in rows], ["web", "idle"])
            web, idle = rows
            self.assertEqual((web["state"], idle["state"]), ("RUNNING", "STOPPED"))
            self.assertEqual(web["pid"], s.service.instances("web")[0].pid)
            status, kind, body = await s.call(
                rawRequest, s.client.address.path, "GET", "/v1/status"
            )
            self.assertEqual((status, kind), (200, "application/json"))
            self.assertEqual(
                [row["name"] for row in json.loads(body)["programs"]], ["web", "idle"]
            )

        self.supervise(
            program("web", SLEEPER, "[programs.web.ready]", "after = 0")
            + program("idle", SLEEPER, "autostart = false"),
            scenario,
        )

    def test_startStopRestartAnswerWhenDone(self) -> None:
        """
        start answers once the program is RUNNING (its readiness passed),
        stop once its child is gone, restart with a new child; each with
        the status rows of the instances named.
        """

        async def scenario(s: Supervised) -> None:
            [started] = await s.call(s.client.start, "web")
            self.assertEqual(started["state"], "RUNNING")
            pid = started["pid"]
            self.assertIsInstance(pid, int)
            [stopped] = await s.call(s.client.stop, "web")
            self.assertEqual((stopped["state"], stopped["pid"]), ("STOPPED", None))
            self.assertRaises(ProcessLookupError, os.kill, pid, 0)
            [again] = await s.call(s.client.start, "all")
            [restarted] = await s.call(s.client.restart, "web")
            self.assertEqual(restarted["state"], "RUNNING")
            self.assertNotEqual(restarted["pid"], again["pid"])
            self.assertRaises(ProcessLookupError, os.kill, again["pid"], 0)

        # Ready only after 0.3 s up: an answer given at the spawn would say
        # STARTING.
        self.supervise(
            program(
                "web",
                SLEEPER,
                "autostart = false",
                "[programs.web.ready]",
                "after = 0.3",
            ),
            scenario,
        )

    def test_errors(self) -> None:
        """
        An unknown program is 404, a start that ends FATAL is 409 with the
        rows, a bad signal or body is 400, a wrong method 405, an unknown
        route 404: each with a JSON C{error}.
        """

        async def scenario(s: Supervised) -> None:
            for call in (
                s.client.start,
                s.client.stop,
                s.client.restart,
                s.client.tail,
            ):
                error = await self.assertFailsWith(s.call(call, "nope"), ControlError)
                self.assertEqual(error.status, 404, call)
                self.assertIn("unknown program 'nope'", error.message)
            error = await self.assertFailsWith(
                s.call(s.client.start, "broken"), ControlError
            )
            self.assertEqual(error.status, 409)
            self.assertIn("broken is FATAL", error.message)
            assert error.body is not None
            [row] = error.body["programs"]
            self.assertEqual((row["name"], row["state"]), ("broken", "FATAL"))
            self.assertIn("spawn failed", row["lastExit"])
            error = await self.assertFailsWith(
                s.call(s.client.signal, "broken", "NOSUCHSIGNAL"), ControlError
            )
            self.assertEqual(error.status, 400)
            path = s.client.address.path
            cases = [
                ("POST", "/v1/programs/broken/signal", b"[1]", 400),
                ("POST", "/v1/programs/broken/signal", b"{not json", 400),
                ("GET", "/v1/programs/broken/start", None, 405),
                ("POST", "/v1/status", None, 405),
                ("GET", "/v1/nothing", None, 404),
                ("GET", "/v1/programs/broken/log?lines=-1", None, 400),
                ("GET", "/v1/programs/broken/log?stream=stdin", None, 400),
                ("GET", "/v1/events?since=x", None, 400),
            ]
            status, _, answer = await s.call(
                rawRequest, path, "GET", "/v1/programs/pair/log"
            )
            self.assertEqual(status, 400)
            self.assertEqual(
                json.loads(answer)["error"],
                "pair has 2 instances: name one (pair:0, pair:1)",
            )
            status, _, answer = await s.call(
                rawRequest, path, "GET", "/v1/programs/pair:1/log"
            )
            self.assertEqual((status, answer), (200, b""))
            for method, target, body, code in cases:
                status, kind, answer = await s.call(
                    rawRequest, path, method, target, body
                )
                self.assertEqual((status, kind), (code, "application/json"), target)
                self.assertIsInstance(json.loads(answer)["error"], str)

        self.supervise(
            '[programs.broken]\ncommand = ["/nonexistent/x"]\nautostart = false\n'
            '[programs.pair]\ncommand = ["/nonexistent/x"]\nautostart = false\n'
            "instances = 2\n",
            scenario,
        )

    def test_signalAndFollowLog(self) -> None:
        """
        C{tail} gives the log's last lines; C{follow} keeps streaming what
        the program writes: here its answer to the SIGHUP sent through the
        API.
        """

        def followUntilHUP(s: Supervised) -> tuple[bytes, bytes]:
            with s.client.follow("web", lines=10) as stream:
                seen = b""
                for chunk in stream:
                    seen += chunk
                    if b"started\n" in seen:
                        break
                before = seen
                s.client.signal("web", "HUP")
                for chunk in stream:
                    seen += chunk
                    if b"got HUP\n" in seen:
                        break
            return before, seen

        async def scenario(s: Supervised) -> None:
            await s.call(s.client.start, "web")
            before, seen = await s.call(followUntilHUP, s)
            self.assertNotIn(b"got HUP", before)
            self.assertTrue(seen.endswith(b"got HUP\n"), seen)
            tail = await s.call(s.client.tail, "web", 1)
            self.assertEqual(tail, b"got HUP\n")
            status, kind, body = await s.call(
                rawRequest, s.client.address.path, "GET", "/v1/programs/web/log?lines=2"
            )
            self.assertEqual((status, kind), (200, "text/plain; charset=utf-8"))
            self.assertEqual(body, b"started\ngot HUP\n")

        self.supervise(
            program(
                "web", SLEEPER, "autostart = false", "[programs.web.ready]", "after = 0"
            ),
            scenario,
        )

    def test_events(self) -> None:
        """
        C{/v1/events} lists the events kept after C{since}; with C{follow}
        it streams each new one, in order.
        """

        def followStop(s: Supervised, since: int) -> list[dict[str, Any]]:
            seen = []
            with s.client.followEvents(since) as events:
                s.client.stop("web")
                for event in events:
                    seen.append(event)
                    if event["new"] == "STOPPED":
                        break
            return seen

        async def scenario(s: Supervised) -> None:
            await s.call(s.client.start, "web")
            events = await s.call(s.client.events)
            self.assertEqual(events, [e.toJSON() for e in s.service.events.recent()])
            self.assertEqual(
                [
                    (e["program"], e["old"], e["new"])
                    for e in events
                    if e["kind"] == "transition"
                ],
                [("web", "STOPPED", "STARTING"), ("web", "STARTING", "RUNNING")],
            )
            last = events[-1]["seq"]
            self.assertEqual(await s.call(s.client.events, last), [])
            seen = await s.call(followStop, s, last)
            self.assertEqual(
                [(e["old"], e["new"]) for e in seen if e["kind"] == "transition"],
                [("RUNNING", "STOPPING"), ("STOPPING", "STOPPED")],
            )
            self.assertEqual(
                [e["seq"] for e in seen], list(range(last + 1, last + 1 + len(seen)))
            )
            status, kind, body = await s.call(
                rawRequest, s.client.address.path, "GET", f"/v1/events?since={last}"
            )
            self.assertEqual((status, kind), (200, "application/x-ndjson"))
            self.assertEqual([json.loads(line) for line in body.splitlines()], seen)

        self.supervise(
            program(
                "web", SLEEPER, "autostart = false", "[programs.web.ready]", "after = 0"
            ),
            scenario,
        )

    def test_reload(self) -> None:
        """
        C{POST /v1/reload} loads the config file again: what changed, the
        unchanged program's pid kept; a config with errors is 400 with each
        error's key path and line, and changes nothing.
        """
        web = program("web", SLEEPER, "[programs.web.ready]", "after = 0")

        async def scenario(s: Supervised) -> None:
            [before] = await s.call(s.client.start, "web")
            with open(s.configPath, "a") as configFile:
                configFile.write(program("more", SLEEPER, "autostart = false"))
            changes = await s.call(s.client.reload)
            self.assertEqual(
                changes,
                {"added": ["more"], "removed": [], "changed": [], "unchanged": ["web"]},
            )
            rows = await s.call(s.client.status)
            self.assertEqual(
                [(r["name"], r["pid"]) for r in rows],
                [("web", before["pid"]), ("more", None)],
            )
            with open(s.configPath, "a") as configFile:
                configFile.write("bogus = 1\n")
            error = await self.assertFailsWith(s.call(s.client.reload), ControlError)
            self.assertEqual(error.status, 400)
            assert error.body is not None
            [problem] = error.body["errors"]
            with open(s.configPath) as configFile:
                lines = configFile.read().splitlines()
            self.assertEqual(
                (problem["path"], problem["line"]),
                ("programs.more.bogus", len(lines)),
            )
            self.assertIn("programs.more.bogus", error.message)
            self.assertEqual(list(s.service.config.programs), ["web", "more"])

        self.supervise(web, scenario)

    def test_slowFollowerDropsAndSaysSo(self) -> None:
        """
        A follower that reads slower than the program writes does not make
        the supervisor buffer without bound: lines are dropped while its
        connection is full, and a line says how many once it caught up.
        Every line it got is the log's, in order, and those it got plus
        those dropped are all of them.
        """
        count = 200_000

        def followFlood(s: Supervised) -> tuple[bytes, bytes]:
            with (
                s.client.followEvents(s.service.events.lastSeq) as events,
                s.client.follow("flood", lines=0) as stream,
            ):
                # Not a byte read until the program exited: its output
                # fills the connection.
                s.client.start("flood")
                for event in events:
                    if event["new"] == "EXITED":
                        break
                # The last line to come: the note of what was dropped (or,
                # if nothing was, the log's exit marker).
                seen = b""
                for chunk in stream:
                    seen += chunk
                    last = seen[seen.rfind(b"\n", 0, -1) + 1 :]
                    if last.startswith(b"--- txspawn: ") and (
                        b"not shown" in last or b"exited" in last
                    ):
                        break
            return seen, s.client.tail("flood", count + 10)

        async def scenario(s: Supervised) -> None:
            seen, log = await s.call(followFlood, s)
            *got, marker = linesOf(seen)
            self.assertIn(b"not shown", marker)
            dropped = int(marker.split()[2])
            logged = linesOf(log)
            self.assertGreater(dropped, 0)
            self.assertEqual(got, logged[: len(got)])
            self.assertEqual(len(got) + dropped, len(logged))

        source = "\n".join(
            [
                "import sys",
                f"for i in range({count}):",
                "    sys.stdout.write('line %d\\n' % i)",
            ]
        )
        self.supervise(
            program(
                "flood",
                source,
                "autostart = false",
                'restart = "never"',
                "[programs.flood.ready]",
                "after = 0",
            ),
            scenario,
        )

    def test_slowEventFollowerCatchesUp(self) -> None:
        """
        An event follower that stops reading while events pour in (a crash
        loop) is paused rather than buffered for; once it reads again it
        gets what it missed from the events the log keeps, in order, up to
        the last one.
        """
        count = 3000

        def follow(
            s: Supervised, since: int, opened: Deferred[None], go: threading.Event
        ) -> list[int]:
            seqs: list[int] = []
            with s.client.followEvents(since) as events:
                s.reactor.callFromThread(opened.callback, None)
                go.wait()
                for event in events:
                    seqs.append(event["seq"])
                    if event["kind"] == "transition" and event["new"] == "STOPPED":
                        break
            return seqs

        async def scenario(s: Supervised) -> None:
            events = s.service.events
            since = events.lastSeq
            opened: Deferred[None] = Deferred()
            go = threading.Event()
            reading = s.call(follow, s, since, opened, go)
            await opened
            enough: Deferred[None] = Deferred()

            def watch(event: object) -> None:
                if events.lastSeq >= since + count and not enough.called:
                    enough.callback(None)

            unsubscribe = events.subscribe(watch)
            # It never gets RUNNING (each run fails before it is ready): the
            # start's Deferred fails when it is stopped.
            starting = s.service.start("crash")
            starting.addErrback(lambda failure: failure.trap(ProgramFailed))
            await enough
            unsubscribe()
            await s.service.stop("crash")
            go.set()
            seqs = await reading
            [stopped] = [e.seq for e in events.recent(since) if e.new == "STOPPED"]
            self.assertEqual(seqs[-1], stopped)
            self.assertEqual(seqs, sorted(set(seqs)))
            # Paused: some events were never sent (more than the log keeps
            # went by)...
            self.assertLess(len(seqs), stopped - since)
            # ...and caught up: every event the log keeps came, in order.
            kept = [e.seq for e in events.recent(since) if e.seq <= stopped]
            self.assertEqual(seqs[-len(kept) :], kept)

        self.supervise(
            "\n".join(
                [
                    "[programs.crash]",
                    'command = ["false"]',
                    "autostart = false",
                    'restart = "always"',
                    "ready = { after = 0.05 }",
                    'backoff = { initial = 0, give_up_after = "never" }',
                    "",
                ]
            ),
            scenario,
        )

    def test_defaultModeAndStaleSocket(self) -> None:
        """
        The socket gets mode 0600 when the endpoint sets none; a stale
        socket file left by a supervisor that died is replaced.
        """
        base = shortTempDir(self)
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(os.path.join(base, "ctl.sock"))
        stale.close()

        async def scenario(s: Supervised) -> None:
            path = s.client.address.path
            assert path is not None
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
            self.assertEqual(await s.call(s.client.status), [])

        self.supervise("", scenario, base=base)

    def test_alreadyListening(self) -> None:
        """
        A second supervisor on the same socket fails to listen, saying why,
        and the first keeps serving; an explicit mode is kept.
        """

        async def scenario(s: Supervised) -> None:
            path = s.client.address.path
            assert path is not None
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o640)
            try:
                port = await listenControl(s.service, f"unix:{path}", s.reactor)
            except CannotListenError as error:
                self.assertIn("already listening", str(error))
            else:
                await maybeDeferred(port.stopListening)
                self.fail("a second listener on the same socket")
            self.assertEqual(await s.call(s.client.status), [])

        self.supervise("", scenario, control="unix:path=ctl.sock:mode=640")

    def test_tcpLoopback(self) -> None:
        """
        A tcp endpoint on the loopback interface serves the same API.
        """

        async def scenario(s: Supervised) -> None:
            port = await listenControl(
                s.service, "tcp:0:interface=127.0.0.1", s.reactor
            )
            try:
                number = port.getHost().port  # type: ignore[attr-defined]
                client = ControlClient(f"tcp:{number}:interface=127.0.0.1", timeout=30)
                self.assertEqual(await s.call(client.status), [])
            finally:
                await maybeDeferred(port.stopListening)

        self.supervise("", scenario)

    def test_otherUserRefused(self) -> None:
        """
        A client running as another uid (nobody) on a socket it may connect
        to (mode 666) is answered 403, the refusal is logged, and nothing
        is done; with the default mode (0600) it cannot even connect.  The
        same requests from this uid are served (the test can fail).
        """
        setpriv = shutil.which("setpriv")
        systemPython = "/usr/bin/python3"
        if os.geteuid() != 0 or setpriv is None or not os.path.exists(systemPython):
            raise SkipTest("needs root, setpriv and /usr/bin/python3")
        base = shortTempDir(self)
        os.chmod(base, 0o755)
        refusals: list[LogEvent] = []

        @implementer(ILogObserver)
        def observe(event: LogEvent) -> None:
            if "refused" in event.get("log_format", ""):
                refusals.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)

        async def asNobody(path: str, method: str, target: str) -> dict[str, Any]:
            result = await txspawn.run(
                [
                    setpriv,
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    systemPython,
                    "-c",
                    OTHER_USER_CLIENT,
                    path,
                    method,
                    target,
                ],
                reactor=self.reactor,
            )
            self.assertEqual(result.exitCode, 0, result.stderr)
            answer: dict[str, Any] = json.loads(result.stdout)
            return answer

        async def scenario(s: Supervised) -> None:
            self.reactor = s.reactor
            [before] = await s.call(s.client.start, "web")
            path = s.client.address.path
            assert path is not None
            answer = await asNobody(path, "POST", "/v1/programs/web/stop")
            self.assertEqual(answer["status"], 403)
            self.assertIn("uid 65534 may not control", answer["body"]["error"])
            [row] = [r for r in await s.call(s.client.status)]
            self.assertEqual((row["state"], row["pid"]), ("RUNNING", before["pid"]))
            [refusal] = refusals
            self.assertEqual(refusal["uid"], 65534)
            # This uid is served the same request (so the refusal is about
            # the uid, not the request).
            status, _, _ = await s.call(rawRequest, path, "GET", "/v1/status")
            self.assertEqual(status, 200)
            # With the default mode the other user cannot connect at all.
            port = await listenControl(
                s.service, f"unix:path={base}/private.sock", s.reactor
            )
            try:
                self.assertEqual(
                    stat.S_IMODE(os.stat(f"{base}/private.sock").st_mode), 0o600
                )
                answer = await asNobody(f"{base}/private.sock", "GET", "/v1/status")
                self.assertEqual(answer, {"connectErrno": 13})
            finally:
                await maybeDeferred(port.stopListening)

        self.supervise(
            program("web", SLEEPER, "[programs.web.ready]", "after = 0"),
            scenario,
            control=f"unix:path={base}/ctl.sock:mode=666",
            base=base,
        )


globals().update(makeTestCaseClasses(ControlMixin))


class EndpointTests(SynchronousTestCase):
    """
    Endpoint strings, read for both sides.
    """

    def test_split(self) -> None:
        """
        Arguments are cut at unescaped colons, keywords at the first
        unescaped C{=}, and escapes are removed.
        """
        self.assertEqual(
            splitEndpoint("unix:path=/a\\:b:mode=600"),
            ("unix", [], {"path": "/a:b", "mode": "600"}),
        )
        self.assertEqual(
            splitEndpoint("tcp:8080:127.0.0.1"), ("tcp", ["8080", "127.0.0.1"], {})
        )
        self.assertRaises(ValueError, splitEndpoint, ":x")
        self.assertRaises(ValueError, splitEndpoint, "unix:a=b=c")

    def test_joinInvertsSplit(self) -> None:
        """
        L{joinEndpoint} escapes what L{splitEndpoint} unescapes.
        """
        for kind, positional, keywords in [
            ("unix", [], {"address": "/odd:path=x\\y", "mode": "600"}),
            ("tcp", ["80"], {"interface": "::1"}),
        ]:
            text = joinEndpoint(kind, positional, keywords)
            self.assertEqual(splitEndpoint(text), (kind, positional, keywords))

    def test_controlAddress(self) -> None:
        """
        The client finds where to connect from a server string or a client
        one; a tcp string without a host means the loopback address.
        """
        cases = {
            "unix:path=/run/x.sock:mode=600": ControlAddress(path="/run/x.sock"),
            "unix:/run/x.sock": ControlAddress(path="/run/x.sock"),
            "unix:address=/run/x.sock": ControlAddress(path="/run/x.sock"),
            "tcp:8080:interface=127.0.0.2": ControlAddress(host="127.0.0.2", port=8080),
            "tcp:8080:127.0.0.2": ControlAddress(host="127.0.0.2", port=8080),
            "tcp:host=127.0.0.3:port=81": ControlAddress(host="127.0.0.3", port=81),
            "tcp:localhost:82": ControlAddress(host="localhost", port=82),
            "tcp:port=83": ControlAddress(host="127.0.0.1", port=83),
            "tcp6:84": ControlAddress(host="::1", port=84),
        }
        for text, address in cases.items():
            self.assertEqual(controlAddress(text), address, text)
        for bad in ("ssl:443", "unix:", "tcp:notaport", "tcp:host=x"):
            self.assertRaises(ValueError, controlAddress, bad)

    def test_isLoopback(self) -> None:
        for host in ("127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"):
            self.assertTrue(isLoopback(host), host)
        for host in ("0.0.0.0", "", "::", "10.0.0.1", "localhost", "::ffff:10.0.0.1"):
            self.assertFalse(isLoopback(host), host)


class ListenRefusalTests(SynchronousTestCase):
    """
    Endpoints L{listenControl} refuses before listening.
    """

    def service(self) -> SupervisorService:
        return SupervisorService(parseConfig(""), MemoryProcessReactor())

    def test_tcpOffLoopback(self) -> None:
        """
        A tcp endpoint on every interface, or on one that is not loopback,
        is refused: no peer's uid can be checked there.
        """
        for endpoint in (
            "tcp:0",
            "tcp:0:interface=0.0.0.0",
            "tcp6:port=0:interface=\\:\\:",
        ):
            failure = self.failureResultOf(
                listenControl(self.service(), endpoint, MemoryProcessReactor()),
                ValueError,
            )
            self.assertIn("loopback", failure.getErrorMessage())

    def test_listenedOffLoopback(self) -> None:
        """
        Whatever endpoint type listened (say C{systemd:} with an inherited
        socket), a port on an address that is not loopback is closed again
        and the listen fails; unix and loopback ports are kept.
        """
        from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress

        from txspawn.supervise.control import _checkHost

        class Port:
            def __init__(self, host: object) -> None:
                self.host = host
                self.stopped = False

            def getHost(self) -> object:
                return self.host

            def stopListening(self) -> None:
                self.stopped = True

        offLoopback = [
            IPv4Address("TCP", "0.0.0.0", 1),
            IPv6Address("TCP", "fe80::1", 1),
        ]
        for host in offLoopback:
            port: Any = Port(host)
            self.failureResultOf(maybeDeferred(_checkHost, port, "x"), ValueError)
            self.assertTrue(port.stopped, host)
        kept: list[object] = [
            IPv4Address("TCP", "127.0.0.1", 1),
            IPv6Address("TCP", "::1", 1),
            UNIXAddress(b"/x.sock"),
        ]
        for address in kept:
            port = Port(address)
            self.assertIs(
                self.successResultOf(maybeDeferred(_checkHost, port, "x")), port
            )
            self.assertFalse(port.stopped, address)

    def test_unixWithoutPath(self) -> None:
        self.failureResultOf(
            listenControl(self.service(), "unix:mode=600", MemoryProcessReactor()),
            ValueError,
        )


class IdleTests(SynchronousTestCase):
    """
    A control server that nobody talks to wakes the reactor for nothing:
    an idle supervisor's CPU is its children's wake-ups alone (issue 15's
    idle goal, measured by C{python -m txspawn bench --scenario
    supervise}).
    """

    def test_noTimerWhileListening(self) -> None:
        """
        Once started, the control site has no delayed call pending (Twisted's
        C{HTTPFactory} keeps one a second for its access log's date).
        """
        from twisted.internet.task import Clock
        from twisted.web.resource import Resource

        from txspawn.supervise.control import _ControlSite

        clock = Clock()
        site = _ControlSite(Resource(), frozenset({os.getuid()}), clock)
        site.doStart()
        self.addCleanup(site.doStop)
        clock.advance(5)
        self.assertEqual(clock.getDelayedCalls(), [])
