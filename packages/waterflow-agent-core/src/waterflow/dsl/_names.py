"""The forms of names in the language, and which `uses:` names a GitHub Action.

Apart from the parser (and its YAML library) so that what runs steps and what checks queue
names can tell them without loading the parser.
"""

from __future__ import annotations

import re

ID_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
QUEUE_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,253}[A-Za-z0-9])?")
NODE_RE = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
ACTION_RE = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[^@\s]+)?@[^@\s]+")
#: The node that runs GitHub Actions (`owner/repo@ref`, `./path`, `docker://image`).
GHA_NODE = "gha/action"


def is_action(uses: str) -> bool:
    """Whether `uses` names a GitHub Action rather than a Waterflow node."""
    return (
        uses.startswith(("./", "docker://")) or ACTION_RE.fullmatch(uses) is not None
    ) and not uses.startswith("docker:///")
