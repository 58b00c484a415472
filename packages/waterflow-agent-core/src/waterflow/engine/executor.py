"""Running one step on this agent: what the `execute_node` activity does, without Temporal.

Resolves the step's expressions (secrets only here), checks its parameters against the node's
metadata, prepares the environment and env files, runs the node, reads what it wrote back and
masks every secret in what leaves the agent.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import json
import os
import platform
import re
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
from loguru import logger

from waterflow import expressions
from waterflow._masking import SecretMasker
from waterflow._node import EnvFiles, NodeError, StepContext, StepInfo
from waterflow._registry import NodeRegistry
from waterflow._steplog import LineListener, StepLog
from waterflow.dsl import GHA_NODE, is_action
from waterflow.engine.envlayers import env_layers, render_env
from waterflow.engine.types import StepInput, StepOutcome
from waterflow.envfiles import (
    EnvFileError,
    EnvFileResult,
    create_env_files,
    env_files_in,
    read_env_files,
    remove_env_files,
)
from waterflow.params import check_parameters
from waterflow.secrets import without_secret_variables

TAIL_IN_ERROR = 20


class StepFailed(Exception):
    """The step failed. `retryable=False`: no attempt can fix it (bad input, unknown node)."""

    def __init__(
        self, message: str, *, retryable: bool = True, outcome: StepOutcome | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.outcome = outcome


@attrs.frozen
class AgentRuntime:
    """What steps need from the agent that runs them."""

    agent_id: str
    registry: NodeRegistry
    secrets: Callable[[], Mapping[str, str]]
    log_dir: Path
    base_env: Mapping[str, str] = attrs.field(factory=lambda: dict(os.environ))
    # Gives each step attempt a listener for its log lines (the agent ships them to the
    # server while the step runs); None: the lines go to the step's log file only.
    log_listener: Callable[[StepInput, int], LineListener | None] | None = None
    # What a step's processes inherit of `base_env` (its secret variables taken out), once.
    inherited_env: Mapping[str, str] = attrs.field(init=False, repr=False)

    @inherited_env.default
    def _inherited(self) -> Mapping[str, str]:
        return without_secret_variables(self.base_env)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@functools.lru_cache(maxsize=1024)  # a job's run, job and step names come again and again
def safe_name(text: str, limit: int = 80) -> str:
    """A file-name-safe form of `text`: no separators, no dot-files, bounded length."""
    cleaned = _UNSAFE.sub("_", text).strip("._") or "_"
    return cleaned[:limit]


def step_log_path(log_dir: Path, inp: StepInput, attempt: int) -> Path:
    # One path from one string: cheaper than joining Path objects, on every step's way.
    run, job, key = safe_name(inp.run_id, 120), safe_name(inp.job_key or inp.job), inp.step.key
    name = f"{inp.step.index + 1:02d}-{safe_name(key)}.attempt{attempt}.log"
    return Path(f"{log_dir}/{run}/{job}/{name}")


@functools.cache
def runner_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "X64", "amd64": "X64", "aarch64": "ARM64", "arm64": "ARM64"}.get(
        machine, machine.upper()
    )


# github context key -> the variable GitHub's runner sets from it.
_GITHUB_VARIABLES = {
    "event_name": "GITHUB_EVENT_NAME",
    "sha": "GITHUB_SHA",
    "ref": "GITHUB_REF",
    "ref_name": "GITHUB_REF_NAME",
    "repository": "GITHUB_REPOSITORY",
    "repository_owner": "GITHUB_REPOSITORY_OWNER",
    "run_number": "GITHUB_RUN_NUMBER",
    "run_attempt": "GITHUB_RUN_ATTEMPT",
    "actor": "GITHUB_ACTOR",
}


def github_environment(github: Mapping[str, Any], event: Path) -> dict[str, str]:
    """The `GITHUB_*` variables a step's programs get from the run's `github` context, as on
    GitHub's runner, with the event payload in the file `event` (see `write_event`)."""
    env = {"GITHUB_ACTIONS": "true"}
    for key, variable in _GITHUB_VARIABLES.items():
        value = github.get(key)
        if value not in (None, ""):
            env[variable] = expressions.to_string(value)
    env["GITHUB_EVENT_PATH"] = str(event)
    return env


def write_event(github: Mapping[str, Any], event: Path) -> None:
    """Write the run's event payload to `event`, once per job as GitHub's runner does: the
    run's event does not change."""
    if not event.exists():
        event.write_text(json.dumps(github.get("event") or {}), encoding="utf-8")


def _mask_all(masker: SecretMasker, values: Mapping[str, str]) -> dict[str, str]:
    return {k: masker.mask(v) for k, v in values.items()}


async def run_step(
    inp: StepInput,
    agent: AgentRuntime,
    *,
    attempt: int = 1,
    heartbeat: Callable[..., None] = lambda *d: None,
    timeout: float | None = None,
) -> StepOutcome:
    """Run the step; return its outcome or raise StepFailed with a masked message."""
    started = time.monotonic()
    step = inp.step
    secrets = dict(agent.secrets())
    masker = SecretMasker(secrets.values())
    log_path = step_log_path(agent.log_dir, inp, attempt)
    listener = agent.log_listener(inp, attempt) if agent.log_listener is not None else None
    log = StepLog(log_path, masker, listener=listener)
    workspace = Path(inp.workspace)
    github = inp.contexts.get("github") or {}
    event = Path(f"{inp.temp_dir}/event.json")
    unique = f"{safe_name(step.key, 40)}-{os.urandom(6).hex()}"
    step_tmp = Path(f"{inp.temp_dir}/{unique}")
    # The job's steps share one folder of env files, as on GitHub's runner: each step's are
    # named for it, and removed after it (one folder less to make and remove a step).
    files_dir = Path(f"{inp.temp_dir}/_runner_file_commands")
    files = env_files_in(files_dir, f"_{unique}")
    # The step's environment, filled in by `prepare` (below) from these layers.
    env: dict[str, str] = {}
    env_context: dict[str, str] = {}
    prepared = False

    def prepare() -> None:
        """Make the step's temp dir, env files and event file and fill in its environment.

        The StepContext calls this when the node first looks at its env, files or temp dir:
        a node that needs none of them (most pure-Python nodes) costs no file work.
        """
        nonlocal prepared
        step_tmp.mkdir(mode=0o700, parents=True)
        prepared = True
        write_event(github, event)
        create_env_files(files_dir, f"_{unique}")
        # The agent's own environment, the runner's variables, then the env layers in order.
        env.update(agent.inherited_env)
        env.update(
            {
                "CI": "true",
                "WATERFLOW": "true",
                "GITHUB_WORKSPACE": inp.workspace,
                "GITHUB_WORKFLOW": inp.workflow,
                "GITHUB_RUN_ID": inp.run_id,
                "GITHUB_JOB": inp.job,
                "GITHUB_ACTION": step.key,
                "RUNNER_OS": "Linux",
                "RUNNER_ARCH": runner_arch(),
                "RUNNER_NAME": agent.agent_id,
                "RUNNER_TEMP": inp.temp_dir,
            }
        )
        env.update(github_environment(github, event))
        env.update(env_context)
        if inp.job_path:
            env["PATH"] = os.pathsep.join([*inp.job_path, env.get("PATH", "")])
        env.update(files.as_environment())

    def fail(message: str, *, retryable: bool = True, exit_code: int = 1) -> StepFailed:
        masked = masker.mask(message)
        tail = log.tail(TAIL_IN_ERROR)
        text = masked if not tail else masked + "\n" + "\n".join(tail)
        outcome = StepOutcome(
            attempt=attempt,
            exit_code=exit_code,
            log_path=str(log_path),
            agent_id=agent.agent_id,
            duration=time.monotonic() - started,
            error=masked,
        )
        return StepFailed(text, retryable=retryable, outcome=outcome)

    try:
        for note in inp.notes:
            log.info(note)
        log.info(f"step {step.display_name!r} ({step.uses}) attempt {attempt} on {agent.agent_id}")
        if not os.path.isdir(inp.workspace):  # made by the claim; a step may have removed it
            workspace.mkdir(parents=True, exist_ok=True)

        def hash_files(patterns: list[str]) -> str:
            return expressions.hash_files(str(workspace), patterns)

        contexts: dict[str, Any] = {**inp.contexts, "secrets": secrets}
        workflow_env, job_env = inp.env_layers or ({}, {})
        try:
            # Rendered here, not in `prepare`: a bad expression fails the step before its node.
            env_context.update(
                render_env(
                    env_layers(workflow_env, job_env, inp.job_env, step.env),
                    contexts,
                    hash_files=hash_files,
                )
            )
            contexts["env"] = env_context
            params_raw = expressions.render_tree(dict(step.with_), contexts, hash_files=hash_files)
        except expressions.ExpressionError as exc:
            raise fail(f"step {step.display_name!r}: {exc}", retryable=False) from None

        registered = agent.registry.get(step.uses)
        if registered is None and is_action(step.uses):
            # `owner/repo@ref`, `./path`, `docker://image`: the GitHub Actions node runs them.
            registered = agent.registry.get(GHA_NODE)
            if registered is None:
                raise fail(
                    f"GitHub Action {step.uses!r} needs the waterflow-nodes-gha package, "
                    f"which agent {agent.agent_id} does not have",
                    retryable=False,
                )
        if registered is None:
            known = agent.registry.names()
            hint = difflib.get_close_matches(step.uses, known, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise fail(
                f"unknown node {step.uses!r}{suggestion} on agent {agent.agent_id}; "
                f"installed: {', '.join(known) or 'none'}",
                retryable=False,
            )
        params, problems = check_parameters(registered.metadata, params_raw)
        if problems:
            raise fail("; ".join(msg for _, msg in problems), retryable=False)

        context = StepContext(
            workspace=workspace,
            env=env,
            log=log,
            masker=masker,
            files=files,
            temp_dir=step_tmp,
            step=StepInfo(
                workflow=inp.workflow,
                run_id=inp.run_id,
                job=inp.job,
                step_id=step.key,
                step_name=step.display_name,
                attempt=attempt,
                uses=step.uses,
                phase=inp.phase,
                job_status=str((inp.contexts.get("job") or {}).get("status", ""))
                if inp.phase == "post"
                else "",
            ),
            heartbeat_fn=heartbeat,
            state=dict(inp.state),
            prepare_fn=prepare,
        )
        node = registered.factory()
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                result = await node.execute(params, context)
        except TimeoutError:
            if not deadline.expired():
                raise fail(f"node {step.uses!r} raised TimeoutError") from None
            raise fail(f"step timed out after {timeout:g}s") from None
        except NodeError as exc:
            raise fail(exc.message, retryable=exc.retryable) from None
        except asyncio.CancelledError:
            log.info("step cancelled")
            raise
        except Exception as exc:
            detail = str(exc).splitlines()[0] if str(exc) else ""
            raise fail(
                f"node {step.uses!r} raised {type(exc).__name__}"
                + (f": {detail}" if detail else "")
            ) from None

        try:
            written = (
                read_env_files(files)
                if prepared
                else EnvFileResult(outputs={}, env={}, path=[], state={}, summary="")
            )
        except EnvFileError as exc:
            raise fail(str(exc), retryable=False) from None
        outputs = {str(k): str(v) for k, v in result.outputs.items()}
        outputs.update(written.outputs)
        outcome = StepOutcome(
            outputs=_mask_all(masker, outputs),
            exit_code=result.exit_code,
            env=_mask_all(masker, written.env),
            path=[masker.mask(p) for p in written.path],
            summary=masker.mask(written.summary),
            log_path=str(log_path),
            agent_id=agent.agent_id,
            duration=time.monotonic() - started,
            state=_mask_all(masker, written.state),
            attempt=attempt,
            post_condition=context.post_condition,
        )
        if not result.ok:
            reason = result.error or f"exit code {result.exit_code}"
            error = fail(
                f"step {step.display_name!r} failed: {reason}", exit_code=result.exit_code or 1
            )
            error.outcome = attrs.evolve(outcome, error=masker.mask(reason))
            raise error
        log.info(f"step finished in {outcome.duration:.2f}s")
        return outcome
    finally:
        # Closing the log and removing the step's files wait for the next turn of the loop:
        # by then the activity has handed the outcome to Temporal, and this work overlaps
        # with its trip to the server instead of delaying it. Nothing of the job can come
        # back to this agent before (it comes through the same loop).
        asyncio.get_running_loop().call_soon(_clean_up, log, step_tmp if prepared else None, files)


def _clean_up(log: StepLog, step_tmp: Path | None, files: EnvFiles) -> None:
    # A callback of the loop: what it raises would be a traceback in the agent's log.
    try:
        log.close()
        if step_tmp is not None:
            shutil.rmtree(step_tmp, ignore_errors=True)
            remove_env_files(files)
    except OSError as exc:
        logger.warning("Could not clean up after a step: {}", exc)
