"""What Temporal's workflow sandbox imports afresh for each workflow instance.

Every module imported there is executed again for every new workflow instance (each run and
each job); engine/sandbox.py passes the pure ones through. A module that starts being imported
in the sandbox (a new import in the workflow module, or in a module passed through by name
only) makes every workflow instance slower: this test says which one.
"""

from __future__ import annotations

import asyncio
import importlib.abc
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from temporalio import workflow

from waterflow.engine.job_workflow import JobWorkflow
from waterflow.engine.run_workflow import RunWorkflow
from waterflow.engine.sandbox import SANDBOX_REIMPORTS, workflow_runner


class _Recorder(importlib.abc.MetaPathFinder):
    """Notes every module Python looks for (one not yet imported), and finds none itself."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> Any:
        self.names.append(fullname)
        return None


def _sandbox_imports(cls: type) -> set[str]:
    runner = workflow_runner()
    defn = workflow._Definition.must_from_class(cls)
    recorder = _Recorder()

    async def create() -> None:
        # The worker validates a workflow this way: one instance, created in the sandbox.
        runner.prepare_workflow(defn)

    sys.meta_path.insert(0, recorder)
    try:
        asyncio.run(create())
    finally:
        sys.meta_path.remove(recorder)
    # Waterflow's own: third-party libraries are passed through by name, and whatever the test
    # runner happens to import meanwhile is no concern here.
    return {n for n in recorder.names if n.split(".")[0] == "waterflow"}


def test_each_workflow_instance_imports_only_its_own_module_and_its_parents() -> None:
    for cls in (RunWorkflow, JobWorkflow):
        name = workflow._Definition.must_from_class(cls).name
        assert _sandbox_imports(cls) == SANDBOX_REIMPORTS[name], cls.__name__
