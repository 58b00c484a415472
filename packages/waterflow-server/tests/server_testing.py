"""Helpers of the server tests: tokens, configs, node registries, the CLI, captured logs."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path
from typing import Any

from waterflow._node import NodeMetadata, NodeResult, Parameter
from waterflow._registry import NodeRegistry, PluginSource, RegisteredNode
from waterflow_server.config import ServerConfig, load_config

AGENT_TOKEN = "agent-token-0123456789abcdef"
USER_TOKEN = "user-token-0123456789abcdef"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_config(tmp_path: Path, **overrides: Any) -> ServerConfig:
    values: dict[str, Any] = {
        "listen.address": "127.0.0.1:0",
        "database.path": str(tmp_path / "server.db"),
        "auth.agent_tokens": [AGENT_TOKEN],
        "auth.user_tokens": [USER_TOKEN],
        # Nothing listens there: runs are the e2e tests' business.
        "temporal.address": f"127.0.0.1:{free_port()}",
    }
    values.update(overrides)
    return load_config(None, environ={}, overrides=values)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


USER = bearer(USER_TOKEN)
AGENT = bearer(AGENT_TOKEN)


class _Node:
    async def execute(self, params: Any, context: Any) -> NodeResult:
        return NodeResult()


def registry_of(*metas: NodeMetadata, distribution: str = "waterflow-nodes-test") -> NodeRegistry:
    """A registry holding these nodes (one plugin), as an agent would have loaded them."""
    registry = NodeRegistry()
    source = PluginSource(name="test", distribution=distribution, version="1.2.3")
    registry.replace_plugin("test", [RegisteredNode(m, _Node, source) for m in metas])
    return registry


SHELL = NodeMetadata(
    "shell/run",
    "0.1.0",
    "Run a script",
    parameters=[
        Parameter("run", required=True, description="the script"),
        Parameter("shell", default="bash"),
        Parameter("working-directory"),
    ],
)
DOCKER_BUILD = NodeMetadata(
    "docker/build",
    "0.2.0",
    "Build an image",
    parameters=[
        Parameter("context", default="."),
        Parameter("tag", required=True),
        Parameter("push", type="boolean", default=False),
        Parameter("platform", enum=["linux/amd64", "linux/arm64"]),
    ],
)


class LogCapture(list[dict[str, Any]]):
    """The process log records (loguru) written during the test, as they come."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = asyncio.Event()

    def sink(self, message: Any) -> None:
        record = message.record
        self.append(
            {"message": record["message"], "level": record["level"].name, **record["extra"]}
        )
        self._changed.set()

    async def wait_for(self, text: str, timeout: float = 10) -> dict[str, Any]:
        """The first record whose message contains `text`, waiting for it if need be."""
        async with asyncio.timeout(timeout):
            while True:
                self._changed.clear()
                for record in self:
                    if text in record["message"]:
                        return record
                await self._changed.wait()


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATERFLOW_")}
    env.update(extra)
    return env


async def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
) -> Any:
    """Run the real `waterflow` CLI without blocking the loop that serves the test's server."""
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "waterflow"),
        *args,
        env=env or cli_env(),
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:  # timed out (a server that did not stop, say): not left on
            proc.kill()
            await proc.wait()
    return proc.returncode, out.decode(), err.decode()
