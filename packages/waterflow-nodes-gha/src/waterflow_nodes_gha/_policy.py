"""Which actions an agent runs: an allow-list of patterns and, optionally, pinned commits only.

Checked before anything is fetched, for the step's action and for every action a composite
action uses. Actions in the workspace (`./path`) are always allowed, as GitHub allows a
repository's own actions.
"""

from __future__ import annotations

import fnmatch

from waterflow import NodeError
from waterflow_nodes_gha._refs import ActionRef
from waterflow_nodes_gha._settings import Settings


def _matches(pattern: str, ref: ActionRef) -> bool:
    pattern = pattern.strip().lower()
    if ref.kind == "docker":
        return pattern.startswith("docker://") and fnmatch.fnmatchcase(ref.uses.lower(), pattern)
    name = ref.repository.lower() + (f"/{ref.path.lower()}" if ref.path else "")
    if "@" in pattern:
        return fnmatch.fnmatchcase(f"{name}@{ref.ref.lower()}", pattern)
    repository = ref.repository.lower()
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(repository, pattern)


def check_policy(ref: ActionRef, settings: Settings) -> None:
    """Raise NodeError(retryable=False) when this agent may not run `ref`."""
    if ref.kind == "local":
        return
    if settings.allowed_actions and not any(_matches(p, ref) for p in settings.allowed_actions):
        raise NodeError(
            f"action {ref.uses!r} is not allowed on this agent "
            f"(WATERFLOW_GHA_ALLOWED_ACTIONS={','.join(settings.allowed_actions)})",
            retryable=False,
        )
    if settings.require_sha and not ref.pinned:
        if ref.kind == "docker":
            fix = "pin the image by digest: docker://IMAGE@sha256:DIGEST"
        else:
            fix = (
                f"pin a full commit SHA: {ref.repository}"
                + (f"/{ref.path}" if ref.path else "")
                + "@<40-hex commit>"
            )
        raise NodeError(
            f"action {ref.uses!r} is not pinned and this agent requires it "
            f"(WATERFLOW_GHA_REQUIRE_SHA=true): {fix}",
            retryable=False,
        )


__all__ = ["check_policy"]
