"""What the tests see of a step they ran (the `run` fixture's result)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import attrs


@attrs.frozen
class Ran:
    """A step as its user sees it: outputs, or the error (one line), the message the failure
    carries (the error and the log's tail), whether a retry policy applies, and its log file."""

    outputs: dict[str, str]
    error: str | None
    message: str
    retryable: bool
    log: str

    def assert_hides(self, *values: str) -> None:
        shown = json.dumps(attrs.asdict(self))
        for value in values:
            assert value not in shown, f"{value!r} shown"


Run = Callable[..., Awaitable[Ran]]
