"""GitHub Actions' `${{ }}` expression language.

    render("v${{ matrix.version }}", {"matrix": {"version": 3}})           # 'v3'
    render("${{ matrix.version }}", {"matrix": {"version": 3}})            # 3, an int
    evaluate("contains(github.event.commits.*.message, '[skip ci]')", contexts)
    evaluate_condition("failure() || inputs.force", contexts, status="failure")

Literals (`null`, `true`, `false`, numbers such as `42`, `-1.5`, `1e3`, `0xff`, strings in
single quotes with `''` for a quote), property access (`a.b`, `a['b']`, `a[0]`, case-insensitive
on objects, null when missing), the object filter (`steps.*.outcome`), `!`, `< <= > >=`,
`== !=`, `&&` and `||` (which return an operand, like JavaScript's), and the functions
`contains startsWith endsWith format join toJSON fromJSON hashFiles success always failure
cancelled`, with GitHub's loose comparison and conversion rules.

Everything here except `hash_files` is pure and deterministic, so it can run inside a Temporal
workflow. `hash_files` reads files and is imported only when called.
"""

from waterflow.expressions._ast import ContextRef, Expr, Index, Literal, Property, walk
from waterflow.expressions._errors import ExpressionError
from waterflow.expressions._evaluate import calls_status_function, evaluate, referenced_contexts
from waterflow.expressions._parser import parse
from waterflow.expressions._template import (
    Span,
    evaluate_condition,
    find_expressions,
    is_template,
    render,
    render_string,
    render_tree,
)
from waterflow.expressions._values import is_truthy, to_string


def hash_files(workspace: str, patterns: list[str]) -> str:
    """GitHub's `hashFiles`: '' when nothing matches; see `_hashfiles.hash_files`.

    Bind it to a workspace to evaluate `hashFiles()`:
    `render(text, contexts, hash_files=functools.partial(hash_files, workspace))`.
    """
    from waterflow.expressions._hashfiles import hash_files as _hash_files

    return _hash_files(workspace, patterns)


__all__ = [
    "ContextRef",
    "Expr",
    "ExpressionError",
    "Index",
    "Literal",
    "Property",
    "Span",
    "calls_status_function",
    "evaluate",
    "evaluate_condition",
    "find_expressions",
    "hash_files",
    "is_template",
    "is_truthy",
    "parse",
    "referenced_contexts",
    "render",
    "render_string",
    "render_tree",
    "to_string",
    "walk",
]
