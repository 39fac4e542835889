"""The embedded store: runs and their events in a SQLite file (WAL), the zero-set-up default.

The writer thread and the batching are the shared ones (stores/base.py); this holds the SQL.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..protocol import RunStatus
from .base import (
    RUN_COLUMNS,
    SUMMARY_KEYS,
    TITLE_CHARS,
    Batch,
    FollowedLog,
    Op,
    Store,
    StoredRun,
    StoreError,
    batch_row,
    interrupted_event,
)

__all__ = [
    "Batch",
    "EventStore",
    "FollowedLog",
    "SqliteStore",
    "StoreError",
    "StoredRun",
    "batch_row",
    "open_store",
]

log = logging.getLogger("deltakit_nb")

SCHEMA_VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    message TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS runs_by_thread ON runs (thread_id, created_at);
CREATE TABLE IF NOT EXISTS event_batches (
    run_id TEXT NOT NULL,
    first_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (run_id, first_id)
);
"""
# Version 1 had a row per event; its rows become batches of one (after SCHEMA has made the
# batch table).
MIGRATE_FROM_1 = """
INSERT INTO event_batches SELECT run_id, event_id, event_id, body FROM events;
DROP TABLE events;
"""
# The thread each notebook cell last showed (deltakit_nb.kernel.cellkey). An addition that needs no
# schema version: created when missing, and a store of this version without it reads the same.
CELL_SCHEMA = """
CREATE TABLE IF NOT EXISTS cell_threads (
    key TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    updated_at REAL
);
CREATE INDEX IF NOT EXISTS cell_threads_by_thread ON cell_threads (thread_id);
"""
# Per thread: the newest run (status, last activity; SQLite takes the bare columns of a MAX()
# aggregate from the row that has the maximum) and the run count, in one pass over the runs
# table, never over the events; then the title and start of the listed threads only, from the
# runs_by_thread index.
THREAD_SUMMARIES = """
SELECT thread_id,
       (SELECT substr(message, 1, ?) FROM runs f WHERE f.thread_id = g.thread_id
        ORDER BY created_at LIMIT 1),
       (SELECT MIN(created_at) FROM runs f WHERE f.thread_id = g.thread_id),
       last_activity, status, runs
FROM (
    SELECT thread_id, MAX(created_at), COALESCE(finished_at, created_at) AS last_activity,
           status, COUNT(*) AS runs
    FROM runs GROUP BY thread_id
) AS g
ORDER BY last_activity DESC
LIMIT ?
"""
INSERT_BATCH = "INSERT OR REPLACE INTO event_batches VALUES (?, ?, ?, ?)"


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=2.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class SqliteStore(Store):
    def __init__(self, path: str | Path):
        super().__init__()
        self.path = self.location = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._read = _connect(self.path)
            version = self._read.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                self._read.executescript(SCHEMA)
                self._read.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif version == 1:
                self._read.executescript(
                    f"BEGIN;{SCHEMA}{MIGRATE_FROM_1}PRAGMA user_version={SCHEMA_VERSION};COMMIT;"
                )
            elif version != SCHEMA_VERSION:
                raise StoreError(f"schema version {version}, expected {SCHEMA_VERSION}")
            self._read.executescript(CELL_SCHEMA)
            cols = [r[1] for r in self._read.execute("PRAGMA table_info(runs)")]
            if tuple(cols) != RUN_COLUMNS:
                raise StoreError(f"unexpected runs table columns {cols}")
            self._read.execute(
                "SELECT run_id, first_id, last_id, body FROM event_batches LIMIT 1"
            ).fetchall()
            self._write = _connect(self.path)
        except sqlite3.Error as exc:
            raise StoreError(f"{type(exc).__name__}: {exc}") from exc
        self._read_lock = threading.Lock()
        self._start_writer()

    def _close_writer(self) -> None:
        self._write.close()

    def _close_reader(self) -> None:
        self._read.close()

    def _apply(self, ops: list[Op]) -> None:
        if not ops:
            return
        conn = self._write
        conn.execute("BEGIN")
        try:
            events: list[Batch] = []
            for kind, arg in ops:
                if kind == "rows":
                    events += arg
                    continue
                if events:
                    conn.executemany(INSERT_BATCH, events)
                    events = []
                if kind == "run":
                    conn.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)", arg)
                elif kind == "bind_cell":
                    conn.execute("INSERT OR REPLACE INTO cell_threads VALUES (?, ?, ?)", arg)
                elif kind == "delete_thread":
                    conn.execute("DELETE FROM cell_threads WHERE thread_id = ?", (arg,))
                    self._delete_runs(
                        conn,
                        [
                            r[0]
                            for r in conn.execute("SELECT id FROM runs WHERE thread_id = ?", (arg,))
                        ],
                    )
                elif kind == "prune":
                    self._prune(conn, *arg)
            if events:
                conn.executemany(INSERT_BATCH, events)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _delete_runs(conn: sqlite3.Connection, run_ids: Iterable[str]) -> None:
        ids = [(i,) for i in run_ids]
        conn.executemany("DELETE FROM event_batches WHERE run_id = ?", ids)
        conn.executemany("DELETE FROM runs WHERE id = ?", ids)

    def _prune(
        self, conn: sqlite3.Connection, keep_per_thread: int, max_age: float, thread_id: str | None
    ) -> None:
        doomed: list[str] = []
        if max_age > 0:
            cutoff = time.time() - max_age
            doomed += [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM runs WHERE created_at < ? "
                    "AND status NOT IN ('pending', 'running')",
                    (cutoff,),
                )
            ]
        if keep_per_thread > 0:
            where, args = ("WHERE thread_id = ?", (thread_id,)) if thread_id else ("", ())
            # A paused run waits for the user: only its age removes it.
            doomed += [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM (SELECT id, status, ROW_NUMBER() OVER (PARTITION BY thread_id "
                    f"ORDER BY created_at DESC) AS n FROM runs {where}) "
                    "WHERE n > ? AND status NOT IN ('pending', 'running', 'paused')",
                    (*args, keep_per_thread),
                )
            ]
        self._delete_runs(conn, set(doomed))

    # Reads: blocking, for a worker thread.

    def load_run(self, run_id: str) -> StoredRun | None:
        with self._read_lock:
            row = self._read.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            events = [
                text
                for (body,) in self._read.execute(
                    "SELECT body FROM event_batches WHERE run_id = ? ORDER BY first_id", (run_id,)
                )
                for text in body.split("\n")
            ]
        return StoredRun(self._summary(row), events)

    def load_events(self, run_id: str, after: int = -1) -> list[str]:
        with self._read_lock:
            rows = self._read.execute(
                "SELECT first_id, body FROM event_batches WHERE run_id = ? AND last_id > ? "
                "ORDER BY first_id",
                (run_id, after),
            ).fetchall()
        return self._events_after(rows, after)

    def thread_run_ids(self, thread_id: str) -> list[str]:
        with self._read_lock:
            return [
                r[0]
                for r in self._read.execute(
                    "SELECT id FROM runs WHERE thread_id = ? ORDER BY created_at", (thread_id,)
                )
            ]

    def paused_run_ids(self) -> list[str]:
        """The runs waiting for a decision (they outlive a restart), oldest first."""
        with self._read_lock:
            return [
                r[0]
                for r in self._read.execute(
                    "SELECT id FROM runs WHERE status = ? ORDER BY created_at",
                    (RunStatus.PAUSED.value,),
                )
            ]

    def cell_thread(self, key: str) -> str | None:
        with self._read_lock:
            row = self._read.execute(
                "SELECT thread_id FROM cell_threads WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else str(row[0])

    def thread_summaries(self, limit: int) -> list[dict[str, Any]]:
        """The threads with the newest activity first (see THREAD_SUMMARIES)."""
        with self._read_lock:
            rows = self._read.execute(THREAD_SUMMARIES, (TITLE_CHARS, limit)).fetchall()
        return [dict(zip(SUMMARY_KEYS, row, strict=True)) for row in rows]

    def recover_interrupted(self) -> list[str]:
        now = time.time()
        with self._read_lock:
            conn = self._read
            rows = conn.execute(
                "SELECT id, (SELECT COALESCE(MAX(last_id), -1) FROM event_batches "
                "WHERE run_id = id) "
                "FROM runs WHERE status IN ('pending', 'running')"
            ).fetchall()
            conn.execute("BEGIN")
            for run_id, last in rows:
                text = interrupted_event(run_id, last + 1)
                conn.execute(INSERT_BATCH, batch_row(run_id, last + 1, [text]))
                conn.execute(
                    "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
                    (RunStatus.INTERRUPTED.value, now, run_id),
                )
            conn.execute("COMMIT")
        return [r[0] for r in rows]


# The name of the previous releases.
EventStore = SqliteStore


def open_store(path: str | Path) -> SqliteStore | None:
    """The store, or None (runs stay in memory) if the file cannot serve as one."""
    try:
        return SqliteStore(path)
    except (StoreError, OSError) as exc:
        log.error(
            "deltakit_nb: event store %s is unusable (%s); keeping runs in memory only. "
            "Move the file away to start a fresh store.",
            path,
            exc,
        )
        return None
