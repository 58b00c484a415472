"""Fixtures: the fake Slack server, a registry holding this plugin, and `run`, which runs a step
through the agent's own code (`waterflow.testing.run_node`: expressions, secrets, parameter
checks, masking) and returns what a user would see of it."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from slack_fake import TOKEN, FakeSlack
from slack_steps import Ran, Run
from temporalio.exceptions import ApplicationError

import waterflow_nodes_slack
from waterflow.testing import TestRegistry, run_node


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    server = FakeSlack()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def registry(waterflow_registry: TestRegistry) -> TestRegistry:
    waterflow_registry.add_plugin(waterflow_nodes_slack)
    return waterflow_registry


@pytest.fixture
def step_timeout() -> Callable[[float], None]:
    """Set the start-to-close timeout of the steps `run` runs, as a step's `timeout:` would
    (30 s unless a test says otherwise)."""

    def set_timeout(seconds: float) -> None:
        _timeout[0] = seconds

    set_timeout(30)
    return set_timeout


_timeout = [30.0]


def _read(path: str | None) -> str:
    return Path(path).read_text(encoding="utf-8") if path else ""


@pytest.fixture
def run(
    registry: TestRegistry,
    tmp_path: Path,
    slack: FakeSlack,
    step_timeout: Callable[[float], None],
) -> Run:
    """`await run(uses, with_)`: the agent's secrets are SLACK_WEBHOOK (the fake's webhook URL)
    and SLACK_BOT_TOKEN unless `secrets=` says otherwise."""
    steps = itertools.count(1)

    async def run_step(
        uses: str, with_: Mapping[str, Any], *, secrets: Mapping[str, str] | None = None
    ) -> Ran:
        workspace = tmp_path / f"step{next(steps)}" / "workspace"
        if secrets is None:
            secrets = {"SLACK_WEBHOOK": slack.webhook_url, "SLACK_BOT_TOKEN": TOKEN}
        try:
            outcome = await run_node(
                uses,
                with_,
                registry=registry,
                workspace=workspace,
                secrets=secrets,
                timeout=_timeout[0],
            )
        except ApplicationError as exc:
            details = exc.details[0] if exc.details else {}
            return Ran(
                outputs={},
                error=details.get("error"),
                message=exc.message,
                retryable=not exc.non_retryable,
                log=_read(details.get("log_path")),
            )
        return Ran(
            outputs=dict(outcome.outputs),
            error=None,
            message="",
            retryable=False,
            log=_read(outcome.log_path),
        )

    return run_step
