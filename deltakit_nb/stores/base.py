"""The one store interface the run engine uses, and the writer thread both stores share.

A store keeps runs and their encoded events (the texts exactly as they were sent, so a replay
after a restart is byte for byte the original). Writes are queued and committed by one writer
thread; a live run's events are not even queued: the writer takes them from the run's log
itself and commits whatever has piled up in one transaction per batch. Reads are blocking
calls: run them in a thread.

The events a batch took from one run are one row (`event_batches`: the ids first..last and
their texts, one per line; an encoded event is ASCII JSON and never holds a raw newline). A
row per event cost SQLite ~4 µs of CPU per event, on the core the streaming loop shares the
machine with; a row per batch costs a tenth of that.

A database that cannot be reached (a PostgreSQL server restarting) fails a transaction as a
whole: the writer keeps its writes and tries them again, reconnecting, until the database
takes them. Meanwhile the followed logs keep their events (they hold them anyway) and are
read again once it is back, so the first batch after an outage is longer. Rows are written
by key (run id, first event id), so a transaction retried after a commit whose answer was lost
writes the same rows again, never a second copy. The events waiting are bounded (see
`Store.max_backlog`): past the bound the store calls `on_backlog_full` once, and the run
engine stops the runs that would add more.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from .. import protocol

log = logging.getLogger("deltakit_nb")

BATCH_SECONDS = 0.02
TITLE_CHARS = 120
# Seconds between attempts while the database cannot be reached: doubling up to the maximum.
RETRY_FIRST = 0.1
RETRY_MAX = 2.0
# Events waiting for an unreachable database before the store says it is full.
MAX_BACKLOG = 100_000
RUN_COLUMNS = ("id", "thread_id", "agent", "message", "status", "created_at", "finished_at")
SUMMARY_KEYS = ("thread_id", "title", "created_at", "last_activity", "status", "runs")

Batch = tuple[str, int, int, str]  # run id, first and last event id, the texts one per line
Op = tuple[str, Any]  # a queued write: ("run", row), ("rows", [Batch]), ("prune", args), ...


def batch_row(run_id: str, first_id: int, events: list[str]) -> Batch:
    return (run_id, first_id, first_id + len(events) - 1, "\n".join(events))


class StoreError(RuntimeError):
    """A store that cannot be opened or used; the message says why."""


class FollowedLog(Protocol):
    """What the store reads of a run's event log (deltakit_nb.server.eventlog.EventLog)."""

    @property
    def closed(self) -> bool: ...

    def encoded(self) -> list[str]: ...


@dataclass
class StoredRun:
    summary: dict[str, Any]
    events: list[str]


class Store(ABC):
    """Runs and their events, written off the event loop (see the module docstring).

    Subclasses give the SQL: `_apply` (a list of writes in one transaction), `_unreachable`
    (is this failure the database being gone, worth a retry), `_close_writer` and the reads.
    """

    #: Where the store is, for messages (a file path or a URL without its password).
    location: str
    #: Events waiting for an unreachable database before `on_backlog_full` is called.
    max_backlog: int = MAX_BACKLOG

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Op] = queue.SimpleQueue()
        # The writer sleeps on `_kick` only when idle, so a busy stream costs one put per
        # event and no thread wake-up per event (each would be a GIL hand-off).
        self._kick = threading.Event()
        self._idle = False
        # Events written of the runs unfollowed while paused (writer thread only): a resumed
        # run goes on from there.
        self._unfollowed: dict[str, int] = {}
        self._closed = False
        self.write_errors = 0
        # Transactions the database could not take (unreachable) and took later.
        self.retried = 0
        # Whether the writer is waiting for the database, and the events it holds meanwhile.
        self.unreachable = False
        self.backlog = 0
        # Called (from the writer thread) once when the backlog passes max_backlog.
        self.on_backlog_full: Callable[[], None] | None = None
        self._writer = threading.Thread(target=self._write_loop, name="deltakit-store", daemon=True)

    def _start_writer(self) -> None:
        """Start the writer thread: a subclass calls this once its connections are open."""
        self._writer.start()
        # A server stopped by a signal may never call stop_extension: commit what is queued.
        atexit.register(self.close)

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
        self._close_reader()

    def _put(self, op: Op) -> None:
        self._queue.put(op)
        if self._idle:
            self._idle = False
            self._kick.set()

    def batches_committed(self, newest: dict[str, int]) -> None:  # noqa: B027
        """Called by the writer thread after each commit that wrote events, with the newest
        event id written per run. Nothing here; a store that tells other servers overrides
        it (it must not block for long: the next batch waits)."""

    # The writer thread.

    def _write_loop(self) -> None:
        followed: dict[str, tuple[FollowedLog, int]] = {}  # run id -> (log, events written)
        failed: list[Op] = []  # the writes of a transaction the database could not take
        held: list[Op] = []  # ops taken from the queue, waiting for it to be back
        retry_at, delay = 0.0, RETRY_FIRST
        while True:
            self._idle = True
            # Checked after _idle is set, so a put cannot slip between; live logs are polled.
            if self._queue.empty() and not followed and not failed:
                self._kick.wait()
            self._kick.clear()
            self._idle = False
            time.sleep(BATCH_SECONDS)  # let a stream pile up into one transaction
            while True:
                try:
                    held.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stopping = any(kind == "stop" for kind, _ in held)
            if failed:
                self._count_backlog(failed, followed)
                if time.monotonic() < retry_at and not stopping:
                    continue  # the logs keep their events meanwhile
            ops = self._with_pulled_events(held, followed)
            held = []
            waiters = [arg for kind, arg in ops if kind == "flush"]
            writes = failed + [op for op in ops if op[0] not in ("flush", "stop")]
            failed = self._commit(writes)
            if failed and not stopping:
                if not self.unreachable:
                    self.unreachable = True
                    log.warning(
                        "deltakit_nb: the event store %s cannot be reached; its writes wait "
                        "and are retried",
                        self.location,
                    )
                retry_at, delay = time.monotonic() + delay, min(delay * 2, RETRY_MAX)
                held = [("flush", w) for w in waiters]  # done once the writes are
                continue
            if failed:  # stopping: what cannot be written now is lost
                self.write_errors += 1
                log.error(
                    "deltakit_nb: the event store %s cannot be reached at shutdown; %d "
                    "event(s) not written",
                    self.location,
                    self._count_backlog(failed, followed),
                )
            elif self.unreachable:
                self.unreachable, self.backlog, delay = False, 0, RETRY_FIRST
                self.retried += 1
                log.warning("deltakit_nb: the event store %s is back", self.location)
            for waiter in waiters:
                waiter.set()
            if stopping:
                self._close_writer()
                return

    def _commit(self, writes: list[Op]) -> list[Op]:
        """Commit `writes` in one transaction, or else one by one (the writer must outlive
        any bad write: a bad one loses only itself). What comes back waits for the
        database to be reachable again."""
        if not writes:
            return []
        try:
            self._apply(writes)
            self._committed(writes)
            return []
        except Exception as exc:
            if self._unreachable(exc):
                return writes
        singles = [
            ("rows", [row]) if kind == "rows" else (kind, arg)
            for kind, arg in writes
            for row in (self._one_per_event(arg) if kind == "rows" else [None])
        ]
        for i, op in enumerate(singles):
            try:
                self._apply([op])
                self._committed([op])
            except Exception as exc:
                if self._unreachable(exc):
                    return singles[i:]
                self.write_errors += 1
                log.error(
                    "deltakit_nb: writing %s to the event store %s failed: %s",
                    op[0],
                    self.location,
                    exc,
                )
        return []

    def _committed(self, writes: list[Op]) -> None:
        newest: dict[str, int] = {}
        for kind, arg in writes:
            if kind == "rows":
                for run_id, _, last, _ in arg:
                    newest[run_id] = last
        if newest:
            try:
                self.batches_committed(newest)
            except Exception:
                log.error("deltakit_nb: batches_committed failed", exc_info=True)

    def _count_backlog(self, failed: list[Op], followed: dict[str, tuple[FollowedLog, int]]) -> int:
        """The events waiting for the database (held rows and the logs' unwritten events);
        past max_backlog, on_backlog_full is called once per outage."""
        waiting = sum(
            last - first + 1 for kind, arg in failed if kind == "rows" for _, first, last, _ in arg
        )
        waiting += sum(len(events.encoded()) - written for events, written in followed.values())
        full = waiting > self.max_backlog >= self.backlog
        self.backlog = waiting
        if full and self.on_backlog_full is not None:
            log.error(
                "deltakit_nb: %d event(s) wait for the event store %s (max %d): stopping the "
                "runs that would add more",
                waiting,
                self.location,
                self.max_backlog,
            )
            try:
                self.on_backlog_full()
            except Exception:
                log.error("deltakit_nb: on_backlog_full failed", exc_info=True)
        return waiting

    def _with_pulled_events(
        self, ops: list[Op], followed: dict[str, tuple[FollowedLog, int]]
    ) -> list[Op]:
        """`ops` in order, with the followed logs' new events written before each delete or
        prune (so what they remove is gone for good) and at the end."""
        out: list[Op] = []
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
    def _pull(followed: dict[str, tuple[FollowedLog, int]]) -> list[Op]:
        """The events appended to the followed logs since the last pull, as row batches;
        closed logs are done with once pulled. (Reading a list another thread appends to is
        safe under the GIL; `closed` is read first, so a closed log has nothing left after.)"""
        ops: list[Op] = []
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

    # What a store's SQL gives.

    @abstractmethod
    def _apply(self, ops: list[Op]) -> None:
        """Write `ops` (kinds: run, rows, bind_cell, delete_thread, prune) in one transaction,
        in order; all or nothing."""

    def _unreachable(self, exc: Exception) -> bool:
        """Whether `exc` says the database is out of reach (retry the transaction later)
        rather than that a write is bad."""
        return False

    @abstractmethod
    def _close_writer(self) -> None: ...

    @abstractmethod
    def _close_reader(self) -> None: ...

    # Reads: blocking, for a worker thread.

    @abstractmethod
    def load_run(self, run_id: str) -> StoredRun | None: ...

    @abstractmethod
    def load_events(self, run_id: str, after: int = -1) -> list[str]:
        """The run's stored events with an id above `after`, in order (a replay from any
        id; reads only the batches that hold them)."""

    @staticmethod
    def _events_after(rows: Iterable[tuple[int, str]], after: int) -> list[str]:
        """The texts of batch rows (first id, body) with an id above `after`."""
        out: list[str] = []
        for first, body in rows:
            texts = body.split("\n")
            out += texts[max(0, after + 1 - first) :] if after >= first else texts
        return out

    @abstractmethod
    def thread_run_ids(self, thread_id: str) -> list[str]: ...

    @abstractmethod
    def paused_run_ids(self) -> list[str]:
        """The runs waiting for a decision (they outlive a restart), oldest first."""

    @abstractmethod
    def cell_thread(self, key: str) -> str | None: ...

    @abstractmethod
    def thread_summaries(self, limit: int) -> list[dict[str, Any]]:
        """The threads with the newest activity first: SUMMARY_KEYS per thread (title: the
        start of its first message, created_at: its first run's, last_activity and status:
        its newest run's, runs: how many)."""

    @abstractmethod
    def recover_interrupted(self) -> list[str]:
        """Mark runs left pending or running by a dead server as interrupted, each closed
        with a terminal event after the events it had, so clients stop waiting."""

    @staticmethod
    def _summary(row: tuple[Any, ...]) -> dict[str, Any]:
        summary = dict(zip(RUN_COLUMNS, row, strict=True))
        summary["run_id"] = summary.pop("id")
        return summary


def interrupted_event(run_id: str, event_id: int) -> str:
    """The terminal event a run cut off by a dead server gets, encoded."""
    done = protocol.done(protocol.RunStatus.INTERRUPTED)
    return protocol.encode_run_event(done, event_id, run_id, protocol.encode_str(run_id))
