"""Helpers of the fault tests: agent processes that can be killed, stopped and cut off, waits
for events with deadlines, and percentiles. Imported by the tests of this directory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from waiting import wait_until

from waterflow.devserver import DevServer
from waterflow.dsl import parse_workflow
from waterflow.engine.client import start_run
from waterflow.engine.types import RunResult, StepDefaults

BIN = Path(sys.executable).parent
AGENT = BIN / "waterflow-agent"

# Short enough for tests, long enough for a loaded 2-core machine: a step's agent heartbeats
# every second (below), so 5 s of silence means the agent is gone, not slow.
HEARTBEAT_TIMEOUT = 5.0
PICKUP_TIMEOUT = 5.0
FAST = StepDefaults(heartbeat_timeout=HEARTBEAT_TIMEOUT, agent_pickup_timeout=PICKUP_TIMEOUT)


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def steady_port() -> int:
    """A free loopback port outside the kernel's ephemeral range, for a server a test stops
    and starts again on the same address. A port from the range (what binding port 0 gives)
    can be taken while the server is away: by a program binding port 0, by an outgoing
    connection, even by the agent's own reconnection attempt connecting to itself."""
    with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
        low, high = (int(n) for n in f.read().split())
    outside = [*range(10_000, low), *range(high + 1, 65_536)]
    for port in random.sample(outside, 50):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port outside the ephemeral range {low}-{high}")


def process_gone(pid: int) -> bool:
    """The process has ended (a zombie counts: it only waits to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            stat = f.read()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2 :].split()[0] in ("Z", "X")


class LoggedProcess:
    """A real process started by a test whose JSON log lines go to a file, read as they come."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name = name
        self.proc = proc
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            # Lines that are not JSON objects: the Temporal SDK's own warnings.
            out.append(record if isinstance(record, dict) else {"message": line})
        return out

    def messages(self) -> list[str]:
        return [str(r.get("message", "")) for r in self.records()]

    def has(self, needle: str) -> bool:
        return any(needle in m for m in self.messages())

    def count(self, needle: str) -> int:
        return sum(1 for m in self.messages() if needle in m)

    async def wait_for(self, needle: str, timeout: float = 30.0, times: int = 1) -> None:
        """Until `needle` is in `times` of its log messages; fails at once if it exits."""

        def seen() -> bool:
            if self.count(needle) >= times:
                return True
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited ({self.proc.returncode}) before logging "
                    f"{needle!r}; log tail: {self.messages()[-10:]}"
                )
            return False

        try:
            await wait_until(seen, timeout, f"{self.name} logging {needle!r} ({times}x)")
        except AssertionError as exc:
            if self.proc.poll() is not None:
                raise  # exited: `seen` said so, with the tail
            # What the process did say, to tell a slow event from one that never comes.
            raise AssertionError(f"{exc}; log tail: {self.messages()[-10:]}") from None

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    async def exit_code(self, timeout: float) -> int:
        await wait_until(lambda: self.proc.poll() is not None, timeout, f"{self.name} exiting")
        return self.proc.returncode


def _env(**settings: str) -> dict[str, str]:
    """This environment without any WATERFLOW_ setting of the developer's, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATERFLOW_")}
    env.update(settings)
    return env


def _spawn(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


class FleetAgent(LoggedProcess):
    """One real `waterflow-agent run` process."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], home: Path) -> None:
        super().__init__(name, proc, home / "agent.log")
        self.home = home

    def kill(self) -> None:
        """SIGKILL the agent process only (its steps are left to its reaper)."""
        self.proc.kill()
        self.proc.wait()


class Fleet:
    """Starts agent processes against one Temporal address; stops what is left at the end."""

    def __init__(self, root: Path, address: str) -> None:
        self.root = root
        self.address = address
        self.agents: list[FleetAgent] = []

    def launch(
        self,
        queues: list[str],
        name: str,
        *,
        netns: str | None = None,
        address: str | None = None,
        **settings: str,
    ) -> FleetAgent:
        home = self.root / name
        home.mkdir(parents=True, exist_ok=True)
        env = _env(
            **{
                "WATERFLOW_TEMPORAL_ADDRESS": address or self.address,
                "WATERFLOW_AGENT_ID": name,
                "WATERFLOW_AGENT_WORK_DIR": str(home / "work"),
                "WATERFLOW_LOG_OUTPUT_PATH": str(home / "logs"),
                "WATERFLOW_AGENT_STEP_HEARTBEAT_INTERVAL": "1s",
                "WATERFLOW_AGENT_SHUTDOWN_TIMEOUT": "10s",
                "WATERFLOW_AGENT_PLUGIN_DIR": str(home / "plugins"),
                **settings,
            }
        )
        argv = [str(AGENT), "run", "--task-queues", ",".join(queues)]
        if netns is not None:
            argv = ["ip", "netns", "exec", netns, *argv]
        proc = _spawn(argv, env, home / "agent.log")
        agent = FleetAgent(name, proc, home)
        self.agents.append(agent)
        return agent

    async def start(self, queues: list[str], name: str, **kw: Any) -> FleetAgent:
        agent = self.launch(queues, name, **kw)
        await agent.wait_for("Agent started", timeout=60)
        return agent

    async def stop_all(self) -> None:
        for agent in self.agents:
            if agent.alive:
                agent.terminate()
        for agent in self.agents:
            try:
                await agent.exit_code(40)
            except AssertionError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(agent.pid, signal.SIGKILL)
                agent.proc.wait()


class ControlPlane(LoggedProcess):
    """A real `waterflow server` process on a fixed address and database, so that a test can
    stop it and start it again (`restart`) where its agents expect it."""

    AGENT_TOKEN = "fault-agent-token-0123456789"
    USER_TOKEN = "fault-user-token-0123456789"

    def __init__(self, home: Path, address: str, temporal: str) -> None:
        home.mkdir(parents=True, exist_ok=True)
        log_path = home / "server.log"
        # The log file keeps the lines of earlier starts: this start waits for its own.
        starts = self._starts(log_path) + 1
        argv = [str(BIN / "waterflow"), "server", "--listen", address]
        argv += ["--database", str(home / "server.db"), "--temporal-address", temporal]
        env = _env(
            WATERFLOW_AUTH_AGENT_TOKENS=self.AGENT_TOKEN,
            WATERFLOW_AUTH_USER_TOKENS=self.USER_TOKEN,
            # Short: an agent counts as live only while its reports and heartbeats get through.
            WATERFLOW_REGISTRY_AGENT_LEASE="3s",
        )
        super().__init__("waterflow server", _spawn(argv, env, log_path), log_path)
        self.home, self.address, self.temporal, self.starts = home, address, temporal, starts

    @staticmethod
    def _starts(log_path: Path) -> int:
        if not log_path.exists():
            return 0
        return log_path.read_text(errors="replace").count('"Connected to Temporal"')

    async def ready(self) -> ControlPlane:
        await self.wait_for("Server listening", 60, times=self.starts)
        await self.wait_for("Connected to Temporal", 60, times=self.starts)
        return self

    async def restart(self) -> ControlPlane:
        """Start the server again (after `stop`) on the same address and database."""
        return await ControlPlane(self.home, self.address, self.temporal).ready()

    async def stop(self) -> None:
        if self.alive:
            self.terminate()
        assert await self.exit_code(30) == 0, self.messages()[-10:]

    def agent_settings(self) -> dict[str, str]:
        """What an agent needs to report to this server."""
        return {
            "WATERFLOW_SERVER_ADDRESS": self.address,
            "WATERFLOW_SERVER_TOKEN": self.AGENT_TOKEN,
        }

    async def cli(self, *args: str) -> str:
        """The output of `waterflow ARGS` against this server, as a user; it must succeed."""
        env = _env(WATERFLOW_SERVER_ADDRESS=self.address, WATERFLOW_SERVER_TOKEN=self.USER_TOKEN)
        proc = await asyncio.create_subprocess_exec(
            str(BIN / "waterflow"),
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, f"waterflow {' '.join(args)}: {err.decode()}"
        return out.decode()


async def submit(
    client: Client, text: str, *, defaults: StepDefaults = FAST, name: str = "fault.yaml"
) -> WorkflowHandle[Any, RunResult]:
    spec = parse_workflow(text, file=name)
    return await start_run(client, spec, defaults=defaults)


async def result_of(handle: WorkflowHandle[Any, RunResult], timeout: float) -> RunResult:
    result: RunResult = await asyncio.wait_for(handle.result(), timeout)
    return result


def why_failed(result: RunResult) -> str:
    """One line: the run, and the first job or step error it reports."""
    for job in result.jobs.values():
        if job.result == "success":
            continue
        for step in job.steps:
            if step.outcome != "success":
                return f"{result.run_id}: step {step.key}: {step.error}"
        return f"{result.run_id}: job {job.job}: {job.error}"
    return f"{result.run_id}: {result.status}"


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def skip_or_fail(reason: str) -> None:
    """Skip with the reason; under CI=true these tests must run, so fail instead."""
    if in_ci():
        pytest.fail(f"must run in CI: {reason}")
    print(f"skipped: {reason}")
    pytest.skip(reason)


class NetworkLab:
    """Network namespaces for partition tests: a hub (where Temporal runs) and spokes (agents).

    Each spoke is joined to the hub by a veth pair of its own, with a /30 of a private /24
    (10.213.<subnet>.0/24); the root namespace (the test itself) is joined the same way. No
    bridge and no forwarding: nothing depends on the host's firewall, and only these links
    ever carry test traffic. `server_ip(spoke)` is the hub's address on that spoke's link.
    `cut(spoke)` takes the hub's end of the link down (packets are dropped, as in a real
    partition) and `heal(spoke)` brings it back. Everything is removed on `close()`.
    """

    ROOT = "root"

    def __init__(self, tag: str, subnet: int) -> None:
        self.tag = tag
        self.prefix = f"10.213.{subnet}"
        self.hub = f"wf-{tag}-hub"
        # spoke -> (netns or None for the root namespace, hub-side link, hub ip, spoke ip)
        self.links: dict[str, tuple[str | None, str, str, str]] = {}
        self.cut_off: set[str] = set()
        self._created: list[str] = []

    @staticmethod
    def problem() -> str | None:
        """Why partition tests cannot run here, or None."""
        if os.geteuid() != 0:
            return "network namespaces need root"
        if shutil.which("ip") is None:
            return "no `ip` command (iproute2)"
        return None

    @staticmethod
    def _ip(*args: str) -> None:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")

    def open(self, spokes: list[str]) -> None:
        self._ip("netns", "add", self.hub)
        self._created.append(self.hub)
        self._ip("-n", self.hub, "link", "set", "lo", "up")
        for index, spoke in enumerate([self.ROOT, *spokes]):
            base = 4 * index
            hub_ip, spoke_ip = f"{self.prefix}.{base + 1}", f"{self.prefix}.{base + 2}"
            hub_end, spoke_end = f"wf{self.tag}h{index}", f"wf{self.tag}s{index}"
            netns = None if spoke == self.ROOT else f"wf-{self.tag}-{spoke}"
            if netns is not None:
                self._ip("netns", "add", netns)
                self._created.append(netns)
                self._ip("-n", netns, "link", "set", "lo", "up")
            self._ip("link", "add", hub_end, "type", "veth", "peer", "name", spoke_end)
            self._ip("link", "set", hub_end, "netns", self.hub)
            on_spoke = ["-n", netns] if netns is not None else []
            if netns is not None:
                self._ip("link", "set", spoke_end, "netns", netns)
            self._ip("-n", self.hub, "addr", "add", f"{hub_ip}/30", "dev", hub_end)
            self._ip("-n", self.hub, "link", "set", hub_end, "up")
            self._ip(*on_spoke, "addr", "add", f"{spoke_ip}/30", "dev", spoke_end)
            self._ip(*on_spoke, "link", "set", spoke_end, "up")
            self.links[spoke] = (netns, hub_end, hub_ip, spoke_ip)

    def netns(self, spoke: str) -> str:
        netns = self.links[spoke][0]
        assert netns is not None
        return netns

    def server_ip(self, spoke: str = ROOT) -> str:
        return self.links[spoke][2]

    def cut(self, spoke: str) -> None:
        self._ip("-n", self.hub, "link", "set", self.links[spoke][1], "down")
        self.cut_off.add(spoke)

    def heal(self, spoke: str) -> None:
        self._ip("-n", self.hub, "link", "set", self.links[spoke][1], "up")
        self.cut_off.discard(spoke)

    def heal_all(self) -> None:
        """Before stopping agents: a cut-off agent could not say goodbye to Temporal."""
        for spoke in list(self.cut_off):
            self.heal(spoke)

    def close(self) -> None:
        # Deleting a namespace deletes its links, and with them their peers.
        for netns in reversed(self._created):
            with contextlib.suppress(RuntimeError):
                self._ip("netns", "del", netns)


class NamespacedDevServer(DevServer):
    """The Temporal dev server alone in the hub namespace of a NetworkLab, reached at `ip`.

    It listens on every address of that namespace (its loopback and its veths, nothing else):
    the dev server's services call each other on 127.0.0.1, so `--ip <veth address>` alone
    would not work.
    """

    def __init__(self, netns: str, ip: str, **kw: Any) -> None:
        super().__init__(port=7233, **kw)  # the namespace is new: its ports are all free
        self.netns = netns
        self.host = ip

    def command(self) -> list[str]:
        argv = super().command()
        argv[argv.index("--ip") + 1] = "0.0.0.0"
        return ["ip", "netns", "exec", self.netns, *argv]
