"""Waterflow: the node-author API.

A node is a plugin in its own distribution. Declare it in your `pyproject.toml`::

    [project.entry-points."waterflow.nodes"]
    hello = "waterflow_nodes_hello"

and implement the two hooks in that module::

    from waterflow import NodeMetadata, NodeResult, Parameter, hookimpl

    class Greet:
        async def execute(self, params, context):
            context.log.stdout(f"hello {params['who']}")
            return NodeResult(outputs={"greeting": f"hello {params['who']}"})

    @hookimpl
    def node_metadata():
        return [NodeMetadata(name="hello/greet", version="1.0.0",
                             parameters=[Parameter("who", required=True)])]

    @hookimpl
    def register_nodes(registry):
        registry.add("hello/greet", Greet)

A step then says `uses: hello/greet` with `with: {who: world}`. See docs/node-authors.md.
"""

from waterflow._hookspec import hookimpl
from waterflow._masking import SecretMasker
from waterflow._node import (
    EnvFiles,
    Node,
    NodeError,
    NodeFactory,
    NodeMetadata,
    NodeResult,
    Output,
    Parameter,
    StepContext,
    StepInfo,
)
from waterflow._registry import NodeRegistrar
from waterflow._steplog import StepLog
from waterflow._version import __version__

__all__ = [
    "EnvFiles",
    "Node",
    "NodeError",
    "NodeFactory",
    "NodeMetadata",
    "NodeRegistrar",
    "NodeResult",
    "Output",
    "Parameter",
    "SecretMasker",
    "StepContext",
    "StepInfo",
    "StepLog",
    "__version__",
    "hookimpl",
]
