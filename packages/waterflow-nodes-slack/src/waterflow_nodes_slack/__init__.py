"""Waterflow's Slack nodes: `slack/notify` (incoming webhooks) and `slack/post` (Web API).

A plugin loaded like any other, through the entry point in this package's `pyproject.toml`::

    [project.entry-points."waterflow.nodes"]
    slack = "waterflow_nodes_slack"

In a workflow::

    - uses: slack/notify
      with:
        webhook_url: ${{ secrets.SLACK_WEBHOOK }}
        message: "Deployed ${{ inputs.tag }}"
    - id: post
      uses: slack/post
      with: {token: "${{ secrets.SLACK_BOT_TOKEN }}", channel: C0123456789, text: Deploying}
    - uses: slack/post
      with:
        token: ${{ secrets.SLACK_BOT_TOKEN }}
        channel: ${{ steps.post.outputs.channel }}
        thread_ts: ${{ steps.post.outputs.ts }}
        text: Done

Reference: docs/nodes/slack.md.
"""

from __future__ import annotations

from waterflow import NodeMetadata, NodeRegistrar, hookimpl
from waterflow_nodes_slack._notify import SlackNotify
from waterflow_nodes_slack._notify import metadata as _notify_metadata
from waterflow_nodes_slack._post import SlackPost
from waterflow_nodes_slack._post import metadata as _post_metadata


@hookimpl
def node_metadata() -> list[NodeMetadata]:
    return [_notify_metadata(), _post_metadata()]


@hookimpl
def register_nodes(registry: NodeRegistrar) -> None:
    registry.add("slack/notify", SlackNotify)
    registry.add("slack/post", SlackPost)


__all__ = ["SlackNotify", "SlackPost", "node_metadata", "register_nodes"]
