"""Step log lines: shipped by the agent's link while a step writes them, stored once, followed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from server_testing import AGENT, USER, registry_of

from waterflow._masking import SecretMasker
from waterflow._proto.v1 import agent_pb2, user_pb2
from waterflow._steplog import StepLog
from waterflow.dsl import parse_workflow
from waterflow.engine.types import StepInput
from waterflow_server.logs import Logs


def batch(
    run_id: str, seqs: range, *, ended: bool = False, step: str = "s"
) -> agent_pb2.PushLogsRequest:
    lines = []
    for seq in seqs:
        line = agent_pb2.LogLine(seq=seq, stream="out", text=f"line {seq}")
        line.time.FromSeconds(1_700_000_000 + seq)
        lines.append(line)
    return agent_pb2.PushLogsRequest(
        agent_id="agent-1",
        steps=[
            agent_pb2.StepLines(
                step=agent_pb2.StepRef(
                    run_id=run_id, job="build", step=step, index=0, name=f"Step {step}", attempt=1
                ),
                lines=lines,
                ended=ended,
                total=seqs.stop - 1 if ended else 0,
            )
        ],
    )


async def read_all(stream) -> list[user_pb2.LogEntry]:
    return [entry async for entry in stream]


async def test_lines_are_stored_once_and_read_in_order(server, user, agent_stub) -> None:
    first = await agent_stub.PushLogs(batch("run-1", range(1, 4)), metadata=AGENT)
    again = await agent_stub.PushLogs(batch("run-1", range(1, 4)), metadata=AGENT)
    more = await agent_stub.PushLogs(batch("run-1", range(3, 6)), metadata=AGENT)
    assert (first.stored, again.stored, more.stored) == (3, 0, 2)
    entries = await read_all(user.GetLogs(user_pb2.GetLogsRequest(run_id="run-1"), metadata=USER))
    assert [e.text for e in entries] == [f"line {n}" for n in range(1, 6)]
    assert {(e.step.job, e.step.name, e.agent_id) for e in entries} == {
        ("build", "Step s", "agent-1")
    }
    assert entries[0].time.ToSeconds() == 1_700_000_001


async def test_filters_by_job_and_step(server, user, agent_stub) -> None:
    await agent_stub.PushLogs(batch("run-2", range(1, 3), step="a"), metadata=AGENT)
    await agent_stub.PushLogs(batch("run-2", range(1, 4), step="b"), metadata=AGENT)
    by_key = await read_all(
        user.GetLogs(user_pb2.GetLogsRequest(run_id="run-2", step="b"), metadata=USER)
    )
    by_name = await read_all(
        user.GetLogs(user_pb2.GetLogsRequest(run_id="run-2", step="Step a"), metadata=USER)
    )
    other_job = await read_all(
        user.GetLogs(user_pb2.GetLogsRequest(run_id="run-2", job="deploy"), metadata=USER)
    )
    assert (len(by_key), len(by_name), len(other_job)) == (3, 2, 0)


async def test_an_unknown_run_with_temporal_away_gives_no_lines(server, user) -> None:
    assert await read_all(user.GetLogs(user_pb2.GetLogsRequest(run_id="r"), metadata=USER)) == []


async def test_following_gets_lines_as_they_come_and_ends_with_the_run(server, agent_stub) -> None:
    """Logs.stream itself, with the run's state given: the e2e test covers Temporal's."""
    closed = asyncio.Event()

    async def is_closed(_run_id: str) -> bool:
        return closed.is_set()

    logs: Logs = server.logs
    stream = logs.stream("run-3", follow=True, closed=is_closed)
    await agent_stub.PushLogs(batch("run-3", range(1, 3)), metadata=AGENT)
    got = [await anext(stream), await anext(stream)]
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.wait([waiting], timeout=0.2)
    assert not waiting.done()  # nothing more yet: the stream waits
    await agent_stub.PushLogs(batch("run-3", range(3, 4), ended=True), metadata=AGENT)
    got.append(await asyncio.wait_for(waiting, 5))
    assert [e.seq for e in got] == [1, 2, 3]
    closed.set()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(stream), 5)  # the run ended, every step ended


async def test_following_a_run_whose_agent_died_ends_after_a_grace(server, agent_stub) -> None:
    async def is_closed(_run_id: str) -> bool:
        return True

    await agent_stub.PushLogs(batch("run-4", range(1, 3)), metadata=AGENT)  # never ended
    logs = Logs(server.store, end_grace=0.3)
    entries = [e async for e in logs.stream("run-4", follow=True, closed=is_closed)]
    assert [e.seq for e in entries] == [1, 2]


async def test_a_step_log_ships_its_lines_while_it_runs(server, user, link, tmp_path: Path) -> None:
    agent = link("a", ["q"], registry_of())
    await agent.start()
    spec = parse_workflow(
        "jobs:\n  build:\n    runs-on: q\n    steps:\n      - id: compile\n        run: make\n",
        "w.yaml",
    )
    step = spec.jobs["build"].steps[0]
    inp = StepInput(
        run_id="run-5",
        workflow="w",
        job="build",
        step=step,
        contexts={},
        env_layers=[],
        job_env={},
        job_path=[],
        workspace=str(tmp_path),
        temp_dir=str(tmp_path),
    )
    masker = SecretMasker(["hunter2"])
    log = StepLog(tmp_path / "step.log", masker, listener=agent.listener(inp, 1))
    follow = user.GetLogs(user_pb2.GetLogsRequest(run_id="run-5", follow=True), metadata=USER)
    lines = follow.__aiter__()
    log.stdout("compiling with password hunter2")
    first = await asyncio.wait_for(anext(lines), 10)
    assert (first.text, first.stream, first.seq) == ("compiling with password ***", "out", 1)
    assert (first.step.step, first.step.name, first.step.attempt) == ("compile", "Run make", 1)
    log.stderr("warning: two\nlines")
    assert [(await asyncio.wait_for(anext(lines), 10)).text for _ in range(2)] == [
        "warning: two",
        "lines",
    ]
    log.close()
    follow.cancel()
    assert (tmp_path / "step.log").read_text().count("\n") == 3  # the file has them all


async def test_the_buffer_is_bounded_and_drains_when_the_server_comes(
    server, user, link, tmp_path: Path
) -> None:
    agent = link("a", ["q"], registry_of(), buffer_lines=5)
    spec = parse_workflow("jobs:\n  j:\n    runs-on: q\n    steps:\n      - run: x\n", "w.yaml")
    inp = StepInput(
        run_id="run-6",
        workflow="w",
        job="j",
        step=spec.jobs["j"].steps[0],
        contexts={},
        env_layers=[],
        job_env={},
        job_path=[],
        workspace=str(tmp_path),
        temp_dir=str(tmp_path),
    )
    log = StepLog(None, SecretMasker(), listener=agent.listener(inp, 2))
    for n in range(1, 9):  # the link is not started: as if the server were away
        log.stdout(f"line {n}")
    log.close()
    assert agent.dropped == 4  # 8 lines and the end in a buffer of 5
    await agent.start()
    follow = user.GetLogs(user_pb2.GetLogsRequest(run_id="run-6", follow=True), metadata=USER)
    got = [await asyncio.wait_for(anext(follow.__aiter__()), 10) for _ in range(4)]
    follow.cancel()
    assert [e.text for e in got] == ["line 5", "line 6", "line 7", "line 8"]
    assert got[0].step.attempt == 2


async def test_a_listener_that_fails_never_fails_the_step(tmp_path: Path) -> None:
    class Broken:
        def line(self, number: int, stamp: float, stream: str, text: str) -> None:
            raise RuntimeError("boom")

        def closed(self, total: int) -> None:
            raise AssertionError("dropped after the first failure")

    log = StepLog(tmp_path / "s.log", SecretMasker(), listener=Broken())
    log.stdout("one")
    log.stdout("two")
    log.close()
    assert log.lines_written == 2
    assert (tmp_path / "s.log").read_text().count("\n") == 2


async def test_logs_of_a_run_on_the_command_line(server, agent_stub) -> None:
    from server_testing import USER_TOKEN, cli_env, run_cli

    await agent_stub.PushLogs(batch("run-7", range(1, 3)), metadata=AGENT)
    env = cli_env(WATERFLOW_SERVER_ADDRESS=server.address, WATERFLOW_SERVER_TOKEN=USER_TOKEN)
    code, out, err = await run_cli("logs", "run-7", env=env)
    assert (code, err) == (0, "")
    assert out == "build | Step s | line 1\nbuild | Step s | line 2\n"
    code, out, _ = await run_cli("logs", "run-7", "--json", env=env)
    assert [line.count('"text"') for line in out.splitlines()] == [1, 1]
    code, out, err = await run_cli("logs", "nothing-here", env=env)
    assert (code, out, err) == (0, "", "no log lines for run nothing-here\n")


async def test_push_needs_the_agent_token(server, agent_stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await agent_stub.PushLogs(batch("run-8", range(1, 2)), metadata=USER)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
