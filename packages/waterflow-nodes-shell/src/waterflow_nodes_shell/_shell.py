"""The `shell/run` node: runs a step's `run:` script the way a GitHub Actions runner does."""

from __future__ import annotations

import importlib.metadata
import os
import shlex
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from waterflow import NodeError, NodeMetadata, NodeResult, Parameter, StepContext

NODE_NAME = "shell/run"
DISTRIBUTION = "waterflow-nodes-shell"
SCRIPT_PLACEHOLDER = "{0}"

# The file extension a program expects of its script (pwsh runs only *.ps1 files).
_EXTENSIONS = {
    "bash": ".sh",
    "sh": ".sh",
    "python": ".py",
    "python3": ".py",
    "pwsh": ".ps1",
    "powershell": ".ps1",
}


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


@attrs.frozen
class ShellCommand:
    """How a script is run: an argv in which `{0}` stands for the script file."""

    template: tuple[str, ...]
    extension: str = ""

    def argv(self, script: Path) -> list[str]:
        return [part.replace(SCRIPT_PLACEHOLDER, str(script)) for part in self.template]

    def __str__(self) -> str:
        return " ".join(self.template)


def resolve_shell(shell: str, path: str | None) -> ShellCommand:
    """Turn a step's `shell:` into a command; `path` is the step's PATH for lookups.

    Raises `NodeError(retryable=False)` for a shell that is none of the accepted forms.
    """
    if shell == "":
        # GitHub's default for a `run:` step without `shell:`: no pipefail.
        if shutil.which("bash", path=path):
            return ShellCommand(("bash", "-e", "{0}"), ".sh")
        return ShellCommand(("sh", "-e", "{0}"), ".sh")
    if shell == "bash":
        return ShellCommand(("bash", "--noprofile", "--norc", "-eo", "pipefail", "{0}"), ".sh")
    if shell == "sh":
        return ShellCommand(("sh", "-e", "{0}"), ".sh")
    if shell == "python":
        for program in ("python", "python3"):
            if shutil.which(program, path=path):
                return ShellCommand((program, "{0}"), ".py")
        raise NodeError(
            "shell 'python': neither python nor python3 is on the step's PATH", retryable=False
        )
    if SCRIPT_PLACEHOLDER in shell:
        try:
            template = tuple(shlex.split(shell))
        except ValueError as exc:
            raise NodeError(
                f"shell {shell!r} cannot be split into a command: {exc}", retryable=False
            ) from None
        program = os.path.basename(template[0])
        return ShellCommand(template, _EXTENSIONS.get(program, ""))
    if shell and not any(c.isspace() for c in shell) and shutil.which(shell, path=path):
        return ShellCommand((shell, "{0}"), _EXTENSIONS.get(os.path.basename(shell), ""))
    raise NodeError(
        f"shell {shell!r} is not supported: use bash, sh, python, the name of a program on "
        "the step's PATH, or a command template with {0} for the script file, e.g. 'perl {0}'",
        retryable=False,
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
        code = await context.run_process(command.argv(script_file), cwd=cwd, env=context.env)
        return NodeResult(
            exit_code=code, error=None if code == 0 else f"process exited with code {code}"
        )
