"""The agent's secret sources: `WATERFLOW_SECRET_<NAME>` variables and a directory of files.

Secrets are read on the agent, inside the step's activity, and nowhere else: their values never
enter Temporal's history. Names are case-insensitive, as on GitHub.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

ENV_PREFIX = "WATERFLOW_SECRET_"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SecretsError(Exception):
    """A secret source that cannot be read; one line."""


def load_secrets(
    environ: Mapping[str, str] | None = None, directory: str | os.PathLike[str] | None = None
) -> dict[str, str]:
    """Every secret the agent knows, by upper-case name. Files win over variables."""
    environ = os.environ if environ is None else environ
    secrets: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX) and len(key) > len(ENV_PREFIX):
            secrets[key[len(ENV_PREFIX) :].upper()] = value
    if directory is not None:
        root = Path(directory).expanduser()
        if not root.is_dir():
            raise SecretsError(f"agent.secrets_dir: {root} is not a directory")
        for entry in sorted(root.iterdir()):
            if entry.name.startswith(".") or not entry.is_file():
                continue
            if not _NAME.match(entry.name):
                raise SecretsError(
                    f"{entry}: a secret's file name must be letters, digits and underscores"
                )
            try:
                value = entry.read_text(encoding="utf-8")
            except OSError as exc:
                raise SecretsError(f"{entry}: cannot read secret: {exc.strerror}") from exc
            # A trailing newline is what editors add, not part of the secret.
            secrets[entry.name.upper()] = value[:-1] if value.endswith("\n") else value
    return secrets


def without_secret_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment a step's processes inherit: the agent's, minus its secret variables."""
    return {k: v for k, v in environ.items() if not k.startswith(ENV_PREFIX)}
