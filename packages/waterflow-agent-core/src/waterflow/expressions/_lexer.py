"""Splits an expression into tokens, one at a time, as the parser asks for them."""

from __future__ import annotations

import math
from typing import Any

import attrs

from waterflow.expressions._errors import syntax_error
from waterflow.expressions._values import normalize_number, parse_number

# Token kinds are their own spelling for punctuation and operators, plus these words.
NUMBER = "number"
STRING = "string"
IDENT = "identifier"
END = "end"
INVALID = "invalid"  # a character no token starts with; the parser says what it expected

COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
# After these a `.` starts a number (`.5`), elsewhere it is a property access.
_VALUE_EXPECTED_AFTER = frozenset({None, "(", "[", ",", "!", "&&", "||", *COMPARISONS})
# Where a number token stops (it runs on through letters and dots, then is checked whole).
_NUMBER_STOPS = frozenset("()[],!<>=&|'\"*")
_SINGLE = frozenset("()[],*")


@attrs.frozen
class Token:
    kind: str
    text: str
    offset: int
    value: Any = None

    def describe(self) -> str:
        if self.kind == END:
            return "end of expression"
        # Escaped: a line break inside a string would break the error's one line.
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in self.text)
        text = text if len(text) <= 30 else text[:27] + "..."
        if self.kind == STRING:
            return f"string {text}"
        if self.kind == NUMBER:
            return f"number {text}"
        return f"'{text}'"


class Lexer:
    def __init__(self, source: str) -> None:
        self._source = source
        self._pos = 0
        self._last: str | None = None

    def next(self) -> Token:
        token = self._read()
        self._last = token.kind
        return token

    def _read(self) -> Token:
        s, i, n = self._source, self._pos, len(self._source)
        while i < n and s[i].isspace():
            i += 1
        if i >= n:
            self._pos = n
            return Token(END, "", n)
        char = s[i]
        if char == "'":
            return self._string(i)
        if char in "0123456789+-" or (char == "." and self._last in _VALUE_EXPECTED_AFTER):
            return self._number(i)
        if char.isalpha() or char == "_":
            j = i + 1
            while j < n and (s[j].isalnum() or s[j] in "_-"):
                j += 1
            return self._take(IDENT, i, j)
        if char in _SINGLE or char == ".":
            return self._take(char, i, i + 1)
        two = s[i : i + 2]
        if two in ("==", "!=", "<=", ">=", "&&", "||"):
            return self._take(two, i, i + 2)
        if char in "!<>":
            return self._take(char, i, i + 1)
        if char in "=&|":
            raise syntax_error(f"unexpected '{char}'", i, f"expected '{char * 2}'")
        if char == '"':
            raise syntax_error("unexpected '\"'", i, "expected a value (strings use single quotes)")
        if s.startswith("${{", i):
            raise syntax_error(
                "unexpected '${{'", i, "expected an expression without '${{ }}' around it"
            )
        return self._take(INVALID, i, i + 1)

    def _take(self, kind: str, start: int, end: int, value: Any = None) -> Token:
        self._pos = end
        return Token(kind, self._source[start:end], start, value)

    def _string(self, start: int) -> Token:
        s, n = self._source, len(self._source)
        parts: list[str] = []
        i = start + 1
        while True:
            close = s.find("'", i)
            if close < 0:
                raise syntax_error("unterminated string", start, "expected a closing quote (')")
            parts.append(s[i:close])
            if close + 1 < n and s[close + 1] == "'":
                parts.append("'")
                i = close + 2
                continue
            return self._take(STRING, start, close + 1, "".join(parts))

    def _number(self, start: int) -> Token:
        s, n = self._source, len(self._source)
        j = start + 1
        while j < n and not s[j].isspace() and s[j] not in _NUMBER_STOPS:
            j += 1
        text = s[start:j]
        value = parse_number(text)
        if math.isnan(value):
            raise syntax_error(
                f"invalid number '{text}'", start, "expected a number such as 42, -1.5, 1e3 or 0xff"
            )
        return self._take(NUMBER, start, j, normalize_number(value))
