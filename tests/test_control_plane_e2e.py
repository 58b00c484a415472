"""The control plane end to end: a real `waterflow server` process on the session's Temporal,
two real agents on two queues reporting to it, and the `waterflow` CLI in other processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from waiting import wait_until

from waterflow.devserver import DevServer

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
AGENT_TOKEN = "e2e-agent-token-0123456789"
USER_TOKEN = "e2e-user-token-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATERFLOW_")}
    env.update(extra)
    return env


class ServerProcess:
    """`waterflow server`, its JSON log lines collected as they come."""

    def __init__(self, proc: asyncio.subprocess.Process, address: str) -> None:
        self.proc = proc
        self.address = address
        self.records: list[dict[str, Any]] = []
        self._new = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            try:
                self.records.append(json.loads(line))
            except ValueError:
                self.records.append({"message": line.decode(errors="replace").rstrip()})
            self._new.set()

    async def wait_for(self, message: str, timeout: float = 30, **fields: Any) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                self._new.clear()
                for record in self.records:
                    if record.get("message") == message and all(
                        record.get(k) == v for k, v in fields.items()
                    ):
                        return record
                await self._new.wait()

    async def stop(self) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await self._reader
        return self.proc.returncode or 0


@pytest.fixture
async def server(temporal: DevServer, tmp_path: Path) -> AsyncIterator[ServerProcess]:
    address = f"127.0.0.1:{_free_port()}"
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "waterflow"),
        "server",
        "--listen",
        address,
        "--database",
        str(tmp_path / "server.db"),
        "--temporal-address",
        temporal.address,
        env=_env(
            WATERFLOW_AUTH_AGENT_TOKENS=AGENT_TOKEN,
            WATERFLOW_AUTH_USER_TOKENS=USER_TOKEN,
            WATERFLOW_REGISTRY_AGENT_LEASE="3s",
        ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    server = ServerProcess(proc, address)
    await server.wait_for("Server listening")
    await server.wait_for("Connected to Temporal")
    yield server
    assert await server.stop() == 0


def _agent_settings(server: ServerProcess, plugins: str) -> dict[str, str]:
    return {
        "WATERFLOW_SERVER_ADDRESS": server.address,
        "WATERFLOW_SERVER_TOKEN": AGENT_TOKEN,
        "WATERFLOW_LOAD_PLUGINS": plugins,
    }


@pytest.fixture
def fleet(agent_process, server: ServerProcess) -> dict[str, Any]:
    """Two agent processes: `cpu-*` offers shell and docker nodes, `gpu-*` only shell/run."""
    tag = uuid.uuid4().hex[:8]
    cpu, gpu = f"cpu-{tag}", f"gpu-{tag}"
    agents = {
        cpu: agent_process([cpu], name=f"agent-{cpu}", **_agent_settings(server, "shell,docker")),
        gpu: agent_process([gpu], name=f"agent-{gpu}", **_agent_settings(server, "shell")),
    }
    for process in agents.values():
        process.wait_for_line("Nodes reported to the Waterflow server")
    return {"cpu": cpu, "gpu": gpu, "agents": agents}


async def cli(
    *args: str, token: str | None = USER_TOKEN, server: ServerProcess, cwd: Path | None = None
) -> tuple[int, str, str]:
    env = _env(WATERFLOW_SERVER_ADDRESS=server.address)
    if token is not None:
        env["WATERFLOW_SERVER_TOKEN"] = token
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "waterflow"),
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


async def start_cli(*args: str, server: ServerProcess, cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        str(BIN / "waterflow"),
        *args,
        env=_env(WATERFLOW_SERVER_ADDRESS=server.address, WATERFLOW_SERVER_TOKEN=USER_TOKEN),
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def read_until(stream: asyncio.StreamReader, text: str, timeout: float = 60) -> list[str]:
    lines: list[str] = []
    async with asyncio.timeout(timeout):
        while True:
            raw = await stream.readline()
            assert raw, f"output ended before {text!r}: {lines}"
            lines.append(raw.decode().rstrip("\n"))
            if text in lines[-1]:
                return lines


# --- validation against what each queue offers --------------------------------------------------


async def test_validate_against_what_each_queue_offers(server, fleet, tmp_path: Path) -> None:
    cpu, gpu = fleet["cpu"], fleet["gpu"]
    (tmp_path / "fleet.yaml").write_text(
        f"""name: fleet
jobs:
  build:
    runs-on: {cpu}
    steps:
      - uses: docker/build
        with: {{tags: app:1}}
      - run: echo built
  train:
    runs-on: {gpu}
    steps:
      - uses: docker/build
        with: {{tags: app:2}}
      - run: echo trained
"""
    )
    code, out, err = await cli("validate", "fleet.yaml", server=server, cwd=tmp_path)
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"fleet.yaml:12:15: step 1: node docker/build is not offered on queue {gpu}; it is on {cpu}"
    ]
    (tmp_path / "ok.yaml").write_text(
        f"jobs:\n  a:\n    runs-on: {gpu}\n    steps:\n      - run: echo hi\n"
    )
    code, out, err = await cli("validate", "ok.yaml", server=server, cwd=tmp_path)
    assert (code, out, err) == (0, "ok.yaml: ok (1 job, 1 step)\n", "")
    code, out, err = await cli("nodes", "--queue", gpu, server=server)
    assert code == 0
    assert [line.split()[:4] for line in out.splitlines()[1:]] == [
        [gpu, "shell/run", line.split()[2], "1/1"] for line in out.splitlines()[1:]
    ]
    code, out, _ = await cli("nodes", "--queue", cpu, "--json", server=server)
    names = [n["node"]["metadata"]["name"] for n in json.loads(out)[0]["nodes"]]
    assert names == ["docker/build", "docker/push", "docker/run", "shell/run"]


# --- runs through the server, logs followed from another process ---------------------------------


async def test_run_through_the_server_with_logs_followed(server, fleet, tmp_path: Path) -> None:
    cpu, gpu = fleet["cpu"], fleet["gpu"]
    go = tmp_path / "go"
    (tmp_path / "flow.yaml").write_text(
        f"""name: followed
on:
  workflow_dispatch:
    inputs:
      who: {{default: world}}
      loud: {{type: boolean, default: true}}
jobs:
  build:
    runs-on: {cpu}
    outputs: {{greeting: "${{{{ steps.talk.outputs.greeting }}}}"}}
    steps:
      - id: talk
        name: Talk slowly
        run: |
          echo "hello ${{{{ inputs.who }}}} 1"
          given="${{{{ github.event.inputs.who }}}}/${{{{ github.event.inputs.loud }}}}"
          echo "event $given/${{{{ inputs.loud }}}}"
          echo "hello 2" >&2
          while [ ! -e {go} ]; do sleep 0.05; done
          echo "after the go"
          echo "greeting=hi" >> "$GITHUB_OUTPUT"
  train:
    name: Train on ${{{{ needs.build.outputs.greeting }}}}
    needs: build
    runs-on: {gpu}
    steps:
      - run: echo "trained on ${{{{ needs.build.outputs.greeting }}}}"
"""
    )
    run = await start_cli(
        "run",
        "flow.yaml",
        "--input",
        "who=e2e",
        "--server",
        server.address,
        server=server,
        cwd=tmp_path,
    )
    assert run.stdout is not None
    header = (await read_until(run.stdout, "Run "))[-1]
    run_id = header.split()[1]
    assert header == f"Run {run_id} of followed (flow.yaml)"
    follower = await start_cli("logs", run_id, "--follow", server=server, cwd=tmp_path)
    assert follower.stdout is not None
    seen = await read_until(follower.stdout, "hello 2")
    assert "build | Talk slowly | hello e2e 1" in seen
    # The dispatch's event holds the inputs given, as on GitHub; defaults only in `inputs`.
    assert "build | Talk slowly | event e2e//true" in seen
    assert not go.exists()  # the step is still running: the lines came while it ran
    go.touch()
    rest = await read_until(follower.stdout, "trained on hi")
    assert "build | Talk slowly | after the go" in rest
    out, err = await asyncio.wait_for(follower.communicate(), 60)
    assert follower.returncode == 0, err.decode()
    run_out, run_err = await asyncio.wait_for(run.communicate(), 120)
    assert run.returncode == 0, (run_out.decode(), run_err.decode())
    text = run_out.decode()
    assert "✓ build / Talk slowly" in text
    # A job's rendered name travels through the server with its events and its report.
    assert "✓ Train on hi / Run echo " in text
    assert "build.outputs.greeting = hi" in text
    assert "✓ followed success" in text

    code, out, _ = await cli("runs", "--workflow", "followed", "--json", server=server)
    runs = json.loads(out)
    assert [(r["run_id"], r["status"]) for r in runs] == [(run_id, "success")]
    code, out, _ = await cli("show", run_id, server=server)
    assert code == 0
    assert out.splitlines()[0].startswith(f"Run {run_id} of followed: success")
    assert f"✓ build on {cpu} (agent agent-{cpu}): success" in out
    assert f"✓ Train on hi on {gpu} (agent agent-{gpu}): success" in out
    code, out, _ = await cli("logs", run_id, "--job", "train", server=server)
    assert [line for line in out.splitlines() if line.endswith("| trained on hi")]
    assert all(line.startswith("train | ") for line in out.splitlines())
    code, out, _ = await cli("cancel", run_id, server=server)
    assert (code, out) == (0, f"run {run_id} has already ended: success\n")


async def test_unknown_runs_are_one_line(server) -> None:
    where = f"server at {server.address}"
    for command in ("show", "cancel", "logs"):
        code, out, err = await cli(command, "no-such-run", server=server)
        assert (code, out, err) == (1, "", f"error: {where}: NOT_FOUND: no run 'no-such-run'\n")
    code, _, err = await cli("runs", "--status", "lost", server=server)
    assert code == 2  # click refuses the choice before any call
    assert "'lost' is not one of" in err


async def test_a_run_the_fleet_cannot_serve_is_not_submitted(server, fleet, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        f"jobs:\n  a:\n    runs-on: {fleet['gpu']}\n    steps:\n      - uses: docker/run\n"
        "        with: {image: alpine}\n"
    )
    code, out, err = await cli("run", "bad.yaml", server=server, cwd=tmp_path)
    assert (code, out) == (1, "")
    assert err == (
        f"bad.yaml:5:15: step 1: node docker/run is not offered on queue {fleet['gpu']}; "
        f"it is on {fleet['cpu']}\n"
    )
    code, out, _ = await cli("runs", "--limit", "100", "--json", server=server)
    assert all(r["workflow"] != "bad" for r in json.loads(out))


async def test_cancel_a_running_run(server, fleet, tmp_path: Path) -> None:
    (tmp_path / "long.yaml").write_text(
        f"name: long\njobs:\n  a:\n    runs-on: {fleet['cpu']}\n    steps:\n"
        "      - run: echo started; sleep 600\n"
    )
    run = await start_cli("run", "long.yaml", server=server, cwd=tmp_path)
    assert run.stdout is not None
    run_id = (await read_until(run.stdout, "Run "))[-1].split()[1]
    follower = await start_cli("logs", run_id, "--follow", server=server, cwd=tmp_path)
    assert follower.stdout is not None
    await read_until(follower.stdout, "started")
    code, out, _ = await cli("runs", "--status", "running", "--json", server=server)
    assert run_id in [r["run_id"] for r in json.loads(out)]
    code, out, _ = await cli("cancel", run_id, server=server)
    assert (code, out) == (0, f"cancelling run {run_id}\n")
    out_b, _ = await asyncio.wait_for(run.communicate(), 120)
    assert run.returncode == 1
    assert "long cancelled" in out_b.decode()
    await asyncio.wait_for(follower.communicate(), 60)
    assert follower.returncode == 0
    code, out, _ = await cli("show", run_id, server=server)
    assert out.splitlines()[0].startswith(f"Run {run_id} of long: cancelled")


def _slow_step_file(folder: Path, queue: str, *, ignore_sigterm: bool = False) -> Path:
    """long.yaml in `folder`: one step that touches `started` there, then sleeps. With
    `ignore_sigterm`, the step ignores SIGTERM: cancelling it takes the agent's grace period."""
    trap = "trap '' TERM; " if ignore_sigterm else ""
    (folder / "long.yaml").write_text(
        f"name: long\njobs:\n  a:\n    runs-on: {queue}\n    steps:\n"
        f"      - run: {trap}touch {folder / 'started'}; sleep 600\n"
    )
    return folder / "started"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_a_signal_to_a_run_through_the_server_cancels_it(
    server, fleet, tmp_path: Path, signum: signal.Signals
) -> None:
    # SIGTERM (a CI system cancelling its job) is taken as Ctrl-C is.
    started = _slow_step_file(tmp_path, fleet["cpu"])
    run = await start_cli("run", "long.yaml", server=server, cwd=tmp_path)
    await wait_until(started.exists, 60, "the step's start")
    run.send_signal(signum)
    out, err = await asyncio.wait_for(run.communicate(), 120)
    assert run.returncode == 1, (out.decode(), err.decode())
    assert "cancelling the run (Ctrl-C again to stop following it)" in err.decode()
    assert "long cancelled" in out.decode()


async def test_a_second_signal_stops_following_and_the_run_is_still_cancelled(
    server, fleet, tmp_path: Path
) -> None:
    started = _slow_step_file(tmp_path, fleet["cpu"], ignore_sigterm=True)
    run = await start_cli("run", "long.yaml", server=server, cwd=tmp_path)
    assert run.stdout is not None and run.stderr is not None
    run_id = (await read_until(run.stdout, "Run "))[-1].split()[1]
    await wait_until(started.exists, 60, "the step's start")
    run.send_signal(signal.SIGINT)
    # The step ignores SIGTERM: the run is still being cancelled when the second one comes.
    await read_until(run.stderr, "cancelling the run")
    run.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(run.communicate(), 60)
    assert run.returncode == 130, (out.decode(), err.decode())
    assert err.decode().strip() == (
        f"interrupted; its cancellation was asked for (waterflow show {run_id} shows how the run "
        "ended)"
    )

    async def shown_cancelled() -> bool:
        _, shown, _ = await cli("show", run_id, server=server)
        return shown.startswith(f"Run {run_id} of long: cancelled")

    await wait_until(shown_cancelled, 120, "the run's end as cancelled", interval=0.5)


async def test_a_signal_before_the_run_is_submitted_ends_the_command_in_one_line(
    tmp_path: Path,
) -> None:
    # A "server" that takes the connection and never answers: the command is still waiting to
    # submit the run when the signal comes, before it watches for signals itself.
    accepted = asyncio.Event()
    held: list[asyncio.StreamWriter] = []

    async def take(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        accepted.set()

    silent = await asyncio.start_server(take, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    (tmp_path / "w.yaml").write_text(
        "name: w\njobs:\n  a:\n    runs-on: q\n    steps:\n      - run: 'true'\n"
    )
    run = await asyncio.create_subprocess_exec(
        str(BIN / "waterflow"),
        "run",
        "w.yaml",
        env=_env(WATERFLOW_SERVER_ADDRESS=f"127.0.0.1:{port}", WATERFLOW_SERVER_TOKEN=USER_TOKEN),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await asyncio.wait_for(accepted.wait(), 60)
        run.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(run.communicate(), 60)
    finally:
        for writer in held:
            writer.close()
        silent.close()
    assert run.returncode == 130, (out.decode(), err.decode())
    assert err.decode() == "interrupted\n"
    assert out.decode() == ""


# --- the agent dies mid-step: the lines it sent are kept -----------------------------------------


async def test_lines_sent_before_the_agent_died_are_kept(
    server, agent_process, tmp_path: Path
) -> None:
    queue = f"doomed-{uuid.uuid4().hex[:8]}"
    doomed = agent_process([queue], name="doomed", **_agent_settings(server, "shell"))
    doomed.wait_for_line("Nodes reported to the Waterflow server")
    (tmp_path / "die.yaml").write_text(
        f"name: die\njobs:\n  a:\n    runs-on: {queue}\n    steps:\n      - name: Count\n"
        "        run: for n in 1 2 3; do echo line $n; done; sleep 600\n"
    )
    run = await start_cli("run", "die.yaml", server=server, cwd=tmp_path)
    assert run.stdout is not None
    run_id = (await read_until(run.stdout, "Run "))[-1].split()[1]
    follower = await start_cli("logs", run_id, "--follow", server=server, cwd=tmp_path)
    assert follower.stdout is not None
    await read_until(follower.stdout, "line 3")
    os.killpg(doomed.proc.pid, signal.SIGKILL)
    doomed.proc.wait()
    code, out, _ = await cli("logs", run_id, server=server)
    assert code == 0
    assert [line for line in out.splitlines() if "| line " in line] == [
        "a | Count | line 1",
        "a | Count | line 2",
        "a | Count | line 3",
    ]
    code, out, _ = await cli("cancel", run_id, server=server)
    assert (code, out) == (0, f"cancelling run {run_id}\n")
    for proc in (run, follower):
        proc.kill()
        await proc.wait()


# --- tokens ---------------------------------------------------------------------------------------


async def test_wrong_missing_and_agent_tokens_are_refused(server, tmp_path: Path) -> None:
    where = f"server at {server.address}"
    code, _, err = await cli("runs", token="not-a-token-at-all", server=server)
    assert (code, err) == (1, f"error: {where}: UNAUTHENTICATED: invalid token\n")
    code, _, err = await cli("cancel", "some-run", token=AGENT_TOKEN, server=server)
    assert (code, err) == (
        1,
        f"error: {where}: PERMISSION_DENIED: an agent token may not call CancelRun; "
        "use a user token\n",
    )
    (tmp_path / "w.yaml").write_text("jobs:\n  a:\n    runs-on: q\n    steps:\n      - run: x\n")
    code, _, err = await cli("run", "w.yaml", token=AGENT_TOKEN, server=server, cwd=tmp_path)
    assert (code, err) == (
        1,
        f"error: {where}: PERMISSION_DENIED: an agent token may not call SubmitRun; "
        "use a user token\n",
    )
    code, _, err = await cli("runs", token=None, server=server)
    assert (code, err) == (
        1,
        "error: no token given: set WATERFLOW_SERVER_TOKEN (or use --token)\n",
    )
    refused = await server.wait_for("Call refused", method="/waterflow.v1.UserService/SubmitRun")
    assert refused["status"] == "PERMISSION_DENIED"
    await server.wait_for("Call refused", reason="invalid token")


async def test_an_agent_with_a_wrong_token_still_runs_steps(
    server, agent_process, client, tmp_path: Path
) -> None:
    from waterflow.dsl import parse_workflow
    from waterflow.engine.client import start_run
    from waterflow.engine.types import SUCCESS

    queue = f"lone-{uuid.uuid4().hex[:8]}"
    lone = agent_process(
        [queue],
        name="lone",
        WATERFLOW_SERVER_ADDRESS=server.address,
        WATERFLOW_SERVER_TOKEN="wrong-wrong-wrong-wrong",
        WATERFLOW_LOAD_PLUGINS="shell",
    )
    line = json.loads(lone.wait_for_line("refuses this agent's token"))
    assert line["level"] == "error"
    spec = parse_workflow(f"jobs:\n  a:\n    runs-on: {queue}\n    steps:\n      - run: echo ok\n")
    result = await asyncio.wait_for((await start_run(client, spec)).result(), 60)
    assert result.status == SUCCESS
    await server.wait_for("Call refused", method="/waterflow.v1.AgentService/ReportNodes")
