"""The agent configuration: defaults < YAML file < WATERFLOW_* variables < flags, and its errors."""

from __future__ import annotations

import json
import os
import re
import socket
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from waterflow.agent.config import (
    CONFIG_KEYS,
    ConfigError,
    _default_text,
    _format_duration,
    _parse_duration,
    env_var_for,
    ignored_environment,
    load_config,
    redacted,
    validate_for_run,
)

REPO = Path(__file__).resolve().parents[3]
DOCS = REPO / "docs" / "configuration.md"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    """A clean environment: only HOME, so defaults do not depend on the machine."""
    return {"HOME": str(home)}


def write(tmp_path: Path, text: str, name: str = "agent.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def error_of(
    path: Path | None, env: dict[str, str], overrides: dict[str, Any] | None = None
) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=env, overrides=overrides or {})
    message = str(info.value)
    assert "\n" not in message
    return message


# --- defaults and precedence -------------------------------------------------------------------


def test_defaults(env: dict[str, str], home: Path) -> None:
    config = load_config(None, environ=env)
    t, a, log = config.temporal, config.agent, config.log
    assert (t.address, t.namespace, t.max_retries) == ("localhost:7233", "default", 10)
    assert (t.connection_timeout, t.retry_interval) == (timedelta(seconds=10), timedelta(seconds=5))
    assert not t.tls.enabled
    assert (t.tls.ca_cert, t.tls.client_cert, t.tls.client_key, t.tls.server_name) == (None,) * 4
    assert a.id == f"{socket.gethostname()}-{os.getpid()}"
    assert a.task_queues == ()
    assert a.plugin_dir == Path("/opt/waterflow/plugins")
    assert not a.auto_reload_plugins
    assert a.shutdown_timeout == timedelta(seconds=30)
    assert (a.max_concurrent_activities, a.max_concurrent_workflow_tasks) == (100, 100)
    assert a.work_dir == home / ".local/share/waterflow/work"
    assert a.secrets_dir is None
    assert a.step_heartbeat_interval == timedelta(seconds=5)
    assert (log.level, log.format) == ("info", "json")
    assert log.output_path == home / ".local/share/waterflow/logs"
    assert config.server.address is None


def test_work_dir_default_follows_xdg_data_home(env: dict[str, str], tmp_path: Path) -> None:
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    config = load_config(None, environ=env)
    assert config.agent.work_dir == tmp_path / "data/waterflow/work"
    assert config.log.output_path == tmp_path / "data/waterflow/logs"


def test_output_path_default_moves_with_work_dir(env: dict[str, str], tmp_path: Path) -> None:
    env["WATERFLOW_AGENT_WORK_DIR"] = str(tmp_path / "srv/work")
    assert load_config(None, environ=env).log.output_path == tmp_path / "srv/logs"
    env["WATERFLOW_LOG_OUTPUT_PATH"] = str(tmp_path / "steps")
    assert load_config(None, environ=env).log.output_path == tmp_path / "steps"


def test_every_key_from_the_file(tmp_path: Path, env: dict[str, str]) -> None:
    path = write(
        tmp_path,
        """
        temporal:
          address: temporal.example.com:7233
          namespace: prod
          connection_timeout: 3s
          max_retries: 0
          retry_interval: 250ms
          tls:
            enabled: true
            ca_cert: certs/ca.pem
            client_cert: /etc/pki/agent.pem
            client_key: ~/agent-key.pem
            server_name: temporal.internal
        agent:
          id: build-01
          task_queues: [linux-amd64, gpu-a100]
          plugin_dir: plugins
          auto_reload_plugins: yes
          shutdown_timeout: 1m30s
          max_concurrent_activities: 4
          max_concurrent_workflow_tasks: 8
          work_dir: /var/lib/waterflow/work
          secrets_dir: /etc/waterflow/secrets
          step_heartbeat_interval: 2s
        log:
          level: WARN
          format: console
          output_path: /var/log/waterflow
        server:
          address: waterflow.example.com:9090
          token: agent-secret
          tls: true
          tls_ca: certs/server-ca.pem
        """,
    )
    config = load_config(path, environ=env)
    t, a = config.temporal, config.agent
    assert (t.address, t.namespace, t.max_retries) == ("temporal.example.com:7233", "prod", 0)
    assert t.connection_timeout == timedelta(seconds=3)
    assert t.retry_interval == timedelta(milliseconds=250)
    assert t.tls.enabled
    assert t.tls.ca_cert == tmp_path / "certs/ca.pem"  # relative to the file
    assert t.tls.client_cert == Path("/etc/pki/agent.pem")
    assert t.tls.client_key == Path("~/agent-key.pem").expanduser()
    assert t.tls.server_name == "temporal.internal"
    assert a.id == "build-01"
    assert a.task_queues == ("linux-amd64", "gpu-a100")
    assert a.plugin_dir == tmp_path / "plugins"
    assert a.auto_reload_plugins
    assert a.shutdown_timeout == timedelta(seconds=90)
    assert (a.max_concurrent_activities, a.max_concurrent_workflow_tasks) == (4, 8)
    assert a.work_dir == Path("/var/lib/waterflow/work")
    assert a.secrets_dir == Path("/etc/waterflow/secrets")
    assert a.step_heartbeat_interval == timedelta(seconds=2)
    assert (config.log.level, config.log.format) == ("warning", "console")
    assert config.log.output_path == Path("/var/log/waterflow")
    assert config.server.address == "waterflow.example.com:9090"
    assert (config.server.token, config.server.tls) == ("agent-secret", True)
    assert config.server.tls_ca == tmp_path / "certs/server-ca.pem"


def test_file_then_environment_then_overrides(tmp_path: Path, env: dict[str, str]) -> None:
    path = write(
        tmp_path,
        """
        temporal:
          address: from-file:7233
          namespace: from-file
        agent:
          task_queues: [from-file]
        log:
          level: error
        """,
    )
    env.update(
        {
            "WATERFLOW_TEMPORAL_ADDRESS": "from-env:7233",
            "WATERFLOW_AGENT_TASK_QUEUES": "a, b,a",
            "WATERFLOW_LOG_LEVEL": "debug",
            "WATERFLOW_TEMPORAL_TLS_ENABLED": "true",
        }
    )
    config = load_config(path, environ=env)
    assert config.temporal.namespace == "from-file"
    assert config.temporal.address == "from-env:7233"
    assert config.agent.task_queues == ("a", "b")
    assert config.log.level == "debug"
    assert config.temporal.tls.enabled

    overrides = {"agent.task_queues": ["x", "y"], "log.level": "warn", "temporal.address": None}
    config = load_config(path, environ=env, overrides=overrides)
    assert config.agent.task_queues == ("x", "y")
    assert config.log.level == "warning"
    assert config.temporal.address == "from-env:7233"  # None: the flag was not given


def test_empty_values_mean_not_set(tmp_path: Path, env: dict[str, str]) -> None:
    path = write(
        tmp_path,
        """
        temporal:
          namespace:
        agent:
          task_queues: [q]
        log:
        server:
          address: null
        """,
    )
    env["WATERFLOW_AGENT_TASK_QUEUES"] = ""
    config = load_config(path, environ=env)
    assert config.temporal.namespace == "default"
    assert config.agent.task_queues == ("q",)
    assert config.server.address is None
    empty = write(tmp_path, "# nothing\n", "empty.yaml")
    assert load_config(empty, environ=env) == load_config(None, environ=env)


@pytest.mark.parametrize("text", ["true", "TRUE", "yes", "on", "1"])
def test_true_from_the_environment(env: dict[str, str], text: str) -> None:
    env["WATERFLOW_AGENT_AUTO_RELOAD_PLUGINS"] = text
    assert load_config(None, environ=env).agent.auto_reload_plugins


@pytest.mark.parametrize("text", ["false", "False", "no", "off", "0"])
def test_false_from_the_environment(env: dict[str, str], text: str) -> None:
    env["WATERFLOW_TEMPORAL_TLS_ENABLED"] = text
    assert not load_config(None, environ=env).temporal.tls.enabled


def test_every_key_has_a_variable(env: dict[str, str], tmp_path: Path) -> None:
    values = {
        "temporal.address": ("h:1", "h:1"),
        "temporal.namespace": ("ns", "ns"),
        "temporal.connection_timeout": ("2s", timedelta(seconds=2)),
        "temporal.max_retries": ("3", 3),
        "temporal.retry_interval": ("1m", timedelta(minutes=1)),
        "temporal.tls.enabled": ("on", True),
        "temporal.tls.ca_cert": ("/ca", Path("/ca")),
        "temporal.tls.client_cert": ("/c", Path("/c")),
        "temporal.tls.client_key": ("/k", Path("/k")),
        "temporal.tls.server_name": ("sn", "sn"),
        "agent.id": ("me", "me"),
        "agent.task_queues": ("q1,q2", ("q1", "q2")),
        "agent.plugin_dir": ("/p", Path("/p")),
        "agent.auto_reload_plugins": ("yes", True),
        "agent.shutdown_timeout": ("1h", timedelta(hours=1)),
        "agent.max_concurrent_activities": ("7", 7),
        "agent.max_concurrent_workflow_tasks": ("9", 9),
        "agent.work_dir": ("/w", Path("/w")),
        "agent.secrets_dir": ("/s", Path("/s")),
        "agent.step_heartbeat_interval": ("750ms", timedelta(milliseconds=750)),
        "agent.workflow_sandbox": ("true", True),
        "log.level": ("ERROR", "error"),
        "log.format": ("console", "console"),
        "log.output_path": ("/l", Path("/l")),
        "server.address": ("srv:9090", "srv:9090"),
        "server.token": ("t0ken", "t0ken"),
        "server.tls": ("true", True),
        "server.tls_ca": ("/ca.pem", Path("/ca.pem")),
    }
    assert set(values) == set(CONFIG_KEYS)
    env.update({env_var_for(key): text for key, (text, _) in values.items()})
    config = load_config(None, environ=env)
    for key, (_, expected) in values.items():
        value: Any = config
        for part in key.split("."):
            value = getattr(value, part)
        assert value == expected, key


def test_env_var_names() -> None:
    assert env_var_for("agent.task_queues") == "WATERFLOW_AGENT_TASK_QUEUES"
    assert env_var_for("temporal.tls.enabled") == "WATERFLOW_TEMPORAL_TLS_ENABLED"


def test_relative_paths_outside_the_file_are_relative_to_the_current_directory(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env["WATERFLOW_AGENT_PLUGIN_DIR"] = "plugins"
    config = load_config(None, environ=env, overrides={"agent.secrets_dir": "secrets"})
    assert config.agent.plugin_dir == tmp_path / "plugins"
    assert config.agent.secrets_dir == tmp_path / "secrets"


def test_unknown_and_non_config_variables_are_ignored(env: dict[str, str]) -> None:
    env.update(
        {
            "WATERFLOW_AGENT_TASK_QUEUE": "typo",
            "WATERFLOW_SECRET_TOKEN": "s3cret",
            "WATERFLOW_DISABLE_PLUGINS": "x",
            "WATERFLOW_LOAD_PLUGINS": "y",
            "WATERFLOW_TRACE_PLUGINS": "1",
            "WATERFLOW_SOMETHING": "z",
            "OTHER": "1",
            # Set where agents run, by other parts of Waterflow: close to a setting's name,
            # yet not a misspelling.
            "WATERFLOW_AGENT_INSTANCE": "step",
            "WATERFLOW_TEMPORAL_BIN": "/usr/bin/temporal",
            "WATERFLOW_LISTEN_ADDRESS": "0.0.0.0:9090",
            "WATERFLOW_GHA_TOKEN": "t",
        }
    )
    assert load_config(None, environ=env).agent.task_queues == ()
    # Only what looks like a misspelt configuration variable is reported: the others belong
    # to something else sharing the environment (the `waterflow` command, the server, a node).
    assert ignored_environment(env) == [
        "ignoring WATERFLOW_AGENT_TASK_QUEUE: it is not a configuration variable; "
        "did you mean WATERFLOW_AGENT_TASK_QUEUES?",
    ]


# --- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("10m", timedelta(minutes=10)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("500ms", timedelta(milliseconds=500)),
        ("1.5s", timedelta(seconds=1.5)),
        ("1h0m5s", timedelta(hours=1, seconds=5)),
        ("0s", timedelta(0)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert _parse_duration(text) == expected


@pytest.mark.parametrize("text", ["30", "", "s", "1x", "1 h", "-5s", "1h 30m", "5S", "1.s"])
def test_not_durations(text: str) -> None:
    assert _parse_duration(text) is None


@pytest.mark.parametrize("text", ["1h30m", "500ms", "1m30s", "1s500ms", "0s", "26h"])
def test_durations_round_trip(text: str) -> None:
    parsed = _parse_duration(text)
    assert parsed is not None
    assert _format_duration(parsed) == text


# --- errors: every one is one line that names the key ------------------------------------------


def test_the_briefs_example(tmp_path: Path, env: dict[str, str]) -> None:
    path = write(
        tmp_path,
        """
        # Waterflow agent
        temporal:
          address: localhost:7233

        agent:
          task_queues: [linux]
          shutdown_timeout: 30
        """,
    )
    assert error_of(path, env) == (
        f"{path}:7: agent.shutdown_timeout: '30' is not a duration; write it like 30s, 5m or 1h30m"
    )


def test_missing_file(tmp_path: Path, env: dict[str, str]) -> None:
    path = tmp_path / "nope.yaml"
    assert error_of(path, env) == f"config file {path} not found"


def test_unreadable_file(tmp_path: Path, env: dict[str, str]) -> None:
    assert error_of(tmp_path, env) == f"cannot read config file {tmp_path}: Is a directory"


def test_file_not_utf8(tmp_path: Path, env: dict[str, str]) -> None:
    path = tmp_path / "agent.yaml"
    path.write_bytes(b"agent:\n  id: \xff\xfe\n")
    assert error_of(path, env) == f"config file {path} is not UTF-8 text"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("agent:\n  id: a: b\n", ":2: invalid YAML: mapping values are not allowed here"),
        (
            "log:\n  level: info\n  level: debug\n",
            ':3: invalid YAML: found duplicate key "level" with value "debug" '
            '(original value: "info")',
        ),
        ("agent: [a,\n", ":2: invalid YAML: expected the node content, but found '<stream end>'"),
        (
            "- agent\n",
            ":1: expected a mapping of sections (agent, log, server, temporal), found a list",
        ),
        (
            "agent\n",
            ":1: expected a mapping of sections (agent, log, server, temporal), "
            "found the value 'agent'",
        ),
        ("agent: 5\n", ":1: agent: expected a mapping of keys, found the value '5'"),
        ("temporal:\n  tls: [a]\n", ":2: temporal.tls: expected a mapping of keys, found a list"),
        ("agent:\n  1: x\n", ":2: '1' is not a key name"),
    ],
)
def test_malformed_files(tmp_path: Path, env: dict[str, str], text: str, expected: str) -> None:
    path = write(tmp_path, text)
    assert error_of(path, env) == f"{path}{expected}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "temporal:\n  adress: x\n",
            ":2: unknown key 'temporal.adress'; did you mean 'temporal.address'?",
        ),
        ("agnet:\n  id: x\n", ":1: unknown key 'agnet'; did you mean 'agent'?"),
        (
            "temporal:\n  task_queues: [a]\n",
            ":2: unknown key 'temporal.task_queues'; did you mean 'agent.task_queues'?",
        ),
        (
            "agent:\n  task_queue: [a]\n",
            ":2: unknown key 'agent.task_queue'; did you mean 'agent.task_queues'?",
        ),
        (
            "log:\n  colour: red\n",
            ":2: unknown key 'log.colour'; log has level, format, output_path",
        ),
        (
            "temporal.tls.enabled: true\n",
            ":1: unknown key 'temporal.tls.enabled'; "
            "write it nested, as enabled under temporal.tls",
        ),
        (
            "agent:\n  x.task_queues: [a]\n",
            ":2: unknown key 'agent.x.task_queues'; did you mean 'agent.task_queues'?",
        ),
        (
            "plugins:\n  a: 1\n",
            ":1: unknown key 'plugins'; the sections are temporal, agent, log, server",
        ),
        (
            "temporal:\n  tls:\n    verify: no\n",
            ":3: unknown key 'temporal.tls.verify'; "
            "temporal.tls has enabled, ca_cert, client_cert, client_key, server_name",
        ),
    ],
)
def test_unknown_keys(tmp_path: Path, env: dict[str, str], text: str, expected: str) -> None:
    path = write(tmp_path, text)
    assert error_of(path, env) == f"{path}{expected}"


BAD_VALUES = [
    ("temporal:\n  max_retries: many\n", "2: temporal.max_retries: 'many' is not a whole number"),
    ("temporal:\n  max_retries: 1.5\n", "2: temporal.max_retries: '1.5' is not a whole number"),
    ("temporal:\n  max_retries: -1\n", "2: temporal.max_retries: -1 is negative; use 0 or more"),
    (
        "temporal:\n  namespace: 2024\n",
        "2: temporal.namespace: '2024' is not a string; put it in quotes",
    ),
    ("temporal:\n  namespace: ' '\n", "2: temporal.namespace: must not be empty"),
    (
        "temporal:\n  address: localhost\n",
        "2: temporal.address: 'localhost' is not a host:port address, e.g. localhost:7233",
    ),
    (
        "temporal:\n  address: 'h:99999'\n",
        "2: temporal.address: 'h:99999' is not a host:port address, e.g. localhost:7233",
    ),
    (
        "temporal:\n  connection_timeout: 0s\n",
        "2: temporal.connection_timeout: '0s' is too short; it must be longer than 0s",
    ),
    (
        "temporal:\n  retry_interval: [5s]\n",
        "2: temporal.retry_interval: a list is not a duration; write it like 30s, 5m or 1h30m",
    ),
    (
        "temporal:\n  tls:\n    enabled: maybe\n",
        "3: temporal.tls.enabled: 'maybe' is not a boolean; use true or false",
    ),
    (
        "temporal:\n  tls:\n    client_cert: a.pem\n",
        "3: temporal.tls.client_cert: set without temporal.tls.client_key; give both or neither",
    ),
    (
        "temporal:\n  tls:\n    client_key: k.pem\n",
        "3: temporal.tls.client_key: set without temporal.tls.client_cert; give both or neither",
    ),
    (
        "temporal:\n  tls:\n    ca_cert: {a: 1}\n",
        "3: temporal.tls.ca_cert: a mapping is not a path",
    ),
    ("temporal:\n  tls:\n    ca_cert: ''\n", "3: temporal.tls.ca_cert: must not be empty"),
    ("agent:\n  id: ''\n", "2: agent.id: must not be empty"),
    ("agent:\n  task_queues: 5\n", "2: agent.task_queues: '5' is not a list of task queue names"),
    (
        "agent:\n  task_queues:\n    - ok\n    - [x]\n",
        "4: agent.task_queues[1]: a list is not a task queue name; put it in quotes",
    ),
    (
        "agent:\n  task_queues:\n    - ok\n    - gpu_a100\n",
        "4: agent.task_queues[1]: 'gpu_a100' is not a valid task queue name; use letters, digits "
        "and hyphens, starting and ending with a letter or digit, at most 255 characters",
    ),
    (
        "agent:\n  task_queues: [-edge]\n",
        "2: agent.task_queues[0]: '-edge' is not a valid task queue name; use letters, digits "
        "and hyphens, starting and ending with a letter or digit, at most 255 characters",
    ),
    (
        "agent:\n  task_queues: [" + "q" * 256 + "]\n",
        "2: agent.task_queues[0]: '" + "q" * 256 + "' is not a valid task queue name; use letters, "
        "digits and hyphens, starting and ending with a letter or digit, at most 255 characters",
    ),
    (
        "agent:\n  auto_reload_plugins: 2\n",
        "2: agent.auto_reload_plugins: '2' is not a boolean; use true or false",
    ),
    (
        "agent:\n  shutdown_timeout: 30\n",
        "2: agent.shutdown_timeout: '30' is not a duration; write it like 30s, 5m or 1h30m",
    ),
    (
        "agent:\n  shutdown_timeout: 1h 30m\n",
        "2: agent.shutdown_timeout: '1h 30m' is not a duration; write it like 30s, 5m or 1h30m",
    ),
    (
        "agent:\n  max_concurrent_activities: 0\n",
        "2: agent.max_concurrent_activities: 0 is too small; it must be at least 1",
    ),
    (
        "agent:\n  max_concurrent_workflow_tasks: true\n",
        "2: agent.max_concurrent_workflow_tasks: 'true' is not a whole number",
    ),
    (
        "agent:\n  step_heartbeat_interval: 0ms\n",
        "2: agent.step_heartbeat_interval: '0s' is too short; it must be longer than 0s",
    ),
    ("agent:\n  work_dir: 7\n", "2: agent.work_dir: '7' is not a path"),
    (
        "log:\n  level: verbose\n",
        "2: log.level: 'verbose' is not a log level; use debug, info, warning or error",
    ),
    ("log:\n  format: xml\n", "2: log.format: 'xml' is not a log format; use json or console"),
    ("server:\n  address: ''\n", "2: server.address: must not be empty"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_VALUES)
def test_bad_values_in_the_file(
    tmp_path: Path, env: dict[str, str], text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    assert error_of(path, env) == f"{path}:{expected}"


def test_bad_value_from_the_environment(env: dict[str, str]) -> None:
    env["WATERFLOW_AGENT_SHUTDOWN_TIMEOUT"] = "30"
    assert error_of(None, env) == (
        "agent.shutdown_timeout (from WATERFLOW_AGENT_SHUTDOWN_TIMEOUT): '30' is not a duration; "
        "write it like 30s, 5m or 1h30m"
    )


def test_bad_queue_from_the_environment(env: dict[str, str]) -> None:
    env["WATERFLOW_AGENT_TASK_QUEUES"] = "linux,gpu_a100"
    assert error_of(None, env) == (
        "agent.task_queues[1] (from WATERFLOW_AGENT_TASK_QUEUES): 'gpu_a100' is not a valid task "
        "queue name; use letters, digits and hyphens, starting and ending with a letter or digit, "
        "at most 255 characters"
    )


def test_environment_replaces_the_file_and_its_lines(tmp_path: Path, env: dict[str, str]) -> None:
    path = write(tmp_path, "agent:\n  task_queues: [a, b, c]\n")
    env["WATERFLOW_AGENT_TASK_QUEUES"] = "ok,x_y"
    assert error_of(path, env).startswith("agent.task_queues[1] (from WATERFLOW_AGENT_TASK_QUEUES)")


def test_bad_value_from_the_command_line(env: dict[str, str]) -> None:
    assert error_of(None, env, {"log.level": "verbose"}) == (
        "log.level (from the command line): 'verbose' is not a log level; "
        "use debug, info, warning or error"
    )


def test_unknown_override(env: dict[str, str]) -> None:
    assert error_of(None, env, {"agent.task_queue": ["a"]}) == (
        "unknown configuration key 'agent.task_queue'; did you mean 'agent.task_queues'?"
    )


def test_tls_pair_from_two_sources(tmp_path: Path, env: dict[str, str]) -> None:
    path = write(tmp_path, "temporal:\n  tls:\n    client_cert: a.pem\n")
    env["WATERFLOW_TEMPORAL_TLS_CLIENT_KEY"] = "/k.pem"
    config = load_config(path, environ=env)
    assert (config.temporal.tls.client_cert, config.temporal.tls.client_key) == (
        tmp_path / "a.pem",
        Path("/k.pem"),
    )


def test_validate_for_run(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        validate_for_run(load_config(None, environ=env))
    assert str(info.value) == (
        "agent.task_queues: no task queue given; set it in the config file, "
        "WATERFLOW_AGENT_TASK_QUEUES or --task-queues"
    )
    validate_for_run(load_config(None, environ=env, overrides={"agent.task_queues": ("q",)}))


# --- the log line ------------------------------------------------------------------------------


def test_redacted_is_json_ready(env: dict[str, str]) -> None:
    env.update(
        {
            "WATERFLOW_AGENT_TASK_QUEUES": "a,b",
            "WATERFLOW_SERVER_ADDRESS": "grpc://user:pw@waterflow.example.com:9090",
            "WATERFLOW_SERVER_TOKEN": "agent-secret",
            "WATERFLOW_AGENT_SHUTDOWN_TIMEOUT": "1m30s",
        }
    )
    data = redacted(load_config(None, environ=env))
    json.dumps(data)
    assert data["agent"]["task_queues"] == ["a", "b"]
    assert data["agent"]["shutdown_timeout"] == "1m30s"
    assert data["agent"]["work_dir"] == env["HOME"] + "/.local/share/waterflow/work"
    assert data["temporal"]["address"] == "localhost:7233"
    assert data["temporal"]["tls"]["ca_cert"] is None
    assert data["server"]["address"] == "grpc://***@waterflow.example.com:9090"
    assert data["log"] == {
        "level": "info",
        "format": "json",
        "output_path": env["HOME"] + "/.local/share/waterflow/logs",
    }
    assert data["server"]["token"] == "***"
    assert "pw" not in json.dumps(data)
    assert "agent-secret" not in json.dumps(data)


def test_a_server_address_needs_a_token(env: dict[str, str]) -> None:
    env["WATERFLOW_SERVER_ADDRESS"] = "waterflow.example.com:9090"
    with pytest.raises(ConfigError) as info:
        load_config(None, environ=env)
    assert str(info.value) == (
        "server.address (from WATERFLOW_SERVER_ADDRESS): set without server.token; the server "
        "refuses calls without an agent token (WATERFLOW_SERVER_TOKEN)"
    )


# --- docs/configuration.md stays true ----------------------------------------------------------


def doc_rows() -> dict[str, list[str]]:
    rows = {}
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        found = re.match(r"\| `([a-z_.]+)` \|", line)
        if found and "." in found.group(1):
            rows[found.group(1)] = [cell.strip() for cell in line.strip("|").split("|")]
    return rows


def test_docs_describe_every_key() -> None:
    rows = doc_rows()
    assert list(rows) == list(CONFIG_KEYS)
    for key, (_, _, default, variable, _, meaning) in rows.items():
        assert default == f"`{_default_text(key)}`" or (default, _default_text(key)) == (
            "none",
            "none",
        ), key
        assert variable == f"`{env_var_for(key)}`", key
        assert meaning, key


def test_docs_example_file_loads(tmp_path: Path, env: dict[str, str]) -> None:
    text = DOCS.read_text(encoding="utf-8")
    example = text.split("## Example file", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    path = write(tmp_path, example)
    config = load_config(path, environ=env)
    validate_for_run(config)
    assert config.agent.task_queues == ("linux-amd64", "linux-common")
    assert config.temporal.address == "temporal.example.com:7233"
