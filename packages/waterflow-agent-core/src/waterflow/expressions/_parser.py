"""Recursive-descent parser for GitHub's expression grammar.

Precedence, loosest first: `||`, `&&`, `== !=`, `< <= > >=`, `!`, then `.` `[ ]` and calls.
"""

from __future__ import annotations

import functools
from typing import NoReturn

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
from waterflow.expressions._errors import syntax_error
from waterflow.expressions._functions import FUNCTIONS, FormatError, parse_format
from waterflow.expressions._lexer import END, IDENT, NUMBER, STRING, Lexer, Token

MAX_DEPTH = 50
"""How deeply an expression may nest, as on GitHub; `a || b || c` counts as one level."""

_KEYWORDS = {
    "true": True,
    "false": False,
    "null": None,
    "NaN": float("nan"),
    "Infinity": float("inf"),
}


@functools.lru_cache(maxsize=1024)
def parse(source: str) -> Expr:
    """Parses one expression, written without `${{ }}`.

    Raises `ExpressionError` (with the offset into `source`) for a syntax error, an unknown
    function, a wrong number of arguments, or a literal `format()` string that cannot work.
    """
    return _Parser(source).parse()


class _Parser:
    def __init__(self, source: str) -> None:
        self._lexer = Lexer(source)
        self._token = self._lexer.next()
        self._nesting = 0

    def parse(self) -> Expr:
        if self._token.kind == END:
            raise syntax_error("empty expression", self._token.offset, "expected a value")
        expr = self._or()
        if self._token.kind != END:
            self._fail("expected an operator or the end of the expression")
        for node, depth in walk(expr):
            if depth > MAX_DEPTH:
                self._too_deep(node.offset)
        return expr

    # -- helpers -------------------------------------------------------------------------------

    def _advance(self) -> Token:
        token = self._token
        self._token = self._lexer.next()
        return token

    def _fail(self, expected: str) -> NoReturn:
        raise syntax_error(f"unexpected {self._token.describe()}", self._token.offset, expected)

    def _expect(self, kind: str, expected: str) -> Token:
        if self._token.kind != kind:
            self._fail(expected)
        return self._advance()

    def _too_deep(self, offset: int) -> NoReturn:
        raise syntax_error(
            "expression nested too deeply", offset, f"expected at most {MAX_DEPTH} levels"
        )

    def _enter(self, opening: Token) -> None:
        self._nesting += 1
        if self._nesting > MAX_DEPTH:
            self._too_deep(opening.offset)

    def _leave(self) -> None:
        self._nesting -= 1

    # -- grammar -------------------------------------------------------------------------------

    def _or(self) -> Expr:
        operands = [self._and()]
        while self._token.kind == "||":
            self._advance()
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else Or(operands[0].offset, tuple(operands))

    def _and(self) -> Expr:
        operands = [self._equality()]
        while self._token.kind == "&&":
            self._advance()
            operands.append(self._equality())
        return operands[0] if len(operands) == 1 else And(operands[0].offset, tuple(operands))

    def _equality(self) -> Expr:
        left = self._relational()
        while self._token.kind in ("==", "!="):
            op = self._advance().kind
            left = Compare(left.offset, op, left, self._relational())
        return left

    def _relational(self) -> Expr:
        left = self._unary()
        while self._token.kind in ("<", "<=", ">", ">="):
            op = self._advance().kind
            left = Compare(left.offset, op, left, self._unary())
        return left

    def _unary(self) -> Expr:
        if self._token.kind != "!":
            return self._postfix()
        bang = self._advance()
        self._enter(bang)
        operand = self._unary()
        self._leave()
        return Not(bang.offset, operand)

    def _postfix(self) -> Expr:
        expr = self._primary()
        while True:
            if self._token.kind == ".":
                self._advance()
                if self._token.kind == IDENT:
                    expr = Property(expr.offset, expr, self._advance().text)
                elif self._token.kind == "*":
                    self._advance()
                    expr = Filter(expr.offset, expr)
                else:
                    self._fail("expected a property name or '*' after '.'")
            elif self._token.kind == "[":
                bracket = self._advance()
                if self._token.kind == "*":
                    self._advance()
                    self._expect("]", "expected ']' after '[*'")
                    expr = Filter(expr.offset, expr)
                else:
                    self._enter(bracket)
                    index = self._or()
                    self._leave()
                    self._expect("]", "expected an operator or ']'")
                    expr = Index(expr.offset, expr, index)
            else:
                return expr

    def _primary(self) -> Expr:
        token = self._token
        if token.kind in (NUMBER, STRING):
            self._advance()
            return Literal(token.offset, token.value)
        if token.kind == IDENT:
            if token.text in _KEYWORDS:
                self._advance()
                return Literal(token.offset, _KEYWORDS[token.text])
            self._advance()
            if self._token.kind == "(":
                return self._call(token)
            return ContextRef(token.offset, token.text)
        if token.kind == "(":
            self._advance()
            self._enter(token)
            expr = self._or()
            self._leave()
            self._expect(")", "expected an operator or ')'")
            return expr
        if token.kind == "*":
            self._fail("expected a value ('*' goes only after '.' or inside '[ ]')")
        self._fail("expected a value")

    def _call(self, name: Token) -> Expr:
        spec = FUNCTIONS.get(name.text.lower())
        if spec is None:
            known = ", ".join(sorted((s.name for s in FUNCTIONS.values()), key=str.lower))
            raise syntax_error(
                f"unknown function '{name.text}'", name.offset, f"expected one of {known}"
            )
        paren = self._advance()
        args: list[Expr] = []
        if self._token.kind != ")":
            self._enter(paren)
            while True:
                args.append(self._or())
                if self._token.kind == ",":
                    self._advance()
                    continue
                if self._token.kind != ")":
                    self._fail("expected an operator, ',' or ')'")
                break
            self._leave()
        self._advance()  # )
        count = len(args)
        if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
            raise syntax_error(
                f"wrong number of arguments to {spec.name}()",
                name.offset,
                f"expected {spec.arity()}, got {count}",
            )
        if spec.name == "format":
            first = args[0]
            if isinstance(first, Literal) and isinstance(first.value, str):
                try:
                    parse_format(first.value, count - 1)
                except FormatError as e:
                    raise syntax_error(e.reason, first.offset, e.expected) from None
        return Call(name.offset, spec.name, tuple(args))
