"""Docker container actions on the agent's engine, through the docker CLI (DOCKER_HOST applies).

Laid out as GitHub's runner lays them out: the workspace at /github/workspace (the working
directory), the env files at /github/file_commands, the event at /github/workflow/event.json,
HOME at /github/home, RUNNER_TEMP at /github/runner_temp, the engine's socket at
/var/run/docker.sock. The container gets the step's environment (not the agent's own), with
its values passed through the CLI's environment rather than its command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from waterflow import EnvFiles, NodeError, StepContext

WORKSPACE = "/github/workspace"
FILE_COMMANDS = "/github/file_commands"
WORKFLOW = "/github/workflow"
HOME = "/github/home"
RUNNER_TEMP = "/github/runner_temp"
_PASSED_PREFIXES = ("GITHUB_", "RUNNER_", "INPUT_", "STATE_", "ACTIONS_")
_NOT_PASSED = frozenset(
    {"PATH", "HOME", "HOSTNAME", "PWD", "OLDPWD", "SHLVL", "TMPDIR", "_", "DOCKER_HOST"}
)
_BY_VALUE = frozenset(
    {"HOME", "CI", "GITHUB_WORKSPACE", "RUNNER_TEMP", "GITHUB_EVENT_PATH", "PATH"}
)
_TAG_UNSAFE = re.compile(r"[^a-z0-9_.-]+")


def container_environment(
    env: Mapping[str, str], agent_env: Mapping[str, str], files: EnvFiles
) -> dict[str, str]:
    """What the container sees: the runner's variables and what the workflow set, with the
    paths that point into the container."""
    chosen = {
        name: value
        for name, value in env.items()
        if name not in _NOT_PASSED
        and not name.startswith("WATERFLOW_")
        and (name.startswith(_PASSED_PREFIXES) or agent_env.get(name) != value)
    }
    chosen["CI"] = env.get("CI", "true")
    chosen["HOME"] = HOME
    chosen["GITHUB_WORKSPACE"] = WORKSPACE
    chosen["RUNNER_TEMP"] = RUNNER_TEMP
    chosen.pop("GITHUB_ACTION_PATH", None)
    if env.get("GITHUB_EVENT_PATH"):
        chosen["GITHUB_EVENT_PATH"] = f"{WORKFLOW}/{Path(env['GITHUB_EVENT_PATH']).name}"
    for name, path in files.as_environment().items():
        chosen[name] = f"{FILE_COMMANDS}/{Path(path).name}"
    return chosen


class DockerCli:
    """The docker CLI as the agent's engine speaks it; `env` is the agent-side environment."""

    def __init__(
        self, program: str, env: Mapping[str, str], context: StepContext, label: str
    ) -> None:
        found = shutil.which(program, path=env.get("PATH"))
        if found is None:
            raise NodeError(
                f"Docker action {label}: the docker CLI {program!r} is not on PATH "
                "(install it, or set WATERFLOW_GHA_DOCKER)",
                retryable=False,
            )
        self.program = found
        self.env = {k: v for k, v in env.items() if not k.startswith(_PASSED_PREFIXES)}
        self.context = context
        self.label = label

    async def _quiet(self, *args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            self.program,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.env,
        )
        out, _ = await proc.communicate()
        return proc.returncode or 0, out.decode("utf-8", "replace").strip()

    async def check_engine(self) -> None:
        code, out = await self._quiet("version", "--format", "{{.Server.Version}}")
        if code != 0:
            lines = [line for line in out.splitlines() if line.strip()]
            where = self.env.get("DOCKER_HOST") or "the default socket"
            raise NodeError(
                f"Docker action {self.label}: no Docker engine answers at {where}: "
                + (lines[-1] if lines else f"docker version exited {code}")
            )

    async def ensure_image(self, image: str) -> None:
        code, _ = await self._quiet("image", "inspect", "--format", "{{.Id}}", image)
        if code == 0:
            self.context.log.info(f"image {image} is present on the engine")
            return
        self.context.log.info(f"pulling {image}")
        code = await self.context.run_process(
            [self.program, "pull", image], env=self.env, cwd=self.context.workspace
        )
        if code != 0:
            raise NodeError(f"Docker action {self.label}: docker pull {image} failed (exit {code})")

    async def build(self, dockerfile: Path, name: str) -> str:
        if not dockerfile.is_file():
            raise NodeError(
                f"Docker action {self.label}: runs.image {str(dockerfile)!r} does not exist",
                retryable=False,
            )
        digest = hashlib.sha256(str(dockerfile.resolve()).encode()).hexdigest()[:12]
        safe = _TAG_UNSAFE.sub("-", name.lower()).strip("-._") or "action"
        tag = f"waterflow-gha/{safe}:{digest}"
        self.context.log.info(f"building {tag} from {dockerfile}")
        code = await self.context.run_process(
            [self.program, "build", "-t", tag, "-f", str(dockerfile), str(dockerfile.parent)],
            env=self.env,
            cwd=dockerfile.parent,
        )
        if code != 0:
            raise NodeError(f"Docker action {self.label}: docker build failed (exit {code})")
        return tag

    async def run(
        self,
        image: str,
        *,
        entrypoint: str | None,
        args: list[str],
        container_env: Mapping[str, str],
        files: EnvFiles,
        event_path: str | None,
        network: str | None,
        on_output: Callable[[str, str], str | None],
    ) -> int:
        context = self.context
        name = f"waterflow-gha-{uuid.uuid4().hex[:16]}"
        home = context.temp_dir / "_github_home"
        home.mkdir(parents=True, exist_ok=True)
        runner_temp = Path(context.env.get("RUNNER_TEMP") or context.temp_dir)
        argv = [
            self.program,
            "run",
            "--rm",
            "--name",
            name,
            "--label",
            "waterflow-gha=1",
            "--workdir",
            WORKSPACE,
            "-v",
            f"{context.workspace}:{WORKSPACE}",
            "-v",
            f"{home}:{HOME}",
            "-v",
            f"{runner_temp}:{RUNNER_TEMP}",
        ]
        directories = {Path(p).parent for p in files.as_environment().values()}
        if len(directories) != 1:
            raise NodeError(
                f"Docker action {self.label}: the step's env files are not in one folder",
                retryable=False,
            )
        argv += ["-v", f"{directories.pop()}:{FILE_COMMANDS}"]
        if event_path:
            argv += ["-v", f"{Path(event_path).parent}:{WORKFLOW}"]
        socket = self.env.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        if socket.startswith("unix://") and os.path.exists(socket[len("unix://") :]):
            argv += ["-v", f"{socket[len('unix://') :]}:/var/run/docker.sock"]
        if network:
            argv += ["--network", network]
        if entrypoint:
            argv += ["--entrypoint", entrypoint]
        # Values go through the CLI's environment (`-e NAME`), not its command line, where
        # any user of the machine could read them; the few that would change the CLI's own
        # behaviour (HOME, DOCKER_*) and the fixed paths go on the command line.
        by_name: dict[str, str] = {}
        for variable, value in sorted(container_env.items()):
            if variable in _BY_VALUE or variable.startswith("DOCKER_"):
                argv += ["-e", f"{variable}={value}"]
            else:
                argv += ["-e", variable]
                by_name[variable] = value
        argv += [image, *args]
        process_env = {**self.env, **by_name}
        running = asyncio.ensure_future(
            context.run_process(argv, env=process_env, cwd=context.workspace, on_output=on_output)
        )
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            # Remove the container first (the CLI then ends by itself), then stop the CLI.
            await self._quiet("rm", "-f", name)
            context.log.info(f"step cancelled: container {name} removed")
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
            raise


__all__ = ["DockerCli", "container_environment"]
