"""The node's name and metadata: all that loading the plugin needs, so that an agent imports
the action runner (`_action` and what it imports) only when a step uses it."""

from __future__ import annotations

import importlib.metadata

from waterflow import NodeMetadata

NODE_NAME = "gha/action"
DISTRIBUTION = "waterflow-nodes-gha"


def metadata() -> NodeMetadata:
    return NodeMetadata(
        name=NODE_NAME,
        version=importlib.metadata.version(DISTRIBUTION),
        description=(
            "Run a GitHub Action named by the step's uses: (owner/repo@ref, "
            "owner/repo/path@ref, ./path or docker://image): JavaScript, Docker or composite. "
            "with: holds the action's inputs."
        ),
        additional_parameters=True,
    )
