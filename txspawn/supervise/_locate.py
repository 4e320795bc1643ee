# -*- test-case-name: tests.test_supervise_config -*-
"""
Where each key of a TOML document is written: the line of every key path.

L{tomllib} gives values, never positions, and the supervisor's config errors
must name the line of the key they are about.  L{keyLines} scans the text of
a document that L{tomllib} has already accepted and records, for every key
path, the line its key is written on: table headers (C{[a.b]} and
C{[[a.b]]}), dotted keys (C{a.b.c = 1}), inline tables (C{{x = 1}}) and
array elements (by index).  Being given only valid TOML, it needs no error
handling of its own: it only has to tell keys, strings, brackets and
comments apart.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Union

from attrs import frozen

__all__ = ["KeyPath", "formatPath", "keyLines", "lineOf"]

#: A path into a TOML document: table keys and array indexes.
KeyPath = tuple[Union[str, int], ...]

# Token kinds.
_WORD = "word"  # a bare key or a bare value (number, boolean, date, ...)
_STRING = "string"  # a quoted key or value
_PUNCT = "punct"  # one of [ ] { } = ,
_NEWLINE = "newline"

_PUNCTUATION = frozenset("[]{}=,")
_WORD_END = frozenset(" \t\r\n#\"'") | _PUNCTUATION

_ESCAPES = {
    "b": "\b",
    "t": "\t",
    "n": "\n",
    "f": "\f",
    "r": "\r",
    '"': '"',
    "\\": "\\",
    "e": "\x1b",
}


@frozen
class _Token:
    """
    One token of a TOML document.

    @ivar kind: L{_WORD}, L{_STRING}, L{_PUNCT} or L{_NEWLINE}.
    @ivar text: The word, the string's value, or the punctuation.
    @ivar line: The 1-based line it starts on.
    @ivar start: Its offset in the text (to tell C{[[} from C{[ [}).
    """

    kind: str
    text: str
    line: int
    start: int


def _unescape(body: str) -> str:
    """
    The value of a basic string's body (keys only need the common escapes
    right: anything else is kept as written).
    """
    out = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            following = body[index + 1]
            if following in _ESCAPES:
                out.append(_ESCAPES[following])
                index += 2
                continue
            if following in "uU":
                width = 4 if following == "u" else 8
                digits = body[index + 2 : index + 2 + width]
                out.append(chr(int(digits, 16)))
                index += 2 + width
                continue
        out.append(char)
        index += 1
    return "".join(out)


def _tokens(text: str) -> Iterator[_Token]:
    """
    Split a valid TOML document into tokens.
    """
    index = 0
    line = 1
    length = len(text)
    while index < length:
        char = text[index]
        if char in " \t\r":
            index += 1
        elif char == "\n":
            yield _Token(_NEWLINE, "\n", line, index)
            line += 1
            index += 1
        elif char == "#":
            end = text.find("\n", index)
            index = length if end == -1 else end
        elif char in _PUNCTUATION:
            yield _Token(_PUNCT, char, line, index)
            index += 1
        elif char in "\"'":
            triple = char * 3
            if text.startswith(triple, index):
                end = index + 3
                while True:
                    end = text.find(triple, end)
                    if char == '"' and _escaped(text, end):
                        end += 1
                        continue
                    break
                # A closing delimiter may be followed by up to two more
                # quotes that belong to the string ('''a''''' is "a''").
                while text.startswith(char, end + 3):
                    end += 1
                body = text[index + 3 : end]
                yield _Token(_STRING, body, line, index)
                line += body.count("\n")
                index = end + 3
            else:
                end = index + 1
                while text[end] != char or (char == '"' and _escaped(text, end)):
                    end += 1
                body = text[index + 1 : end]
                value = _unescape(body) if char == '"' else body
                yield _Token(_STRING, value, line, index)
                index = end + 1
        else:
            end = index
            while end < length and text[end] not in _WORD_END:
                end += 1
            yield _Token(_WORD, text[index:end], line, index)
            index = end


def _escaped(text: str, index: int) -> bool:
    """
    Whether the character at C{index} is escaped by an odd run of
    backslashes before it.
    """
    count = 0
    while index - count - 1 >= 0 and text[index - count - 1] == "\\":
        count += 1
    return count % 2 == 1


class _Scanner:
    """
    Walks the tokens of a document, recording the line of every key path.
    """

    def __init__(self, text: str) -> None:
        self.tokens = list(_tokens(text))
        self.position = 0
        self.lines: dict[KeyPath, int] = {}
        # The last index of each array of tables, by its (resolved) path.
        self.arrayTables: dict[KeyPath, int] = {}

    def peek(self, offset: int = 0) -> _Token | None:
        """
        The token C{offset} ahead, or C{None} past the end.
        """
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self) -> _Token:
        """
        The next token, consumed.
        """
        token = self.tokens[self.position]
        self.position += 1
        return token

    def isPunct(self, token: _Token | None, text: str) -> bool:
        """
        Whether C{token} is the punctuation C{text}.
        """
        return token is not None and token.kind == _PUNCT and token.text == text

    def skipNewlines(self) -> None:
        """
        Skip line ends (inside arrays, and between statements).
        """
        while (token := self.peek()) is not None and token.kind == _NEWLINE:
            self.position += 1

    def record(self, path: KeyPath, line: int) -> None:
        """
        Record the line of C{path} and of every table it implies, each the
        first time it is seen.
        """
        for end in range(1, len(path) + 1):
            self.lines.setdefault(path[:end], line)

    def key(self, stop: str) -> tuple[list[str], int]:
        """
        Read a (dotted) key up to the punctuation C{stop}, not included.

        @return: Its parts and the line it starts on.
        """
        parts: list[str] = []
        first = self.peek()
        assert first is not None
        line = first.line
        while not self.isPunct(self.peek(), stop):
            token = self.take()
            if token.kind == _STRING:
                parts.append(token.text)
            else:
                parts.extend(part for part in token.text.split(".") if part)
        return parts, line

    def resolve(self, parts: Sequence[str]) -> KeyPath:
        """
        A header's path, with the current index of each array of tables it
        goes through.
        """
        path: KeyPath = ()
        for part in parts:
            path = (*path, part)
            if path in self.arrayTables:
                path = (*path, self.arrayTables[path])
        return path

    def document(self) -> dict[KeyPath, int]:
        """
        Scan the whole document: headers and key/value statements.
        """
        table: KeyPath = ()
        while True:
            self.skipNewlines()
            token = self.peek()
            if token is None:
                return self.lines
            if self.isPunct(token, "["):
                following = self.peek(1)
                isArray = (
                    self.isPunct(following, "[")
                    and following is not None
                    and following.start == token.start + 1
                )
                self.position += 2 if isArray else 1
                parts, line = self.key("]")
                self.position += 2 if isArray else 1
                if isArray:
                    arrayPath = (*self.resolve(parts[:-1]), parts[-1])
                    index = self.arrayTables.get(arrayPath, -1) + 1
                    self.arrayTables[arrayPath] = index
                    table = (*arrayPath, index)
                else:
                    table = self.resolve(parts)
                self.record(table, line)
            else:
                self.keyValue(table)
                # Skip what is left of the line (the rest of a date-time
                # written with a space).
                while (rest := self.peek()) is not None and rest.kind != _NEWLINE:
                    self.position += 1

    def keyValue(self, table: KeyPath) -> None:
        """
        Scan one C{key = value} in C{table}.
        """
        parts, line = self.key("=")
        self.position += 1  # "="
        path = table + tuple(parts)
        self.record(path, line)
        self.value(path)

    def value(self, path: KeyPath) -> None:
        """
        Scan one value at C{path}, recording the keys and elements in it.
        """
        token = self.take()
        if self.isPunct(token, "["):
            index = 0
            while True:
                self.skipNewlines()
                if self.isPunct(self.peek(), "]"):
                    self.position += 1
                    return
                element = self.peek()
                assert element is not None
                self.record((*path, index), element.line)
                self.value((*path, index))
                index += 1
                self.skipNewlines()
                if self.isPunct(self.peek(), ","):
                    self.position += 1
        elif self.isPunct(token, "{"):
            while True:
                self.skipNewlines()
                if self.isPunct(self.peek(), "}"):
                    self.position += 1
                    return
                self.keyValue(path)
                self.skipNewlines()
                if self.isPunct(self.peek(), ","):
                    self.position += 1
        # Anything else is a scalar: one token (or two, for a date-time
        # written with a space, whose second word the caller skips).


def keyLines(text: str) -> dict[KeyPath, int]:
    """
    The line (1-based) each key path of a valid TOML document is written on.

    Tables that are only implied (C{programs} by C{[programs.web]}) get the
    line of their first mention; array elements get the line their value
    starts on.

    @param text: A document L{tomllib} accepts.
    """
    return _Scanner(text).document()


def lineOf(lines: Mapping[KeyPath, int], path: KeyPath) -> int:
    """
    The line of C{path}, or of its longest prefix that has one (C{1} for
    the document as a whole).
    """
    for end in range(len(path), 0, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return 1


def formatPath(path: KeyPath) -> str:
    """
    A key path as TOML would write it: C{programs.web.command[0]}, with
    quotes around keys that are not bare (C{programs."a.b".cwd}).
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        if not part or any(
            not (c.isascii() and (c.isalnum() or c in "_-")) for c in part
        ):
            part = '"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out += ("." if out else "") + part
    return out
