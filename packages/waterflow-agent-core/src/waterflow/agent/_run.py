"""The agent process: configuration, logging, signals, exit codes."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Mapping
from typing import Any

from loguru import logger

from waterflow import _logging
from waterflow.agent.config import ConfigError, load_config, redacted, validate_for_run
from waterflow.agent.worker import EXIT_ERROR, Agent, AgentError
from waterflow.secrets import SecretsError


async def _serve(agent: Agent) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            return
        logger.info("Shutdown signal received", signal=signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    await agent.start()
    waiter = asyncio.create_task(agent.wait())
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
    if waiter in done:
        stopper.cancel()
        waiter.result()  # raises the worker's failure
        return EXIT_ERROR
    code = await agent.shutdown()
    with contextlib.suppress(AgentError):
        await waiter
    return code


def run_agent(config_file: str | None, overrides: Mapping[str, Any]) -> int:
    try:
        config = load_config(config_file, overrides=overrides)
        validate_for_run(config)
    except ConfigError as exc:
        # Logging is not configured yet: the error goes out as one plain line.
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    _logging.setup_logging(level=config.log.level, fmt=config.log.format)
    _logging.intercept_stdlib_logging()
    logger.info("Configuration loaded", **redacted(config))
    try:
        return asyncio.run(_serve(Agent(config)))
    except (AgentError, SecretsError) as exc:
        logger.error("Agent stopped: {}", str(exc))
        return EXIT_ERROR
