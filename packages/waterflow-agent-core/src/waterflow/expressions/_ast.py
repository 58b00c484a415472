"""The syntax tree. Every node knows `offset`, where its text starts in the expression."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs


@attrs.frozen
class Expr:
    """A parsed expression, from `parse`. Immutable, so one may be cached and shared."""

    offset: int


@attrs.frozen
class Literal(Expr):
    value: Any


@attrs.frozen
class ContextRef(Expr):
    """A top-level name such as `github` or `steps`, as written."""

    name: str


@attrs.frozen
class Property(Expr):
    """`target.name`."""

    target: Expr
    name: str


@attrs.frozen
class Index(Expr):
    """`target[index]`."""

    target: Expr
    index: Expr


@attrs.frozen
class Filter(Expr):
    """`target.*` or `target[*]`."""

    target: Expr


@attrs.frozen
class Not(Expr):
    operand: Expr


@attrs.frozen
class Compare(Expr):
    """`== != < <= > >=`."""

    op: str
    left: Expr
    right: Expr


@attrs.frozen
class And(Expr):
    operands: tuple[Expr, ...]


@attrs.frozen
class Or(Expr):
    operands: tuple[Expr, ...]


@attrs.frozen
class Call(Expr):
    """A function call; `name` is the function's canonical spelling (`startsWith`)."""

    name: str
    args: tuple[Expr, ...]


def child_nodes(node: Expr) -> tuple[Expr, ...]:
    if isinstance(node, Property | Filter):
        return (node.target,)
    if isinstance(node, Index):
        return (node.target, node.index)
    if isinstance(node, Not):
        return (node.operand,)
    if isinstance(node, Compare):
        return (node.left, node.right)
    if isinstance(node, And | Or):
        return node.operands
    if isinstance(node, Call):
        return node.args
    return ()


def walk(node: Expr) -> Iterator[tuple[Expr, int]]:
    """Every node under `node` (itself included) with its depth, 1 for `node`."""
    stack = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        yield current, depth
        stack.extend((child, depth + 1) for child in reversed(child_nodes(current)))
