"""Waterflow's search attributes on a Temporal namespace: checked, registered where allowed."""

from __future__ import annotations

from loguru import logger
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client

from waterflow.engine.types import SEARCH_ATTRIBUTES


def how_to_register(namespace: str) -> str:
    names = " ".join(f"--name {name}" for name in SEARCH_ATTRIBUTES)
    return (
        f"temporal operator search-attribute create --namespace {namespace} {names} --type Keyword"
    )


async def missing_search_attributes(client: Client, namespace: str) -> list[str]:
    response = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    known = set(response.custom_attributes) | set(response.system_attributes)
    return [name for name in SEARCH_ATTRIBUTES if name not in known]


async def ensure_search_attributes(client: Client, namespace: str) -> bool:
    """True when runs can carry Waterflow's search attributes on this namespace.

    Registers missing ones where the connection may; otherwise logs the command that does.
    """
    try:
        missing = await missing_search_attributes(client, namespace)
        if not missing:
            return True
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace,
                search_attributes={
                    name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in missing
                },
            )
        )
        logger.info("Registered search attributes", names=missing, namespace=namespace)
        return True
    except Exception as exc:
        logger.warning(
            "Search attributes are not registered and could not be registered ({}); runs "
            "cannot be listed by workflow, job and status until an operator runs: {}",
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            how_to_register(namespace),
        )
        return False
