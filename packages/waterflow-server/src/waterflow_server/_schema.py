"""`waterflow schema`: a JSON Schema of the workflow language, with every known node's parameters.

Editors (the YAML language server, for one) use it to complete and check workflow files: the
keys of the language, `uses:` names, and for each node its `with:` parameters with their types,
defaults, allowed values and descriptions. The nodes are those installed here, or with
`--server` those the fleet offers (and then `runs-on` offers the fleet's queues).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from waterflow._node import NodeMetadata, Parameter
from waterflow_server._client import ClientError, ServerOptions

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_EXPRESSION = {"type": "string", "pattern": r"\$\{\{"}
_DURATION = {
    "type": "string",
    "pattern": r"^(\d+(\.\d+)?(ms|h|m|s))+$",
    "description": "A duration such as 90s, 10m, 1h30m or 500ms.",
}
_QUEUE_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9-]{0,253}[A-Za-z0-9])?$"
_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"
_JSON_TYPES = {
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "array": "array",
    "object": "object",
}


def _pointer(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _parameter(p: Parameter) -> dict[str, Any]:
    typed: dict[str, Any] = {"type": _JSON_TYPES[p.type]}
    if p.enum is not None:
        typed["enum"] = _jsonable(list(p.enum))
    schema: dict[str, Any] = (
        typed if p.type == "string" and p.enum is None else {"anyOf": [typed, _EXPRESSION]}
    )
    if p.description:
        schema["description"] = p.description
    if p.default is not None:
        schema["default"] = _jsonable(p.default)
    return schema


def _with(meta: NodeMetadata) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {p.name: _parameter(p) for p in meta.parameters},
        "additionalProperties": meta.additional_parameters,
    }
    required = [p.name for p in meta.parameters if p.required]
    if required:
        schema["required"] = required
    if meta.description:
        schema["description"] = f"{meta.name} {meta.version}: {meta.description}"
    return schema


def _step(nodes: Mapping[str, NodeMetadata]) -> dict[str, Any]:
    string_or_expression = {"anyOf": [{"type": "boolean"}, _EXPRESSION]}
    step: dict[str, Any] = {
        "type": "object",
        "description": "A step: exactly one of `uses` (a node or a GitHub Action) and `run`.",
        "properties": {
            "id": {"type": "string", "pattern": _ID_PATTERN},
            "name": {"type": "string"},
            "uses": {
                "description": "A node (`namespace/name`) or a GitHub Action "
                "(`owner/repo@ref`, `./path`, `docker://image`).",
                "anyOf": [{"enum": sorted(nodes)}, {"type": "string"}],
            },
            "run": {"type": "string", "description": "A script, run by the shell/run node."},
            "shell": {"type": "string"},
            "working-directory": {"type": "string"},
            "with": {"type": "object"},
            "env": {"$ref": "#/$defs/env"},
            "if": {"type": ["string", "boolean"]},
            "continue-on-error": string_or_expression,
            "timeout": {"$ref": "#/$defs/duration"},
            "timeout-minutes": {"type": "number", "exclusiveMinimum": 0},
            "heartbeat_timeout": {"$ref": "#/$defs/duration"},
            "local": {
                "type": "boolean",
                "description": "Run as a Temporal local activity on the agent deciding the "
                "job: for short steps (see the language reference).",
            },
            "retry": {
                "type": "object",
                "properties": {
                    "max_attempts": {"type": "integer", "minimum": 1},
                    "initial_interval": {"$ref": "#/$defs/duration"},
                    "maximum_interval": {"$ref": "#/$defs/duration"},
                    "backoff_coefficient": {"type": "number", "minimum": 1},
                },
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
        "oneOf": [{"required": ["uses"]}, {"required": ["run"]}],
        "allOf": [
            {
                "if": {"properties": {"uses": {"const": name}}, "required": ["uses"]},
                "then": {"properties": {"with": {"$ref": f"#/$defs/nodes/{_pointer(name)}"}}},
            }
            for name in sorted(nodes)
        ],
    }
    return step


def build_schema(
    nodes: Mapping[str, NodeMetadata], queues: Sequence[str] | None = None
) -> dict[str, Any]:
    """The JSON Schema of a workflow file for these nodes (and, if known, these queues)."""
    runs_on: dict[str, Any] = {
        "description": "The task queue (server group) the job runs on.",
        "anyOf": [{"type": "string", "pattern": _QUEUE_PATTERN}, _EXPRESSION],
    }
    if queues is not None:
        runs_on["anyOf"][0] = {"enum": sorted(queues)}
    job = {
        "type": "object",
        "required": ["runs-on", "steps"],
        "properties": {
            "name": {"type": "string"},
            "runs-on": runs_on,
            "needs": {
                "anyOf": [
                    {"type": "string", "pattern": _ID_PATTERN},
                    {"type": "array", "items": {"type": "string", "pattern": _ID_PATTERN}},
                ]
            },
            "if": {"type": ["string", "boolean"]},
            "env": {"$ref": "#/$defs/env"},
            "outputs": {"type": "object", "additionalProperties": {"type": "string"}},
            "timeout": {"$ref": "#/$defs/duration"},
            "timeout-minutes": {"type": "number", "exclusiveMinimum": 0},
            "continue-on-error": {"anyOf": [{"type": "boolean"}, _EXPRESSION]},
            "steps": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/step"}},
            "strategy": {"type": "object"},
            "defaults": {"type": "object"},
            "permissions": {},
            "concurrency": {},
            "environment": {},
        },
        "additionalProperties": False,
    }
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": "urn:waterflow:v1:workflow",
        "title": "Waterflow workflow",
        "description": "A Waterflow workflow file (GitHub Actions syntax where the two meet).",
        "type": "object",
        "required": ["jobs"],
        "properties": {
            "name": {"type": "string"},
            "run-name": {"type": "string"},
            "on": {},
            "env": {"$ref": "#/$defs/env"},
            "defaults": {"type": "object"},
            "permissions": {},
            "concurrency": {},
            "jobs": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": _ID_PATTERN},
                "additionalProperties": {"$ref": "#/$defs/job"},
            },
        },
        "additionalProperties": False,
        "$defs": {
            "duration": _DURATION,
            "env": {
                "type": "object",
                "additionalProperties": {"type": ["string", "number", "boolean"]},
            },
            "job": job,
            "step": _step(nodes),
            "nodes": {name: _with(meta) for name, meta in sorted(nodes.items())},
        },
    }


async def _fleet(options: ServerOptions) -> tuple[dict[str, NodeMetadata], list[str]]:
    from waterflow import _wire
    from waterflow_server._nodes import fetch_catalog

    nodes: dict[str, NodeMetadata] = {}
    queues = []
    for queue in await fetch_catalog(options):
        queues.append(queue.queue)
        for offered in queue.nodes:
            nodes.setdefault(offered.node.metadata.name, _wire.node_metadata(offered.node.metadata))
    return nodes, queues


def schema_command(options: ServerOptions, output: str | None) -> int:
    try:
        if options.address:
            nodes, queues = asyncio.run(_fleet(options))
            schema = build_schema(nodes, queues)
        else:
            from waterflow_server._validate import installed_nodes

            schema = build_schema(installed_nodes().metadata())
    except ClientError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    text = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    if output is None or output == "-":
        click.echo(text, nl=False)
        return 0
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        click.echo(f"error: cannot write {output}: {exc.strerror}", err=True)
        return 1
    click.echo(f"wrote {output} ({len(schema['$defs']['nodes'])} nodes)", err=True)
    return 0
