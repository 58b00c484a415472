"""Getting a repository action onto the agent: a local folder, the cache, or GitHub's API.

The cache holds one folder per resolved commit, `<cache>/repos/<owner>/<repo>/<sha>`, and the
commit each ref last resolved to, `<cache>/refs/<owner>/<repo>/<ref>` (what offline mode
uses). A download happens under a file lock and lands with an atomic rename, so steps that
fetch the same action at once, in one agent or several sharing the cache, download it once.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from waterflow import NodeError
from waterflow_nodes_gha._refs import SHA_RE, ActionRef
from waterflow_nodes_gha._settings import Settings

if TYPE_CHECKING:
    import httpx

# httpx, filelock and tarfile are imported where an action is downloaded, not here: every agent
# loads this plugin at start, most never download an action, and httpx alone (with what it pulls
# in) takes about a tenth of a second to import.

# Seconds for one request to GitHub's API (connecting: CONNECT_TIMEOUT).
REQUEST_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
LOCK_TIMEOUT = 600.0
"""Seconds to wait for another step's download of the same action before giving up."""


@attrs.frozen
class FetchedRepo:
    """Where a repository action's files are. `sha` is '' for a local repository folder."""

    root: Path
    sha: str
    source: str  # "local", "cache" or "download"


def _safe(part: str) -> str:
    """`part` as one file name: quoted, and never `.` or `..`."""
    quoted = urllib.parse.quote(part, safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


class ActionStore:
    """Finds the files of `owner/repo@ref` actions for one agent's settings."""

    def __init__(self, settings: Settings, log: Callable[[str], None]) -> None:
        self.settings = settings
        self.log = log

    def _repo_dir(self, ref: ActionRef) -> Path:
        return (
            self.settings.cache_dir / "repos" / _safe(ref.owner.lower()) / _safe(ref.repo.lower())
        )

    def _ref_file(self, ref: ActionRef) -> Path:
        return (
            self.settings.cache_dir
            / "refs"
            / _safe(ref.owner.lower())
            / _safe(ref.repo.lower())
            / _safe(ref.ref)
        )

    def local_folder(self, ref: ActionRef) -> Path | None:
        """The folder serving `ref` in place of GitHub (WATERFLOW_GHA_LOCAL_REPOSITORIES)."""
        return self.settings.local_repositories.get(f"{ref.repository}@{ref.ref}".lower())

    async def fetch(self, ref: ActionRef) -> FetchedRepo:
        """The repository's files at `ref`; NodeError with one line when that cannot be."""
        local = self.local_folder(ref)
        if local is not None:
            if not local.is_dir():
                raise NodeError(
                    f"action {ref.uses}: local repository {str(local)!r} is not a directory",
                    retryable=False,
                )
            self.log(f"{ref.repository}@{ref.ref} is served from the local folder {local}")
            return FetchedRepo(root=local, sha="", source="local")
        return await asyncio.to_thread(self._fetch_sync, ref)

    def _fetch_sync(self, ref: ActionRef) -> FetchedRepo:
        sha = self._resolve(ref)
        target = self._repo_dir(ref) / sha
        if target.is_dir():
            self.log(f"{ref.repository}@{ref.ref} ({sha}) from the action cache")
            return FetchedRepo(root=target, sha=sha, source="cache")
        if self.settings.offline:
            raise NodeError(
                f"action {ref.uses}: commit {sha} is not in the action cache "
                f"{str(self.settings.cache_dir)!r} and WATERFLOW_GHA_OFFLINE is set",
                retryable=False,
            )
        import filelock

        target.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(target) + ".lock", timeout=LOCK_TIMEOUT)
        try:
            with lock:
                if target.is_dir():  # another step fetched it while this one waited
                    self.log(f"{ref.repository}@{ref.ref} ({sha}) from the action cache")
                    return FetchedRepo(root=target, sha=sha, source="cache")
                self._download(ref, sha, target)
        except filelock.Timeout:
            raise NodeError(
                f"action {ref.uses}: another step has been downloading it for more than "
                f"{LOCK_TIMEOUT:g}s (lock {lock.lock_file})"
            ) from None
        self.log(f"{ref.repository}@{ref.ref} ({sha}) downloaded into the action cache")
        return FetchedRepo(root=target, sha=sha, source="download")

    def _client(self) -> httpx.Client:
        import httpx

        headers = {"User-Agent": "waterflow-nodes-gha", "X-GitHub-Api-Version": "2022-11-28"}
        if self.settings.token:
            headers["Authorization"] = f"Bearer {self.settings.token}"
        timeout = httpx.Timeout(REQUEST_TIMEOUT, connect=CONNECT_TIMEOUT)
        return httpx.Client(headers=headers, timeout=timeout, follow_redirects=True)

    def _url(self, ref: ActionRef, what: str, value: str) -> str:
        owner = urllib.parse.quote(ref.owner, safe="")
        repo = urllib.parse.quote(ref.repo, safe="")
        return (
            f"{self.settings.api_url}/repos/{owner}/{repo}/{what}/"
            f"{urllib.parse.quote(value, safe='/')}"
        )

    def _http_error(self, ref: ActionRef, what: str, exc: Exception) -> NodeError:
        import httpx

        if isinstance(exc, httpx.HTTPStatusError):
            status = exc.response.status_code
            if status in (404, 422):
                problem = (
                    f"{self.settings.api_url} knows no repository {ref.repository} with ref "
                    f"{ref.ref!r}"
                    + ("" if self.settings.token else " (is it private? set WATERFLOW_GHA_TOKEN)")
                )
                return NodeError(f"action {ref.uses}: {problem}", retryable=False)
            if status in (401, 403):
                return NodeError(
                    f"action {ref.uses}: {what} refused with HTTP {status} by "
                    f"{self.settings.api_url} (check WATERFLOW_GHA_TOKEN)",
                    retryable=status == 403,
                )
            return NodeError(f"action {ref.uses}: {what} failed with HTTP {status}")
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return NodeError(f"action {ref.uses}: {what} from {self.settings.api_url} failed: {detail}")

    def _resolve(self, ref: ActionRef) -> str:
        if SHA_RE.fullmatch(ref.ref):
            return ref.ref
        ref_file = self._ref_file(ref)
        if self.settings.offline:
            try:
                sha = ref_file.read_text(encoding="ascii").strip()
            except OSError:
                raise NodeError(
                    f"action {ref.uses}: ref {ref.ref!r} was never resolved on this agent and "
                    "WATERFLOW_GHA_OFFLINE is set (run it once online, or pin a commit SHA)",
                    retryable=False,
                ) from None
            if SHA_RE.fullmatch(sha):
                return sha
            raise NodeError(
                f"action {ref.uses}: the action cache entry {str(ref_file)!r} is damaged",
                retryable=False,
            )
        import httpx

        try:
            with self._client() as client:
                response = client.get(
                    self._url(ref, "commits", ref.ref),
                    headers={"Accept": "application/vnd.github.sha"},
                )
                response.raise_for_status()
        except httpx.HTTPError as exc:
            raise self._http_error(ref, "resolving the ref", exc) from None
        sha = response.text.strip()
        if not SHA_RE.fullmatch(sha):
            raise NodeError(
                f"action {ref.uses}: {self.settings.api_url} answered the ref lookup with "
                f"{sha[:60]!r}, not a commit SHA"
            )
        _write_atomic(ref_file, sha + "\n")
        return sha

    def _download(self, ref: ActionRef, sha: str, target: Path) -> None:
        import httpx

        staging = Path(tempfile.mkdtemp(prefix=f".{sha}-", dir=target.parent))
        try:
            archive = staging / "action.tar.gz"
            try:
                with (
                    self._client() as client,
                    client.stream("GET", self._url(ref, "tarball", sha)) as response,
                ):
                    response.raise_for_status()
                    with archive.open("wb") as out:
                        for chunk in response.iter_bytes():
                            out.write(chunk)
            except httpx.HTTPError as exc:
                raise self._http_error(ref, "downloading the tarball", exc) from None
            tree = staging / "tree"
            _extract(archive, tree, ref)
            os.rename(tree, target)  # atomic: readers see nothing or everything
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _extract(archive: Path, into: Path, ref: ActionRef) -> None:
    """Extract a GitHub tarball, dropping its one top-level folder (`owner-repo-sha/`)."""
    import tarfile

    into.mkdir()
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            tops = {m.name.split("/", 1)[0] for m in members if m.name not in ("", ".")}
            tops.discard("pax_global_header")
            if len(tops) != 1:
                raise NodeError(
                    f"action {ref.uses}: the tarball does not hold one top-level folder",
                    retryable=False,
                )
            top = tops.pop()
            chosen = []
            for member in members:
                if not member.name.startswith(top + "/"):
                    continue
                member.name = member.name[len(top) + 1 :]
                if member.islnk() and member.linkname.startswith(top + "/"):
                    member.linkname = member.linkname[len(top) + 1 :]
                if member.name:
                    chosen.append(member)
            tar.extractall(into, members=chosen, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise NodeError(f"action {ref.uses}: cannot unpack its tarball: {exc}") from None


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ref-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = ["ActionStore", "FetchedRepo"]
