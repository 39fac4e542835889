"""The durable event store: runs and their events in SQLite (WAL), written off the event loop.

Writes are queued; a live run's events are not even queued: the writer thread takes them from
the run's log itself and commits whatever has piled up in one transaction per batch. Reads are
blocking calls: run them in a thread. The store holds the encoded event texts exactly as they
were sent, so a replay after a restart is byte-for-byte the original.

The events a batch took from one run are one row (`event_batches`: the ids first..last and
their texts, one per line; an encoded event is ASCII JSON and never holds a raw newline). A
row per event cost SQLite ~4 µs of CPU per event, on the core the streaming loop shares the
machine with; a row per batch costs a tenth of that.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .. import protocol
from ..protocol import RunStatus

log = logging.getLogger("deltakit_nb")

SCHEMA_VERSION = 2
BATCH_SECONDS = 0.02
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
TITLE_CHARS = 120
INSERT_BATCH = "INSERT OR REPLACE INTO event_batches VALUES (?, ?, ?, ?)"
Batch = tuple[str, int, int, str]  # run id, first and last event id, the texts one per line


def batch_row(run_id: str, first_id: int, events: list[str]) -> Batch:
    return (run_id, first_id, first_id + len(events) - 1, "\n".join(events))


RUN_COLUMNS = ("id", "thread_id", "agent", "message", "status", "created_at", "finished_at")


class StoreError(RuntimeError):
    pass


class FollowedLog(Protocol):
    """What the store reads of a run's event log (deltakit_nb.server.eventlog.EventLog)."""

    @property
    def closed(self) -> bool: ...

    def encoded(self) -> list[str]: ...


@dataclass
class StoredRun:
    summary: dict[str, Any]
    events: list[str]


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=2.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class EventStore:
    def __init__(self, path: str | Path):
        self.path = str(path)
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
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        # The writer sleeps on `_kick` only when idle, so a busy stream costs one put per
        # event and no thread wake-up per event (each would be a GIL hand-off).
        self._kick = threading.Event()
        self._idle = False
        # Events written of the runs unfollowed while paused (writer thread only): a resumed
        # run goes on from there.
        self._unfollowed: dict[str, int] = {}
        self._writer = threading.Thread(target=self._write_loop, name="deltakit-store", daemon=True)
        self._writer.start()
        # A server stopped by a signal may never call stop_extension: commit what is queued.
        atexit.register(self.close)
        self._closed = False
        self.write_errors = 0

    # Writes: queued, in order, committed by the writer thread.

    def save_run(self, summary: dict[str, Any]) -> None:
        row = (summary[k if k != "id" else "run_id"] for k in RUN_COLUMNS)
        self._put(("run", tuple(protocol.clean_text(v) if isinstance(v, str) else v for v in row)))

    def follow(self, run_id: str, events: FollowedLog, stored: int = 0) -> None:
        """Persist the events of a live run as they are appended to `events` (its log), until
        the log is closed. The writer thread takes them from the log itself every batch, so
        the streaming path pays nothing per event for the store. `stored`: how many of the
        log's events the store holds already (a paused run loaded from it), unless the
        writer knows better (a run it followed until it paused)."""
        self._put(("follow", (run_id, events, stored)))

    def unfollow(self, run_id: str) -> None:
        """Write what the run's log holds and stop looking at it (a paused run: its log stays
        open, and a followed log keeps the writer polling); `follow` takes it up again."""
        self._put(("unfollow", run_id))

    def delete_thread(self, thread_id: str) -> None:
        """Drop the thread's runs, their events and the cell bindings to it."""
        self._put(("delete_thread", thread_id))

    def bind_cell(self, key: str, thread_id: str) -> None:
        self._put(("bind_cell", (key, thread_id, time.time())))

    def prune(
        self, keep_per_thread: int, max_age_seconds: float, thread_id: str | None = None
    ) -> None:
        """Drop finished runs beyond the newest `keep_per_thread` of a thread (of every
        thread when thread_id is None) and those older than `max_age_seconds` (0: no limit)."""
        self._put(("prune", (keep_per_thread, max_age_seconds, thread_id)))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is committed."""
        done = threading.Event()
        self._put(("flush", done))
        return done.wait(timeout)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self.flush()
        self._put(("stop", None))
        self._writer.join(5)
        self._read.close()

    def _put(self, op: tuple[str, Any]) -> None:
        self._queue.put(op)
        if self._idle:
            self._idle = False
            self._kick.set()

    def _write_loop(self) -> None:
        followed: dict[str, tuple[FollowedLog, int]] = {}  # run id -> (log, events written)
        while True:
            self._idle = True
            # Checked after _idle is set, so a put cannot slip between; live logs are polled.
            if self._queue.empty() and not followed:
                self._kick.wait()
            self._kick.clear()
            self._idle = False
            time.sleep(BATCH_SECONDS)  # let a stream pile up into one transaction
            ops: list[tuple[str, Any]] = []
            while True:
                try:
                    ops.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            ops = self._with_pulled_events(ops, followed)
            waiters = [arg for kind, arg in ops if kind == "flush"]
            writes = [op for op in ops if op[0] not in ("flush", "stop")]
            try:
                self._apply(writes)
            except Exception:  # the writer must outlive any bad write: retry one by one
                singles = [
                    ("rows", [row]) if kind == "rows" else (kind, arg)
                    for kind, arg in writes
                    for row in (self._one_per_event(arg) if kind == "rows" else [None])
                ]
                for op in singles:
                    try:
                        self._apply([op])
                    except Exception as exc:
                        self.write_errors += 1
                        log.error(
                            "deltakit_nb: writing %s to the event store %s failed: %s",
                            op[0],
                            self.path,
                            exc,
                        )
            for waiter in waiters:
                waiter.set()
            if any(kind == "stop" for kind, _ in ops):
                self._write.close()
                return

    def _with_pulled_events(
        self, ops: list[tuple[str, Any]], followed: dict[str, tuple[FollowedLog, int]]
    ) -> list[tuple[str, Any]]:
        """`ops` in order, with the followed logs' new events written before each delete or
        prune (so what they remove is gone for good) and at the end."""
        out: list[tuple[str, Any]] = []
        for kind, arg in ops:
            if kind == "follow":
                run_id, events, stored = arg
                followed[run_id] = (events, self._unfollowed.pop(run_id, stored))
                continue
            if kind == "unfollow":
                if arg in followed:
                    one = {arg: followed.pop(arg)}
                    out += self._pull(one)
                    if arg in one:  # (a closed log is done with)
                        self._unfollowed[arg] = one[arg][1]
                continue
            if kind in ("delete_thread", "prune"):
                out += self._pull(followed)
            out.append((kind, arg))
        return out + self._pull(followed)

    @staticmethod
    def _pull(followed: dict[str, tuple[FollowedLog, int]]) -> list[tuple[str, Any]]:
        """The events appended to the followed logs since the last pull, as row batches;
        closed logs are done with once pulled. (Reading a list another thread appends to is
        safe under the GIL; `closed` is read first, so a closed log has nothing left after.)"""
        ops: list[tuple[str, Any]] = []
        for run_id, (events, written) in list(followed.items()):
            closed = events.closed
            new = events.encoded()[written:]
            if new:
                ops.append(("rows", [batch_row(run_id, written, new)]))
                followed[run_id] = (events, written + len(new))
            if closed:
                del followed[run_id]
        return ops

    @staticmethod
    def _one_per_event(rows: list[Batch]) -> list[Batch]:
        """The same events as batches of one, so that a bad one loses only itself."""
        return [
            batch_row(run_id, first + i, [text])
            for run_id, first, _, body in rows
            for i, text in enumerate(body.split("\n"))
        ]

    def _apply(self, ops: list[tuple[str, Any]]) -> None:
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
        keys = ("thread_id", "title", "created_at", "last_activity", "status", "runs")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def recover_interrupted(self) -> list[str]:
        """Mark runs left pending or running by a dead server as interrupted, each closed
        with a terminal event after the events it had, so clients stop waiting."""
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
                done = protocol.done(RunStatus.INTERRUPTED)
                rid = protocol.encode_str(run_id)
                text = protocol.encode_run_event(done, last + 1, run_id, rid)
                conn.execute(INSERT_BATCH, batch_row(run_id, last + 1, [text]))
                conn.execute(
                    "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
                    (RunStatus.INTERRUPTED.value, now, run_id),
                )
            conn.execute("COMMIT")
        return [r[0] for r in rows]

    @staticmethod
    def _summary(row: tuple[Any, ...]) -> dict[str, Any]:
        summary = dict(zip(RUN_COLUMNS, row, strict=True))
        summary["run_id"] = summary.pop("id")
        return summary


def open_store(path: str | Path) -> EventStore | None:
    """The store, or None (runs stay in memory) if the file cannot serve as one."""
    try:
        return EventStore(path)
    except (StoreError, OSError) as exc:
        log.error(
            "deltakit_nb: event store %s is unusable (%s); keeping runs in memory only. "
            "Move the file away to start a fresh store.",
            path,
            exc,
        )
        return None
