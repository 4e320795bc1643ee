"""
The supervisor's config reference (C{docs/reference/supervise-config.rst})
says what the loader does: its tables list exactly the keys of
L{txspawn.supervise.CONFIG_SCHEMA}, each with the schema's type, default
and meaning; the defaults it lists are the ones the loader applies; and the
errors it shows are the ones its example config gets.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator

from twisted.trial.unittest import SynchronousTestCase

from txspawn.supervise import CONFIG_SCHEMA, ConfigErrors, loadConfig, parseConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(ROOT, "docs", "reference", "supervise-config.rst")
BAD = os.path.join(ROOT, "docs", "howto", "listings", "sv_bad.toml")

#: The header of every reference table on the page.
HEADER = ["key", "type", "default", "meaning"]
#: What the page writes for "no default".
NO_DEFAULT = "\N{EM DASH}"
#: The tables whose defaults apply only when the table is given: a spawn
#: option is not set at all (no namespace, no cgroup) when it is absent.
OPTION_TABLES = ("programs.NAME.spawn.namespaces", "programs.NAME.spawn.cgroup")


def _words(text: str) -> str:
    """
    C{text} with its whitespace (line breaks of a table cell) made single
    spaces.
    """
    return " ".join(text.split())


def _tablePath(title: str) -> str | None:
    """
    The schema path of the TOML table a section is about, from its title:
    C{``[programs.NAME.stop]``} -> C{programs.NAME.stop}; C{Top level} ->
    the document's (C{""}); C{None} for any other section.
    """
    if title == "Top level":
        return ""
    found = re.fullmatch(r"``\[([\w.]+)\]``", title)
    return found.group(1) if found else None


def _columns(border: str) -> list[tuple[int, int | None]]:
    """
    The spans of a simple table's columns, from its border line (the last
    column runs to the end of the line).
    """
    spans = [match.span() for match in re.finditer(r"=+", border)]
    return [(begin, end) for begin, end in spans[:-1]] + [(spans[-1][0], None)]


def _cells(line: str, columns: list[tuple[int, int | None]]) -> list[str]:
    """
    One line of a simple table, cut into its columns.
    """
    return [line[begin:end].strip() for begin, end in columns]


def _simpleTables(lines: list[str]) -> Iterator[tuple[str, list[list[str]]]]:
    """
    The simple tables of a page (reStructuredText's C{=====} tables), each
    with the title of the section it is in and its rows (a row continued on
    the next lines, whose first cell is empty, joined), header first.
    The page is read as text: the test extra has no reStructuredText
    parser.
    """
    title = ""
    index = 0
    border = re.compile(r"=+( +=+)+")
    while index < len(lines):
        line = lines[index]
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if line.strip() and re.fullmatch(r"-{3,}", following):
            title = line.strip()
        if not border.fullmatch(line):
            index += 1
            continue
        columns = _columns(line)
        rows: list[list[str]] = []
        borders = 1
        index += 1
        while borders < 3:
            row = lines[index]
            index += 1
            if border.fullmatch(row):
                borders += 1
            elif rows and borders == 2 and not _cells(row, columns)[0]:
                rows[-1] = [
                    f"{old} {new}".strip()
                    for old, new in zip(rows[-1], _cells(row, columns), strict=True)
                ]
            else:
                rows.append(_cells(row, columns))
        yield title, rows


def _literal(text: str) -> str:
    """
    C{text} without the inline literal markup around it.
    """
    return text[2:-2] if text.startswith("``") and text.endswith("``") else text


def documentedKeys() -> dict[str, tuple[str, str | None, str]]:
    """
    Every key the reference lists, by its schema path, as (type, default
    as TOML text or C{None}, meaning).
    """
    with open(PAGE, encoding="utf-8") as page:
        lines = page.read().splitlines()
    found: dict[str, tuple[str, str | None, str]] = {}
    for title, (header, *rows) in _simpleTables(lines):
        if header != HEADER:
            continue
        path = _tablePath(title)
        assert path is not None, f"a table of keys under {title!r}"
        for key, kind, default, meaning in rows:
            key = _literal(key)
            full = f"{path}.{key}" if path else key
            assert full not in found, f"{full} listed twice"
            found[full] = (
                kind,
                None if default == NO_DEFAULT else _literal(default),
                _words(meaning),
            )
    return found


class ReferenceMatchesSchemaTests(SynchronousTestCase):
    """
    The reference's tables are the schema's.
    """

    def setUp(self) -> None:
        self.documented = documentedKeys()
        self.schema = {entry.key: entry for entry in CONFIG_SCHEMA}

    def test_sameKeys(self) -> None:
        """
        Every key of the schema is listed, and nothing else.
        """
        documented = set(self.documented)
        schema = set(self.schema)
        self.assertEqual(
            (sorted(schema - documented), sorted(documented - schema)),
            ([], []),
            "(missing from the reference, not in the schema)",
        )

    def assertColumn(self, column: int, fromSchema: Callable[[str], object]) -> None:
        """
        One column of the reference's tables is the schema's, key by key.

        @param column: 0 for the type, 1 the default, 2 the meaning.
        @param fromSchema: The schema's value, from a key.
        """
        differ = {
            key: {"reference": row[column], "schema": fromSchema(key)}
            for key, row in self.documented.items()
            if key in self.schema and row[column] != fromSchema(key)
        }
        self.assertEqual(differ, {})

    def test_types(self) -> None:
        """
        Each key's type is the schema's.
        """
        self.assertColumn(0, lambda key: self.schema[key].type.name)

    def test_defaults(self) -> None:
        """
        Each key's default is the schema's (C{None}: none).
        """
        self.assertColumn(1, lambda key: self.schema[key].default)

    def test_meanings(self) -> None:
        """
        Each key's meaning is the schema's.
        """
        self.assertColumn(2, lambda key: _words(self.schema[key].meaning))


def _withDefaults(prefix: str, keep: str = "") -> str:
    """
    The TOML of every table under C{prefix} that has keys with defaults,
    each key set to the default the reference lists.

    @param prefix: A schema path: only the keys under it.
    @param keep: TOML to add to the C{[programs.p]} table.
    """
    tables: dict[str, list[str]] = {}
    for key, (_, default, _) in documentedKeys().items():
        if default is None or not key.startswith(prefix):
            continue
        table, _, name = key.rpartition(".")
        if any(key.startswith(option + ".") for option in OPTION_TABLES) and not (
            prefix.startswith(table)
        ):
            continue
        value = default.replace("NAME", "p")
        tables.setdefault(table, []).append(f"{name} = {value}")
    lines = ['[programs.p]\ncommand = "true"', keep]
    for table, keys in tables.items():
        header = table.replace("NAME", "p")
        if header == "programs.p":
            lines += keys
        else:
            lines += [f"[{header}]", *keys]
    return "\n".join(lines) + "\n"


class DefaultsAreTheLoadersTests(SynchronousTestCase):
    """
    A config that sets every key to the default the reference lists loads
    to the same config as one that leaves them out.
    """

    def assertSameConfig(self, explicit: str, implicit: str) -> None:
        """
        Both texts load to equal configs.
        """
        environ = {"HOME": "/nonexistent"}
        self.assertEqual(
            parseConfig(explicit, baseDir=ROOT, environ=environ),
            parseConfig(implicit, baseDir=ROOT, environ=environ),
            explicit,
        )

    def test_supervisor(self) -> None:
        """
        C{[supervisor]}'s defaults.
        """
        self.assertSameConfig(
            _withDefaults("supervisor."), '[programs.p]\ncommand = "true"\n'
        )

    def test_program(self) -> None:
        """
        The defaults of a program's keys and tables but the spawn options
        set only by their table (namespaces, cgroup).
        """
        self.assertSameConfig(
            _withDefaults("programs.NAME."), '[programs.p]\ncommand = "true"\n'
        )

    def test_namespaces(self) -> None:
        """
        C{[programs.NAME.spawn.namespaces]}'s defaults, for a user
        namespace.
        """
        prefix = "programs.NAME.spawn.namespaces"
        table = "[programs.p.spawn.namespaces]\nuser = true\n"
        explicit = _withDefaults(prefix + ".").replace(
            "[programs.p.spawn.namespaces]\n", table
        )
        explicit = explicit.replace("\nuser = false", "")
        self.assertSameConfig(explicit, '[programs.p]\ncommand = "true"\n' + table)

    def test_cgroup(self) -> None:
        """
        C{[programs.NAME.spawn.cgroup]}'s defaults.
        """
        prefix = "programs.NAME.spawn.cgroup"
        self.assertSameConfig(
            _withDefaults(prefix + "."),
            '[programs.p]\ncommand = "true"\n[programs.p.spawn.cgroup]\n',
        )


class ErrorsShownTests(SynchronousTestCase):
    """
    The errors the page shows for its example config are the loader's.
    """

    def test_badConfig(self) -> None:
        """
        C{sv_bad.toml} is refused with the page's four errors, in order.
        """
        with self.assertRaises(ConfigErrors) as raised:
            loadConfig(BAD, environ={})
        lines = str(raised.exception).replace(BAD, "sv_bad.toml").splitlines()
        self.assertEqual(len(lines), 4)
        with open(PAGE, encoding="utf-8") as page:
            shown = [line.strip() for line in page]
        start = shown.index(lines[0])
        self.assertEqual(shown[start : start + 4], lines)


def _tomlBlocks(path: str) -> list[str]:
    """
    The C{.. code-block:: toml} examples of a page, each as TOML text.
    """
    with open(path, encoding="utf-8") as page:
        lines = page.read().splitlines()
    blocks: list[str] = []
    for index, line in enumerate(lines):
        if line.strip() != ".. code-block:: toml":
            continue
        block: list[str] = []
        for following in lines[index + 2 :]:
            if following and not following.startswith("    "):
                break
            block.append(following[4:])
        blocks.append("\n".join(block).strip() + "\n")
    return blocks


class ExamplesLoadTests(SynchronousTestCase):
    """
    The TOML examples of the supervisor's pages are valid configs.
    """

    def test_examples(self) -> None:
        """
        Every C{code-block:: toml} of the reference, the tutorial and the
        migration page loads, its C{${VAR}}s set.
        """
        pages = [
            PAGE,
            os.path.join(ROOT, "docs", "howto", "supervise.rst"),
            os.path.join(ROOT, "docs", "howto", "migrating.rst"),
        ]
        blocks = [block for page in pages for block in _tomlBlocks(page)]
        self.assertGreaterEqual(len(blocks), 3)
        for block in blocks:
            environ = {name: "8000" for name in re.findall(r"\$\{(\w+)\}", block)}
            parseConfig(block, baseDir=ROOT, environ=environ)
