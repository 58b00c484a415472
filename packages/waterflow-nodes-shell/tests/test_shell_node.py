"""shell/run against real shells, in a real step context."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from waterflow import NodeError, NodeResult, StepContext
from waterflow._plugins import load_installed_plugins
from waterflow._registry import NodeRegistry
from waterflow.envfiles import EnvFileResult, read_env_files
from waterflow_nodes_shell import ShellRun, resolve_shell

DEADLINE = 15.0


async def run_step(context: StepContext, script: str, **params: Any) -> NodeResult:
    params = {key.replace("_", "-"): value for key, value in params.items()}
    return await ShellRun().execute({"run": script, **params}, context)


def log_text(context: StepContext) -> str:
    assert context.log.path is not None
    return context.log.path.read_text(encoding="utf-8")


def stdout_lines(context: StepContext) -> list[str]:
    prefix = " out "
    return [line.split(prefix, 1)[1] for line in log_text(context).splitlines() if prefix in line]


def failed(code: int) -> NodeResult:
    return NodeResult(exit_code=code, error=f"process exited with code {code}")


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE}s: {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
def cleanup_groups() -> Iterator[list[int]]:
    groups: list[int] = []
    yield groups
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --- env files -------------------------------------------------------------------------------

ENV_FILE_SCRIPT = """\
echo "greeting=hello" >> "$GITHUB_OUTPUT"
echo "build=42" >> "$WATERFLOW_OUTPUT"
{
  echo "notes<<EOF"
  echo "line one"
  echo "line two = still notes"
  echo "EOF"
} >> "$GITHUB_OUTPUT"
echo "MY_VAR=abc" >> "$GITHUB_ENV"
echo "/opt/tools/bin" >> "$GITHUB_PATH"
echo "/opt/more/bin" >> "$WATERFLOW_PATH"
echo "saved=1" >> "$GITHUB_STATE"
echo "### Summary" >> "$GITHUB_STEP_SUMMARY"
"""


async def test_script_writes_env_files(step_context: StepContext) -> None:
    assert await run_step(step_context, ENV_FILE_SCRIPT) == NodeResult()
    assert read_env_files(step_context.files) == EnvFileResult(
        outputs={
            "greeting": "hello",
            "build": "42",
            "notes": "line one\nline two = still notes",
        },
        env={"MY_VAR": "abc"},
        path=["/opt/tools/bin", "/opt/more/bin"],
        state={"saved": "1"},
        summary="### Summary\n",
    )


async def test_node_does_not_parse_env_files(step_context: StepContext) -> None:
    result = await run_step(step_context, 'echo "greeting=hello" >> "$GITHUB_OUTPUT"')
    assert result.outputs == {}


# --- exit codes and output -------------------------------------------------------------------


async def test_success(step_context: StepContext) -> None:
    assert await run_step(step_context, "echo hello") == NodeResult()
    assert stdout_lines(step_context) == ["hello"]


async def test_exit_code_propagates(step_context: StepContext) -> None:
    result = await run_step(step_context, "echo before\nexit 7\n")
    assert result == failed(7)
    assert not result.ok


async def test_stderr_is_captured(step_context: StepContext) -> None:
    await run_step(step_context, "echo problem >&2")
    assert " err problem\n" in log_text(step_context)


async def test_secrets_are_masked_in_the_log(step_context: StepContext) -> None:
    step_context.masker.add("s3cr3t-value")
    step_context.env["TOKEN"] = "s3cr3t-value"
    await run_step(step_context, 'echo "token $TOKEN"; echo "$TOKEN" >&2')
    text = log_text(step_context)
    assert "s3cr3t-value" not in text
    assert " out token ***\n" in text
    assert " err ***\n" in text


async def test_long_lines_and_non_utf8_output(step_context: StepContext) -> None:
    script = "printf 'caf\\351\\n'; head -c 100000 /dev/zero | tr '\\0' x; echo"
    assert await run_step(step_context, script) == NodeResult()
    lines = stdout_lines(step_context)
    assert lines[0] == "caf\ufffd"
    assert [len(line) for line in lines[1:]] == [65536, 100000 - 65536]


# --- shells ----------------------------------------------------------------------------------


async def test_default_is_bash_without_pipefail_as_on_github(step_context: StepContext) -> None:
    assert await run_step(step_context, "false | true\necho reached") == NodeResult()
    assert "reached" in stdout_lines(step_context)
    assert "shell: bash -e {0}" in log_text(step_context)


async def test_explicit_bash_has_pipefail(step_context: StepContext) -> None:
    result = await run_step(step_context, "false | true\necho unreachable", shell="bash")
    assert result == failed(1)
    assert "unreachable" not in stdout_lines(step_context)
    assert "shell: bash --noprofile --norc -eo pipefail {0}" in log_text(step_context)


async def test_bash_stops_at_the_first_failure(step_context: StepContext) -> None:
    assert await run_step(step_context, "false\necho after", shell="bash") == failed(1)
    assert stdout_lines(step_context) == []


async def test_script_file_is_in_the_temp_dir(step_context: StepContext) -> None:
    script = 'echo "$0"\ncat "$0"'
    await run_step(step_context, script)
    path, *content = stdout_lines(step_context)
    assert Path(path).parent == step_context.temp_dir
    assert Path(path).suffix == ".sh"
    assert content == ['echo "$0"', 'cat "$0"']


async def test_sh(step_context: StepContext) -> None:
    assert await run_step(step_context, "echo sh-ran; false; echo after", shell="sh") == failed(1)
    assert stdout_lines(step_context) == ["sh-ran"]
    assert "shell: sh -e {0}" in log_text(step_context)


async def test_python(step_context: StepContext) -> None:
    script = "import sys\nprint('python', sys.version_info.major)\nsys.exit(4)\n"
    assert await run_step(step_context, script, shell="python") == failed(4)
    assert stdout_lines(step_context) == ["python 3"]


async def test_python_falls_back_to_python3(step_context: StepContext, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    step_context.env["PATH"] = str(bin_dir)
    assert await run_step(step_context, "print('via python3')", shell="python") == NodeResult()
    assert stdout_lines(step_context) == ["via python3"]
    assert "shell: python3 {0}" in log_text(step_context)


async def test_python_missing(step_context: StepContext, tmp_path: Path) -> None:
    step_context.env["PATH"] = str(tmp_path / "empty")
    with pytest.raises(NodeError) as info:
        await run_step(step_context, "print(1)", shell="python")
    assert info.value.message == "shell 'python': neither python nor python3 is on the step's PATH"
    assert info.value.retryable is False


@pytest.mark.skipif(shutil.which("perl") is None, reason="perl is not installed")
async def test_custom_template_perl(step_context: StepContext) -> None:
    script = 'print "perl says hi\\n"; exit 2;'
    assert await run_step(step_context, script, shell="perl {0}") == failed(2)
    assert stdout_lines(step_context) == ["perl says hi"]


async def test_custom_template_bash_x(step_context: StepContext) -> None:
    assert await run_step(step_context, "echo traced", shell="bash -x {0}") == NodeResult()
    assert stdout_lines(step_context) == ["traced"]
    assert " err + echo traced\n" in log_text(step_context)


async def test_custom_template_placeholder_inside_a_word(step_context: StepContext) -> None:
    shell = "bash -c 'echo wrapped; . {0}'"
    assert await run_step(step_context, "echo inner", shell=shell) == NodeResult()
    assert stdout_lines(step_context) == ["wrapped", "inner"]


async def test_bare_program_on_path(step_context: StepContext) -> None:
    assert await run_step(step_context, "just\ntext\n", shell="cat") == NodeResult()
    assert stdout_lines(step_context) == ["just", "text"]


async def test_unknown_shell(step_context: StepContext) -> None:
    with pytest.raises(NodeError) as info:
        await run_step(step_context, "echo", shell="fish-no-such-shell")
    assert info.value.message.startswith(
        "shell 'fish-no-such-shell' is not supported: use bash, sh, python,"
    )
    assert "'perl {0}'" in info.value.message
    assert info.value.retryable is False


async def test_template_that_does_not_split(step_context: StepContext) -> None:
    with pytest.raises(NodeError) as info:
        await run_step(step_context, "echo", shell="bash -c 'x {0}")
    assert info.value.message == (
        'shell "bash -c \'x {0}" cannot be split into a command: No closing quotation'
    )


async def test_template_program_missing(step_context: StepContext) -> None:
    with pytest.raises(NodeError, match=r"^cannot run 'no-such-interp-x': no such program"):
        await run_step(step_context, "echo", shell="no-such-interp-x {0}")


def test_resolve_shell_forms(tmp_path: Path) -> None:
    script = tmp_path / "s.sh"
    assert resolve_shell("bash", None).argv(script) == [
        "bash",
        "--noprofile",
        "--norc",
        "-eo",
        "pipefail",
        str(script),
    ]
    assert resolve_shell("sh", None).argv(script) == ["sh", "-e", str(script)]
    assert resolve_shell("perl -w {0} --x", None).argv(script) == ["perl", "-w", str(script), "--x"]
    assert resolve_shell("python", None).extension == ".py"


# --- working directory -----------------------------------------------------------------------


async def test_working_directory_relative(step_context: StepContext) -> None:
    (step_context.workspace / "sub" / "dir").mkdir(parents=True)
    assert await run_step(step_context, "pwd", working_directory="sub/dir") == NodeResult()
    assert stdout_lines(step_context) == [str(step_context.workspace / "sub" / "dir")]


async def test_working_directory_absolute(step_context: StepContext, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    await run_step(step_context, "pwd", working_directory=str(elsewhere))
    assert stdout_lines(step_context) == [str(elsewhere)]


async def test_default_working_directory_is_the_workspace(step_context: StepContext) -> None:
    await run_step(step_context, "pwd")
    assert stdout_lines(step_context) == [str(step_context.workspace)]


async def test_working_directory_missing(step_context: StepContext) -> None:
    with pytest.raises(NodeError) as info:
        await run_step(step_context, "pwd", working_directory="x")
    assert info.value.message == "working-directory 'x' does not exist in the workspace"
    assert info.value.retryable is False


async def test_working_directory_is_a_file(step_context: StepContext) -> None:
    (step_context.workspace / "f").write_text("")
    with pytest.raises(NodeError, match=r"^working-directory 'f' is not a directory in the"):
        await run_step(step_context, "pwd", working_directory="f")


# --- cancellation ----------------------------------------------------------------------------


async def test_cancel_kills_script_and_background_children(
    step_context: StepContext, cleanup_groups: list[int]
) -> None:
    script = 'sleep 300 &\necho "ready $$ $!"\nsleep 300\n'
    task = asyncio.create_task(run_step(step_context, script))

    def ready() -> list[str] | None:
        for line in step_context.log.tail():
            if line.startswith("ready "):
                return line.split()[1:]
        return None

    await wait_until(lambda: ready() is not None or task.done(), "the script is ready")
    pids = ready()
    assert pids is not None, step_context.log.tail()
    pgid, grandchild = int(pids[0]), int(pids[1])
    cleanup_groups.append(pgid)
    assert os.getpgid(grandchild) == pgid
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    def group_gone() -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        return False

    await wait_until(group_gone, f"process group {pgid} is gone")
    assert "were terminated" in log_text(step_context)


# --- plugin ----------------------------------------------------------------------------------


def test_plugin_loads_through_its_entry_point() -> None:
    registry = NodeRegistry()
    problems = load_installed_plugins(registry, env={"WATERFLOW_LOAD_PLUGINS": "shell"})
    assert problems == []
    node = registry.get("shell/run")
    assert node is not None
    assert node.source.distribution == "waterflow-nodes-shell"
    assert node.source.name == "shell"
    assert node.factory is ShellRun
    metadata = node.metadata
    assert metadata.version == importlib.metadata.version("waterflow-nodes-shell")
    assert [p.name for p in metadata.parameters] == ["run", "shell", "working-directory"]
    run = metadata.parameter("run")
    shell = metadata.parameter("shell")
    assert run is not None
    assert run.required
    assert run.type == "string"
    assert shell is not None
    assert shell.default is None
    assert not shell.required
    assert metadata.outputs == ()


async def test_workflow_commands_act_as_on_github(step_context: StepContext) -> None:
    script = (
        "echo '::add-mask::hunter22'\n"
        "echo 'the password is hunter22'\n"
        "echo '::warning file=app.py,line=3::looks odd'\n"
        "echo '::set-output name=legacy::yes'\n"
    )
    result = await run_step(step_context, script)
    assert result.outputs == {"legacy": "yes"}
    lines = stdout_lines(step_context)
    assert "the password is ***" in lines
    assert "warning app.py:3: looks odd" in lines
    assert "hunter22" not in log_text(step_context)


async def test_a_disabled_command_fails_the_step(step_context: StepContext) -> None:
    result = await run_step(step_context, "echo '::set-env name=X::1'")
    assert result.exit_code == 1
    assert result.error == "the set-env command is disabled"
