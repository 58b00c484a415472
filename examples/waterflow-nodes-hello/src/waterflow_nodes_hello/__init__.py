"""An example node package: `hello/greet` greets someone, and counts greetings in a file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from waterflow import (
    NodeError,
    NodeMetadata,
    NodeRegistrar,
    NodeResult,
    Output,
    Parameter,
    StepContext,
    hookimpl,
)


class Greet:
    """Writes a greeting to the step log and returns it as an output."""

    async def execute(self, params: Mapping[str, Any], context: StepContext) -> NodeResult:
        who = params["who"]
        if not who.strip():
            raise NodeError("who: give a name to greet", retryable=False)
        greeting = f"{params['greeting']}, {who}!"
        context.log.stdout(greeting)
        context.heartbeat({"greeted": who})
        if params["times"] > 1:
            # Nodes may run programs; their output streams into the step log.
            await context.run_process(
                ["sh", "-c", f"for i in $(seq {params['times']}); do echo again; done"]
            )
        return NodeResult(outputs={"greeting": greeting})


@hookimpl
def node_metadata() -> list[NodeMetadata]:
    return [
        NodeMetadata(
            name="hello/greet",
            version="1.0.0",
            description="Greet someone in the step log",
            parameters=[
                Parameter("who", required=True, description="who to greet"),
                Parameter("greeting", default="Hello", enum=["Hello", "Hi", "Howdy"]),
                Parameter("times", type="integer", default=1, description="how often"),
            ],
            outputs=[Output("greeting", "the whole greeting")],
        )
    ]


@hookimpl
def register_nodes(registry: NodeRegistrar) -> None:
    registry.add("hello/greet", Greet)
