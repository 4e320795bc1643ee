# -*- test-case-name: tests.test_supervise_control -*-
"""
The control endpoint string, read the way Twisted's C{serverFromString}
reads it, for the two sides of the control API: the server adds its
defaults and checks (a unix socket's mode, a tcp port's interface), the
client finds where to connect.

Only the stdlib here: the client side must stay cheap to import.
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

__all__ = [
    "ControlAddress",
    "controlAddress",
    "isLoopback",
    "joinEndpoint",
    "splitEndpoint",
    "unixPath",
]


def _tokens(description: str) -> list[tuple[bool, str]]:
    """
    C{description} cut at its unescaped C{:} and C{=}: C{(True, ":")} or
    C{(True, "=")} for a separator, C{(False, text)} for the text between
    (with its backslash escapes removed).
    """
    tokens: list[tuple[bool, str]] = []
    text: list[str] = []
    escaped = False
    for char in description:
        if escaped:
            text.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ":=":
            tokens.append((False, "".join(text)))
            tokens.append((True, char))
            text = []
        else:
            text.append(char)
    tokens.append((False, "".join(text)))
    return tokens


def splitEndpoint(description: str) -> tuple[str, list[str], dict[str, str]]:
    """
    An endpoint string's type, positional arguments and keyword arguments,
    unescaped, as Twisted's endpoint parser splits them (C{"unix:a\\:b:mode=600"}
    is C{("unix", ["a:b"], {"mode": "600"})}).

    @raise ValueError: The string has no type, or an argument has two
        C{=}.
    """
    arguments: list[list[str]] = [[]]
    for isSeparator, text in _tokens(description):
        if not isSeparator:
            arguments[-1].append(text)
        elif text == ":":
            arguments.append([])
    kind, *rest = arguments
    if len(kind) != 1 or not kind[0]:
        raise ValueError(f"endpoint {description!r} has no type")
    positional: list[str] = []
    keywords: dict[str, str] = {}
    for argument in rest:
        if len(argument) == 1:
            positional.append(argument[0])
        elif len(argument) == 2:
            keywords[argument[0]] = argument[1]
        else:
            raise ValueError(
                f"endpoint {description!r}: {'='.join(argument)!r} has two '='"
            )
    return kind[0], positional, keywords


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


def joinEndpoint(kind: str, positional: list[str], keywords: dict[str, str]) -> str:
    """
    The endpoint string of a type and its arguments, escaped: the inverse of
    L{splitEndpoint}.
    """
    arguments = [_escape(argument) for argument in positional]
    arguments += [f"{_escape(key)}={_escape(value)}" for key, value in keywords.items()]
    return ":".join([kind, *arguments])


def unixPath(positional: list[str], keywords: dict[str, str]) -> str | None:
    """
    The socket path of a unix endpoint's arguments: C{path=} (the name the
    config and Twisted's client strings use), C{address=} (the name of
    Twisted's server strings), or the first positional argument.
    """
    path = keywords.get("path", keywords.get("address"))
    if path is None and positional:
        path = positional[0]
    return path or None


def isLoopback(host: str) -> bool:
    """
    Whether C{host} is an address of the loopback interface (C{127.0.0.0/8},
    C{::1}, or an IPv4-mapped loopback address).
    """
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


class ControlAddress(NamedTuple):
    """
    Where a control client connects.  (A named tuple rather than an attrs
    class: attrs alone would add a fifth to C{ctl}'s start-up.)

    @ivar path: The unix socket's path, or C{None} for tcp.
    @ivar host: The tcp host (C{None} for a unix socket).
    @ivar port: The tcp port (C{None} for a unix socket).
    """

    path: str | None = None
    host: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        if self.path is not None:
            return self.path
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{host}:{self.port}"


def controlAddress(description: str) -> ControlAddress:
    """
    Where to connect to reach a control server listening on C{description}.

    Server strings are accepted (C{unix:path=P:mode=600},
    C{unix:P}, C{tcp:PORT:interface=127.0.0.1}, C{tcp6:port=PORT}) and so
    are client ones (C{tcp:host=H:port=P}); a tcp string without an
    interface means the loopback address.

    @raise ValueError: The string is not a unix or tcp endpoint.
    """
    kind, positional, keywords = splitEndpoint(description)
    if kind == "unix":
        path = unixPath(positional, keywords)
        if path is None:
            raise ValueError(f"endpoint {description!r} has no path")
        return ControlAddress(path=path)
    if kind in ("tcp", "tcp6"):
        port = keywords.get("port", positional[0] if positional else None)
        host = keywords.get("host", keywords.get("interface"))
        if host is None and len(positional) > 1:
            if _isPort(positional[0]):
                # The server form, tcp:PORT:INTERFACE.
                host = positional[1]
            else:
                # The client form, tcp:HOST:PORT.
                host, port = positional[0], positional[1]
        if not host or host in ("0.0.0.0", "::"):
            host = "::1" if kind == "tcp6" else "127.0.0.1"
        if port is None or not _isPort(port):
            raise ValueError(f"endpoint {description!r} has no valid port")
        return ControlAddress(host=host, port=int(port))
    raise ValueError(
        f"endpoint {description!r}: the control client speaks to 'unix' and "
        f"'tcp' endpoints only, not {kind!r}"
    )


def _isPort(text: str | None) -> bool:
    return text is not None and text.isdigit() and 0 < int(text) < 65536
