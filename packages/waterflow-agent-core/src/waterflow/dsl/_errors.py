"""Problems found in a workflow file, and the error that carries them."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import attrs


def _one_line(text: str) -> str:
    return " ".join(text.splitlines()) if text else text


@attrs.frozen(order=True)
class Problem:
    """One thing wrong with a workflow file, at a 1-based line and column.

    `str(problem)` is `file:line:col: message`, always on one line. A problem with no place in
    the text (the file cannot be read; an input given on the command line is unknown) has
    line and column 0 and reads `file: message`.
    """

    file: str
    line: int
    col: int
    message: str = attrs.field(converter=_one_line)

    def __str__(self) -> str:
        if self.line <= 0:
            return _one_line(f"{self.file}: {self.message}")
        return _one_line(f"{self.file}:{self.line}:{self.col}: {self.message}")


class WorkflowError(Exception):
    """A workflow file that cannot be run; `problems` lists every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


def quote(value: object, limit: int = 60) -> str:
    """`value` quoted for a message: one line, shortened when long."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return repr(text)


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice `name` most likely misspells, if any is close enough."""
    options = [c for c in choices if isinstance(c, str)]
    match = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if match:
        return match[0]
    lowered = {c.lower(): c for c in options}
    return lowered.get(name.lower())


def suggest(name: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest of `choices`, or an empty string."""
    match = closest(name, choices)
    return f" (did you mean {match!r}?)" if match else ""
