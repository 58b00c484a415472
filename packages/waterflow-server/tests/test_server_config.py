"""The server's configuration: file, then variables, then flags; one line per bad value."""

from __future__ import annotations

import json
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from waterflow_server.config import CONFIG_KEYS, ConfigError, env_var_for, load_config, redacted

TOKENS = {
    "WATERFLOW_AUTH_AGENT_TOKENS": "agent-token-aaaaaaaaaaaa",
    "WATERFLOW_AUTH_USER_TOKENS": "user-token-uuuuuuuuuuuuu,user-token-vvvvvvvvvvvvv",
}
DOCS = Path(__file__).resolve().parents[3] / "docs" / "server.md"


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "server.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_defaults_and_tokens_from_the_environment() -> None:
    config = load_config(None, environ=TOKENS)
    assert config.listen.address == "0.0.0.0:9090"
    assert config.auth.user_tokens == ("user-token-uuuuuuuuuuuuu", "user-token-vvvvvvvvvvvvv")
    assert config.registry.agent_lease == timedelta(seconds=30)
    assert config.database.log_retention == timedelta(days=30)
    assert (config.temporal.address, config.temporal.namespace) == ("localhost:7233", "default")


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        listen:
          address: 127.0.0.1:9191
          tls_cert: certs/server.pem
          tls_key: certs/server.key
        database:
          path: state/server.db
        auth:
          agent_tokens: [agent-token-from-the-file]
          user_tokens: [user-token-from-the-file-]
        registry:
          agent_lease: 1m
        temporal:
          address: temporal:7233
          namespace: prod
        log:
          level: WARN
          format: console
        """,
    )
    config = load_config(
        path,
        environ={"WATERFLOW_TEMPORAL_NAMESPACE": "staging"},
        overrides={"listen.address": "127.0.0.1:9292", "log.level": None},
    )
    assert config.listen.address == "127.0.0.1:9292"
    assert config.listen.tls_cert == tmp_path / "certs" / "server.pem"
    assert config.database.path == tmp_path / "state" / "server.db"
    assert config.registry.agent_lease == timedelta(minutes=1)
    assert (config.temporal.address, config.temporal.namespace) == ("temporal:7233", "staging")
    assert (config.log.level, config.log.format) == ("warning", "console")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"WATERFLOW_AUTH_AGENT_TOKENS": "agent-token-aaaaaaaaaaaa"},
            "auth.user_tokens: no user token given; every call needs one (make one with "
            "`waterflow token`, set WATERFLOW_AUTH_USER_TOKENS)",
        ),
        (
            {"WATERFLOW_AUTH_USER_TOKENS": "user-token-uuuuuuuuuuuuu"},
            "auth.agent_tokens: no agent token given; agents cannot report without one (make "
            "one with `waterflow token`, set WATERFLOW_AUTH_AGENT_TOKENS)",
        ),
        (
            {**TOKENS, "WATERFLOW_AUTH_AGENT_TOKENS": "short"},
            "auth.agent_tokens[0] (from WATERFLOW_AUTH_AGENT_TOKENS): is shorter than 16 "
            "characters; make one with `waterflow token`",
        ),
        (
            {**TOKENS, "WATERFLOW_AUTH_AGENT_TOKENS": "user-token-uuuuuuuuuuuuu"},
            "auth.user_tokens (from WATERFLOW_AUTH_USER_TOKENS): a token is both an agent "
            "token and a user token; give each role its own",
        ),
        (
            {**TOKENS, "WATERFLOW_LISTEN_ADDRESS": "9090"},
            "listen.address (from WATERFLOW_LISTEN_ADDRESS): '9090' is not a host:port "
            "address, e.g. 0.0.0.0:9090",
        ),
        (
            {**TOKENS, "WATERFLOW_REGISTRY_AGENT_LEASE": "30"},
            "registry.agent_lease (from WATERFLOW_REGISTRY_AGENT_LEASE): '30' is not a "
            "duration; write it like 30s, 5m or 1h30m",
        ),
        (
            {**TOKENS, "WATERFLOW_DATABASE_LOG_RETENTION": "30m"},
            "database.log_retention (from WATERFLOW_DATABASE_LOG_RETENTION): must be at least "
            "1h (or 0s to keep logs for ever)",
        ),
        (
            {**TOKENS, "WATERFLOW_REGISTRY_FORGET_AFTER": "30m"},
            "registry.forget_after (from WATERFLOW_REGISTRY_FORGET_AFTER): must be at least "
            "1h (or 0s to keep agents for ever)",
        ),
        (
            {**TOKENS, "WATERFLOW_DATABASE_LOG_RETENTION": "a month"},
            "database.log_retention (from WATERFLOW_DATABASE_LOG_RETENTION): 'a month' is not "
            "a duration; write it like 30s, 5m or 1h30m",
        ),
        (
            {**TOKENS, "WATERFLOW_LOG_LEVEL": "loud"},
            "log.level (from WATERFLOW_LOG_LEVEL): 'loud' is not one of debug, info, warning, "
            "error",
        ),
        (
            {**TOKENS, "WATERFLOW_LISTEN_TLS_CERT": "/etc/cert.pem"},
            "listen.tls_cert (from WATERFLOW_LISTEN_TLS_CERT): set without listen.tls_key; "
            "give both or neither",
        ),
    ],
)
def test_bad_values_are_one_line(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, environ=environ)
    assert str(info.value) == message


def test_file_errors_name_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "listen:\n  adress: x\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=TOKENS)
    assert (
        str(info.value) == f"{path}:2: unknown key 'listen.adress'; did you mean 'listen.address'?"
    )
    path = write(tmp_path, "server:\n  listen: x\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=TOKENS)
    assert str(info.value).startswith(f"{path}:1: unknown section 'server'")
    path = write(tmp_path, "listen: [\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=TOKENS)
    assert str(info.value).startswith(f"{path}:2: invalid YAML: ")
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "none.yaml"), environ=TOKENS)
    assert str(info.value) == f"config file {tmp_path / 'none.yaml'} not found"


def test_redacted_counts_tokens() -> None:
    data = redacted(load_config(None, environ=TOKENS))
    text = json.dumps(data)
    assert data["auth"] == {"agent_tokens": "1 token(s)", "user_tokens": "2 token(s)"}
    assert "uuuuuuuu" not in text
    assert data["registry"]["agent_lease"] == "30s"


def test_every_key_has_a_variable_and_a_row_in_the_docs() -> None:
    rows = DOCS.read_text(encoding="utf-8")
    for key in CONFIG_KEYS:
        assert f"| `{key}` |" in rows, key
        assert f"`{env_var_for(key)}`" in rows, key


@pytest.mark.parametrize(
    ("text", "retention", "shown"),
    [
        ("7d", timedelta(days=7), "7d"),
        ("1d12h", timedelta(hours=36), "1d12h"),
        ("0s", timedelta(0), "0s"),
    ],
)
def test_log_retention_in_days(text: str, retention: timedelta, shown: str) -> None:
    config = load_config(None, environ={**TOKENS, "WATERFLOW_DATABASE_LOG_RETENTION": text})
    assert config.database.log_retention == retention
    assert redacted(config)["database"]["log_retention"] == shown
