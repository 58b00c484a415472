"""The plugin as the agent and the validator see it: entry point, metadata, reference page."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

from waterflow._plugins import load_installed_plugins
from waterflow._registry import NodeRegistry
from waterflow.dsl import parse_workflow, validate_workflow
from waterflow_nodes_slack import SlackNotify, SlackPost

REFERENCE = Path(__file__).resolve().parents[3] / "docs" / "nodes" / "slack.md"


def loaded() -> NodeRegistry:
    registry = NodeRegistry()
    assert load_installed_plugins(registry, env={"WATERFLOW_LOAD_PLUGINS": "slack"}) == []
    return registry


def test_nodes_load_through_the_entry_point() -> None:
    registry = loaded()
    assert registry.names() == ["slack/notify", "slack/post"]
    version = importlib.metadata.version("waterflow-nodes-slack")
    for name, factory in (("slack/notify", SlackNotify), ("slack/post", SlackPost)):
        node = registry.get(name)
        assert node is not None
        assert node.source.distribution == "waterflow-nodes-slack"
        assert node.source.name == "slack"
        assert node.factory is factory
        assert node.metadata.version == version


def test_metadata() -> None:
    registry = loaded()
    notify = registry.get("slack/notify")
    post = registry.get("slack/post")
    assert notify is not None and post is not None
    params = {p.name: p for p in notify.metadata.parameters}
    assert list(params) == [
        "webhook_url", "message", "blocks", "attachments", "username", "icon_emoji", "channel",
        "payload", "timeout",
    ]  # fmt: skip
    assert [p.name for p in notify.metadata.parameters if p.required] == ["webhook_url"]
    assert (params["blocks"].type, params["attachments"].type) == ("array", "array")
    assert (params["payload"].type, params["timeout"].type) == ("object", "number")
    assert params["timeout"].default == 60.0
    assert [o.name for o in notify.metadata.outputs] == ["status", "response", "attempts"]

    params = {p.name: p for p in post.metadata.parameters}
    assert list(params) == [
        "token", "channel", "text", "blocks", "thread_ts", "update_ts", "api_url", "timeout",
    ]  # fmt: skip
    assert [p.name for p in post.metadata.parameters if p.required] == ["token", "channel"]
    assert params["api_url"].default == "https://slack.com/api"
    assert [o.name for o in post.metadata.outputs] == ["ts", "channel", "thread_ts", "attempts"]

    for node in (notify, post):
        assert node.metadata.description
        for item in (*node.metadata.parameters, *node.metadata.outputs):
            assert item.description, f"{node.name}: {item.name} has no description"


def test_reference_page_documents_every_parameter_and_output() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    for node in loaded().all():
        section = text.split(f"## `{node.name}`", 1)[1].split("\n## ", 1)[0]
        rows = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE))
        names = {p.name for p in node.metadata.parameters} | {o.name for o in node.metadata.outputs}
        assert names <= rows, f"{node.name}: not documented: {sorted(names - rows)}"


def test_workflows_are_validated_against_the_metadata() -> None:
    spec = parse_workflow(
        """
jobs:
  j:
    runs-on: linux
    steps:
      - uses: slack/notify
        with: {webhook: "${{ secrets.SLACK_WEBHOOK }}", message: hi}
      - uses: slack/post
        with: {token: "${{ secrets.SLACK_BOT_TOKEN }}", text: hi, timeout: soon}
""",
        file="notify.yaml",
    )
    problems = [str(p) for p in validate_workflow(spec, loaded().metadata())]
    assert any(
        "node 'slack/notify' has no parameter 'webhook' (did you mean 'webhook_url'?)" in p
        for p in problems
    ), problems
    assert any("node 'slack/notify' needs parameter 'webhook_url'" in p for p in problems)
    assert any("node 'slack/post' needs parameter 'channel'" in p for p in problems)
    assert any("parameter 'timeout' of 'slack/post': expected a number" in p for p in problems)
