"""Fixtures of the workflow-language tests."""

from __future__ import annotations

import pytest
from dsl_test_nodes import GHA, NODES

from waterflow import NodeMetadata


@pytest.fixture
def nodes() -> dict[str, NodeMetadata]:
    """The test nodes, without the GitHub Actions package."""
    return dict(NODES)


@pytest.fixture
def nodes_with_gha() -> dict[str, NodeMetadata]:
    return {**NODES, **GHA}
