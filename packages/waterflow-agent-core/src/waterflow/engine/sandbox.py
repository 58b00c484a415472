"""The workflow sandbox as Waterflow configures it.

Temporal imports the workflow module afresh, in a sandbox, for every workflow instance, and
with it every module it imports that is not passed through. Two kinds are passed through
(imported once, outside the sandbox, shared by every instance):

- libraries that do non-deterministic things at import time (loguru reads the clock) or are
  costly to import, and that workflow code never calls;
- Waterflow's own modules that the workflow module needs and that are pure: importing them
  has no side effect, and nothing in them that workflow code uses reads the clock, draws
  random numbers or does I/O. Sharing them is what makes a new workflow instance cheap: without
  them, each instance re-ran `waterflow/__init__.py` and what it imports, and built a new cattrs
  converter, about 20 ms of CPU per instance more (`python -X importtime` and a count of the
  modules the sandbox imports; see `SANDBOX_REIMPORTS` for what is left).

A workflow's own module (`waterflow.engine.run_workflow`, `waterflow.engine.job_workflow`) is
never passed through: Temporal isolates each instance's module state that way. Neither are
`waterflow` and `waterflow.engine`: Temporal matches a passed-through name as a prefix, so
passing `waterflow` would pass the workflow modules too. They are imported in the sandbox as
the workflow module's parents, which is cheap: `waterflow/__init__.py` takes the pure modules
below from outside and imports nothing else at once (StepLog, which writes files and reads
the clock, only when asked for).
"""

from __future__ import annotations

import dataclasses

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

#: Libraries: imported once, outside the sandbox; workflow code never calls them.
_LIBRARIES = (
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

#: Waterflow's pure modules, each checked to be free of import-time side effects and
#: deterministic in what workflow code uses of it (a name passes its submodules too):
_WATERFLOW_PURE = (
    # pluggy's hook markers: constants and decorators.
    "waterflow._hookspec",
    # A regex over registered values; its lock only guards its own set.
    "waterflow._masking",
    # attrs classes of the node API; StepContext.run_process (processes) is an agent-side call
    # that imports its runner when called, which in the sandbox would go through the sandbox.
    "waterflow._node",
    # Plain dicts of nodes behind a lock; workflow code never holds a registry.
    "waterflow._registry",
    "waterflow._version",
    # The expression language: pure functions of their arguments (the parse cache is keyed by
    # the text alone). hashFiles reads files, but it lives in `_hashfiles`, imported only by
    # `hash_files` on the agent; in a workflow the function is unbound and refuses.
    "waterflow.expressions",
    # One cattrs converter and the payload converter: JSON in, attrs out, nothing else.
    "waterflow.engine.converter",
    # What both workflows share: pure functions; the clock and search attributes they use are
    # the workflow's own, through Temporal's workflow API.
    "waterflow.engine.workflow_support",
)

PASSTHROUGH_MODULES = _LIBRARIES + _WATERFLOW_PURE

#: What the sandbox still imports for each workflow instance, by workflow type, besides the
#: standard library's restricted stand-ins (tests/test_sandbox.py holds it to this): the
#: workflow's own module and its parents, and nothing of the other workflow.
SANDBOX_REIMPORTS = {
    "waterflow.run": frozenset({"waterflow", "waterflow.engine", "waterflow.engine.run_workflow"}),
    "waterflow.job": frozenset({"waterflow", "waterflow.engine", "waterflow.engine.job_workflow"}),
}


def _without_builtin_checks(restrictions: SandboxRestrictions) -> SandboxRestrictions:
    """`restrictions` less those on builtins (`open`, `input`, `breakpoint`).

    Temporal enforces them by putting thread-dispatching stand-ins for those builtins, and for
    `isinstance` and `issubclass`, into the `builtins` module for as long as any workflow code
    runs: each activation, and each lookup of a payload's serialization context (several an
    activation). Meanwhile every thread of the agent goes through the stand-ins, the one that
    runs steps included, and the swap itself is a stack of context managers each time. Without
    them: 0.3 ms less of the agent's main thread a step, and 7% less agent CPU when 20 jobs
    run at once (docs/benchmarks.md). Waterflow's workflow code never calls those builtins:
    tests/test_replay.py replays real runs under the default restrictions, which have them.
    """
    members = restrictions.invalid_module_members
    children = {k: v for k, v in members.children.items() if k != "__builtins__"}
    return dataclasses.replace(
        restrictions, invalid_module_members=dataclasses.replace(members, children=children)
    )


RESTRICTIONS = _without_builtin_checks(
    SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
)


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(restrictions=RESTRICTIONS)
