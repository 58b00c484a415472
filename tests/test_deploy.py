"""What an operator deploys (deploy/): each file parses and points at what exists.

What these tests prove, and what they do not:
- deploy/Dockerfile: its `base` stage (the non-root user and the plugin, log and work
  directories) is built on the local Docker engine from a locally built base image (no image can
  be pulled here) and checked from inside a container. The later stages need a Python base image
  and the package index, which are not here: for them the tests check the instructions (stages,
  user, volumes, entry points, every `WATERFLOW_*` setting a real configuration key with a valid
  value, every package folder named existing), not a build.
- deploy/docker-compose.yml: parsed; services, images, build targets, volumes, queues and
  addresses agree with each other and with the Dockerfile, and each service's environment is
  a valid configuration of the agent or the server. `docker compose config` runs too where the
  compose plugin is installed (it is not on this project's machines).
- deploy/systemd: `systemd-analyze verify` on the units (where systemd-analyze exists, with
  the install path replaced by this checkout's virtualenv), and their settings checked against
  the agent's configuration (keys, shutdown timeout).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from waterflow._process import GRACE_PERIOD
from waterflow.agent.config import ignored_environment, load_config, validate_for_run

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"
SYSTEMD = DEPLOY / "systemd"
BIN = Path(sys.executable).parent
DOCKER_ENV_FILE = Path("/tmp/waterflow-docker/env")  # written by .ci/docker-up
LOCAL_BASE = "waterflow-busybox:latest"  # built by .ci/docker-up from the host's busybox
UID = 10001
AGENT_TOKEN = "agent-token-0123456789abcdef"
USER_TOKEN = "user-token-0123456789abcdef"


def _needs(tool: str, problem: str | None, *, in_ci: bool) -> None:
    """Skip (printing why) when `problem`; under CI=true fail instead when `in_ci`."""
    if problem is None:
        return
    if in_ci and os.environ.get("CI") == "true":
        pytest.fail(f"{tool} must be available in CI: {problem}")
    print(f"skipped: {problem}")
    pytest.skip(problem)


# --- the Dockerfile ----------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _stages() -> dict[str, list[tuple[str, str]]]:
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for word, args in _instructions():
        if word == "FROM":
            name = args.split(" AS ")[-1].strip() if " AS " in args else args
            current = stages.setdefault(name, [])
        current.append((word, args))
    return stages


def _env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in instructions:
        if word == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", args)))
    return env


def _args(word: str, instructions: list[tuple[str, str]]) -> list[str]:
    return [a for w, a in instructions if w == word]


def _final(stage: str) -> list[tuple[str, str]]:
    """A target's instructions, its parents' first (FROM <parent> chains)."""
    stages = _stages()
    chain: list[list[tuple[str, str]]] = []
    name: str | None = stage
    while name in stages:
        chain.insert(0, stages[name])
        parent = stages[name][0][1].split(" AS ")[0].strip()
        name = parent if parent in stages else None
    return [i for part in chain for i in part]


def test_dockerfile_targets_run_waterflow_as_a_non_root_user() -> None:
    stages = _stages()
    assert {"base", "wheels", "runtime", "agent", "server"} <= set(stages)
    for target, program in (("agent", "waterflow-agent"), ("server", "waterflow")):
        instructions = _final(target)
        users = _args("USER", stages[target])
        assert users == ["waterflow"], f"{target}: USER {users}"
        entry = _args("ENTRYPOINT", stages[target])[-1]
        assert entry.startswith('["tini", "--", "' + program + '"'), entry
        assert _args("STOPSIGNAL", stages[target]) == ["SIGTERM"]
        assert _env(instructions)["HOME"] == "/var/lib/waterflow"
    # The user is created with the uid the base stage gives the directories.
    base = " ".join(_args("RUN", stages["base"]))
    assert f"waterflow:x:{UID}:{UID}:" in base and f"chown -R {UID}:{UID}" in base


def test_dockerfile_agent_settings_are_valid_agent_configuration() -> None:
    agent = _final("agent")
    env = _env(agent)
    settings = {k: v for k, v in env.items() if k.startswith("WATERFLOW_")}
    assert ignored_environment(settings) == []  # every one is a configuration key
    config = load_config(None, environ={**settings, "WATERFLOW_AGENT_TASK_QUEUES": "q"})
    validate_for_run(config)
    assert str(config.agent.plugin_dir) == "/opt/waterflow/plugins"  # as in the seeds
    assert config.log.output_path.is_relative_to("/var/log/waterflow")
    volumes = " ".join(_args("VOLUME", _stages()["agent"]))
    assert '"/var/log/waterflow"' in volumes and '"/var/lib/waterflow/work"' in volumes
    assert str(config.agent.work_dir) == "/var/lib/waterflow/work"


def test_dockerfile_server_settings_are_valid_server_configuration() -> None:
    from waterflow_server.config import CONFIG_KEYS, env_var_for
    from waterflow_server.config import load_config as load_server_config

    env = _env(_final("server"))
    settings = {k: v for k, v in env.items() if k.startswith("WATERFLOW_")}
    known = {env_var_for(k) for k in CONFIG_KEYS}
    assert set(settings) <= known, set(settings) - known
    tokens = {"WATERFLOW_AUTH_AGENT_TOKENS": AGENT_TOKEN, "WATERFLOW_AUTH_USER_TOKENS": USER_TOKEN}
    config = load_server_config(None, environ={**settings, **tokens})
    port = config.listen.address.rpartition(":")[2]
    assert _args("EXPOSE", _stages()["server"]) == [port]
    assert str(config.database.path).startswith("/var/lib/waterflow/")
    assert _args("VOLUME", _stages()["server"]) == ['["/var/lib/waterflow"]']


def test_dockerfile_builds_the_packages_that_exist() -> None:
    wheels = _stages()["wheels"]
    assert _args("COPY", wheels) == ["packages /src/packages"]
    node_packages = next(a for a in _args("ARG", wheels) if a.startswith("NODE_PACKAGES="))
    named = node_packages.split("=", 1)[1].strip('"').split()
    named += ["waterflow-agent-core", "waterflow-server"]
    for folder in named:
        assert (ROOT / "packages" / folder / "pyproject.toml").is_file(), folder
    # The build context is the repository root; the ignore file keeps packages/ in it.
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert "**" in ignore and "!packages/" in ignore


def _docker() -> tuple[str, str]:
    """The docker CLI and DOCKER_HOST of a reachable engine that has the local base image."""
    docker = shutil.which("docker")
    host = os.environ.get("DOCKER_HOST")
    if host is None and DOCKER_ENV_FILE.is_file():
        for line in DOCKER_ENV_FILE.read_text().splitlines():
            if line.startswith("export DOCKER_HOST="):
                host = line.split("=", 1)[1].strip().strip("'\"")
    problem = None
    if docker is None:
        problem = "no docker CLI on PATH"
    elif host is None:
        problem = f"no DOCKER_HOST and no {DOCKER_ENV_FILE} (run .ci/docker-up)"
    else:
        done = subprocess.run(
            [docker, "--host", host, "image", "inspect", LOCAL_BASE],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or ["?"])[-1]
            problem = f"the Docker engine at {host} has no {LOCAL_BASE}: {why}"
    _needs("the Docker engine", problem, in_ci=True)
    assert docker is not None and host is not None
    return docker, host


def test_dockerfile_base_stage_builds_on_the_local_engine(tmp_path: Path) -> None:
    docker, host = _docker()
    tag = f"waterflow-deploy-test:{uuid.uuid4().hex[:8]}"
    # The base stage copies nothing: an empty build context is enough.
    context = tmp_path / "context"
    context.mkdir()

    def run(*argv: str, timeout: float = 180) -> str:
        done = subprocess.run(
            [docker, "--host", host, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"docker {argv[0]}: {done.stderr.strip()[-2000:]}"
        return done.stdout

    run(
        "build",
        "--quiet",
        "--file",
        str(DOCKERFILE),
        "--target",
        "base",
        "--build-arg",
        f"PYTHON_IMAGE={LOCAL_BASE}",
        "--tag",
        tag,
        str(context),
    )
    try:
        out = run(
            "run",
            "--rm",
            "--network",
            "none",
            "--user",
            "waterflow",
            tag,
            "sh",
            "-c",
            "id -u; id -g; echo $HOME; "
            "for d in /opt/waterflow/plugins /var/log/waterflow /var/lib/waterflow/work; do "
            "touch $d/probe && echo writable $d; done",
        )
    finally:
        run("rmi", "--force", tag)
    lines = out.split()
    assert lines[:3] == [str(UID), str(UID), "/var/lib/waterflow"]
    assert out.count("writable") == 3, out


# --- docker-compose.yml ---------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")


def _interpolate(value: Any, given: dict[str, str]) -> Any:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?message}, with `given` as the environment."""
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in given:
                return given[name]
            assert "?" not in match.group(0), f"{name} is required: {default}"
            return default or ""

        return _VARIABLE.sub(sub, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, given) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, given) for v in value]
    return value


def _compose() -> dict[str, Any]:
    yaml = YAML(typ="safe")
    data = yaml.load(COMPOSE.read_text())
    plain = _interpolate(
        data, {"WATERFLOW_AGENT_TOKEN": AGENT_TOKEN, "WATERFLOW_USER_TOKEN": USER_TOKEN}
    )
    assert isinstance(plain, dict)
    return plain


def _agents(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: s
        for name, s in services.items()
        if str(s.get("image", "")).startswith("waterflow/agent")
    }


def _duration(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text))


def test_compose_runs_temporal_on_postgresql() -> None:
    services = _compose()["services"]
    database = next(n for n, s in services.items() if str(s["image"]).startswith("postgres:"))
    temporal = services["temporal"]
    assert str(temporal["image"]).startswith("temporalio/auto-setup:")
    assert temporal["environment"]["DB"].startswith("postgres")
    assert temporal["environment"]["POSTGRES_SEEDS"] == database
    assert (
        temporal["environment"]["POSTGRES_PWD"]
        == services[database]["environment"]["POSTGRES_PASSWORD"]
    )
    assert temporal["depends_on"][database]["condition"] == "service_healthy"
    assert "healthcheck" in services[database]


def test_compose_builds_both_images_from_the_dockerfile() -> None:
    services = _compose()["services"]
    stages = _stages()
    built = {}
    for name, service in services.items():
        build = service.get("build")
        if build is None:
            continue
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        assert build["target"] in stages, f"{name}: no stage {build['target']}"
        built[str(service["image"]).split(":")[0]] = build["target"]
    assert built == {"waterflow/agent": "agent", "waterflow/server": "server"}


def test_compose_agents_are_valid_agents_on_different_queues() -> None:
    compose = _compose()
    services = compose["services"]
    agents = _agents(services)
    assert len(agents) == 2
    image_env = _env(_final("agent"))
    server_port = _env(_final("server"))["WATERFLOW_LISTEN_ADDRESS"].rpartition(":")[2]
    queues, ids = [], []
    for name, service in agents.items():
        env = {k: str(v) for k, v in service["environment"].items()}
        settings = {k: v for k, v in env.items() if k.startswith("WATERFLOW_")}
        assert ignored_environment(settings) == [], name
        config = load_config(None, environ={**image_env, **settings})
        validate_for_run(config)
        queues.append(tuple(config.agent.task_queues))
        ids.append(config.agent.id)
        host, _, port = config.temporal.address.rpartition(":")
        assert host in services and port == "7233", config.temporal.address
        assert config.server.address == f"waterflow-server:{server_port}"
        assert config.server.token == AGENT_TOKEN
        # docker stop waits longer than the agent lets its steps finish.
        grace = _duration(str(service["stop_grace_period"]))
        assert grace >= config.agent.shutdown_timeout.total_seconds() + GRACE_PERIOD
        mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in service["volumes"]}
        assert str(config.agent.plugin_dir) in mounts
        assert {"/var/log/waterflow", str(config.agent.work_dir)} <= set(mounts)
        for source in mounts.values():
            if not source.startswith(("/", ".")):
                assert source in compose["volumes"], f"{name}: volume {source} not declared"
            elif source.startswith("."):
                assert (COMPOSE.parent / source).is_dir(), source
    assert len(set(queues)) == 2 and len(set(ids)) == 2


def test_compose_server_is_a_valid_server() -> None:
    from waterflow_server.config import CONFIG_KEYS, env_var_for
    from waterflow_server.config import load_config as load_server_config

    compose = _compose()
    service = compose["services"]["waterflow-server"]
    env = {k: str(v) for k, v in service["environment"].items()}
    known = {env_var_for(k) for k in CONFIG_KEYS}
    assert set(env) <= known, set(env) - known
    config = load_server_config(None, environ={**_env(_final("server")), **env})
    assert list(config.auth.agent_tokens) == [AGENT_TOKEN]
    assert config.temporal.address.startswith("temporal:")
    volume = str(service["volumes"][0]).split(":")
    assert volume[0] in compose["volumes"]
    assert str(config.database.path).startswith(volume[1])


def test_compose_config_accepts_the_file(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    problem = None
    if docker is None:
        problem = "no docker CLI on PATH"
    elif (
        subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode
        != 0
    ):
        problem = "the docker compose plugin is not installed (only the file is checked)"
    _needs("docker compose", problem, in_ci=False)
    assert docker is not None
    env = {**os.environ, "WATERFLOW_AGENT_TOKEN": AGENT_TOKEN, "WATERFLOW_USER_TOKEN": USER_TOKEN}
    done = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


# --- systemd units ------------------------------------------------------------------------------


def _unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Sections of a unit file, each a list of (key, value) in order (keys may repeat)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def _one(entries: list[tuple[str, str]], key: str) -> str:
    values = [v for k, v in entries if k == key]
    assert len(values) == 1, f"{key}: {values}"
    return values[0]


def _unit_environment(entries: list[tuple[str, str]], specifiers: dict[str, str]) -> dict[str, str]:
    env = {}
    for key, value in entries:
        if key == "Environment":
            name, _, val = value.partition("=")
            for spec, real in specifiers.items():
                val = val.replace(spec, real)
            env[name] = val
    return env


def test_agent_unit_runs_the_agent_with_its_config_and_stops_it_gracefully(
    tmp_path: Path,
) -> None:
    unit = _unit(SYSTEMD / "waterflow-agent@.service")
    service = unit["Service"]
    program, *argv = _one(service, "ExecStart").split()
    assert Path(program).name == "waterflow-agent" and (BIN / "waterflow-agent").exists()
    assert argv[:2] == ["run", "--config"]
    config_file = argv[2]
    assert config_file == "/etc/waterflow/agent-%i.yaml"
    assert _one(service, "User") not in ("root", "0")
    assert _one(service, "KillMode") == "mixed"  # SIGTERM to the agent, not to its steps
    assert _one(service, "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert "2" in _one(service, "SuccessExitStatus").split()
    # The example configuration, as this unit would run it for instance `build` on host `h1`.
    env = _unit_environment(service, {"%i": "build", "%H": "h1"})
    assert ignored_environment(env) == []
    config = load_config(SYSTEMD / "agent.yaml", environ=env)
    validate_for_run(config)
    assert config.agent.id == "h1-build"
    assert str(config.agent.work_dir) == "/var/lib/waterflow/build/work"
    stop = _duration(_one(service, "TimeoutStopSec"))
    assert stop >= config.agent.shutdown_timeout.total_seconds() + GRACE_PERIOD


def test_server_unit_runs_the_server() -> None:
    from waterflow_server.config import CONFIG_KEYS, env_var_for

    service = _unit(SYSTEMD / "waterflow-server.service")["Service"]
    program, *argv = _one(service, "ExecStart").split()
    assert Path(program).name == "waterflow" and argv == ["server"]
    assert (BIN / "waterflow").exists()
    env = _unit_environment(service, {})
    assert set(env) <= {env_var_for(k) for k in CONFIG_KEYS}
    assert _one(service, "User") not in ("root", "0")


def _verify_copies(tmp_path: Path) -> Iterator[Path]:
    """The units with the install path pointing at this checkout's virtualenv; the template
    instantiated as `ci`."""
    for unit in sorted(SYSTEMD.glob("*.service")):
        text = unit.read_text().replace("/opt/waterflow/venv/bin/", f"{BIN}/")
        name = unit.name.replace("@.service", "@ci.service")
        copy = tmp_path / name
        copy.write_text(text)
        yield copy


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    _needs("systemd-analyze", None if analyze else "no systemd-analyze on PATH", in_ci=False)
    assert analyze is not None
    for copy in _verify_copies(tmp_path):
        done = subprocess.run(
            [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
        )
        # Users and groups are those of the target host; everything else must be clean.
        problems = [
            line
            for line in (done.stdout + done.stderr).splitlines()
            if line.strip() and "user" not in line.lower() and "group" not in line.lower()
        ]
        assert done.returncode == 0 and not problems, f"{copy.name}: {problems or done.stderr}"
