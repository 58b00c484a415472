"""Node metadata the workflow-language tests validate against."""

from __future__ import annotations

from waterflow import NodeMetadata, Output, Parameter

NODES = {
    "docker/build": NodeMetadata(
        "docker/build",
        "1.0",
        parameters=[
            Parameter("context", default="."),
            Parameter("tag", required=True),
            Parameter("push", type="boolean", default=False),
            Parameter("platform", enum=("linux/amd64", "linux/arm64")),
            Parameter("build_args", type="object"),
        ],
        outputs=[Output("image")],
    ),
    "slack/notify": NodeMetadata(
        "slack/notify",
        "1.0",
        parameters=[Parameter("webhook_url", required=True), Parameter("message", required=True)],
    ),
    "shell/run": NodeMetadata(
        "shell/run",
        "1.0",
        parameters=[
            Parameter("run", required=True),
            Parameter("shell"),
            Parameter("working-directory"),
        ],
    ),
}
GHA = {"gha/action": NodeMetadata("gha/action", "1.0", additional_parameters=True)}
