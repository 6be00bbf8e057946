"""Where a key is in the file: a key path (pydantic's ``loc``) -> its 1-based line.

tomllib gives values, never positions, and no maintained TOML library on our dependency list
reports them for every key (tomlkit keeps a document tree but no line numbers). So this is a
small scanner of TOML's structure: table headers, arrays of tables, dotted keys, inline tables
and arrays, strings of all four kinds, comments. It runs only after tomllib accepted the text,
so it can trust the syntax and never has to report an error of its own.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

Loc = tuple[str | int, ...]

_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_SCALAR_END = frozenset(",]}\r\n#")


def key_lines(text: str) -> dict[Loc, int]:
    """Every key path in ``text`` -> the line it is first written on.

    ``[[targets]]`` number n is ``("targets", n)`` (its header line); a key inside it is
    ``("targets", n, "model")``; an array element is indexed like that too, and a dotted key
    ``spc.transform = "log"`` gives both ``("spc",)`` and ``("spc", "transform")``.
    """
    return _Scanner(text).scan()


def line_of(lines: dict[Loc, int], loc: Loc) -> int | None:
    """The line of ``loc``, or of the nearest enclosing table written in the file."""
    for n in range(len(loc), 0, -1):
        line = lines.get(loc[:n])
        if line is not None:
            return line
    return None


def dotted(loc: Loc) -> str:
    """``("targets", 2, "model")`` -> ``targets[2].model``: how the user names a key."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def describe(path: Path, text: str, loc: Loc, message: str) -> str:
    """The one line the user reads: ``file:line: key: what is wrong``."""
    line = line_of(key_lines(text), loc)
    location = f"{path}:{line}" if line is not None else str(path)
    return f"{location}: {dotted(loc)}: {message}"


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[Loc, int] = {}
        #: each array of tables -> the index of its last [[header]] so far
        self.arrays: dict[Loc, int] = {}

    def scan(self) -> dict[Loc, int]:
        table: Loc = ()
        while True:
            self._skip(newlines=True)
            if self.pos >= len(self.text):
                return self.lines
            start = self.pos
            if self._peek() == "[":
                table = self._header()
            else:
                self._keyval(table)
            if self.pos == start:  # cannot happen in valid TOML; never loop forever on it
                self._advance(1)

    # -- structure

    def _header(self) -> Loc:
        line = self.line
        double = self.text.startswith("[[", self.pos)
        self._advance(2 if double else 1)
        parts = self._key()
        self._skip(newlines=False)
        self._advance(2 if double else 1)
        path: Loc = ()
        for n, part in enumerate(parts):
            path = (*path, part)
            if double and n == len(parts) - 1:
                self._mark(path, line)
                index = self.arrays.get(path, -1) + 1
                self.arrays[path] = index
                path = (*path, index)
            elif path in self.arrays:  # [[targets]] then [targets.extra]: the latest entry
                path = (*path, self.arrays[path])
            self._mark(path, line)
        return path

    def _keyval(self, table: Loc) -> None:
        line = self.line
        path = table
        for part in self._key():
            path = (*path, part)
            self._mark(path, line)
        self._skip(newlines=False)
        self._advance(1)  # "="
        self._skip(newlines=False)
        self._value(path)

    def _value(self, path: Loc) -> None:
        char = self._peek()
        if char == "{":
            self._advance(1)
            while True:
                self._skip(newlines=True)
                if self._peek() in ("}", ""):
                    self._advance(1)
                    return
                start = self.pos
                self._keyval(path)
                self._skip(newlines=True)
                if self._peek() == "," or self.pos == start:
                    self._advance(1)
        elif char == "[":
            self._advance(1)
            index = 0
            while True:
                self._skip(newlines=True)
                if self._peek() in ("]", ""):
                    self._advance(1)
                    return
                start = self.pos
                self._mark((*path, index), self.line)
                self._value((*path, index))
                index += 1
                self._skip(newlines=True)
                if self._peek() == "," or self.pos == start:
                    self._advance(1)
        elif char in ('"', "'"):
            self._string()
        else:
            while self.pos < len(self.text) and self._peek() not in _SCALAR_END:
                self._advance(1)

    def _key(self) -> list[str]:
        """A key, dotted or not, each part decoded (quoted parts may hold dots and escapes)."""
        parts = []
        while True:
            self._skip(newlines=False)
            start = self.pos
            if self._peek() in ('"', "'"):
                self._string()
                parts.append(tomllib.loads(f"k = {self.text[start : self.pos]}")["k"])
            else:
                while self.pos < len(self.text) and self._peek() in _BARE:
                    self._advance(1)
                parts.append(self.text[start : self.pos])
            self._skip(newlines=False)
            if self._peek() != ".":
                return parts
            self._advance(1)

    def _string(self) -> None:
        quote = self._peek()
        triple = self.text.startswith(quote * 3, self.pos)
        self._advance(3 if triple else 1)
        closing = quote * 3 if triple else quote
        while self.pos < len(self.text):
            if quote == '"' and self._peek() == "\\":
                self._advance(2)
            elif self.text.startswith(closing, self.pos):
                self._advance(len(closing))
                if triple:  # up to two more quotes belong to the content: """a""""" is 'a""'
                    while self._peek() == quote:
                        self._advance(1)
                return
            else:
                self._advance(1)

    # -- characters

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _advance(self, count: int) -> None:
        end = min(self.pos + count, len(self.text))
        self.line += self.text.count("\n", self.pos, end)
        self.pos = end

    def _skip(self, *, newlines: bool) -> None:
        """Blanks and comments; line ends too when ``newlines``."""
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in " \t" or (newlines and char in "\r\n"):
                self._advance(1)
            elif char == "#":
                end = self.text.find("\n", self.pos)
                self._advance((len(self.text) if end < 0 else end) - self.pos)
            else:
                return

    def _mark(self, path: Loc, line: int) -> None:
        self.lines.setdefault(path, line)
