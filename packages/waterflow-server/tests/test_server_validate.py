"""Validation against what each queue offers, the catalog table and the JSON Schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML
from server_testing import DOCKER_BUILD, SHELL, USER, USER_TOKEN, cli_env, registry_of, run_cli

from waterflow._proto.v1 import user_pb2
from waterflow_server._schema import build_schema

REPO = Path(__file__).resolve().parents[3]

WORKFLOW = """\
name: fleet
jobs:
  build:
    runs-on: linux-amd64
    steps:
      - uses: docker/build
        with:
          tag: app:1
          platform: linux/s390x
      - run: echo built
  train:
    runs-on: gpu-a100
    steps:
      - uses: docker/build
        with: {tag: app:2}
      - uses: slack/notify
  later:
    runs-on: arm64
    steps:
      - run: echo
"""


@pytest.fixture
async def fleet(server, link):
    """Two agents on two queues: docker/build only on linux-amd64."""
    cpu = link("cpu-1", ["linux-amd64"], registry_of(SHELL, DOCKER_BUILD))
    gpu = link("gpu-1", ["gpu-a100"], registry_of(SHELL))
    for agent in (cpu, gpu):
        await agent.start()
        await agent.wait_reported(1, timeout=10)
    return server


async def test_each_job_is_checked_against_its_queue(fleet, user) -> None:
    response = await user.ValidateWorkflow(
        user_pb2.ValidateWorkflowRequest(file="fleet.yaml", text=WORKFLOW), metadata=USER
    )
    assert [f"{p.file}:{p.line}:{p.col}: {p.message}" for p in response.problems] == [
        "fleet.yaml:9:21: step 1: parameter 'platform' of 'docker/build': 'linux/s390x' is "
        "not one of 'linux/amd64', 'linux/arm64'",
        "fleet.yaml:14:15: step 1: node docker/build is not offered on queue gpu-a100; "
        "it is on linux-amd64",
        "fleet.yaml:16:15: step 2: unknown node 'slack/notify'; no live agent on any queue "
        "offers it",
        "fleet.yaml:18:14: job 'later': no live agent serves queue arm64; queues served: "
        "gpu-a100, linux-amd64",
    ]


async def test_a_valid_file_and_a_broken_one(fleet, user) -> None:
    good = "jobs:\n  a:\n    runs-on: gpu-a100\n    steps:\n      - run: echo hi\n"
    response = await user.ValidateWorkflow(
        user_pb2.ValidateWorkflowRequest(file="good.yaml", text=good), metadata=USER
    )
    assert (list(response.problems), response.jobs, response.steps) == ([], 1, 1)
    broken = "jobs:\n  a:\n    runs-on: gpu-a100\n    stepz: []\n"
    response = await user.ValidateWorkflow(
        user_pb2.ValidateWorkflowRequest(file="bad.yaml", text=broken), metadata=USER
    )
    assert (response.problems[0].line, response.problems[0].col) == (4, 5)
    assert "stepz" in response.problems[0].message


async def test_validate_on_the_command_line(fleet, tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(WORKFLOW)
    (tmp_path / "ok.yaml").write_text(
        "jobs:\n  a:\n    runs-on: linux-amd64\n    steps:\n"
        "      - uses: docker/build\n        with: {tag: x}\n"
    )
    env = cli_env(WATERFLOW_SERVER_ADDRESS=fleet.address, WATERFLOW_SERVER_TOKEN=USER_TOKEN)
    code, out, err = await run_cli("validate", "fleet.yaml", "ok.yaml", env=env, cwd=tmp_path)
    assert code == 1
    assert out == "ok.yaml: ok (1 job, 1 step)\n"
    assert err.splitlines()[1] == (
        "fleet.yaml:14:15: step 1: node docker/build is not offered on queue gpu-a100; "
        "it is on linux-amd64"
    )
    assert len(err.splitlines()) == 4
    code, out, _ = await run_cli("validate", "ok.yaml", env=env, cwd=tmp_path)
    assert (code, out) == (0, "ok.yaml: ok (1 job, 1 step)\n")
    # The language's own problems need no server; a missing file is one line too.
    code, _, err = await run_cli("validate", "missing.yaml", env=env, cwd=tmp_path)
    assert (code, err) == (1, "missing.yaml: cannot read: No such file or directory\n")


async def test_validate_with_the_server_away(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text("jobs:\n  a:\n    runs-on: q\n    steps:\n      - run: x\n")
    env = cli_env(WATERFLOW_SERVER_ADDRESS="127.0.0.1:1", WATERFLOW_SERVER_TOKEN=USER_TOKEN)
    code, _, err = await run_cli("validate", "ok.yaml", env=env, cwd=tmp_path)
    assert code == 1
    assert err.startswith("error: cannot reach the Waterflow server at 127.0.0.1:1: ")
    assert len(err.splitlines()) == 1


_SHELL_PARAMS = "run*, shell, working-directory"
_DOCKER = "context, tag*, push, platform"


async def test_nodes_table(fleet) -> None:
    env = cli_env(WATERFLOW_SERVER_TOKEN=USER_TOKEN)
    code, out, err = await run_cli("nodes", "--server", fleet.address, env=env)
    assert (code, err) == (0, "")
    assert [re.split(r"\s{2,}", line) for line in out.splitlines()] == [
        ["QUEUE", "NODE", "VERSION", "AGENTS", "PROVIDED BY", "PARAMETERS"],
        ["gpu-a100", "shell/run", "0.1.0", "1/1", "waterflow-nodes-test 1.2.3", _SHELL_PARAMS],
        ["linux-amd64", "docker/build", "0.2.0", "1/1", "waterflow-nodes-test 1.2.3", _DOCKER],
        ["linux-amd64", "shell/run", "0.1.0", "1/1", "waterflow-nodes-test 1.2.3", _SHELL_PARAMS],
    ]
    header = out.splitlines()[0]
    assert header.index("NODE") == out.splitlines()[2].index("docker/build")  # aligned
    code, out, _ = await run_cli("nodes", "--server", fleet.address, "--queue", "gpu-a100", env=env)
    assert [line.split()[0] for line in out.splitlines()] == ["QUEUE", "gpu-a100"]
    code, out, _ = await run_cli("nodes", "--server", fleet.address, "--queue", "nope", env=env)
    assert (code, out) == (1, f"no live agent serves queue nope on {fleet.address}\n")
    code, out, _ = await run_cli("nodes", "--server", fleet.address, "--json", env=env)
    data = json.loads(out)
    assert [q["queue"] for q in data] == ["gpu-a100", "linux-amd64"]
    code, _, err = await run_cli("nodes", "--queue", "gpu-a100", env=cli_env())
    assert (code, err) == (1, "error: --queue needs --server: queues are known to the server\n")


async def test_nodes_installed_here() -> None:
    code, out, _ = await run_cli("nodes", env=cli_env(WATERFLOW_LOAD_PLUGINS="shell"))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NODE", "VERSION", "PROVIDED", "BY", "PARAMETERS"]
    assert lines[1].startswith("shell/run")


# --- the JSON Schema ----------------------------------------------------------------------------


def _yaml(text: str) -> object:
    return YAML(typ="safe").load(text)


def test_the_schema_accepts_the_example_and_checks_node_parameters() -> None:
    schema = build_schema({"shell/run": SHELL, "docker/build": DOCKER_BUILD})
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    example = _yaml((REPO / "examples" / "hello.yaml").read_text())
    assert list(validator.iter_errors(example)) == []
    bad = _yaml(
        "jobs:\n  a:\n    runs-on: q\n    steps:\n      - uses: docker/build\n"
        "        with: {push: maybe, platform: linux/s390x, tagg: x}\n"
    )
    messages = sorted(e.message for e in validator.iter_errors(bad))
    assert any("'tag' is a required property" in m for m in messages), messages
    assert any("'tagg'" in m for m in messages), messages
    expression = _yaml(
        "jobs:\n  a:\n    runs-on: q\n    steps:\n      - uses: docker/build\n"
        "        with: {tag: x, push: '${{ inputs.push }}'}\n"
    )
    assert list(validator.iter_errors(expression)) == []
    node = schema["$defs"]["nodes"]["docker/build"]
    assert node["properties"]["platform"]["anyOf"][0]["enum"] == ["linux/amd64", "linux/arm64"]
    assert node["properties"]["context"]["default"] == "."


async def test_schema_from_the_fleet(fleet, tmp_path: Path) -> None:
    env = cli_env(WATERFLOW_SERVER_TOKEN=USER_TOKEN)
    target = tmp_path / "workflow.schema.json"
    code, out, err = await run_cli("schema", "--server", fleet.address, "-o", str(target), env=env)
    assert (code, out) == (0, "")
    assert err == f"wrote {target} (2 nodes)\n"
    schema = json.loads(target.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert sorted(schema["$defs"]["nodes"]) == ["docker/build", "shell/run"]
    validator = jsonschema.Draft202012Validator(schema)
    wrong_queue = _yaml("jobs:\n  a:\n    runs-on: arm64\n    steps:\n      - run: x\n")
    assert list(validator.iter_errors(wrong_queue))
    right_queue = _yaml("jobs:\n  a:\n    runs-on: gpu-a100\n    steps:\n      - run: x\n")
    assert list(validator.iter_errors(right_queue)) == []


async def test_schema_of_the_nodes_installed_here(tmp_path: Path) -> None:
    code, out, _ = await run_cli("schema", env=cli_env(WATERFLOW_LOAD_PLUGINS="shell"))
    assert code == 0
    schema = json.loads(out)
    assert list(schema["$defs"]["nodes"]) == ["shell/run"]
    code, _, err = await run_cli(
        "schema", "-o", str(tmp_path / "no" / "such" / "dir.json"), env=cli_env()
    )
    assert (code, err) == (
        1,
        f"error: cannot write {tmp_path / 'no' / 'such' / 'dir.json'}: No such file or directory\n",
    )
