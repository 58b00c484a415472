"""`waterflow nodes`: the node catalog, of the fleet (`--server`) or of this host."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click
from google.protobuf import json_format

from waterflow._node import NodeMetadata
from waterflow._proto.v1 import user_pb2
from waterflow_server._client import ClientError, ServerOptions, connect
from waterflow_server._table import print_table
from waterflow_server._validate import installed_nodes


def parameters_text(meta: NodeMetadata) -> str:
    """`context*, tag, push` (* marks a required parameter)."""
    names = [f"{p.name}{'*' if p.required else ''}" for p in meta.parameters]
    if meta.additional_parameters:
        names.append("...")
    return ", ".join(names) or "-"


async def fetch_catalog(options: ServerOptions, queue: str = "") -> list[user_pb2.QueueNodes]:
    async with connect(options) as server:
        response = await server.stub.ListNodes(
            user_pb2.ListNodesRequest(queue=queue), metadata=server.metadata, timeout=30
        )
    return list(response.queues)


def _remote(options: ServerOptions, queue: str | None, as_json: bool) -> int:
    from waterflow import _wire

    queues = asyncio.run(fetch_catalog(options, queue or ""))
    if as_json:
        data: list[Any] = [
            json_format.MessageToDict(q, preserving_proto_field_name=True) for q in queues
        ]
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return 0
    if not queues:
        where = f"queue {queue}" if queue else "any queue"
        click.echo(f"no live agent serves {where} on {options.address}")
        return 1 if queue else 0
    rows = []
    for q in queues:
        for offered in q.nodes:
            meta = _wire.node_metadata(offered.node.metadata)
            versions = ", ".join(offered.versions)
            rows.append(
                [
                    q.queue,
                    meta.name,
                    versions,
                    f"{offered.live_agents}/{q.live_agents}",
                    f"{offered.node.distribution} {offered.node.distribution_version}",
                    parameters_text(meta),
                ]
            )
        if not q.nodes:
            rows.append([q.queue, "-", "-", f"0/{q.live_agents}", "-", "-"])
    print_table(["QUEUE", "NODE", "VERSION", "AGENTS", "PROVIDED BY", "PARAMETERS"], rows)
    return 0


def _local(as_json: bool) -> int:
    from waterflow.engine.converter import unstructure

    registry = installed_nodes()
    if as_json:
        catalog = [
            {
                "name": node.name,
                "distribution": node.source.distribution,
                "distribution_version": node.source.version,
                "metadata": unstructure(node.metadata),
            }
            for node in registry.all()
        ]
        click.echo(json.dumps(catalog, indent=2, sort_keys=True, default=str))
        return 0
    if not registry.all():
        click.echo("no nodes installed here (install a node package, e.g. waterflow-nodes-shell)")
        return 0
    rows = [
        [
            node.name,
            node.metadata.version,
            node.source.describe(),
            parameters_text(node.metadata),
        ]
        for node in registry.all()
    ]
    print_table(["NODE", "VERSION", "PROVIDED BY", "PARAMETERS"], rows)
    return 0


def nodes_command(options: ServerOptions, queue: str | None, as_json: bool) -> int:
    try:
        if options.address:
            return _remote(options, queue, as_json)
        if queue:
            raise ClientError("--queue needs --server: queues are known to the server")
        return _local(as_json)
    except ClientError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
