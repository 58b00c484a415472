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

from typing import TYPE_CHECKING, Any

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
from waterflow._version import __version__

if TYPE_CHECKING:
    from waterflow._steplog import StepLog

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


def __getattr__(name: str) -> Any:
    # StepLog writes files and reads the clock: imported when first asked for, so that the
    # workflow sandbox, which imports this package afresh for every workflow instance, does not
    # import it (engine/sandbox.py).
    if name == "StepLog":
        from waterflow._steplog import StepLog

        return StepLog
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
