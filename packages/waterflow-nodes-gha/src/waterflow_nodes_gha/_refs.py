"""What a `uses:` names: a repository action, an action in the workspace, or a Docker image."""

from __future__ import annotations

import re
from typing import Literal

import attrs

from waterflow import NodeError

_NAME = r"[A-Za-z0-9_.-]+"
_REPO_RE = re.compile(rf"(?P<owner>{_NAME})/(?P<repo>{_NAME})(?P<path>(?:/[^@\s]+)?)@(?P<ref>\S+)")
SHA_RE = re.compile(r"[0-9a-f]{40}")

ActionKind = Literal["repository", "local", "docker"]


@attrs.frozen
class ActionRef:
    """A parsed `uses:`.

    - `repository`: `owner/repo@ref` or `owner/repo/path@ref` (`path` is then `path`);
    - `local`: `./path`, relative to the workspace (`path`);
    - `docker`: `docker://image` (`image`).
    """

    uses: str
    kind: ActionKind
    owner: str = ""
    repo: str = ""
    path: str = ""
    ref: str = ""
    image: str = ""

    @property
    def repository(self) -> str:
        """`owner/repo` of a repository action, '' otherwise."""
        return f"{self.owner}/{self.repo}" if self.kind == "repository" else ""

    @property
    def pinned(self) -> bool:
        """Whether the ref is a full commit SHA (or, for an image, a digest)."""
        if self.kind == "docker":
            return "@sha256:" in self.image
        return self.kind == "repository" and SHA_RE.fullmatch(self.ref) is not None


def parse_uses(uses: str) -> ActionRef:
    """Parse a step's `uses:`; NodeError(retryable=False) when it names no action."""
    text = uses.strip()
    if text.startswith("docker://"):
        image = text[len("docker://") :]
        if not image or image.startswith("/") or any(c.isspace() for c in image):
            raise NodeError(f"uses {uses!r}: expected docker://IMAGE[:TAG]", retryable=False)
        return ActionRef(uses=text, kind="docker", image=image)
    if text.startswith("./") or text == ".":
        path = text[2:].strip("/") if text != "." else ""
        if ".." in path.split("/"):
            raise NodeError(
                f"uses {uses!r}: a local action must stay inside the workspace", retryable=False
            )
        return ActionRef(uses=text, kind="local", path=path)
    match = _REPO_RE.fullmatch(text)
    if match is None:
        raise NodeError(
            f"uses {uses!r} is not an action: expected owner/repo@ref, owner/repo/path@ref, "
            "./path or docker://image",
            retryable=False,
        )
    path = match["path"].strip("/")
    if ".." in path.split("/"):
        raise NodeError(f"uses {uses!r}: the path may not contain '..'", retryable=False)
    return ActionRef(
        uses=text,
        kind="repository",
        owner=match["owner"],
        repo=match["repo"],
        path=path,
        ref=match["ref"],
    )


__all__ = ["SHA_RE", "ActionRef", "parse_uses"]
