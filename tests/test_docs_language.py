"""The examples of docs/language.md: `# example` blocks are valid, `# error:` blocks fail so.

Every ```yaml block whose first line is `# example` must parse and validate against the
installed nodes; every block whose first line is `# error: <text>` must fail with a problem
whose message contains <text>.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from waterflow._plugins import load_installed_plugins
from waterflow._registry import NodeRegistry
from waterflow.dsl import Problem, WorkflowError, parse_workflow, validate_workflow

PAGE = Path(__file__).resolve().parent.parent / "docs" / "language.md"
BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)
EXAMPLE = "# example"
ERROR = "# error: "


def yaml_blocks() -> list[tuple[int, str]]:
    """(line number in the page, text) of every ```yaml block."""
    text = PAGE.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in BLOCK.finditer(text)]


def problems_of(text: str, file: str, nodes: NodeRegistry) -> list[Problem]:
    try:
        spec = parse_workflow(text, file)
    except WorkflowError as exc:
        return exc.problems
    return validate_workflow(spec, nodes.metadata())


@pytest.fixture(scope="module")
def nodes() -> NodeRegistry:
    registry = NodeRegistry()
    load_installed_plugins(registry)
    return registry


def test_marked_examples_are_valid_and_errors_fail(nodes: NodeRegistry) -> None:
    examples = errors = 0
    for line, text in yaml_blocks():
        first = text.splitlines()[0] if text else ""
        where = f"{PAGE.name}#L{line}"
        if first.strip() == EXAMPLE:
            examples += 1
            problems = problems_of(text, where, nodes)
            assert problems == [], "\n".join(str(p) for p in problems)
        elif first.startswith(ERROR):
            errors += 1
            expected = first[len(ERROR) :].strip()
            problems = problems_of(text, where, nodes)
            messages = [str(p) for p in problems]
            assert any(expected in m for m in messages), (
                f"{where}: expected a problem containing {expected!r}, got {messages}"
            )
    assert examples >= 6, f"only {examples} '# example' blocks in {PAGE.name}"
    assert errors >= 4, f"only {errors} '# error:' blocks in {PAGE.name}"
