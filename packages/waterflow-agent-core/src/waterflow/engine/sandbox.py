"""The workflow sandbox as Waterflow configures it.

The workflows import the `waterflow` package, whose other modules bring in libraries that do
non-deterministic things at import time (loguru reads the clock). Those libraries are passed
through: imported once, outside the sandbox, never called by workflow code. Waterflow's own
modules stay sandboxed, so a non-deterministic call in workflow code is still caught.
"""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

PASSTHROUGH_MODULES = (
    "attr",
    "attrs",
    "cattrs",
    "click",
    "google.protobuf",
    "grpc",
    "importlib_metadata",
    "loguru",
    "pluggy",
    "ruamel",
    "watchfiles",
)


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )
