"""The `env` a step sees: the workflow's, the job's, what earlier steps wrote to GITHUB_ENV,
the step's own, later layers winning.

Pure (it runs in the workflow sandbox too). Values written to GITHUB_ENV are data, never
templates: a `${{ }}` a step wrote there stays as it is, or a step could make a later one
render `${{ secrets.X }}` into its environment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from waterflow import expressions

Layer = tuple[Mapping[str, str], bool]
"""(values, whether they are templates to render)."""


def env_layers(
    workflow_env: Mapping[str, str],
    job_env: Mapping[str, str],
    written: Mapping[str, str],
    step_env: Mapping[str, str],
) -> list[Layer]:
    return [(workflow_env, True), (job_env, True), (written, False), (step_env, True)]


def render_env(
    layers: Sequence[Layer],
    contexts: Mapping[str, Any],
    *,
    status: str = "success",
    hash_files: Callable[[list[str]], str] | None = None,
    strict: bool = True,
) -> dict[str, str]:
    """Each layer rendered with `env` holding the layers before it.

    `strict=False` renders a value that fails as empty (the workflow's view, where secrets
    and files are not available); otherwise the ExpressionError propagates.
    """
    env: dict[str, str] = {}
    for values, templated in layers:
        scope = {**contexts, "env": dict(env)}
        for name, value in values.items():
            if not templated:
                env[name] = value
                continue
            try:
                env[name] = expressions.render_string(
                    value, scope, status=status, hash_files=hash_files
                )
            except expressions.ExpressionError:
                if strict:
                    raise
                env[name] = ""
    return env
