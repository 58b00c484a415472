"""`${{ }}` inside strings: finding them, rendering them, and `if:` conditions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from waterflow.expressions._ast import Expr
from waterflow.expressions._errors import ExpressionError, shifted, syntax_error
from waterflow.expressions._evaluate import (
    HashFiles,
    calls_status_function,
    check_status,
    evaluate,
)
from waterflow.expressions._parser import parse
from waterflow.expressions._values import is_truthy, to_string

OPEN = "${{"
CLOSE = "}}"


class Span(NamedTuple):
    """One `${{ ... }}` in a string: `template[start:end]` is all of it, and `source` is the
    text between the braces (at `start + 3`), not stripped."""

    start: int
    end: int
    source: str


def is_template(value: str) -> bool:
    """Whether the string holds an expression, i.e. contains `${{`."""
    return OPEN in value


def find_expressions(template: str) -> list[Span]:
    """Every `${{ ... }}` in the string, in order. A `}}` inside a quoted string literal does
    not close an expression; a `${{` that is never closed is an `ExpressionError`."""
    spans: list[Span] = []
    pos = 0
    while (start := template.find(OPEN, pos)) >= 0:
        i, n = start + len(OPEN), len(template)
        in_string = False
        while i < n:
            char = template[i]
            if char == "'":
                in_string = not in_string  # '' inside a string toggles twice
            elif not in_string and template.startswith(CLOSE, i):
                break
            i += 1
        else:
            raise syntax_error(
                "unterminated '${{'",
                start,
                "expected '}}'" + (" (a string inside is not closed)" if in_string else ""),
            )
        spans.append(Span(start, i + len(CLOSE), template[start + len(OPEN) : i]))
        pos = i + len(CLOSE)
    return spans


def _parse_span(span: Span) -> Expr:
    try:
        return parse(span.source)
    except ExpressionError as e:
        raise shifted(e, span.start + len(OPEN)) from None


def _whole(template: str, spans: list[Span]) -> Span | None:
    """The one span that is all of the string but whitespace, if there is one."""
    if len(spans) == 1:
        span = spans[0]
        if not template[: span.start].strip() and not template[span.end :].strip():
            return span
    return None


def render(
    template: str,
    contexts: Mapping[str, Any],
    *,
    status: str = "success",
    hash_files: HashFiles | None = None,
) -> Any:
    """Evaluates the expressions in a string.

    A string that is one `${{ expr }}` (whitespace around it allowed) gives the expression's
    value with its type (a number, an object, ...); otherwise each expression's value is
    converted to a string in place. A string without `${{` comes back unchanged. Errors carry
    offsets into `template`.
    """
    check_status(status)
    spans = find_expressions(template)
    if not spans:
        return template
    exprs = [_parse_span(span) for span in spans]

    def value(i: int) -> Any:
        try:
            return evaluate(exprs[i], contexts, status=status, hash_files=hash_files)
        except ExpressionError as e:
            raise shifted(e, spans[i].start + len(OPEN)) from None

    if _whole(template, spans) is not None:
        return value(0)
    parts: list[str] = []
    pos = 0
    for i, span in enumerate(spans):
        parts.append(template[pos : span.start])
        parts.append(to_string(value(i)))
        pos = span.end
    parts.append(template[pos:])
    return "".join(parts)


def render_string(
    template: str,
    contexts: Mapping[str, Any],
    *,
    status: str = "success",
    hash_files: HashFiles | None = None,
) -> str:
    """`render`, then converted to a string (null → '', objects → JSON)."""
    return to_string(render(template, contexts, status=status, hash_files=hash_files))


def render_tree(
    value: Any,
    contexts: Mapping[str, Any],
    *,
    status: str = "success",
    hash_files: HashFiles | None = None,
) -> Any:
    """`render` every string inside lists and mappings (a step's `with:`, a matrix)."""
    if isinstance(value, str):
        return render(value, contexts, status=status, hash_files=hash_files)
    if isinstance(value, list):
        return [render_tree(v, contexts, status=status, hash_files=hash_files) for v in value]
    if isinstance(value, dict):
        return {
            k: render_tree(v, contexts, status=status, hash_files=hash_files)
            for k, v in value.items()
        }
    return value


def evaluate_condition(
    condition: str | bool | None,
    contexts: Mapping[str, Any],
    *,
    status: str = "success",
    hash_files: HashFiles | None = None,
) -> bool:
    """Whether an `if:` holds.

    None (no `if:`) or a blank string means `success()`. The text may be wrapped in `${{ }}`
    or not. As on GitHub, a condition that calls none of success(), always(), failure() and
    cancelled() is `success() && (condition)`, so it is false once the job has failed. Text
    mixing `${{ }}` with other text is rendered as a string, which is true when not empty (as
    GitHub does, although it is rarely what the author meant).
    """
    check_status(status)
    if condition is None or isinstance(condition, bool):
        return status == "success" and condition is not False
    if not condition.strip():
        return status == "success"
    spans = find_expressions(condition)
    whole = _whole(condition, spans)
    if whole is not None:
        expr = _parse_span(whole)
    elif spans:
        exprs = [_parse_span(span) for span in spans]
        if not any(calls_status_function(e) for e in exprs) and status != "success":
            return False
        text = render_string(condition, contexts, status=status, hash_files=hash_files)
        return is_truthy(text)
    else:
        expr = parse(condition)
    if not calls_status_function(expr) and status != "success":
        return False
    try:
        return is_truthy(evaluate(expr, contexts, status=status, hash_files=hash_files))
    except ExpressionError as e:
        raise (shifted(e, whole.start + len(OPEN)) if whole is not None else e) from None
