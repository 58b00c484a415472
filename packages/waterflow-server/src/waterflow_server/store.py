"""The server's SQLite database: agents and the nodes they offer, and step log lines.

One connection, used from one worker thread (`Store.call`), so the event loop never waits on
the disk and SQLite never sees two writers. Log lines are keyed by (run, job, step, attempt,
seq): a batch an agent sends again is stored once. The schema carries its version in
`PRAGMA user_version`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import attrs

__all__ = ["AgentRecord", "LogRow", "Store", "StoreError", "StoredNode"]

T = TypeVar("T")
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (
    agent_id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    agent_version TEXT NOT NULL,
    python_version TEXT NOT NULL,
    pid INTEGER NOT NULL,
    task_queues TEXT NOT NULL,        -- JSON list
    versions TEXT NOT NULL,           -- JSON object
    reported_at REAL NOT NULL,
    lease_until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_nodes (
    agent_id TEXT NOT NULL REFERENCES agents(agent_id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    info BLOB NOT NULL,               -- waterflow.v1.NodeInfo, serialized
    PRIMARY KEY (agent_id, name)
);
CREATE TABLE IF NOT EXISTS log_lines (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    job TEXT NOT NULL,
    step TEXT NOT NULL,
    step_index INTEGER NOT NULL,
    step_name TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    time REAL NOT NULL,
    stream TEXT NOT NULL,
    text TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    UNIQUE (run_id, job, step, attempt, seq)
);
CREATE INDEX IF NOT EXISTS log_lines_run ON log_lines (run_id, id);
CREATE INDEX IF NOT EXISTS log_lines_run_time ON log_lines (run_id, time);
CREATE TABLE IF NOT EXISTS log_ends (
    run_id TEXT NOT NULL,
    job TEXT NOT NULL,
    step TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    total INTEGER NOT NULL,
    PRIMARY KEY (run_id, job, step, attempt)
);
"""


class StoreError(Exception):
    """The database cannot be opened or used; one line naming the file."""


@attrs.frozen
class AgentRecord:
    agent_id: str
    host: str
    agent_version: str
    python_version: str
    pid: int
    task_queues: tuple[str, ...]
    versions: dict[str, str]
    reported_at: float
    lease_until: float


@attrs.frozen
class StoredNode:
    agent_id: str
    name: str
    version: str
    info: bytes


@attrs.frozen
class LogRow:
    id: int
    run_id: str
    job: str
    step: str
    step_index: int
    step_name: str
    attempt: int
    seq: int
    time: float
    stream: str
    text: str
    agent_id: str


@attrs.frozen
class NewLine:
    """A line as an agent sends it."""

    run_id: str
    job: str
    step: str
    step_index: int
    step_name: str
    attempt: int
    seq: int
    time: float
    stream: str
    text: str


class Store:
    """The database; every method runs on the store's own thread (use `call` from async code)."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="waterflow-store"
        )
        self._db: sqlite3.Connection | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"database {self.path} has schema version {version}, newer than this "
                    f"server's {SCHEMA_VERSION}; upgrade waterflow-server"
                )
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise StoreError(f"database {self.path}: {exc}") from None
        except OSError as exc:
            raise StoreError(f"database {self.path}: {exc.strerror}") from None
        self._db = db

    async def open(self) -> None:
        await self.call(self._open)

    async def close(self) -> None:
        def close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await self.call(close)
        self._executor.shutdown(wait=True)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"database {self.path} is not open")
        return self._db

    # -- agents ----------------------------------------------------------------------------

    def save_report(
        self,
        agent: AgentRecord,
        nodes: Iterable[tuple[str, str, bytes]],
    ) -> None:
        """Replace everything known about `agent` (its record and nodes) in one transaction."""
        db = self.db
        with _transaction(db):
            db.execute("DELETE FROM agent_nodes WHERE agent_id = ?", (agent.agent_id,))
            db.execute(
                "INSERT OR REPLACE INTO agents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    agent.agent_id,
                    agent.host,
                    agent.agent_version,
                    agent.python_version,
                    agent.pid,
                    json.dumps(list(agent.task_queues)),
                    json.dumps(agent.versions, sort_keys=True),
                    agent.reported_at,
                    agent.lease_until,
                ),
            )
            db.executemany(
                "INSERT OR REPLACE INTO agent_nodes VALUES (?, ?, ?, ?)",
                [(agent.agent_id, name, version, info) for name, version, info in nodes],
            )

    def renew(self, agent_id: str, lease_until: float) -> bool:
        """Extend the lease of a known agent; False when the agent is unknown."""
        cursor = self.db.execute(
            "UPDATE agents SET lease_until = ? WHERE agent_id = ?", (lease_until, agent_id)
        )
        return cursor.rowcount > 0

    def agents(
        self, *, live_at: float | None = None, agent_id: str | None = None
    ) -> list[AgentRecord]:
        """The agents known (whose lease runs at `live_at`; with the id `agent_id`)."""
        clauses: list[str] = []
        args: tuple[Any, ...] = ()
        if live_at is not None:
            clauses.append("lease_until > ?")
            args += (live_at,)
        if agent_id is not None:
            clauses.append("agent_id = ?")
            args += (agent_id,)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.db.execute(f"SELECT * FROM agents{where} ORDER BY agent_id", args).fetchall()
        return [
            AgentRecord(
                agent_id=r[0],
                host=r[1],
                agent_version=r[2],
                python_version=r[3],
                pid=r[4],
                task_queues=tuple(json.loads(r[5])),
                versions=json.loads(r[6]),
                reported_at=r[7],
                lease_until=r[8],
            )
            for r in rows
        ]

    def nodes_of(self, agent_ids: Iterable[str]) -> list[StoredNode]:
        ids = list(agent_ids)
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            f"SELECT agent_id, name, version, info FROM agent_nodes WHERE agent_id IN ({marks}) "
            "ORDER BY name, agent_id",
            ids,
        ).fetchall()
        return [StoredNode(*r) for r in rows]

    # -- logs ------------------------------------------------------------------------------

    def add_lines(
        self,
        agent_id: str,
        lines: Iterable[NewLine],
        ends: Iterable[tuple[str, str, str, int, int]],
    ) -> int:
        """Store lines (once each) and step ends; returns how many lines were new."""
        db = self.db
        with _transaction(db):
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO log_lines (run_id, job, step, step_index, step_name, "
                "attempt, seq, time, stream, text, agent_id) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        x.run_id,
                        x.job,
                        x.step,
                        x.step_index,
                        x.step_name,
                        x.attempt,
                        x.seq,
                        x.time,
                        x.stream,
                        x.text,
                        agent_id,
                    )
                    for x in lines
                ],
            )
            stored = db.total_changes - before
            db.executemany("INSERT OR REPLACE INTO log_ends VALUES (?, ?, ?, ?, ?)", list(ends))
        return stored

    def lines(
        self,
        run_id: str,
        *,
        after: int = 0,
        job: str | None = None,
        step: str | None = None,
        limit: int = 1000,
    ) -> list[LogRow]:
        """Lines of a run stored after cursor `after`, in the order they arrived."""
        query = "SELECT * FROM log_lines WHERE run_id = ? AND id > ?"
        args: list[Any] = [run_id, after]
        if job:
            query += " AND job = ?"
            args.append(job)
        if step:
            query += " AND (step = ? OR step_name = ?)"
            args += [step, step]
        query += " ORDER BY id LIMIT ?"
        args.append(limit)
        return [LogRow(*r) for r in self.db.execute(query, args).fetchall()]

    def prune_logs(self, before: float) -> int:
        """Remove the lines and step ends of every run whose last line is older than `before`
        (seconds since the epoch); returns how many runs. A run still writing keeps all of
        its lines, however old the first ones."""
        db = self.db
        with _transaction(db):
            runs = [
                (run_id,)
                for (run_id,) in db.execute(
                    "SELECT run_id FROM log_lines GROUP BY run_id HAVING MAX(time) < ?",
                    (before,),
                )
            ]
            db.executemany("DELETE FROM log_lines WHERE run_id = ?", runs)
            db.executemany("DELETE FROM log_ends WHERE run_id = ?", runs)
        return len(runs)

    def forget_agents(self, before: float) -> int:
        """Remove the agents whose lease ended before `before` (seconds since the epoch), with
        their nodes; returns how many. Their step log lines stay (they belong to runs)."""
        with _transaction(self.db):
            cursor = self.db.execute("DELETE FROM agents WHERE lease_until < ?", (before,))
        return cursor.rowcount

    def open_steps(self, run_id: str) -> int:
        """How many step attempts of the run have lines but no end yet."""
        row = self.db.execute(
            "SELECT COUNT(*) FROM (SELECT DISTINCT job, step, attempt FROM log_lines "
            "WHERE run_id = ?) AS s WHERE NOT EXISTS (SELECT 1 FROM log_ends AS e WHERE "
            "e.run_id = ? AND e.job = s.job AND e.step = s.step AND e.attempt = s.attempt)",
            (run_id, run_id),
        ).fetchone()
        return int(row[0])


class _transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
