"""Plugin discovery through real entry points of real (tiny) installed distributions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from waterflow._plugins import load_installed_plugins
from waterflow._registry import NodeRegistry, PluginConflictError, PluginSource

BIN = Path(sys.executable).parent

GOOD = """
from waterflow import NodeMetadata, NodeResult, Parameter, hookimpl

class Echo:
    async def execute(self, params, context):
        return NodeResult(outputs={"said": params["text"]})

@hookimpl
def node_metadata():
    return [NodeMetadata(name="NAME", version="1.0", parameters=[Parameter("text", required=True)])]

@hookimpl
def register_nodes(registry):
    registry.add("NAME", Echo)
"""


def make_distribution(
    site: Path, dist: str, module: str, source: str, version: str = "1.0"
) -> None:
    """Install a distribution the way pip leaves it: a module and a .dist-info with entry points."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[waterflow.nodes]\n{module} = {module}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    return site


def _load(env: dict[str, str] | None = None) -> tuple[NodeRegistry, list[str]]:
    registry = NodeRegistry()
    problems = load_installed_plugins(registry, env or {})
    return registry, [str(p) for p in problems]


def test_third_party_distribution_is_found_with_its_version(site: Path) -> None:
    make_distribution(
        site, "waterflow-nodes-echo", "wf_echo", GOOD.replace("NAME", "echo/say"), "2.3"
    )
    registry, problems = _load()
    assert problems == []
    node = registry.get("echo/say")
    assert node is not None
    assert (node.source.distribution, node.source.version) == ("waterflow-nodes-echo", "2.3")
    assert "shell/run" in registry  # first-party plugins come the same way


def test_broken_plugin_is_reported_with_name_and_version_and_skipped(site: Path) -> None:
    make_distribution(site, "waterflow-nodes-broken", "wf_broken", "import does_not_exist\n", "0.9")
    make_distribution(site, "waterflow-nodes-echo", "wf_echo", GOOD.replace("NAME", "echo/say"))
    registry, problems = _load()
    assert "echo/say" in registry
    assert problems == [
        "plugin 'wf_broken' (waterflow-nodes-broken 0.9): ModuleNotFoundError: "
        "No module named 'does_not_exist'"
    ]


def test_hooks_that_disagree_are_a_clear_error(site: Path) -> None:
    source = GOOD.replace("NAME", "echo/say").replace('registry.add("echo/say", Echo)', "pass")
    make_distribution(site, "waterflow-nodes-half", "wf_half", source)
    registry, problems = _load()
    assert "echo/say" not in registry
    assert "describes echo/say but registers no executor for it" in problems[0]


def test_two_distributions_claiming_one_node_name_both_named(site: Path) -> None:
    make_distribution(site, "waterflow-nodes-aaa", "wf_aaa", GOOD.replace("NAME", "dup/node"))
    make_distribution(site, "waterflow-nodes-bbb", "wf_bbb", GOOD.replace("NAME", "dup/node"))
    registry, problems = _load()
    assert registry.get("dup/node").source.distribution == "waterflow-nodes-aaa"  # type: ignore[union-attr]
    assert len(problems) == 1
    assert "waterflow-nodes-aaa 1.0" in problems[0] and "waterflow-nodes-bbb 1.0" in problems[0]


def test_block_and_allow_lists(site: Path) -> None:
    make_distribution(site, "waterflow-nodes-echo", "wf_echo", GOOD.replace("NAME", "echo/say"))
    registry, _ = _load({"WATERFLOW_DISABLE_PLUGINS": "waterflow-nodes-echo"})
    assert "echo/say" not in registry and "shell/run" in registry
    registry, _ = _load({"WATERFLOW_LOAD_PLUGINS": "wf_echo"})
    assert registry.names() == ["echo/say"]
    registry, _ = _load({"WATERFLOW_LOAD_PLUGINS": ""})
    assert registry.names() == []


def test_replace_plugin_is_atomic_and_refuses_conflicts() -> None:
    from waterflow import NodeMetadata
    from waterflow._registry import RegisteredNode

    def node(name: str, plugin: str) -> RegisteredNode:
        return RegisteredNode(
            NodeMetadata(name=name, version="1"), object, PluginSource(plugin, plugin, "1")
        )

    registry = NodeRegistry()
    registry.replace_plugin("p", [node("a/x", "p"), node("a/y", "p")])
    registry.replace_plugin("p", [node("a/z", "p")])
    assert registry.names() == ["a/z"]
    with pytest.raises(PluginConflictError, match=r"claimed by both p 1 .* and q 1"):
        registry.replace_plugin("q", [node("a/w", "q"), node("a/z", "q")])
    assert registry.names() == ["a/z"]  # nothing of q went in
    assert registry.remove_plugin("p") == ["a/z"]


def test_agent_nodes_lists_a_third_party_node(site: Path) -> None:
    make_distribution(
        site, "waterflow-nodes-echo", "wf_echo", GOOD.replace("NAME", "echo/say"), "2.3"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run(
        [str(BIN / "waterflow-agent"), "nodes", "--json"], capture_output=True, text=True, env=env
    )
    catalog = {n["name"]: n for n in json.loads(proc.stdout)}
    assert catalog["echo/say"]["distribution"] == "waterflow-nodes-echo"
    assert catalog["echo/say"]["distribution_version"] == "2.3"
    assert catalog["echo/say"]["metadata"]["parameters"][0]["name"] == "text"
