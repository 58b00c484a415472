"""An action's metadata file (`action.yml` or `action.yaml`), read as GitHub's runner reads it.

Every scalar is kept as the text written (`default: true` is the string `true`), as on GitHub.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from waterflow import NodeError, NodeMetadata, Output, Parameter

METADATA_FILES = ("action.yml", "action.yaml")
NODE_RUNTIMES = {"node12": 12, "node16": 16, "node20": 20, "node24": 24}
KINDS = (*NODE_RUNTIMES, "docker", "composite")
COMPOSITE_STEP_KEYS = frozenset(
    {
        "id",
        "name",
        "if",
        "run",
        "uses",
        "shell",
        "with",
        "env",
        "working-directory",
        "continue-on-error",
    }
)


@attrs.frozen
class ActionInput:
    name: str
    description: str = ""
    required: bool = False
    default: str | None = None
    deprecation_message: str | None = None


@attrs.frozen
class ActionOutput:
    name: str
    description: str = ""
    value: str | None = None  # composite actions map their outputs with `value:`


@attrs.frozen
class CompositeStep:
    """One step of a composite action, as written (values are templates)."""

    index: int
    id: str | None
    name: str | None
    if_: str | None
    run: str | None
    uses: str | None
    shell: str | None
    with_: Mapping[str, str]
    env: Mapping[str, str]
    working_directory: str | None
    continue_on_error: str | None

    @property
    def label(self) -> str:
        return repr(self.id) if self.id else f"#{self.index + 1}"


@attrs.frozen
class Runs:
    using: str
    main: str | None = None
    pre: str | None = None
    post: str | None = None
    pre_if: str | None = None
    post_if: str | None = None
    image: str | None = None
    entrypoint: str | None = None
    pre_entrypoint: str | None = None
    post_entrypoint: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = attrs.field(factory=dict)
    steps: tuple[CompositeStep, ...] = ()

    @property
    def node_major(self) -> int | None:
        return NODE_RUNTIMES.get(self.using)

    @property
    def has_post(self) -> bool:
        return bool(self.post if self.node_major else self.post_entrypoint)


@attrs.frozen
class Manifest:
    """What `action.yml` says. `file` is where it was read from (for messages)."""

    file: Path
    name: str
    description: str
    inputs: tuple[ActionInput, ...]
    outputs: tuple[ActionOutput, ...]
    runs: Runs

    def input(self, name: str) -> ActionInput | None:
        wanted = name.lower()
        for item in self.inputs:
            if item.name.lower() == wanted:
                return item
        return None


class _Reader:
    def __init__(self, label: str) -> None:
        self.label = label

    def fail(self, where: str, problem: str) -> NodeError:
        return NodeError(f"{self.label}: {where}: {problem}", retryable=False)

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if value is None or value == "":
            return {}
        if not isinstance(value, dict):
            raise self.fail(where, "expected a mapping")
        return value

    def text(self, value: Any, where: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(where, "expected a string")
        return value

    def flag(self, value: Any, where: str) -> bool:
        text = (self.text(value, where) or "false").strip().lower()
        if text not in ("true", "false"):
            raise self.fail(where, f"expected true or false, got {text!r}")
        return text == "true"

    def strings(self, value: Any, where: str) -> dict[str, str]:
        result: dict[str, str] = {}
        for key, item in self.mapping(value, where).items():
            if isinstance(item, dict | list):
                raise self.fail(f"{where}.{key}", "expected a string")
            result[str(key)] = item
        return result


def find_metadata(directory: Path) -> Path | None:
    for name in METADATA_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def load_manifest(directory: Path, label: str) -> Manifest:
    """Read the action in `directory`; `label` names it in errors (`owner/repo@v1`).

    Raises NodeError(retryable=False) with one line naming the file and the problem.
    """
    file = find_metadata(directory)
    if file is None:
        if not directory.is_dir():
            raise NodeError(f"action {label}: {str(directory)!r} does not exist", retryable=False)
        raise NodeError(
            f"action {label}: no action.yml or action.yaml in {str(directory)!r}",
            retryable=False,
        )
    reader = _Reader(f"action {label} ({file.name})")
    try:
        data = YAML(typ="base").load(file.read_text(encoding="utf-8"))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "YAML"
        raise reader.fail(where, str(exc.problem or exc).splitlines()[0]) from None
    except (YAMLError, UnicodeDecodeError) as exc:
        raise reader.fail("YAML", str(exc).splitlines()[0]) from None
    root = reader.mapping(data, "top level")
    inputs = []
    for name, spec in reader.mapping(root.get("inputs"), "inputs").items():
        entry = reader.mapping(spec, f"inputs.{name}")
        inputs.append(
            ActionInput(
                name=str(name),
                description=reader.text(entry.get("description"), f"inputs.{name}") or "",
                required=reader.flag(entry.get("required"), f"inputs.{name}.required"),
                default=reader.text(entry.get("default"), f"inputs.{name}.default"),
                deprecation_message=reader.text(
                    entry.get("deprecationMessage"), f"inputs.{name}.deprecationMessage"
                ),
            )
        )
    outputs = []
    for name, spec in reader.mapping(root.get("outputs"), "outputs").items():
        entry = reader.mapping(spec, f"outputs.{name}")
        outputs.append(
            ActionOutput(
                name=str(name),
                description=reader.text(entry.get("description"), f"outputs.{name}") or "",
                value=reader.text(entry.get("value"), f"outputs.{name}.value"),
            )
        )
    runs = _runs(reader, reader.mapping(root.get("runs"), "runs"))
    return Manifest(
        file=file,
        name=reader.text(root.get("name"), "name") or label,
        description=reader.text(root.get("description"), "description") or "",
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        runs=runs,
    )


def _runs(reader: _Reader, runs: dict[str, Any]) -> Runs:
    using = (reader.text(runs.get("using"), "runs.using") or "").strip().lower()
    if not using:
        raise reader.fail("runs.using", f"missing; expected one of {', '.join(KINDS)}")
    if using not in KINDS:
        raise reader.fail("runs.using", f"{using!r} is not supported; use {', '.join(KINDS)}")

    def text(key: str) -> str | None:
        return reader.text(runs.get(key), f"runs.{key}")

    if using in NODE_RUNTIMES:
        main = text("main")
        if not main:
            raise reader.fail("runs.main", f"missing: the script a {using} action runs")
        return Runs(
            using=using,
            main=main,
            pre=text("pre"),
            post=text("post"),
            pre_if=text("pre-if"),
            post_if=text("post-if"),
        )
    if using == "docker":
        image = text("image")
        if not image:
            raise reader.fail("runs.image", "missing: a Dockerfile or docker://image")
        args = runs.get("args")
        if args is None:
            arg_list: tuple[str, ...] = ()
        elif isinstance(args, list) and all(isinstance(a, str) for a in args):
            arg_list = tuple(args)
        else:
            raise reader.fail("runs.args", "expected a list of strings")
        return Runs(
            using=using,
            image=image,
            entrypoint=text("entrypoint"),
            pre_entrypoint=text("pre-entrypoint"),
            post_entrypoint=text("post-entrypoint"),
            pre_if=text("pre-if"),
            post_if=text("post-if"),
            args=arg_list,
            env=reader.strings(runs.get("env"), "runs.env"),
        )
    raw_steps = runs.get("steps")
    if not isinstance(raw_steps, list):
        raise reader.fail("runs.steps", "missing: a composite action needs a list of steps")
    return Runs(using=using, steps=tuple(_step(reader, i, s) for i, s in enumerate(raw_steps)))


def _step(reader: _Reader, index: int, raw: Any) -> CompositeStep:
    where = f"runs.steps[{index}]"
    step = reader.mapping(raw, where)
    unknown = sorted(set(step) - COMPOSITE_STEP_KEYS)
    if unknown:
        raise reader.fail(
            where,
            f"unknown key {unknown[0]!r}; a composite step may have "
            + ", ".join(sorted(COMPOSITE_STEP_KEYS)),
        )
    run = reader.text(step.get("run"), f"{where}.run")
    uses = reader.text(step.get("uses"), f"{where}.uses")
    if (run is None) == (uses is None):
        raise reader.fail(where, "a step needs exactly one of run and uses")
    return CompositeStep(
        index=index,
        id=reader.text(step.get("id"), f"{where}.id"),
        name=reader.text(step.get("name"), f"{where}.name"),
        if_=reader.text(step.get("if"), f"{where}.if"),
        run=run,
        uses=uses.strip() if uses else None,
        shell=reader.text(step.get("shell"), f"{where}.shell"),
        with_=reader.strings(step.get("with"), f"{where}.with"),
        env=reader.strings(step.get("env"), f"{where}.env"),
        working_directory=reader.text(step.get("working-directory"), f"{where}.working-directory"),
        continue_on_error=reader.text(step.get("continue-on-error"), f"{where}.continue-on-error"),
    )


def node_metadata_for(manifest: Manifest, name: str, version: str) -> NodeMetadata:
    """The action as node metadata, for checking a step's `with:` against its inputs: an
    input is required when it is required and has no default; others may be given too
    (GitHub only warns about them)."""
    return NodeMetadata(
        name=name,
        version=version,
        description=manifest.description or manifest.name,
        parameters=tuple(
            Parameter(
                item.name,
                required=item.required and item.default is None,
                default=item.default,
                description=item.description,
            )
            for item in manifest.inputs
        ),
        outputs=tuple(Output(o.name, o.description) for o in manifest.outputs),
        additional_parameters=True,
    )


def input_env_name(name: str) -> str:
    """`INPUT_<NAME>` as GitHub's runner names it: spaces become underscores, upper case,
    hyphens kept (`my-input` is `INPUT_MY-INPUT`)."""
    return "INPUT_" + name.replace(" ", "_").upper()


__all__ = [
    "KINDS",
    "NODE_RUNTIMES",
    "ActionInput",
    "ActionOutput",
    "CompositeStep",
    "Manifest",
    "Runs",
    "find_metadata",
    "input_env_name",
    "load_manifest",
    "node_metadata_for",
]
