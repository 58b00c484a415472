"""Checks on a built `WorkflowSpec`: job graph, expressions, and steps against node metadata.

These work on the spec alone, so they also serve specs that did not come from a file; with the
`SourceMap` of a parsed file they point at the exact key or character, otherwise at the step
or job.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from waterflow import expressions
from waterflow._node import NodeMetadata
from waterflow.dsl._errors import Problem, suggest
from waterflow.dsl._names import GHA_NODE, is_action
from waterflow.dsl._parse import Path, SourceMap, uses_problem
from waterflow.dsl.model import JobSpec, Pos, StepSpec, WorkflowSpec

# The syntax tree is not part of the expressions package's public API yet; these four names
# are all that is needed to find `steps.<id>`, `needs.<job>` and `inputs.<name>`.
from waterflow.expressions import ContextRef, Index, Literal, Property, walk
from waterflow.params import check_parameters

CONTEXTS = (
    "env",
    "inputs",
    "secrets",
    "steps",
    "needs",
    "job",
    "runner",
    "matrix",
    "strategy",
    "github",
    "vars",
)
RUN_NODE = "shell/run"
_POSITION = re.compile(r" at position \d+")


def step_label(step: StepSpec) -> str:
    return f"step {step.id!r}" if step.id else f"step {step.index + 1}"


@attrs.frozen
class _Scope:
    """What an expression at one place may read, and how to name that place."""

    label: str
    steps: tuple[str, ...] | None = None
    """Ids of the steps it may read; None where no step context exists (before any step)."""
    steps_where: str = ""
    needs: tuple[str, ...] = ()
    is_if: bool = False


class _Checker:
    def __init__(self, spec: WorkflowSpec, smap: SourceMap | None) -> None:
        self.spec = spec
        self.smap = smap
        self.problems: list[Problem] = []

    def error(self, pos: Pos, message: str) -> None:
        self.problems.append(Problem(self.spec.file, pos.line, pos.col, message))

    def value_pos(self, path: Path, fallback: Pos) -> Pos:
        found = self.smap.value_pos(path) if self.smap is not None else None
        return found or fallback

    def key_pos(self, path: Path, fallback: Pos) -> Pos:
        found = self.smap.key_pos(path) if self.smap is not None else None
        return found or fallback

    def char_pos(self, path: Path, value: str, offset: int, lo: int, hi: int, at: Pos) -> Pos:
        if self.smap is None or path not in self.smap.locs:
            return at
        return self.smap.char_pos(path, value, offset, lo, hi)

    # -- jobs --------------------------------------------------------------------------

    def check_needs(self) -> None:
        jobs = self.spec.jobs
        for jid, job in jobs.items():
            for i, need in enumerate(job.needs):
                pos = self.value_pos(("jobs", jid, "needs", i), job.pos)
                if need == jid:
                    self.error(pos, f"job {jid!r} needs itself")
                elif need not in jobs:
                    self.error(pos, f"job {jid!r} needs unknown job {need!r}{suggest(need, jobs)}")
        for cycle in _cycles(
            {j: [n for n in job.needs if n in jobs and n != j] for j, job in jobs.items()}
        ):
            first = jobs[cycle[0]]
            pos = self.value_pos(
                ("jobs", cycle[0], "needs", first.needs.index(cycle[1])), first.pos
            )
            self.error(pos, f"jobs {' -> '.join(cycle)} form a cycle")

    # -- expressions -------------------------------------------------------------------

    def check_expressions(self) -> None:
        spec = self.spec
        top = _Scope("workflow")
        if self.smap is not None:
            for path, text, label in self.smap.extra:
                self.template(path, text, attrs.evolve(top, label=label), Pos(1, 1))
        for name, value in spec.env.items():
            self.template(("env", name), value, attrs.evolve(top, label=f"env {name!r}"), Pos(1, 1))
        for jid, job in spec.jobs.items():
            self.check_job(jid, job)

    def check_job(self, jid: str, job: JobSpec) -> None:
        path: Path = ("jobs", jid)
        scope = _Scope(f"job {jid!r}", None, "", job.needs)
        if job.name is not None:
            self.template((*path, "name"), job.name, scope, job.pos)
        self.template((*path, "runs-on"), job.runs_on, scope, job.pos)
        if job.strategy is not None:
            matrix = job.strategy.matrix
            where: Path = (*path, "strategy", "matrix")
            if isinstance(matrix, str):
                self.template(where, matrix, scope, job.pos)
            else:
                for at, value in _strings(where, matrix, set()):
                    self.template(at, value, scope, job.pos)
            if isinstance(job.strategy.fail_fast, str):
                self.template(
                    (*path, "strategy", "fail-fast"), job.strategy.fail_fast, scope, job.pos
                )
        if job.if_ is not None:
            self.condition((*path, "if"), job.if_, attrs.evolve(scope, is_if=True), job.pos)
        for name, value in job.env.items():
            self.template((*path, "env", name), value, scope, job.pos)
        if isinstance(job.continue_on_error, str):
            self.template((*path, "continue-on-error"), job.continue_on_error, scope, job.pos)
        ids = tuple(s.id for s in job.steps if s.id)
        outputs = attrs.evolve(scope, steps=ids, steps_where=f"a step of job {jid!r}")
        for name, value in job.outputs.items():
            self.template(
                (*path, "outputs", name),
                value,
                attrs.evolve(outputs, label=f"job {jid!r} output {name!r}"),
                job.pos,
            )
        before: list[str] = []
        for step in job.steps:
            self.check_step(
                jid,
                step,
                attrs.evolve(
                    scope,
                    label=step_label(step),
                    steps=tuple(before),
                    steps_where="a step before this one",
                ),
            )
            if step.id:
                before.append(step.id)

    def check_step(self, jid: str, step: StepSpec, scope: _Scope) -> None:
        path: Path = ("jobs", jid, "steps", step.index)
        if step.name is not None:
            self.template((*path, "name"), step.name, scope, step.pos)
        if step.if_ is not None:
            self.condition((*path, "if"), step.if_, attrs.evolve(scope, is_if=True), step.pos)
        for name, value in step.env.items():
            self.template((*path, "env", name), value, scope, step.pos)
        if isinstance(step.continue_on_error, str):
            self.template((*path, "continue-on-error"), step.continue_on_error, scope, step.pos)
        for where, value in _strings((*path, "with"), step.with_, set()):
            self.template(where, value, scope, step.pos)

    def condition(self, path: Path, text: str, scope: _Scope, at: Pos) -> None:
        """An `if:`: one expression, with or without `${{ }}` around it."""
        if "${{" not in text:
            self.expression(path, text, text, 0, scope, at)
            return
        try:
            spans = expressions.find_expressions(text)
        except expressions.ExpressionError as exc:
            self.expression_error(path, text, exc, 0, len(text), scope, at)
            return
        if (
            len(spans) == 1
            and not text[: spans[0].start].strip()
            and not text[spans[0].end :].strip()
        ):
            span = spans[0]
            self.expression(
                path, text, span.source, span.start + 3, scope, at, (span.start, span.end)
            )
            return
        pos = self.char_pos(path, text, spans[0].start if spans else 0, 0, len(text), at)
        self.error(
            pos,
            f"{scope.label}: 'if' mixes '${{{{ }}}}' with other text, so it is a "
            "non-empty string and always true; write the whole condition as one "
            "expression",
        )

    def template(self, path: Path, text: str, scope: _Scope, at: Pos) -> None:
        if "${{" not in text:
            return
        try:
            spans = expressions.find_expressions(text)
        except expressions.ExpressionError as exc:
            self.expression_error(path, text, exc, 0, len(text), scope, at)
            return
        for span in spans:
            self.expression(
                path, text, span.source, span.start + 3, scope, at, (span.start, span.end)
            )

    def expression(
        self,
        path: Path,
        text: str,
        source: str,
        base: int,
        scope: _Scope,
        at: Pos,
        bounds: tuple[int, int] | None = None,
    ) -> None:
        """Check `source`, which starts at `base` in the string `text` found at `path`."""
        lo, hi = bounds if bounds is not None else (0, len(text))
        try:
            expr = expressions.parse(source)
        except expressions.ExpressionError as exc:
            self.expression_error(path, text, exc, base, hi, scope, at, lo)
            return
        except RecursionError:
            self.error(
                self.char_pos(path, text, base, lo, hi, at),
                f"{scope.label}: expression nested too deeply",
            )
            return

        def where(offset: int) -> Pos:
            return self.char_pos(path, text, base + offset, lo, hi, at)

        refs = [node for node, _ in walk(expr) if isinstance(node, ContextRef)]
        for name in sorted(expressions.referenced_contexts(expr)):
            ref_at = next((r.offset for r in refs if r.name.lower() == name), 0)
            if name not in CONTEXTS:
                self.error(
                    where(ref_at),
                    f"{scope.label}: unknown context {name!r} in "
                    f"expression{suggest(name, CONTEXTS)}; contexts are "
                    f"{', '.join(CONTEXTS)}",
                )
            elif name == "secrets" and scope.is_if:
                self.error(
                    where(ref_at),
                    f"{scope.label}: 'if' cannot read secrets (conditions are decided "
                    "where secrets never are); check the secret in a step that sets an "
                    "output, and test that output",
                )
        for context, name, offset in _members(expr):
            message = self.member_problem(context, name, scope)
            if message is not None:
                self.error(where(offset), f"{scope.label}: {message}")

    def member_problem(self, context: str, name: str, scope: _Scope) -> str | None:
        ref = f"'{context}.{name}'"
        if context == "steps":
            if scope.steps is None:
                return f"{ref}: no step has run at this point, so 'steps' is empty"
            if name.lower() not in {s.lower() for s in scope.steps}:
                return f"{ref} is not {scope.steps_where}{suggest(name, scope.steps)}"
        elif context == "needs":
            if name.lower() not in {n.lower() for n in scope.needs}:
                if name.lower() in {j.lower() for j in self.spec.jobs}:
                    return f"{ref}: add {name!r} to 'needs' to read its result and outputs"
                hint = suggest(name, scope.needs) or suggest(name, self.spec.jobs)
                return f"{ref} is not a job this one needs{hint}"
        elif context == "inputs":
            declared = self.spec.inputs
            if name.lower() not in {n.lower() for n in declared}:
                hint = suggest(name, declared) or ("" if declared else " (no inputs are declared)")
                return f"{ref} is not declared under 'on.workflow_dispatch.inputs'{hint}"
        return None

    def expression_error(
        self,
        path: Path,
        text: str,
        exc: expressions.ExpressionError,
        base: int,
        hi: int,
        scope: _Scope,
        at: Pos,
        lo: int = 0,
    ) -> None:
        offset = base + max(0, exc.offset)
        pos = self.char_pos(path, text, offset, lo, hi, at)
        message = _POSITION.sub("", exc.message, count=1)
        self.error(pos, f"{scope.label}: invalid expression: {message}")

    # -- nodes -------------------------------------------------------------------------

    def check_nodes(self, nodes: Mapping[str, NodeMetadata]) -> None:
        for jid, job in self.spec.jobs.items():
            for step in job.steps:
                self.check_node(jid, step, nodes)

    def check_queue_nodes(self, queues: Mapping[str, Mapping[str, NodeMetadata]]) -> None:
        anywhere: dict[str, NodeMetadata] = {}
        for nodes in queues.values():
            anywhere.update(nodes)
        for jid, job in self.spec.jobs.items():
            if "${{" in job.runs_on:  # the queue is known when the job starts: any will do
                for step in job.steps:
                    self.check_node(jid, step, anywhere)
                continue
            offered = queues.get(job.runs_on)
            if offered is None:
                at = self.value_pos(("jobs", jid, "runs-on"), job.pos)
                served = ", ".join(sorted(queues)) or "none"
                self.error(
                    at,
                    f"job {jid!r}: no live agent serves queue {job.runs_on}"
                    f"{suggest(job.runs_on, queues)}; queues served: {served}",
                )
                continue
            for step in job.steps:
                self.check_node(jid, step, offered, queue=job.runs_on, queues=queues)

    def off_queue(
        self, uses: str, queue: str, queues: Mapping[str, Mapping[str, NodeMetadata]]
    ) -> str:
        """Why a node is missing from `queue`: where it is, or that no queue offers it."""
        elsewhere = sorted(q for q, offered in queues.items() if uses in offered)
        if elsewhere:
            return f"node {uses} is not offered on queue {queue}; it is on {', '.join(elsewhere)}"
        everywhere = {name for offered in queues.values() for name in offered}
        return (
            f"unknown node {uses!r}{suggest(uses, queues[queue]) or suggest(uses, everywhere)}; "
            f"no live agent on any queue offers it"
        )

    def check_node(
        self,
        jid: str,
        step: StepSpec,
        nodes: Mapping[str, NodeMetadata],
        *,
        queue: str | None = None,
        queues: Mapping[str, Mapping[str, NodeMetadata]] | None = None,
    ) -> None:
        path: Path = ("jobs", jid, "steps", step.index)
        label = step_label(step)
        uses_at = self.value_pos((*path, "uses"), step.pos)
        problem = uses_problem(step.uses) if step.uses else None
        if problem is not None:  # the parser said so already, at the same place
            self.error(uses_at, f"{label}: {problem}")
            return
        meta = nodes.get(step.uses)
        if meta is None and queue is not None and queues is not None:
            if is_action(step.uses):
                if GHA_NODE not in nodes:
                    self.error(
                        uses_at,
                        f"{label}: GitHub Action {step.uses!r} needs node {GHA_NODE}, which "
                        f"is not offered on queue {queue}",
                    )
            else:
                at = uses_at
                if step.uses == RUN_NODE:
                    at = self.key_pos((*path, "with", "run"), uses_at)
                self.error(at, f"{label}: {self.off_queue(step.uses, queue, queues)}")
            return
        if meta is None:
            if step.uses == RUN_NODE:
                at = self.key_pos((*path, "with", "run"), uses_at)
                self.error(
                    at,
                    f"{label}: {RUN_NODE!r}, the node 'run:' steps use, is not "
                    "installed (package waterflow-nodes-shell)",
                )
            elif is_action(step.uses):
                if GHA_NODE not in nodes:
                    self.error(
                        uses_at,
                        f"{label}: GitHub Action {step.uses!r} needs the "
                        "waterflow-nodes-gha package, which is not installed",
                    )
            elif step.uses:
                hint = suggest(step.uses, nodes) or (
                    f" (a GitHub Action needs a version: '{step.uses}@<ref>')"
                    if step.uses.count("/") == 1
                    else ""
                )
                self.error(uses_at, f"{label}: unknown node {step.uses!r}{hint}")
            return
        try:
            _, problems = check_parameters(meta, step.with_, coerce=False)
        except Exception as exc:  # a node's metadata must not break validation
            self.error(uses_at, f"{label}: cannot check parameters of {meta.name!r}: {exc}")
            return
        with_at = self.key_pos((*path, "with"), uses_at)
        misspelt = self.smap is not None and (*path, "with") in self.smap.misspelt
        for name, message in problems:
            if name is None and misspelt:
                continue
            if name is None:
                pos = with_at
            elif (*path, "with", name) in self._locs():
                unknown = meta.parameter(name) is None
                where = (*path, "with", name)
                pos = self.key_pos(where, with_at) if unknown else self.value_pos(where, with_at)
            else:
                pos = with_at
            self.error(pos, f"{label}: {message}")

    def _locs(self) -> Mapping[Path, Any]:
        return self.smap.locs if self.smap is not None else {}


def _strings(path: Path, value: Any, seen: set[int]) -> Iterator[tuple[Path, str]]:
    """Every string under a `with:` value, with its path; shared (aliased) values once."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict | list):
        if id(value) in seen:
            return
        seen.add(id(value))
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            yield from _strings((*path, key), item, seen)


def _members(expr: expressions.Expr) -> Iterator[tuple[str, str, int]]:
    """`(context, name, offset)` for each `steps.x`, `needs.x` and `inputs.x` (or `['x']`)."""
    for node, _ in walk(expr):
        if not isinstance(node, Property | Index):
            continue
        target = node.target
        if not isinstance(target, ContextRef):
            continue
        context = target.name.lower()
        if context not in ("steps", "needs", "inputs"):
            continue
        if isinstance(node, Property):
            yield context, node.name, target.offset
        elif isinstance(node.index, Literal) and isinstance(node.index.value, str):
            yield context, node.index.value, target.offset


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """One cycle (`[a, b, a]`) for each group of jobs that need each other round."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        # Tarjan's algorithm, iteratively: jobs may be many and chains long.
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            edges = graph[node]
            if i < len(edges):
                work.append((node, i + 1))
                nxt = edges[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    order = {job: i for i, job in enumerate(graph)}
    cycles = []
    for group in sorted(groups, key=lambda g: min(order[j] for j in g)):
        members = set(group)
        start = min(group, key=order.__getitem__)
        path = [start]
        seen = {start}
        while True:
            nxt = next(n for n in graph[path[-1]] if n in members)
            if nxt in seen:
                cycles.append([*path[path.index(nxt) :], nxt])
                break
            path.append(nxt)
            seen.add(nxt)
    return cycles


def check_spec(
    spec: WorkflowSpec,
    smap: SourceMap | None,
    nodes: Mapping[str, NodeMetadata] | None,
    *,
    queues: Mapping[str, Mapping[str, NodeMetadata]] | None = None,
) -> list[Problem]:
    """Everything `validate_workflow` checks: needs, expressions, and (with `nodes`) nodes;
    with `queues`, each job's steps against the nodes of its `runs-on` queue instead."""
    checker = _Checker(spec, smap)
    checker.check_needs()
    checker.check_expressions()
    if queues is not None:
        checker.check_queue_nodes(queues)
    elif nodes is not None:
        checker.check_nodes(nodes)
    return checker.problems
