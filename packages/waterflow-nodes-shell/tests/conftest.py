from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from waterflow import SecretMasker, StepContext, StepInfo, StepLog
from waterflow.envfiles import create_env_files


@pytest.fixture
def step_context(tmp_path: Path) -> Iterator[StepContext]:
    """A real step context: workspace, env files, temp dir and a masked log under tmp_path."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    temp_dir = tmp_path / "temp"
    temp_dir.mkdir()
    files = create_env_files(tmp_path / "files")
    masker = SecretMasker()
    log = StepLog(tmp_path / "step.log", masker, tail_lines=200)
    context = StepContext(
        workspace=workspace,
        env={**os.environ, **files.as_environment()},
        log=log,
        masker=masker,
        files=files,
        temp_dir=temp_dir,
        step=StepInfo(
            workflow="test", run_id="run-1", job="build", step_id="step-1", step_name="step"
        ),
    )
    yield context
    log.close()
