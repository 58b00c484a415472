"""The plugin as the agent finds it, and action metadata as node metadata."""

from __future__ import annotations

from pathlib import Path

import pytest
from gha_testing import write_action

from waterflow import NodeError, Output, Parameter
from waterflow._plugins import load_installed_plugins
from waterflow._registry import NodeRegistry
from waterflow.dsl import GHA_NODE
from waterflow_nodes_gha import Settings, load_manifest, node_metadata_for, parse_uses


def test_the_installed_entry_point_registers_gha_action() -> None:
    registry = NodeRegistry()
    load_installed_plugins(registry)
    node = registry.get(GHA_NODE)
    assert node is not None
    assert node.metadata.additional_parameters
    assert node.metadata.version == "0.1.0"


def test_action_metadata_as_node_metadata(tmp_path: Path) -> None:
    write_action(
        tmp_path,
        """
        name: Greet
        description: says hello
        inputs:
          who: {required: true, description: whom}
          greeting: {required: true, default: Hello}
        outputs:
          said: {description: what was said}
        runs: {using: node20, main: m.js}
        """,
    )
    metadata = node_metadata_for(load_manifest(tmp_path, "./greet"), GHA_NODE, "1")
    assert metadata.description == "says hello"
    assert metadata.parameters == (
        Parameter("who", required=True, description="whom"),
        Parameter("greeting", default="Hello"),
    )
    assert metadata.outputs == (Output("said", "what was said"),)


@pytest.mark.parametrize(
    ("uses", "message"),
    [
        (
            "octo",
            "uses 'octo' is not an action: expected owner/repo@ref, owner/repo/path@ref, "
            "./path or docker://image",
        ),
        ("octo/x/../y@v1", "uses 'octo/x/../y@v1': the path may not contain '..'"),
        ("./../outside", "uses './../outside': a local action must stay inside the workspace"),
        ("docker://", "uses 'docker://': expected docker://IMAGE[:TAG]"),
    ],
)
def test_bad_uses(uses: str, message: str) -> None:
    with pytest.raises(NodeError) as info:
        parse_uses(uses)
    assert info.value.message == message
    assert not info.value.retryable


def test_uses_forms() -> None:
    ref = parse_uses("octo/repo/sub/dir@release/v1")
    assert (ref.kind, ref.repository, ref.path, ref.ref) == (
        "repository",
        "octo/repo",
        "sub/dir",
        "release/v1",
    )
    assert parse_uses("./.github/actions/x").path == ".github/actions/x"
    assert parse_uses("docker://alpine@sha256:" + "0" * 64).pinned


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"WATERFLOW_GHA_SERVER_URL": "github.example"},
            "WATERFLOW_GHA_SERVER_URL='github.example': expected an http:// or https:// URL",
        ),
        ({"WATERFLOW_GHA_OFFLINE": "sure"}, "WATERFLOW_GHA_OFFLINE='sure': expected true or false"),
        (
            {"WATERFLOW_GHA_NODES": "twenty=/usr/bin/node"},
            "WATERFLOW_GHA_NODES: "
            "'twenty=/usr/bin/node' is not MAJOR=PATH (e.g. 24=/opt/node24/bin/node)",
        ),
        (
            {"WATERFLOW_GHA_PROVISION_NODE": "2"},
            "WATERFLOW_GHA_PROVISION_NODE='2': expected true or false",
        ),
    ],
)
def test_bad_settings_are_one_line_naming_the_variable(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(NodeError) as info:
        Settings.from_environ(environ)
    assert info.value.message == message


def test_settings_defaults_and_derived_values() -> None:
    default = Settings.from_environ({"RUNNER_TEMP": "/srv/agent/_temp/run-1/build"})
    assert default.api_url == "https://api.github.com"
    assert default.cache_dir == Path("/srv/agent/_actions")
    enterprise = Settings.from_environ(
        {"WATERFLOW_GHA_SERVER_URL": "https://ghe.example/", "WATERFLOW_GHA_NODES": "node20=/n"}
    )
    assert enterprise.api_url == "https://ghe.example/api/v3"
    assert enterprise.node_paths == {20: Path("/n")}
