"""`hashFiles()`: the one part of the expression language that reads the file system.

It is never imported by the evaluator; the agent binds a workspace and passes
`functools.partial(hash_files, workspace)` as `hash_files=` to `evaluate`/`render`.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator

_CHUNK = 1 << 20
_GLOB_CHARS = frozenset("*?[\\")
_Key = tuple[int, int]  # a directory's (device, inode)


class _Pattern:
    """One glob, relative to the workspace, as a regex over '/'-separated relative paths."""

    def __init__(self, segments: list[str], negate: bool, directory_only: bool) -> None:
        self.negate = negate
        self.directory_only = directory_only
        self.regex = re.compile(_to_regex(segments), re.DOTALL)
        literal: list[str] = []
        for segment in segments:
            if segment == "**" or any(c in _GLOB_CHARS for c in segment):
                break
            literal.append(segment)
        self.root = "/".join(literal)  # the deepest directory or file the glob can only be under

    def matches(self, path: str) -> bool:
        """Whether the glob names the file, or a directory it is in (GitHub's glob includes
        what is under a matched directory)."""
        if not self.directory_only and self.regex.fullmatch(path):
            return True
        slash = path.find("/")
        while slash >= 0:
            if self.regex.fullmatch(path[:slash]):
                return True
            slash = path.find("/", slash + 1)
        return False


def _segment_regex(segment: str) -> str:
    out: list[str] = []
    i, n = 0, len(segment)
    while i < n:
        char = segment[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(segment[i]))
        elif char == "[":
            close = segment.find("]", i + 2)
            if close < 0:
                out.append(re.escape(char))
            else:
                body = segment[i + 1 : close]
                negated = body[:1] in ("!", "^")
                if negated:
                    body = body[1:]
                body = body.replace("\\", "\\\\").replace("[", "\\[")
                out.append(("[^/" if negated else "[") + body + "]")
                i = close
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def _to_regex(segments: list[str]) -> str:
    out: list[str] = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "**":
            out.append(".*" if last else "(?:[^/]+/)*")
        else:
            out.append(_segment_regex(segment) + ("" if last else "/"))
    return "".join(out)


def _compile(workspace: str, line: str) -> _Pattern | None:
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    negate = False
    while text.startswith("!"):
        negate = not negate
        text = text[1:]
    if os.path.isabs(text):
        prefix = workspace.rstrip("/") + "/"
        if not text.startswith(prefix):
            return None  # outside the workspace: GitHub ignores such files
        text = text[len(prefix) :]
    segments: list[str] = []
    for segment in text.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if not segments:
                return None
            segments.pop()
        else:
            segments.append(segment)
    if not segments:
        return None
    return _Pattern(segments, negate, directory_only=text.endswith("/"))


def _files_under(workspace: str, relative: str) -> Iterator[str]:
    """Relative '/'-paths of the files at or under `relative`, following symbolic links but
    never into a directory that is already one of the directories being walked (a loop)."""
    start = os.path.join(workspace, relative) if relative else workspace
    try:
        info = os.stat(start)
    except OSError:
        return
    if stat.S_ISREG(info.st_mode):
        yield relative
        return
    stack: list[tuple[str, str, _Key, frozenset[_Key]]] = []
    if stat.S_ISDIR(info.st_mode):
        stack.append((start, relative, (info.st_dev, info.st_ino), frozenset()))
    while stack:
        path, rel, key, ancestors = stack.pop()
        if key in ancestors:
            continue
        ancestors = ancestors | {key}
        try:
            entries = list(os.scandir(path))
        except OSError:
            continue
        for entry in entries:
            child = f"{rel}/{entry.name}" if rel else entry.name
            try:
                child_info = entry.stat()
            except OSError:
                continue  # a broken link
            if stat.S_ISDIR(child_info.st_mode):
                child_key = (child_info.st_dev, child_info.st_ino)
                stack.append((entry.path, child, child_key, ancestors))
            elif stat.S_ISREG(child_info.st_mode):
                yield child


def hash_files(workspace: str, patterns: list[str]) -> str:
    """GitHub's `hashFiles`: the SHA-256 of the SHA-256 digests of the matching files.

    Each pattern is a glob relative to `workspace` (`*`, `?`, `[...]`, `**` for any number of
    directories, dotfiles included; a matched directory brings all files under it). A pattern
    may hold several lines; blank lines and `#` comments are skipped. A leading `!` excludes,
    and later patterns win over earlier ones. Files are taken in sorted order of their
    relative paths, and only their contents count. '' when no file matches.
    """
    root = os.path.abspath(workspace)
    compiled = [
        pattern
        for text in patterns
        for line in text.splitlines()
        if (pattern := _compile(root, line)) is not None
    ]
    roots = sorted({p.root for p in compiled if not p.negate})
    candidates: set[str] = set()
    for i, base in enumerate(roots):
        if any(base.startswith(other + "/") or not other for other in roots[:i]):
            continue  # already walked as part of an enclosing root
        candidates.update(_files_under(root, base))
    outer = hashlib.sha256()
    count = 0
    for path in sorted(candidates):
        included = False
        for pattern in compiled:
            if included == pattern.negate and pattern.matches(path):
                included = not pattern.negate
        if not included:
            continue
        inner = hashlib.sha256()
        with open(os.path.join(root, path), "rb") as file:
            while chunk := file.read(_CHUNK):
                inner.update(chunk)
        outer.update(inner.digest())
        count += 1
    return outer.hexdigest() if count else ""
