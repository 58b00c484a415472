"""What Temporal's workflow sandbox imports afresh for each workflow instance, and what the
workflow code keeps at module level, which instances share when they run without the sandbox.

Every module imported there is executed again for every new workflow instance (each run and
each job); engine/sandbox.py passes the pure ones through. A module that starts being imported
in the sandbox (a new import in the workflow module, or in a module passed through by name
only) makes every workflow instance slower: this test says which one.
"""

from __future__ import annotations
import __future__

import asyncio
import importlib.abc
import re
import sys
from collections.abc import Sequence
from datetime import timedelta
from types import ModuleType
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey

from waterflow.engine import job_workflow, run_workflow, workflow_support
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
    runner = workflow_runner(sandboxed=True)
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


# What a module-level or class-level name of the workflow code may hold: nothing any instance
# could change, since without the sandbox (the agent's default) every instance shares it.
_IMMUTABLE = (str, bytes, int, float, bool, type(None), timedelta, tuple, frozenset, re.Pattern)
_FUTURE = type(__future__.annotations)  # `from __future__ import annotations`


def _shared_state(namespace: dict[str, Any], owner: str) -> list[str]:
    found = []
    for name, value in namespace.items():
        if name.startswith("__") or isinstance(value, (*_IMMUTABLE, _FUTURE, ModuleType, type)):
            continue
        if callable(value) or isinstance(value, staticmethod | classmethod | property):
            continue
        if isinstance(value, SearchAttributeKey):  # a frozen dataclass
            continue
        found.append(f"{owner}.{name}: {type(value).__name__}")
    return found


def test_the_workflow_code_keeps_no_state_its_instances_would_share() -> None:
    found = []
    for module in (run_workflow, job_workflow, workflow_support):
        found += _shared_state(vars(module), module.__name__)
        for cls in vars(module).values():
            if isinstance(cls, type) and cls.__module__ == module.__name__:
                found += _shared_state(dict(vars(cls)), f"{module.__name__}.{cls.__name__}")
    assert found == []
