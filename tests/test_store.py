"""The event store's writer takes a live run's events from its log (no per-event call)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from deltakit_nb import protocol
from deltakit_nb.server.eventlog import EventLog
from deltakit_nb.server.runs import Run
from deltakit_nb.stores.sqlite import EventStore


def event_ids(store: EventStore, run_id: str) -> list[int]:
    """The ids of the events stored for a run, checked against the batches' texts."""
    with store._read_lock:
        rows = store._read.execute(
            "SELECT first_id, last_id, body FROM event_batches WHERE run_id = ? ORDER BY first_id",
            (run_id,),
        ).fetchall()
    ids = []
    for first, last, body in rows:
        texts = body.split("\n")
        assert [json.loads(t)["eventId"] for t in texts] == list(range(first, last + 1))
        ids += range(first, last + 1)
    return ids


def test_a_followed_log_is_written_whole_and_in_order(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "runs.sqlite")
    try:
        run = Run(id="r1", thread_id="t", agent="demo", message="m")
        store.save_run(run.summary())
        store.follow(run.id, run.log)
        for i in range(500):
            run.log.append_text(f"{i} ")
            if i == 250:
                assert store.flush(5)
                assert event_ids(store, "r1") == list(range(251))  # what was there at flush
        run.log.append(protocol.done(protocol.RunStatus.COMPLETED))
        run.log.close()
        assert store.flush(5)
        stored = store.load_run("r1")
        assert stored is not None and stored.events == run.log.encoded()
        with store._read_lock:
            rows = store._read.execute("SELECT count(*) FROM event_batches").fetchone()[0]
        assert rows < 20, rows  # a row per batch the writer took, not per event (501)
    finally:
        store.close()


def test_a_version_1_store_is_migrated_with_its_runs(tmp_path: Path) -> None:
    """The store of the previous release (a row per event) opens: its finished runs replay
    byte for byte and a run it left running is closed as interrupted after its events."""
    path = tmp_path / "runs.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(
        """
        CREATE TABLE runs (id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, agent TEXT NOT NULL,
            message TEXT NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL,
            finished_at REAL);
        CREATE INDEX runs_by_thread ON runs (thread_id, created_at);
        CREATE TABLE events (run_id TEXT NOT NULL, event_id INTEGER NOT NULL,
            body TEXT NOT NULL, PRIMARY KEY (run_id, event_id)) WITHOUT ROWID;
        PRAGMA user_version = 1;
        """
    )
    logs = {}
    for run_id, status in (("done-run", "completed"), ("live-run", "running")):
        logs[run_id] = log = EventLog(run_id)
        log.append(protocol.run_started(run_id, "t", "demo"))
        for i in range(3):
            log.append_text(f"{i} é ")
        if status == "completed":
            log.append(protocol.done(protocol.RunStatus.COMPLETED))
        db.execute("INSERT INTO runs VALUES (?, 't', 'demo', 'm', ?, 1.0, NULL)", (run_id, status))
        db.executemany(
            "INSERT INTO events VALUES (?, ?, ?)",
            [(run_id, i, text) for i, text in enumerate(log.encoded())],
        )
    db.close()

    store = EventStore(path)
    try:
        assert store._read.execute("PRAGMA user_version").fetchone()[0] == 2
        assert store.recover_interrupted() == ["live-run"]
        done = store.load_run("done-run")
        assert done is not None and done.events == logs["done-run"].encoded()
        live = store.load_run("live-run")
        assert live is not None and live.summary["status"] == "interrupted"
        assert live.events[:-1] == logs["live-run"].encoded()
        assert json.loads(live.events[-1]) == {
            "type": "done",
            "status": "interrupted",
            "eventId": 4,
            "runId": "live-run",
        }
        assert event_ids(store, "live-run") == [0, 1, 2, 3, 4]
    finally:
        store.close()


def test_events_of_a_deleted_thread_do_not_come_back(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "runs.sqlite")
    try:
        gone = Run(id="gone", thread_id="t", agent="demo", message="m")
        store.save_run(gone.summary())
        store.follow(gone.id, gone.log)
        for i in range(100):  # not yet pulled by the writer when the delete is queued
            gone.log.append_text(f"{i} ")
        gone.log.close()
        store.delete_thread("t")
        # A new run in the same thread, started after the delete, keeps all of its events.
        kept = Run(id="kept", thread_id="t", agent="demo", message="m")
        store.save_run(kept.summary())
        store.follow(kept.id, kept.log)
        kept.log.append_text("hello")
        kept.log.close()
        assert store.flush(5)
        assert store.load_run("gone") is None and event_ids(store, "gone") == []
        assert event_ids(store, "kept") == [0]
        assert store.thread_run_ids("t") == ["kept"]
    finally:
        store.close()


def idle_samples(store: EventStore) -> list[bool]:
    samples = []
    for _ in range(20):
        samples.append(store._idle)
        time.sleep(0.01)
    return samples


def test_the_writer_polls_while_a_log_is_open_and_sleeps_once_it_is_closed(
    tmp_path: Path,
) -> None:
    store = EventStore(tmp_path / "runs.sqlite")
    try:
        log = EventLog("r2")
        store.follow("r2", log)
        log.append_text("x")
        assert store.flush(5)
        assert not all(idle_samples(store))  # an open log: batches keep coming
        log.close()
        assert store.flush(5)
        time.sleep(0.05)
        assert all(idle_samples(store))  # nothing to follow: the writer waits for work
        assert event_ids(store, "r2") == [0]
    finally:
        store.close()


def test_a_store_without_the_cell_table_gets_it_and_keeps_its_version(tmp_path: Path) -> None:
    """The table of cell bindings is an addition: a store of the previous release (same schema
    version, no such table) opens, gets it, and binds."""
    path = tmp_path / "runs.sqlite"
    EventStore(path).close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP TABLE cell_threads")
    version = db.execute("PRAGMA user_version").fetchone()[0]
    db.close()
    store = EventStore(path)
    try:
        assert store.cell_thread("cell-x") is None
        store.bind_cell("cell-x", "t")
        assert store.flush(5)
        assert store.cell_thread("cell-x") == "t"
        with store._read_lock:
            assert store._read.execute("PRAGMA user_version").fetchone()[0] == version
        store.bind_cell("cell-y", "other")
        store.delete_thread("t")  # drops the bindings to the thread, and only those
        assert store.flush(5)
        assert (store.cell_thread("cell-x"), store.cell_thread("cell-y")) == (None, "other")
    finally:
        store.close()
