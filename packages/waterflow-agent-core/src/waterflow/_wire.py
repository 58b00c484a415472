"""Node metadata and workflow problems to and from their `waterflow.v1` protobuf messages.

Agents send their nodes with `node_info`; the server turns them back into `NodeMetadata` with
`node_metadata` to validate workflows, exactly as an agent validates against its own registry.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2

from waterflow._node import NodeMetadata, Output, Parameter
from waterflow._proto.v1 import nodes_pb2
from waterflow._registry import RegisteredNode
from waterflow.dsl import Problem

__all__ = [
    "from_value",
    "metadata_message",
    "node_info",
    "node_metadata",
    "problem",
    "problem_message",
    "to_value",
]


def to_value(value: Any) -> struct_pb2.Value:
    """A JSON-like value as `google.protobuf.Value`; anything else as its `str`."""
    message = struct_pb2.Value()
    try:
        json_format.ParseDict(_jsonable(value), message)
    except (json_format.ParseError, TypeError, ValueError):
        message.string_value = str(value)
    return message


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, str | bool | int | float):
        return value
    return str(value)


def from_value(message: struct_pb2.Value) -> Any:
    value = json_format.MessageToDict(message)
    # Value keeps every number as a double; a whole number was most likely written as one.
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def metadata_message(meta: NodeMetadata) -> nodes_pb2.NodeMetadata:
    parameters = []
    for p in meta.parameters:
        message = nodes_pb2.Parameter(
            name=p.name,
            type=p.type,
            required=p.required,
            description=p.description,
            has_enum=p.enum is not None,
            enum_values=[to_value(v) for v in p.enum or ()],
        )
        if p.default is not None:
            message.default_value.CopyFrom(to_value(p.default))
        parameters.append(message)
    return nodes_pb2.NodeMetadata(
        name=meta.name,
        version=meta.version,
        description=meta.description,
        parameters=parameters,
        outputs=[nodes_pb2.Output(name=o.name, description=o.description) for o in meta.outputs],
        additional_parameters=meta.additional_parameters,
        local=meta.local,
    )


def node_info(node: RegisteredNode) -> nodes_pb2.NodeInfo:
    return nodes_pb2.NodeInfo(
        metadata=metadata_message(node.metadata),
        distribution=node.source.distribution,
        distribution_version=node.source.version,
        plugin=node.source.name,
        origin=node.source.origin,
    )


def node_metadata(message: nodes_pb2.NodeMetadata) -> NodeMetadata:
    """The metadata back; raises ValueError for a parameter type this version does not know."""
    return NodeMetadata(
        name=message.name,
        version=message.version,
        description=message.description,
        parameters=[
            Parameter(
                name=p.name,
                type=p.type,  # type: ignore[arg-type]  # checked by Parameter itself
                required=p.required,
                default=from_value(p.default_value) if p.HasField("default_value") else None,
                enum=[from_value(v) for v in p.enum_values] if p.has_enum else None,
                description=p.description,
            )
            for p in message.parameters
        ],
        outputs=[Output(name=o.name, description=o.description) for o in message.outputs],
        additional_parameters=message.additional_parameters,
        local=message.local,
    )


def problem_message(p: Problem) -> nodes_pb2.Problem:
    return nodes_pb2.Problem(file=p.file, line=p.line, col=p.col, message=p.message)


def problem(message: nodes_pb2.Problem) -> Problem:
    return Problem(message.file, message.line, message.col, message.message)
