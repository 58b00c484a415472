"""YAML nodes to a `WorkflowSpec`: every key known, every value of the right type.

The builder goes on after a problem, with a stand-in value, so one pass reports all that is
wrong with the structure. Where each model value came from is kept in a `SourceMap` so that
later checks (expressions, node parameters) can point at the exact key or character.
"""

from __future__ import annotations

import hashlib
import math
import re
import weakref
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

import attrs

from waterflow.dsl._durations import parse_duration
from waterflow.dsl._errors import Problem, closest, quote, suggest
from waterflow.dsl._names import ID_RE, NODE_RE, QUEUE_RE, is_action
from waterflow.dsl._yaml import (
    MAX_DEPTH,
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    Source,
    kind_of,
)
from waterflow.dsl.model import (
    InputSpec,
    JobSpec,
    Pos,
    RetrySpec,
    StepSpec,
    StrategySpec,
    WorkflowSpec,
)

TOP_KEYS = ("name", "run-name", "on", "env", "defaults", "jobs", "permissions", "concurrency")
JOB_KEYS = (
    "name",
    "runs-on",
    "needs",
    "if",
    "env",
    "outputs",
    "timeout",
    "timeout-minutes",
    "continue-on-error",
    "steps",
    "defaults",
    "permissions",
    "concurrency",
    "environment",
    "strategy",
)
STEP_KEYS = (
    "id",
    "name",
    "uses",
    "run",
    "shell",
    "working-directory",
    "with",
    "env",
    "if",
    "continue-on-error",
    "timeout",
    "timeout-minutes",
    "heartbeat_timeout",
    "retry",
    "local",
)
RETRY_KEYS = ("max_attempts", "initial_interval", "maximum_interval", "backoff_coefficient")
INPUT_KEYS = ("description", "required", "default", "type", "options")
INPUT_TYPES = ("string", "boolean", "number", "choice", "environment")
# GitHub's job keys Waterflow does not run; named so the message says so instead of "unknown".
STRATEGY_KEYS = ("matrix", "fail-fast", "max-parallel")
_JOB_UNSUPPORTED = {
    "uses": "calling a reusable workflow",
    "with": "inputs of a reusable workflow",
    "secrets": "secrets of a reusable workflow",
    "container": "running a job in a container",
    "services": "service containers",
}
# Events a GitHub workflow may list under `on:`; only workflow_dispatch means anything here.
GITHUB_EVENTS = (
    "branch_protection_rule",
    "check_run",
    "check_suite",
    "create",
    "delete",
    "deployment",
    "deployment_status",
    "discussion",
    "discussion_comment",
    "fork",
    "gollum",
    "issue_comment",
    "issues",
    "label",
    "merge_group",
    "milestone",
    "page_build",
    "public",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "pull_request_target",
    "push",
    "registry_package",
    "release",
    "repository_dispatch",
    "schedule",
    "status",
    "watch",
    "workflow_call",
    "workflow_dispatch",
    "workflow_run",
)

_AUTO_KEY_RE = re.compile(r"_[0-9]+")
_ID_RULE = "letters, digits, '_' and '-', starting with a letter or '_'"
_QUEUE_RULE = (
    "letters, digits and hyphens, starting and ending with a letter or digit, "
    "at most 255 characters"
)

Path = tuple[str | int, ...]


def uses_problem(uses: str) -> str | None:
    """What is wrong with the form of a `uses:` value, if anything."""
    if "${{" in uses:
        return "'uses' cannot contain expressions"
    if NODE_RE.fullmatch(uses) or is_action(uses):
        return None
    return (
        "'uses' must name a node like 'docker/build' or a GitHub Action like "
        f"'actions/checkout@v4', not {quote(uses)}"
    )


@attrs.frozen
class Loc:
    """Where one model value came from: its key (when it has one) and its value node."""

    key: Pos | None
    node: Node


@attrs.define
class SourceMap:
    """The text a spec was parsed from and where each of its values came from.

    Paths follow the model: `("jobs", "build", "steps", 0, "with", "tag")`.
    """

    source: Source
    locs: dict[Path, Loc] = attrs.field(factory=dict)
    extra: list[tuple[Path, str, str]] = attrs.field(factory=list)
    """Strings checked as expressions that the model does not keep: (path, text, label)."""
    misspelt: set[Path] = attrs.field(factory=set)
    """Keys reported as misspelt: later checks say nothing about them missing."""

    def value_pos(self, path: Path) -> Pos | None:
        loc = self.locs.get(path)
        return None if loc is None else self.source.pos(loc.node)

    def key_pos(self, path: Path) -> Pos | None:
        loc = self.locs.get(path)
        if loc is None:
            return None
        return loc.key if loc.key is not None else self.source.pos(loc.node)

    def char_pos(self, path: Path, value: str, offset: int, lo: int = 0, hi: int = -1) -> Pos:
        """Where character `offset` of string `value` (stored at `path`) is in the text.

        The value's own text in the file may differ from `value` (quotes, escapes, folded
        lines), so the line of `value` holding `offset`, cut to `lo:hi`, is looked up in the
        node's text; failing that, the value's start is the answer.
        """
        loc = self.locs.get(path)
        if loc is None:
            return Pos(1, 1)
        node = loc.node
        first = _start(node)
        if not isinstance(node, ScalarNode):
            return self.source.pos_at(first)
        hi = len(value) if hi < 0 else hi
        offset = max(0, min(offset, len(value)))
        begin = max(lo, value.rfind("\n", 0, offset) + 1)
        stop = value.find("\n", offset)
        stop = min(hi, len(value) if stop < 0 else stop)
        anchor = value[begin:stop]
        raw = self.source.text[first : max(first, _end(node))]
        if anchor:
            nth = value.count(anchor, 0, begin)
            found = -1
            for _ in range(nth + 1):
                found = raw.find(anchor, found + 1)
                if found < 0:
                    break
            if found >= 0:
                return self.source.pos_at(first + found + (offset - begin))
        return self.source.pos_at(first)


_MAPS: dict[int, SourceMap] = {}


def remember(spec: WorkflowSpec, smap: SourceMap) -> None:
    """Keep `smap` for as long as `spec` lives, for `validate_workflow`."""
    _MAPS[id(spec)] = smap
    weakref.finalize(spec, _MAPS.pop, id(spec), None)


def source_map(spec: WorkflowSpec) -> SourceMap | None:
    return _MAPS.get(id(spec))


def _start(node: Node) -> int:
    return int(node.start_mark.index) if node.start_mark is not None else 0


def _end(node: Node) -> int:
    return int(node.end_mark.index) if node.end_mark is not None else _start(node)


def _p(what: str) -> str:
    """The prefix naming where a problem is: `job 'build': `; none at the top level."""
    return f"{what}: " if what else ""


def env_text(value: Any) -> str:
    """A scalar as a string, the way GitHub turns `env` values into strings."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    return str(value)


@attrs.define
class _RunDefaults:
    shell: str | None = None
    working_directory: str | None = None


@attrs.frozen
class _Entry:
    key: str
    key_node: Node
    node: Node


class Builder:
    """Builds one `WorkflowSpec` from one text, collecting problems in `source.problems`."""

    def __init__(self, text: str, file: str) -> None:
        self.src = Source(text, file)
        self.map = SourceMap(self.src)
        self.text = text
        self.file = file
        self.suggested: dict[int, set[str]] = {}

    @property
    def problems(self) -> list[Problem]:
        return self.src.problems

    def error(self, where: Node | Pos, message: str) -> None:
        self.src.error(where, message)

    # -- generic pieces ----------------------------------------------------------------

    def mapping(
        self,
        node: Node,
        allowed: Sequence[str],
        where: str,
        what: str,
        unsupported: dict[str, str] | None = None,
    ) -> dict[str, _Entry] | None:
        """The entries of a mapping with only `allowed` keys; None if it is not a mapping.

        `where` completes "unknown key 'x' ..." ("in job 'build'"); `what` starts the type
        error ("job 'build'").
        """
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping, not {kind_of(node)}")
            return None
        out: dict[str, _Entry] = {}
        for key, key_node, value_node in self.src.entries(node):
            if key not in allowed:
                if unsupported and key in unsupported:
                    self.error(
                        key_node,
                        f"{_p(what)}{key!r} ({unsupported[key]}) is not supported by Waterflow",
                    )
                else:
                    hint = suggest(key, allowed)
                    self.error(key_node, f"unknown key {quote(key)} {where}{hint}")
                    match = closest(key, allowed)
                    if match is not None:
                        self.suggested.setdefault(id(node), set()).add(match)
                continue
            out[key] = _Entry(key, key_node, value_node)
        return out

    def misspelt(self, node: Node, key: str) -> bool:
        """Whether an unknown key of mapping `node` was already reported as a typo of `key`."""
        return key in self.suggested.get(id(node), ())

    def keep(self, path: Path, entry: _Entry | None, node: Node | None = None) -> None:
        if entry is not None:
            self.map.locs[path] = Loc(self.src.pos(entry.key_node), node or entry.node)
        elif node is not None:
            self.map.locs[path] = Loc(None, node)

    def keep_tree(self, path: Path, node: Node, depth: int = 0) -> None:
        """Remember where every value under `node` is (for `with:` values)."""
        if path not in self.map.locs:
            self.map.locs[path] = Loc(None, node)
        if depth > MAX_DEPTH:
            return
        if isinstance(node, MappingNode):
            for key, key_node, value_node in self.src.entries(node):
                self.map.locs[(*path, key)] = Loc(self.src.pos(key_node), value_node)
                self.keep_tree((*path, key), value_node, depth + 1)
        elif isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                self.keep_tree((*path, i), item, depth + 1)

    def text_of(self, entry: _Entry, what: str, *, empty_ok: bool = True) -> str | None:
        """A scalar as written (numbers and booleans too); None with a problem otherwise."""
        node = entry.node
        if not isinstance(node, ScalarNode) or self.src.scalar(node) is None:
            self.error(node, f"{_p(what)}{entry.key!r} must be a string, not {kind_of(node)}")
            return None
        value = self.src.scalar(node)
        text = env_text(value) if isinstance(value, bool) else str(node.value)
        if not empty_ok and not text.strip():
            self.error(node, f"{_p(what)}{entry.key!r} is empty")
            return None
        return text

    def string_map(self, entry: _Entry, what: str, path: Path, kind: str) -> dict[str, str]:
        """`env` or `outputs`: names to scalars, as strings."""
        node = entry.node
        if isinstance(node, ScalarNode) and self.src.scalar(node) is None:
            return {}
        if not isinstance(node, MappingNode):
            self.error(
                node,
                f"{_p(what)}{entry.key!r} must be a mapping of names to values, "
                f"not {kind_of(node)}",
            )
            return {}
        out: dict[str, str] = {}
        for key, key_node, value_node in self.src.entries(node):
            if kind == "env" and (not key or "=" in key or "\x00" in key):
                self.error(key_node, f"{_p(what)}invalid environment variable name {quote(key)}")
            if kind == "output" and not ID_RE.fullmatch(key):
                self.error(key_node, f"{_p(what)}invalid output name {quote(key)}: use {_ID_RULE}")
            if not isinstance(value_node, ScalarNode):
                self.error(
                    value_node,
                    f"{_p(what)}{kind} {quote(key)} must be a string, not {kind_of(value_node)}",
                )
                continue
            self.src.check_tag(value_node)
            out[key] = env_text(self.src.scalar(value_node))
            self.map.locs[(*path, key)] = Loc(self.src.pos(key_node), value_node)
        return out

    def boolean(self, entry: _Entry, what: str) -> bool | None:
        value = self.src.scalar(entry.node) if isinstance(entry.node, ScalarNode) else None
        if isinstance(value, bool):
            return value
        self.error(
            entry.node, f"{_p(what)}{entry.key!r} must be true or false, not {kind_of(entry.node)}"
        )
        return None

    def bool_or_expression(self, entry: _Entry, what: str, path: Path) -> bool | str:
        node = entry.node
        value = self.src.scalar(node) if isinstance(node, ScalarNode) else None
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and "${{" in value:
            self.keep(path, entry)
            return value
        self.error(
            node,
            f"{_p(what)}{entry.key!r} must be true, false or an expression '${{{{ ... }}}}', "
            f"not {kind_of(node)}",
        )
        return False

    def condition(self, entry: _Entry, what: str, path: Path) -> str | None:
        node = entry.node
        value = self.src.scalar(node) if isinstance(node, ScalarNode) else None
        if isinstance(value, bool):
            return "true" if value else "false"
        if not isinstance(node, ScalarNode) or value is None or not str(node.value).strip():
            self.error(node, f"{_p(what)}'if' must be an expression, not {kind_of(node)}")
            return None
        self.keep(path, entry)
        return str(node.value)

    def duration(self, entry: _Entry, what: str, key: str = "") -> float | None:
        node = entry.node
        value = self.src.scalar(node) if isinstance(node, ScalarNode) else None
        key = key or entry.key
        if isinstance(value, int | float) and not isinstance(value, bool):
            shown = str(node.value)
            hint = f" or 'timeout-minutes: {shown}'" if key == "timeout" else ""
            self.error(
                node,
                f"{_p(what)}{key!r} needs a unit: write '{shown}s' or '{shown}m'{hint}",
            )
            return None
        if not isinstance(value, str):
            self.error(
                node,
                f"{_p(what)}{key!r} must be a duration like '90s' or '10m', not {kind_of(node)}",
            )
            return None
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            self.error(node, f"{_p(what)}{key!r}: {exc}")
            return None
        if seconds <= 0:
            self.error(node, f"{_p(what)}{key!r} must be longer than zero")
            return None
        return seconds

    def minutes(self, entry: _Entry, what: str) -> float | None:
        node = entry.node
        value = self.src.scalar(node) if isinstance(node, ScalarNode) else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(
                node,
                f"{_p(what)}'timeout-minutes' must be a number of minutes, not {kind_of(node)}",
            )
            return None
        if not math.isfinite(value) or value <= 0:
            self.error(node, f"{_p(what)}'timeout-minutes' must be a positive number of minutes")
            return None
        return float(value) * 60.0

    def timeout(self, entries: dict[str, _Entry], what: str) -> float | None:
        timeout = entries.get("timeout")
        minutes = entries.get("timeout-minutes")
        if timeout is not None and minutes is not None:
            self.error(minutes.key_node, f"{_p(what)}give 'timeout' or 'timeout-minutes', not both")
        if timeout is not None:
            return self.duration(timeout, what)
        if minutes is not None:
            return self.minutes(minutes, what)
        return None

    # -- the workflow ------------------------------------------------------------------

    def build(self) -> WorkflowSpec | None:
        root = self.src.compose()
        if root is None:
            return None
        if not isinstance(root, MappingNode):
            self.error(root, f"a workflow must be a mapping with 'jobs', not {kind_of(root)}")
            return None
        top = self.mapping(root, TOP_KEYS, "at the top level", "the workflow")
        assert top is not None
        what = ""
        name = PurePath(self.file).stem or self.file
        if "name" in top:
            name = self.text_of(top["name"], what, empty_ok=False) or name
            self.keep(("name",), top["name"])
            self.map.extra.append((("name",), name, "workflow 'name'"))
        if "run-name" in top:
            run_name = self.text_of(top["run-name"], what)
            if run_name is not None:
                self.keep(("run-name",), top["run-name"])
                self.map.extra.append((("run-name",), run_name, "'run-name'"))
        inputs: dict[str, InputSpec] = {}
        if "on" in top:
            inputs = self.on(top["on"])
        env = self.string_map(top["env"], what, ("env",), "env") if "env" in top else {}
        defaults = self.defaults(top.get("defaults"), what, _RunDefaults())
        for key in ("permissions", "concurrency"):
            if key in top:
                self.github_only(top[key], what)
        jobs: dict[str, JobSpec] = {}
        if "jobs" in top:
            jobs = self.jobs(top["jobs"], defaults)
        elif not self.misspelt(root, "jobs"):
            self.error(root, "the workflow has no 'jobs'")
        spec = WorkflowSpec(
            name=name,
            file=self.file,
            env=env,
            inputs=inputs,
            jobs=jobs,
            source_sha256=hashlib.sha256(self.text.encode("utf-8", "surrogatepass")).hexdigest(),
        )
        return spec

    def github_only(self, entry: _Entry, what: str) -> None:
        """Keys kept for GitHub compatibility that change nothing here: type-checked only."""
        node = entry.node
        if isinstance(node, SequenceNode):
            self.error(node, f"{_p(what)}{entry.key!r} must be a string or a mapping, not a list")

    def defaults(self, entry: _Entry | None, what: str, outer: _RunDefaults) -> _RunDefaults:
        if entry is None:
            return outer
        of = f" of {what}" if what else ""
        found = self.mapping(entry.node, ("run",), f"in 'defaults'{of}", f"{_p(what)}'defaults'")
        if not found or "run" not in found:
            return outer
        run = self.mapping(
            found["run"].node,
            ("shell", "working-directory"),
            f"in 'defaults.run'{of}",
            f"{_p(what)}'defaults.run'",
        )
        if run is None:
            return outer
        shell = outer.shell
        workdir = outer.working_directory
        if "shell" in run:
            shell = self.text_of(run["shell"], what, empty_ok=False) or shell
        if "working-directory" in run:
            workdir = self.text_of(run["working-directory"], what, empty_ok=False) or workdir
        return _RunDefaults(shell, workdir)

    def on(self, entry: _Entry) -> dict[str, InputSpec]:
        node = entry.node
        events: list[tuple[str, Node, Node | None]] = []
        if isinstance(node, ScalarNode):
            events.append((str(node.value), node, None))
        elif isinstance(node, SequenceNode):
            for item in node.value:
                if isinstance(item, ScalarNode):
                    events.append((str(item.value), item, None))
                else:
                    self.error(item, f"'on': an event must be a name, not {kind_of(item)}")
        elif isinstance(node, MappingNode):
            for key, key_node, value_node in self.src.entries(node):
                events.append((key, key_node, value_node))
        inputs: dict[str, InputSpec] = {}
        for event, where, value in events:
            if event not in GITHUB_EVENTS:
                self.error(
                    where, f"'on': unknown event {quote(event)}{suggest(event, GITHUB_EVENTS)}"
                )
            elif event == "workflow_dispatch" and value is not None:
                inputs = self.dispatch(value)
        return inputs

    def dispatch(self, node: Node) -> dict[str, InputSpec]:
        if isinstance(node, ScalarNode) and self.src.scalar(node) is None:
            return {}
        found = self.mapping(
            node, ("inputs",), "in 'on.workflow_dispatch'", "'on.workflow_dispatch'"
        )
        if not found or "inputs" not in found:
            return {}
        inputs_node = found["inputs"].node
        if isinstance(inputs_node, ScalarNode) and self.src.scalar(inputs_node) is None:
            return {}
        if not isinstance(inputs_node, MappingNode):
            self.error(
                inputs_node,
                "'on.workflow_dispatch.inputs' must be a mapping of input "
                f"names to their description, not {kind_of(inputs_node)}",
            )
            return {}
        out: dict[str, InputSpec] = {}
        for key, key_node, value_node in self.src.entries(inputs_node):
            self.map.locs[("inputs", key)] = Loc(self.src.pos(key_node), value_node)
            if not ID_RE.fullmatch(key):
                self.error(key_node, f"invalid input name {quote(key)}: use {_ID_RULE}")
            out[key] = self.input(key, key_node, value_node)
        return out

    def input(self, name: str, key_node: Node, node: Node) -> InputSpec:
        what = f"input {name!r}"
        if isinstance(node, ScalarNode) and self.src.scalar(node) is None:
            return InputSpec(name=name)
        found = self.mapping(node, INPUT_KEYS, f"in {what}", what)
        if found is None:
            return InputSpec(name=name)
        description = ""
        if "description" in found:
            description = self.text_of(found["description"], what) or ""
        required = False
        if "required" in found:
            required = bool(self.boolean(found["required"], what))
        kind = "string"
        if "type" in found:
            given = self.text_of(found["type"], what)
            if given is not None and given not in INPUT_TYPES:
                self.error(
                    found["type"].node,
                    f"{_p(what)}unknown type {quote(given)}{suggest(given, INPUT_TYPES)}; "
                    f"expected one of {', '.join(INPUT_TYPES)}",
                )
            elif given is not None:
                kind = given
        options: tuple[str, ...] = ()
        if "options" in found:
            entry = found["options"]
            if kind != "choice":
                self.error(entry.key_node, f"{_p(what)}'options' are only for 'type: choice'")
            if isinstance(entry.node, SequenceNode) and entry.node.value:
                texts = []
                for item in entry.node.value:
                    if isinstance(item, ScalarNode) and self.src.scalar(item) is not None:
                        texts.append(env_text(self.src.scalar(item)))
                    else:
                        self.error(
                            item, f"{_p(what)}an option must be a string, not {kind_of(item)}"
                        )
                options = tuple(texts)
            else:
                self.error(
                    entry.node,
                    f"{_p(what)}'options' must be a list of choices, not {kind_of(entry.node)}",
                )
        elif kind == "choice":
            self.error(key_node, f"{_p(what)}a 'choice' input needs 'options'")
        default: str | bool | float | None = None
        if "default" in found:
            default = self.input_default(found["default"], what, kind, options)
        return InputSpec(name, description, required, default, kind, options)

    def input_default(
        self, entry: _Entry, what: str, kind: str, options: tuple[str, ...]
    ) -> str | bool | float | None:
        node = entry.node
        if not isinstance(node, ScalarNode):
            self.error(node, f"{_p(what)}'default' must be a single value, not {kind_of(node)}")
            return None
        value = self.src.scalar(node)
        if value is None:
            return None
        if kind == "boolean":
            if isinstance(value, str) and value.lower() in ("true", "false"):
                value = value.lower() == "true"
            if not isinstance(value, bool):
                self.error(
                    node,
                    f"{_p(what)}the default of a boolean input must be true or false, "
                    f"not {kind_of(node)}",
                )
                return None
            return value
        if kind == "number":
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    pass
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.error(
                    node,
                    f"{_p(what)}the default of a number input must be a number, "
                    f"not {kind_of(node)}",
                )
                return None
            return value
        text = env_text(value)
        if kind == "choice" and options and text not in options:
            self.error(
                node,
                f"{_p(what)}default {quote(text)} is not one of the options"
                f"{suggest(text, options)}",
            )
        return text

    # -- jobs --------------------------------------------------------------------------

    def jobs(self, entry: _Entry, defaults: _RunDefaults) -> dict[str, JobSpec]:
        node = entry.node
        if not isinstance(node, MappingNode):
            self.error(node, f"'jobs' must be a mapping of job ids to jobs, not {kind_of(node)}")
            return {}
        entries = self.src.entries(node)
        if not entries:
            self.error(entry.key_node, "'jobs' is empty: a workflow needs at least one job")
        jobs: dict[str, JobSpec] = {}
        folded: dict[str, str] = {}
        for key, key_node, value_node in entries:
            if not ID_RE.fullmatch(key):
                self.error(key_node, f"invalid job id {quote(key)}: use {_ID_RULE}")
            elif key.lower() in folded:
                self.error(
                    key_node,
                    f"job id {key!r} is used twice (ids ignore case: {folded[key.lower()]!r})",
                )
            folded.setdefault(key.lower(), key)
            self.map.locs[("jobs", key)] = Loc(self.src.pos(key_node), value_node)
            jobs[key] = self.job(key, key_node, value_node, defaults)
        return jobs

    def job(self, jid: str, key_node: Node, node: Node, defaults: _RunDefaults) -> JobSpec:
        what = f"job {jid!r}"
        path: Path = ("jobs", jid)
        pos = self.src.pos(key_node)
        found = self.mapping(node, JOB_KEYS, f"in {what}", what, _JOB_UNSUPPORTED) or {}
        name = None
        if "name" in found:
            name = self.text_of(found["name"], what)
            self.keep((*path, "name"), found["name"])
        runs_on = ""
        if "runs-on" in found:
            runs_on = self.runs_on(found["runs-on"], what)
            self.keep((*path, "runs-on"), found["runs-on"])
        elif isinstance(node, MappingNode) and not self.misspelt(node, "runs-on"):
            self.error(key_node, f"{_p(what)}missing 'runs-on' (the task queue to run on)")
        needs: list[str] = []
        if "needs" in found:
            needs = self.needs(found["needs"], what, path)
        if_ = self.condition(found["if"], what, (*path, "if")) if "if" in found else None
        env = self.string_map(found["env"], what, (*path, "env"), "env") if "env" in found else {}
        outputs = {}
        if "outputs" in found:
            outputs = self.string_map(found["outputs"], what, (*path, "outputs"), "output")
        continue_on_error: bool | str = False
        if "continue-on-error" in found:
            continue_on_error = self.bool_or_expression(
                found["continue-on-error"], what, (*path, "continue-on-error")
            )
        timeout = self.timeout(found, what)
        for key in ("permissions", "concurrency", "environment"):
            if key in found:
                self.github_only(found[key], what)
        strategy = None
        if "strategy" in found:
            strategy = self.strategy(found["strategy"], what, (*path, "strategy"))
        job_defaults = self.defaults(found.get("defaults"), what, defaults)
        steps: list[StepSpec] = []
        if "steps" in found:
            steps = self.steps(found["steps"], jid, job_defaults)
        elif isinstance(node, MappingNode) and not self.misspelt(node, "steps"):
            self.error(key_node, f"{_p(what)}missing 'steps' (a list of steps)")
        return JobSpec(
            id=jid,
            name=name,
            runs_on=runs_on,
            needs=tuple(needs),
            if_=if_,
            env=env,
            outputs=outputs,
            timeout=timeout,
            continue_on_error=continue_on_error,
            steps=tuple(steps),
            pos=pos,
            strategy=strategy,
        )

    def strategy(self, entry: _Entry, what: str, path: Path) -> StrategySpec | None:
        found = self.mapping(entry.node, STRATEGY_KEYS, f"in {what}'s strategy", what) or {}
        if "matrix" not in found:
            if isinstance(entry.node, MappingNode) and not self.misspelt(entry.node, "matrix"):
                self.error(entry.key_node, f"{_p(what)}'strategy' needs a 'matrix'")
            return None
        matrix_entry = found["matrix"]
        node = matrix_entry.node
        matrix: dict[str, Any] | str
        if isinstance(node, ScalarNode) and isinstance(self.src.scalar(node), str):
            text = str(node.value)
            if "${{" not in text:
                self.error(
                    node,
                    f"{_p(what)}'matrix' must be a mapping of axes to lists, or an expression",
                )
                return None
            self.keep((*path, "matrix"), matrix_entry)
            matrix = text
        elif isinstance(node, MappingNode):
            matrix = self.matrix(node, what, (*path, "matrix"))
        else:
            self.error(
                node,
                f"{_p(what)}'matrix' must be a mapping of axes to lists, not {kind_of(node)}",
            )
            return None
        fail_fast: bool | str = True
        if "fail-fast" in found:
            fail_fast = self.bool_or_expression(found["fail-fast"], what, (*path, "fail-fast"))
        max_parallel = None
        if "max-parallel" in found:
            value_node = found["max-parallel"].node
            value = self.src.scalar(value_node) if isinstance(value_node, ScalarNode) else None
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                self.error(
                    value_node, f"{_p(what)}'max-parallel' must be a whole number of at least 1"
                )
            else:
                max_parallel = value
        return StrategySpec(matrix=matrix, fail_fast=fail_fast, max_parallel=max_parallel)

    def matrix(self, node: MappingNode, what: str, path: Path) -> dict[str, Any]:
        matrix: dict[str, Any] = {}
        for key, key_node, value_node in self.src.entries(node):
            self.map.locs[(*path, key)] = Loc(self.src.pos(key_node), value_node)
            self.keep_tree((*path, key), value_node)
            value = self.src.plain(value_node)
            is_expression = isinstance(value, str) and "${{" in value
            if key in ("include", "exclude"):
                if not is_expression and not (
                    isinstance(value, list) and all(isinstance(v, dict) for v in value)
                ):
                    self.error(
                        value_node,
                        f"{_p(what)}matrix {key!r} must be a list of mappings, "
                        f"not {kind_of(value_node)}",
                    )
                    continue
            elif not ID_RE.fullmatch(key):
                self.error(key_node, f"{_p(what)}invalid matrix axis {quote(key)}: use {_ID_RULE}")
                continue
            elif not is_expression and not (isinstance(value, list) and value):
                self.error(
                    value_node,
                    f"{_p(what)}matrix axis {key!r} must be a non-empty list of values, "
                    f"not {kind_of(value_node)}",
                )
                continue
            matrix[key] = value
        return matrix

    def runs_on(self, entry: _Entry, what: str) -> str:
        node = entry.node
        if isinstance(node, SequenceNode):
            # GitHub's label list (`[self-hosted, linux, x64]`): the queue is the labels
            # joined with hyphens, in the order written (`self-hosted-linux-x64`).
            labels: list[str] = []
            for item in node.value:
                value = self.src.scalar(item) if isinstance(item, ScalarNode) else None
                if not isinstance(value, str) or not value.strip() or "${{" in value:
                    self.error(
                        item,
                        f"{_p(what)}each 'runs-on' label must be a plain name, not {kind_of(item)}",
                    )
                    return ""
                labels.append(value.strip())
            if not labels:
                self.error(node, f"{_p(what)}'runs-on' is an empty list; give a task queue name")
                return ""
            queue = "-".join(labels)
            if not QUEUE_RE.fullmatch(queue):
                self.error(
                    node,
                    f"{_p(what)}the labels of 'runs-on' make the task queue name "
                    f"{quote(queue)}, which is not valid: use {_QUEUE_RULE}",
                )
            return queue
        if isinstance(node, MappingNode):
            self.error(
                node,
                f"{_p(what)}'runs-on' must be one task queue name, not a mapping "
                "(runner groups are not supported)",
            )
            return ""
        text = self.text_of(entry, what, empty_ok=False)
        if text is None:
            return ""
        if "${{" in text:
            return text  # rendered when the job starts (matrix, inputs, needs)
        queue = text
        if not QUEUE_RE.fullmatch(queue):
            self.error(
                node,
                f"{_p(what)}invalid task queue name {quote(queue)} in 'runs-on': use {_QUEUE_RULE}",
            )
        return queue

    def needs(self, entry: _Entry, what: str, path: Path) -> list[str]:
        node = entry.node
        items = node.value if isinstance(node, SequenceNode) else [node]
        if isinstance(node, MappingNode):
            self.error(
                node, f"{_p(what)}'needs' must be a job id or a list of job ids, not a mapping"
            )
            return []
        out: list[str] = []
        for item in items:
            value = self.src.scalar(item) if isinstance(item, ScalarNode) else None
            if value is None or not str(item.value):
                self.error(item, f"{_p(what)}'needs' must name jobs, not {kind_of(item)}")
                continue
            job = str(item.value)
            if job in out:
                continue
            self.map.locs[(*path, "needs", len(out))] = Loc(None, item)
            out.append(job)
        return out

    # -- steps -------------------------------------------------------------------------

    def steps(self, entry: _Entry, jid: str, defaults: _RunDefaults) -> list[StepSpec]:
        node = entry.node
        what = f"job {jid!r}"
        if not isinstance(node, SequenceNode):
            self.error(node, f"{_p(what)}'steps' must be a list of steps, not {kind_of(node)}")
            return []
        if not node.value:
            self.error(node, f"{_p(what)}'steps' is empty: a job needs at least one step")
        steps: list[StepSpec] = []
        ids: dict[str, Node] = {}
        for index, item in enumerate(node.value):
            step = self.step(jid, index, item, defaults, ids)
            if step is not None:
                steps.append(step)
        return steps

    def step(
        self, jid: str, index: int, node: Node, defaults: _RunDefaults, ids: dict[str, Node]
    ) -> StepSpec | None:
        path: Path = ("jobs", jid, "steps", index)
        self.map.locs[path] = Loc(None, node)
        pos = self.src.pos(node)
        step_id = None
        if isinstance(node, MappingNode):
            for key, _, value_node in self.src.entries(node):
                if key == "id" and isinstance(value_node, ScalarNode):
                    step_id = str(value_node.value) or None
        label = f"step {step_id!r}" if step_id else f"step {index + 1}"
        found = self.mapping(node, STEP_KEYS, f"in {label}", label)
        if found is None:
            return None
        if step_id is not None:
            self.step_id(found["id"], label, jid, ids)
        elif "id" in found:
            self.error(
                found["id"].node,
                f"{label}: 'id' must be a step id, not {kind_of(found['id'].node)}",
            )
        name = None
        if "name" in found:
            name = self.text_of(found["name"], label)
            self.keep((*path, "name"), found["name"])
        uses, with_ = self.action(found, label, path, defaults, node)
        env = {}
        if "env" in found:
            env = self.string_map(found["env"], label, (*path, "env"), "env")
        if_ = self.condition(found["if"], label, (*path, "if")) if "if" in found else None
        continue_on_error: bool | str = False
        if "continue-on-error" in found:
            continue_on_error = self.bool_or_expression(
                found["continue-on-error"], label, (*path, "continue-on-error")
            )
        timeout = self.timeout(found, label)
        heartbeat = None
        if "heartbeat_timeout" in found:
            heartbeat = self.duration(found["heartbeat_timeout"], label)
        retry = self.retry(found["retry"], label) if "retry" in found else None
        local = self.boolean(found["local"], label) if "local" in found else None
        if name:
            display = name
        elif uses == "shell/run" and "run" in found:
            lines = [line.strip() for line in str(with_.get("run", "")).splitlines()]
            display = "Run " + next((line for line in lines if line), "")
        else:
            display = uses
        return StepSpec(
            index=index,
            key=step_id or f"_{index + 1}",
            id=step_id,
            name=name,
            display_name=display.strip(),
            uses=uses,
            with_=with_,
            env=env,
            if_=if_,
            continue_on_error=continue_on_error,
            timeout=timeout,
            heartbeat_timeout=heartbeat,
            retry=retry,
            pos=pos,
            local=local,
        )

    def step_id(self, entry: _Entry, label: str, jid: str, ids: dict[str, Node]) -> None:
        step_id = str(entry.node.value)
        if not ID_RE.fullmatch(step_id):
            self.error(entry.node, f"{label}: invalid step id: use {_ID_RULE}")
        elif _AUTO_KEY_RE.fullmatch(step_id):
            self.error(
                entry.node, f"{label}: ids like '_1' name steps without an id; choose another"
            )
        folded = step_id.lower()
        if folded in ids:
            first = ids[folded]
            line = self.src.pos(first).line
            where = f"first on line {line}"
            if str(first.value) != step_id:
                where = f"as {str(first.value)!r} on line {line}; ids ignore case"
            self.error(entry.node, f"{label}: step id used twice in job {jid!r} ({where})")
        else:
            ids[folded] = entry.node

    def action(
        self,
        found: dict[str, _Entry],
        label: str,
        path: Path,
        defaults: _RunDefaults,
        node: Node,
    ) -> tuple[str, dict[str, Any]]:
        """`uses` and `with_` of a step; a `run:` step becomes `shell/run`."""
        uses_entry = found.get("uses")
        run_entry = found.get("run")
        if uses_entry is not None and run_entry is not None:
            later = max(uses_entry, run_entry, key=lambda e: _start(e.key_node))
            self.error(later.key_node, f"{label}: give either 'uses' or 'run', not both")
        if uses_entry is None and run_entry is None:
            if self.misspelt(node, "uses") or self.misspelt(node, "run"):
                return "", {}
            self.error(
                node, f"{label}: needs 'uses' (a node or a GitHub Action) or 'run' (a shell script)"
            )
            return "", {}
        if uses_entry is not None:
            for key in ("shell", "working-directory"):
                if key in found:
                    self.error(
                        found[key].key_node, f"{label}: {key!r} goes with 'run', not with 'uses'"
                    )
            uses = self.text_of(uses_entry, label, empty_ok=False) or ""
            self.keep((*path, "uses"), uses_entry)
            problem = uses_problem(uses) if uses else None
            if problem is not None:
                self.error(uses_entry.node, f"{label}: {problem}")
            if self.misspelt(node, "with"):
                self.map.misspelt.add((*path, "with"))
            with_: dict[str, Any] = {}
            if "with" in found:
                with_ = self.with_(found["with"], label, (*path, "with"))
            return uses, with_
        assert run_entry is not None
        if "with" in found:
            self.error(found["with"].key_node, f"{label}: 'with' goes with 'uses', not with 'run'")
        script = self.text_of(run_entry, label, empty_ok=False) or ""
        with_ = {"run": script}
        self.keep((*path, "with", "run"), run_entry)
        shell = defaults.shell
        if "shell" in found:
            shell = self.text_of(found["shell"], label, empty_ok=False)
            self.keep((*path, "with", "shell"), found["shell"])
        if shell:
            with_["shell"] = shell
        workdir = defaults.working_directory
        if "working-directory" in found:
            workdir = self.text_of(found["working-directory"], label, empty_ok=False)
            self.keep((*path, "with", "working-directory"), found["working-directory"])
        if workdir:
            with_["working-directory"] = workdir
        return "shell/run", with_

    def with_(self, entry: _Entry, label: str, path: Path) -> dict[str, Any]:
        node = entry.node
        if isinstance(node, ScalarNode) and self.src.scalar(node) is None:
            return {}
        if not isinstance(node, MappingNode):
            self.error(
                node, f"{label}: 'with' must be a mapping of parameters, not {kind_of(node)}"
            )
            return {}
        self.keep(path, entry)
        value = self.src.plain(node)
        self.keep_tree(path, node)
        return value if isinstance(value, dict) else {}

    def retry(self, entry: _Entry, label: str) -> RetrySpec | None:
        what = label
        found = self.mapping(entry.node, RETRY_KEYS, f"in 'retry' of {label}", f"{label}: 'retry'")
        if found is None:
            return None
        attempts = 1
        if "max_attempts" in found:
            node = found["max_attempts"].node
            value = self.src.scalar(node) if isinstance(node, ScalarNode) else None
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                self.error(
                    node,
                    f"{_p(what)}'retry.max_attempts' must be a whole number of at least 1, "
                    f"not {kind_of(node)}",
                )
            else:
                attempts = value
        initial = maximum = None
        if "initial_interval" in found:
            initial = self.duration(found["initial_interval"], what, "retry.initial_interval")
        if "maximum_interval" in found:
            maximum = self.duration(found["maximum_interval"], what, "retry.maximum_interval")
            if initial is not None and maximum is not None and maximum < initial:
                self.error(
                    found["maximum_interval"].node,
                    f"{_p(what)}'retry.maximum_interval' is shorter than 'retry.initial_interval'",
                )
        backoff = None
        if "backoff_coefficient" in found:
            node = found["backoff_coefficient"].node
            value = self.src.scalar(node) if isinstance(node, ScalarNode) else None
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 1
            ):
                self.error(
                    node,
                    f"{_p(what)}'retry.backoff_coefficient' must be a number of at least 1, "
                    f"not {kind_of(node)}",
                )
            else:
                backoff = float(value)
        return RetrySpec(attempts, initial, maximum, backoff)
