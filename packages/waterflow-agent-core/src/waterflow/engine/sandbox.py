"""How the agent runs Waterflow's workflow code: outside Temporal's sandbox, unless asked.

Temporal's Python sandbox guards workflow code its users write: it imports the workflow's
module afresh for every workflow instance (so that instances share no module state) and
refuses calls that would decide differently on replay (the wall clock, randomness, files,
processes). In Waterflow nobody writes workflow code: a workflow file is data, interpreted by
two workflow classes of ours (`waterflow.engine.run_workflow`, `waterflow.engine.job_workflow`),
and nodes (plugins) only ever run as activities. So the agent runs those two classes without
the sandbox (`agent.workflow_sandbox: false`, the default): about a tenth less time a step
(docs/benchmarks.md). Their modules keep no state of their own, only constants.

The checks are not dropped, they move to the test suite: its in-process agents run with
`agent.workflow_sandbox: true`, which is the sandbox with all of Temporal's default
restrictions, and `tests/test_replay.py` replays real runs under it. An operator can turn it on
too, to look into a nondeterminism error.

In the sandbox, modules passed through are imported once, outside it, and shared by every
instance. Two kinds are:

- libraries that do non-deterministic things at import time (loguru reads the clock) or are
  costly to import, and that workflow code never calls;
- Waterflow's own modules that the workflow module needs and that are pure: importing them
  has no side effect, and nothing in them that workflow code uses reads the clock, draws
  random numbers or does I/O. Without them, each instance re-ran `waterflow/__init__.py` and
  what it imports, and built a new cattrs converter (see `SANDBOX_REIMPORTS` for what is
  left).

A workflow's own module is never passed through: Temporal isolates each instance's module
state that way. Neither are `waterflow` and `waterflow.engine`: Temporal matches a
passed-through name as a prefix, so passing `waterflow` would pass the workflow modules too.
They are imported in the sandbox as the workflow module's parents, which is cheap:
`waterflow/__init__.py` takes the pure modules below from outside and imports nothing else at
once (StepLog, which writes files and reads the clock, only when asked for).
"""

from __future__ import annotations

from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowRunner
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


_RESTRICTIONS = SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)


def workflow_runner(*, sandboxed: bool) -> WorkflowRunner:
    """The runner of the agent's workflow workers: Temporal's sandbox with all of its default
    restrictions when `sandboxed` (`agent.workflow_sandbox`), else none."""
    if sandboxed:
        return SandboxedWorkflowRunner(restrictions=_RESTRICTIONS)
    return UnsandboxedWorkflowRunner()
