"""The one error the expression language raises."""

from __future__ import annotations


class ExpressionError(Exception):
    """A bad expression: a syntax error, an unknown function, or a failure while evaluating.

    `message` is one line and is also what `str()` gives. `offset` is a 0-based index into the
    text that was given (the expression for `parse`/`evaluate`, the whole string for `render`,
    `find_expressions` and `evaluate_condition`), so a caller can turn it into a line and
    column. Syntax errors also say where in their text, counting from 1 like GitHub does:
    `unexpected ')' at position 12; expected a value` has `offset == 11`. Errors raised while
    evaluating (`format()`, `fromJSON()`, `hashFiles()`) name the function instead and point
    `offset` at the call.
    """

    message: str
    offset: int

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self._parts: tuple[str, str] | None = None

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[type[ExpressionError], tuple[str, int]]:
        return (type(self), (self.message, self.offset))


def syntax_error(reason: str, offset: int, expected: str = "") -> ExpressionError:
    """`<reason> at position <offset + 1>; <expected>`, rebuilt when the offset is shifted."""
    text = f"{reason} at position {offset + 1}"
    if expected:
        text += f"; {expected}"
    error = ExpressionError(text, offset)
    error._parts = (reason, expected)
    return error


def shifted(error: ExpressionError, delta: int) -> ExpressionError:
    """The same error with its offset moved by `delta` (an expression found inside a string)."""
    if error._parts is not None:
        reason, expected = error._parts
        return syntax_error(reason, error.offset + delta, expected)
    return ExpressionError(error.message, error.offset + delta)
