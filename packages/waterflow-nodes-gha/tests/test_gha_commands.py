"""Workflow commands printed by real actions: masks, outputs, annotations, groups, state,
stop-commands, and the refused set-env/add-path."""

from __future__ import annotations

from pathlib import Path

import pytest
from gha_testing import run_step, write_action

from waterflow.testing import TestRegistry
from waterflow_nodes_gha import parse_command

COMMANDS_JS = r"""
const secret = 'hunter2-' + 'generated';
console.log(`::add-mask::${secret}`);
console.log(`the secret is ${secret}`);
console.log('::set-output name=greeting::hello%0Aworld');
console.log('::warning file=src/a.js,line=3::look here');
console.log('::error file=src/b.js,line=7,col=2,title=Oops::broken%25');
console.log('::notice::plain notice');
console.error('::warning::from stderr');
console.log('::group::Building');
console.log('inside');
console.log('::endgroup::');
console.log('::debug::hidden unless debugging');
console.log('::stop-commands::pause-token');
console.log('::set-output name=ignored::x');
console.log('::pause-token::');
console.log('::set-output name=after::resumed');
console.log('::save-state name=saved::kept');
console.log('::unknown-command::stays as is');
console.log('  ::notice::indented');
"""


async def test_workflow_commands_from_a_javascript_action(
    registry: TestRegistry, workspace: Path
) -> None:
    write_action(workspace / "a", "runs: {using: node20, main: main.js}", {"main.js": COMMANDS_JS})
    run = await run_step("./a", registry=registry, workspace=workspace)
    assert run.ok, run.error
    assert run.outcome.outputs == {"greeting": "hello\nworld", "after": "resumed"}
    assert run.outcome.state == {"saved": "kept"}
    assert "hunter2-generated" not in run.log
    assert run.stdout() == [
        "the secret is ***",
        "warning src/a.js:3: look here",
        "error src/b.js:7:2: Oops: broken%",
        "notice: plain notice",
        "[group] Building",
        "inside",
        "[endgroup]",
        "::set-output name=ignored::x",
        "::unknown-command::stays as is",
        "notice: indented",
    ]
    assert [line for line in run.lines if line.startswith("err ")] == ["err warning: from stderr"]
    assert "wf warning: set-output is deprecated; write to $GITHUB_OUTPUT" in run.lines
    assert "wf warning: save-state is deprecated; write to $GITHUB_STATE" in run.lines


async def test_debug_lines_show_with_step_debug(registry: TestRegistry, workspace: Path) -> None:
    write_action(
        workspace / "a",
        "runs: {using: node20, main: main.js}",
        {"main.js": "console.log('::debug::now you see me')"},
    )
    run = await run_step(
        "./a", registry=registry, workspace=workspace, env={"ACTIONS_STEP_DEBUG": "true"}
    )
    assert "out debug: now you see me" in run.lines


SET_ENV_JS = """
console.log('::set-env name=FROM_ACTION::value');
console.log('::add-path::/opt/tool/bin');
"""


async def test_set_env_and_add_path_are_refused_and_fail_the_step(
    registry: TestRegistry, workspace: Path
) -> None:
    write_action(workspace / "a", "runs: {using: node20, main: main.js}", {"main.js": SET_ENV_JS})
    run = await run_step("./a", registry=registry, workspace=workspace)
    assert run.error == "step './a' failed: the set-env command is disabled"
    assert run.stdout() == [
        "error: the set-env command is disabled: write to $GITHUB_ENV instead, or set "
        "ACTIONS_ALLOW_UNSECURE_COMMANDS=true to allow it",
        "error: the add-path command is disabled: write to $GITHUB_PATH instead, or set "
        "ACTIONS_ALLOW_UNSECURE_COMMANDS=true to allow it",
    ]


async def test_set_env_and_add_path_work_when_unsecure_commands_are_allowed(
    registry: TestRegistry, workspace: Path
) -> None:
    write_action(workspace / "a", "runs: {using: node20, main: main.js}", {"main.js": SET_ENV_JS})
    run = await run_step(
        "./a",
        registry=registry,
        workspace=workspace,
        env={"ACTIONS_ALLOW_UNSECURE_COMMANDS": "true"},
    )
    assert run.ok, run.error
    assert run.outcome.env == {"FROM_ACTION": "value"}
    assert run.outcome.path == ["/opt/tool/bin"]


async def test_a_command_without_its_name_property_is_reported(
    registry: TestRegistry, workspace: Path
) -> None:
    write_action(
        workspace / "a",
        "runs: {using: node20, main: main.js}",
        {"main.js": "console.log('::set-output::x'); console.log('::stop-commands::')"},
    )
    run = await run_step("./a", registry=registry, workspace=workspace)
    assert run.ok, run.error
    assert run.stdout() == [
        "error: the set-output command needs a name: ::set-output name=NAME::value",
        "error: stop-commands needs a token: ::stop-commands::TOKEN",
    ]


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("::add-mask::x", ("add-mask", {}, "x")),
        ("::set-output name=a::b::c", ("set-output", {"name": "a"}, "b::c")),
        (
            "::warning file=a%2Cb.js,line=1,title=x%3Ay::m%0An",
            ("warning", {"file": "a,b.js", "line": "1", "title": "x:y"}, "m\nn"),
        ),
        ("::endgroup::", ("endgroup", {}, "")),
        ("not a command", None),
        ("::unterminated", None),
    ],
)
def test_parse_command(line: str, parsed: tuple[str, dict[str, str], str] | None) -> None:
    assert parse_command(line) == parsed
