"""The event store's writer takes a live run's events from its log (no per-event call)."""

from __future__ import annotations

import time
from pathlib import Path

from deltakit_nb import protocol
from deltakit_nb.eventlog import EventLog
from deltakit_nb.runs import Run
from deltakit_nb.store import EventStore


def event_ids(store: EventStore, run_id: str) -> list[int]:
    with store._read_lock:
        rows = store._read.execute(
            "SELECT event_id FROM events WHERE run_id = ? ORDER BY event_id", (run_id,)
        ).fetchall()
    return [r[0] for r in rows]


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
