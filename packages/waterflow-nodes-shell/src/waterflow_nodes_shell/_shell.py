"""The `shell/run` node: runs a step's `run:` script the way a GitHub Actions runner does."""

from __future__ import annotations

import importlib.metadata
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from waterflow import NodeError, NodeMetadata, NodeResult, Parameter, StepContext
from waterflow.commands import CommandProcessor
from waterflow.shells import ShellCommand, resolve_shell

NODE_NAME = "shell/run"
DISTRIBUTION = "waterflow-nodes-shell"

__all__ = ["DISTRIBUTION", "NODE_NAME", "ShellCommand", "ShellRun", "metadata", "resolve_shell"]


def metadata() -> NodeMetadata:
    return NodeMetadata(
        name=NODE_NAME,
        version=importlib.metadata.version(DISTRIBUTION),
        description=(
            "Run a script with bash, sh, python or a command template, as a GitHub Actions "
            "`run:` step does. The script sets outputs by writing to $GITHUB_OUTPUT."
        ),
        parameters=(
            Parameter("run", required=True, description="The script to run."),
            Parameter(
                "shell",
                description=(
                    "Unset: bash -e {0} (sh -e {0} where there is no bash), as GitHub's "
                    "default. bash (bash --noprofile --norc -eo pipefail {0}), sh (sh -e {0}), "
                    "python, "
                    "a program on PATH, or a command template where {0} is the script file, "
                    "e.g. 'perl {0}'."
                ),
            ),
            Parameter(
                "working-directory",
                description="Where the script runs: relative to the workspace, or absolute. "
                "Default: the workspace.",
            ),
        ),
    )


def _working_directory(context: StepContext, value: str | None) -> Path:
    if not value:
        return context.workspace
    directory = context.workspace / value  # an absolute value replaces the workspace
    if not directory.is_dir():
        where = "" if os.path.isabs(value) else " in the workspace"
        problem = "is not a directory" if directory.exists() else "does not exist"
        raise NodeError(f"working-directory {value!r} {problem}{where}", retryable=False)
    return directory


def _write_script(temp_dir: Path, script: str, extension: str) -> Path:
    temp_dir.mkdir(parents=True, exist_ok=True)
    path = temp_dir / f"{uuid.uuid4().hex}{extension}"
    path.write_text(script, encoding="utf-8")
    return path


def _string(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None or isinstance(value, str):
        return value
    raise NodeError(
        f"parameter {name!r} must be a string, not {type(value).__name__}", retryable=False
    )


class ShellRun:
    """Executor of `shell/run`: writes the script to the step's temp dir and runs it."""

    async def execute(self, params: Mapping[str, Any], context: StepContext) -> NodeResult:
        script = _string(params, "run")
        if script is None:
            raise NodeError("parameter 'run' is required: the script to run", retryable=False)
        shell = (_string(params, "shell") or "").strip()
        command = resolve_shell(shell, context.env.get("PATH"))
        cwd = _working_directory(context, _string(params, "working-directory"))
        script_file = _write_script(context.temp_dir, script, command.extension)
        context.log.info(f"shell: {command}")
        # Workflow commands (::add-mask::, ::warning::, ::set-output::...) act as on GitHub.
        commands = CommandProcessor(
            log=context.log,
            masker=context.masker,
            env=context.env,
            state_file=context.files.state,
            env_file=context.files.env,
            path_file=context.files.path,
        )
        code = await context.run_process(
            command.argv(script_file), cwd=cwd, env=context.env, on_output=commands
        )
        error = None if code == 0 else f"process exited with code {code}"
        if error is None and commands.failure:
            error, code = commands.failure, 1
        return NodeResult(outputs=dict(commands.outputs), exit_code=code, error=error)
