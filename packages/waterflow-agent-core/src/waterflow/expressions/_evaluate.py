"""Evaluates a parsed expression against contexts. Pure: no I/O, no clock, no global state."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from waterflow.expressions._ast import (
    And,
    Call,
    Compare,
    ContextRef,
    Expr,
    Filter,
    Index,
    Literal,
    Not,
    Or,
    Property,
    walk,
)
from waterflow.expressions._errors import ExpressionError
from waterflow.expressions._functions import PURE_FUNCTIONS, STATUS_FUNCTIONS
from waterflow.expressions._parser import parse
from waterflow.expressions._values import (
    MISSING,
    children,
    compare,
    index,
    is_truthy,
    lookup,
    loose_equal,
    to_string,
)

STATUSES = ("success", "failure", "cancelled")
HASHFILES_UNAVAILABLE = "hashFiles is only available on the agent, inside a step"

HashFiles = Callable[[list[str]], str]


@attrs.frozen
class _Scope:
    contexts: Mapping[str, Any]
    status: str
    hash_files: HashFiles | None


def check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")


def as_expr(expr: Expr | str) -> Expr:
    return parse(expr) if isinstance(expr, str) else expr


def evaluate(
    expr: Expr | str,
    contexts: Mapping[str, Any],
    *,
    status: str = "success",
    hash_files: HashFiles | None = None,
) -> Any:
    """The value of one expression (written without `${{ }}`).

    `contexts` maps top-level names (`github`, `steps`, ...) to JSON-like values; names are
    matched ignoring case and an unknown one is null. `status` is the job's status so far, for
    `success()`, `failure()` and `cancelled()`. `hash_files` computes `hashFiles(...)`; without
    it that call is an `ExpressionError`.
    """
    check_status(status)
    return _eval(as_expr(expr), _Scope(contexts, status, hash_files))


def referenced_contexts(expr: Expr | str) -> set[str]:
    """The top-level names an expression reads, lowercased: `{'steps', 'secrets'}`."""
    return {n.name.lower() for n, _ in walk(as_expr(expr)) if isinstance(n, ContextRef)}


def calls_status_function(expr: Expr | str) -> bool:
    """Whether the expression calls success(), always(), failure() or cancelled()."""
    return any(isinstance(n, Call) and n.name in STATUS_FUNCTIONS for n, _ in walk(as_expr(expr)))


def _eval(node: Expr, scope: _Scope) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, ContextRef):
        value = lookup(scope.contexts, node.name)
        return None if value is MISSING else value
    if isinstance(node, Property | Index | Filter):
        return _access(node, scope)[0]
    if isinstance(node, Not):
        return not is_truthy(_eval(node.operand, scope))
    if isinstance(node, Compare):
        left, right = _eval(node.left, scope), _eval(node.right, scope)
        if node.op == "==":
            return loose_equal(left, right)
        if node.op == "!=":
            return not loose_equal(left, right)
        return compare(node.op, left, right)
    if isinstance(node, And):
        for operand in node.operands:
            value = _eval(operand, scope)
            if not is_truthy(value):
                return value
        return value
    if isinstance(node, Or):
        for operand in node.operands:
            value = _eval(operand, scope)
            if is_truthy(value):
                return value
        return value
    if isinstance(node, Call):
        return _call(node, scope)
    raise TypeError(f"not an expression node: {node!r}")


def _access(node: Expr, scope: _Scope) -> tuple[Any, bool]:
    """The value of a `.`/`[ ]`/`*` chain, and whether it is the array a `*` made: an access
    on that array applies to each of its items, keeping the ones that have the key."""
    if not isinstance(node, Property | Index | Filter):
        return _eval(node, scope), False
    base, filtered = _access(node.target, scope)
    if isinstance(node, Filter):
        if not filtered:
            items = children(base)
            return (None, False) if items is None else (items, True)
        return [child for item in base for child in (children(item) or ())], True
    key = node.name if isinstance(node, Property) else _eval(node.index, scope)
    if not filtered:
        value = index(base, key)
        return (None if value is MISSING else value), False
    found = (index(item, key) for item in base)
    return [value for value in found if value is not MISSING], True


def _call(node: Call, scope: _Scope) -> Any:
    name = node.name
    if name == "success":
        return scope.status == "success"
    if name == "failure":
        return scope.status == "failure"
    if name == "cancelled":
        return scope.status == "cancelled"
    if name == "always":
        return True
    args = [_eval(arg, scope) for arg in node.args]
    if name == "hashFiles":
        if scope.hash_files is None:
            raise ExpressionError(HASHFILES_UNAVAILABLE, node.offset)
        return scope.hash_files([to_string(arg) for arg in args])
    try:
        return PURE_FUNCTIONS[name](args)
    except ExpressionError as e:
        raise ExpressionError(e.message, node.offset) from None
