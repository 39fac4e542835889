"""One suite, both stores: SQLite (a file) and PostgreSQL (a real server, a fresh database per
test) behave the same behind the interface the run engine uses (deltakit_nb.stores.base)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from deltakit_nb import protocol
from deltakit_nb.protocol import RunStatus
from deltakit_nb.server.runs import Run
from deltakit_nb.stores import Store, StoreError, open_store
from deltakit_nb.stores.postgres import PostgresStore
from deltakit_nb.stores.sqlite import SqliteStore

if TYPE_CHECKING:
    from pgserver import PostgresServer

Opener = Callable[[], Store]


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens the store of this test (again: the same file or database), closed after."""
    location = (
        request.getfixturevalue("pg_url")
        if request.param == "postgres"
        else str(tmp_path / "runs.sqlite")
    )
    opened: list[Store] = []

    def open_it() -> Store:
        store = open_store(location)
        assert store is not None
        opened.append(store)
        return store

    try:
        yield open_it
    finally:
        for store in opened:
            store.close()


@pytest.fixture
def store(opener: Opener) -> Store:
    return opener()


def live_run(store: Store, run_id: str, thread: str = "t", created: float | None = None) -> Run:
    run = Run(id=run_id, thread_id=thread, agent="demo", message=f"message of {run_id}")
    if created is not None:
        run.created_at = created
    store.save_run(run.summary())
    store.follow(run.id, run.log)
    run.log.append(protocol.run_started(run.id, run.thread_id, "demo"))
    return run


def finish(store: Store, run: Run, status: RunStatus = RunStatus.COMPLETED) -> None:
    run.log.append(protocol.done(status))
    run.log.close()
    run.status, run.finished_at = status, time.time()
    store.save_run(run.summary())


def ids(texts: list[str]) -> list[int]:
    return [json.loads(t)["eventId"] for t in texts]


def test_the_store_is_the_one_asked_for(store: Store) -> None:
    assert isinstance(store, SqliteStore | PostgresStore)


def test_a_followed_log_is_written_whole_in_order_and_in_batches(store: Store) -> None:
    run = live_run(store, "r1")
    for i in range(500):
        run.log.append_text(f"{i} é ")
        if i == 250:
            assert store.flush(5)
            assert ids(store.load_events("r1")) == list(range(252))  # what was there at flush
    finish(store, run)
    assert store.flush(5)
    stored = store.load_run("r1")
    assert stored is not None and stored.events == run.log.encoded()
    assert stored.summary["status"] == "completed"
    assert len(stored.events) == 502


def test_replay_from_any_event_id(store: Store) -> None:
    run = live_run(store, "r1")
    for i in range(40):
        run.log.append_text(f"{i} ")
        if i % 7 == 0:
            assert store.flush(5)  # several batches, so ids fall inside and on their edges
    finish(store, run)
    assert store.flush(5)
    texts = run.log.encoded()
    for after in range(-1, len(texts) + 1):
        assert store.load_events("r1", after) == texts[after + 1 :], after
    assert store.load_events("nothing-here") == []


def test_runs_left_running_end_interrupted_after_their_events(opener: Opener) -> None:
    first = opener()
    done = live_run(first, "done-run")
    finish(first, done)
    cut = live_run(first, "cut-run")
    cut.log.append_text("half an answ")
    paused = live_run(first, "paused-run")
    paused.status = RunStatus.PAUSED
    first.save_run(paused.summary())
    first.unfollow(paused.id)
    assert first.flush(5)
    # A new server on the same store (the old one died without ending its runs).
    second = opener()
    assert second.recover_interrupted() == ["cut-run"]
    assert second.recover_interrupted() == []
    stored = second.load_run("cut-run")
    assert stored is not None and stored.summary["status"] == "interrupted"
    assert stored.summary["finished_at"] is not None
    assert stored.events[:-1] == cut.log.encoded()
    assert json.loads(stored.events[-1]) == {
        "type": "done",
        "status": "interrupted",
        "eventId": 2,
        "runId": "cut-run",
    }
    assert second.paused_run_ids() == ["paused-run"]
    kept = second.load_run("done-run")
    assert kept is not None and kept.events == done.log.encoded()


def test_a_paused_run_followed_again_goes_on_from_where_it_stopped(store: Store) -> None:
    run = live_run(store, "r")
    run.log.append_text("before the pause")
    store.unfollow(run.id)
    assert store.flush(5)
    store.follow(run.id, run.log, 0)  # the writer knows it wrote two already
    run.log.append_text("after")
    finish(store, run)
    assert store.flush(5)
    assert store.load_events("r") == run.log.encoded()


def test_retention_per_thread_and_by_age(store: Store) -> None:
    now = time.time()
    runs = [live_run(store, f"a{i}", "ta", created=now - 100 + i) for i in range(5)]
    for run in runs[:4]:
        finish(store, run)
    old = live_run(store, "old", "tb", created=now - 10_000)
    finish(store, old)
    live_old = live_run(store, "live-old", "tb", created=now - 10_000)
    store.prune(2, 0, "ta")
    assert store.flush(5)
    # The finished runs beyond the newest two of the thread go (the running one counts).
    assert store.thread_run_ids("ta") == ["a3", "a4"]
    assert store.load_events("a0") == [] and store.load_run("a0") is None
    store.prune(0, 1000)
    assert store.flush(5)
    assert store.thread_run_ids("tb") == ["live-old"]  # a run in progress is never pruned
    assert store.load_run("old") is None
    assert live_old.id in store.thread_run_ids("tb")


def test_a_deleted_thread_is_gone_with_its_events_and_cell_bindings(store: Store) -> None:
    gone = live_run(store, "gone", "t")
    for i in range(100):  # not yet pulled by the writer when the delete is queued
        gone.log.append_text(f"{i} ")
    gone.log.close()
    store.bind_cell("cell-1", "t")
    store.bind_cell("cell-2", "other")
    store.delete_thread("t")
    kept = live_run(store, "kept", "t")  # the same thread id, after the delete
    finish(store, kept)
    assert store.flush(5)
    assert store.load_run("gone") is None and store.load_events("gone") == []
    assert store.thread_run_ids("t") == ["kept"]
    assert (store.cell_thread("cell-1"), store.cell_thread("cell-2")) == (None, "other")


def test_cell_bindings_are_kept_and_replaced(opener: Opener) -> None:
    store = opener()
    assert store.cell_thread("k") is None
    store.bind_cell("k", "t1")
    store.bind_cell("k", "t2")
    assert store.flush(5)
    assert store.cell_thread("k") == "t2"
    store.close()
    assert opener().cell_thread("k") == "t2"


def test_thread_summaries_newest_activity_first(store: Store) -> None:
    now = time.time()
    a1 = live_run(store, "a1", "ta", created=now - 50)
    finish(store, a1)
    a2 = live_run(store, "a2", "ta", created=now - 40)
    finish(store, a2, RunStatus.FAILED)
    b1 = live_run(store, "b1", "tb", created=now - 30)  # still running: its start counts
    c1 = live_run(store, "c1", "tc", created=now - 200)
    c1.message = "x" * 500
    finish(store, c1)
    assert store.flush(5)
    summaries = store.thread_summaries(10)
    # tc finished last; tb's running run counts from its start.
    assert [s["thread_id"] for s in summaries] == ["tc", "ta", "tb"]
    tc, ta, tb = summaries
    assert ta["title"] == "message of a1" and ta["runs"] == 2 and ta["status"] == "failed"
    assert ta["created_at"] == pytest.approx(now - 50)
    assert ta["last_activity"] == pytest.approx(a2.finished_at)
    assert tb["status"] == "pending" and tb["last_activity"] == pytest.approx(b1.created_at)
    assert tc["title"] == "x" * 120
    assert tc["created_at"] == pytest.approx(now - 200)
    assert [s["thread_id"] for s in store.thread_summaries(1)] == ["tc"]


def test_text_the_database_cannot_hold_is_cleaned(store: Store) -> None:
    run = Run(id="r", thread_id="t", agent="demo", message="lone \ud800 surrogate")
    store.save_run(run.summary())
    assert store.flush(5)
    stored = store.load_run("r")
    assert stored is not None and "\ud800" not in stored.summary["message"]


def test_nul_in_a_message_or_an_id_is_stored(store: Store) -> None:
    """PostgreSQL text cannot hold NUL (SQLite's can): it becomes U+FFFD there, and the run,
    its events and its lookups work on both."""
    run = Run(id="r", thread_id="t\x00x", agent="demo", message="a\x00b")
    store.save_run(run.summary())
    store.follow(run.id, run.log)
    run.log.append_text("text \x00 with NUL")  # encoded as \u0000 in JSON: any store holds it
    finish(store, run)
    store.bind_cell("cell\x00", "t\x00x")
    assert store.flush(5)
    stored = store.load_run("r")
    assert stored is not None and stored.events == run.log.encoded()
    assert stored.summary["message"] in ("a\x00b", "a\ufffdb")
    assert store.thread_run_ids("t\x00x") == ["r"]
    assert store.cell_thread("cell\x00") in ("t\x00x", "t\ufffdx")
    assert store.write_errors == 0


def test_reopening_keeps_the_schema_and_the_data(opener: Opener) -> None:
    first = opener()
    run = live_run(first, "r")
    finish(first, run)
    first.close()
    again = opener()
    stored = again.load_run("r")
    assert stored is not None and stored.events == run.log.encoded()


def test_postgres_schema_version_table(pg_url: str) -> None:
    import psycopg

    store = PostgresStore(pg_url)
    try:
        assert store.schema_version() == 1
    finally:
        store.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE deltakit.schema_version SET version = 99")
    with pytest.raises(StoreError, match="schema version 99"):
        PostgresStore(pg_url)


def test_postgres_batch_bodies_are_compressed_with_lz4(pg_url: str) -> None:
    """Large bodies are compressed with lz4 (not pglz) where the server has it, on a new
    database and on one made before (the setting is put on at the next start)."""
    import psycopg

    lz4 = "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    body = (
        "SELECT attcompression FROM pg_attribute "
        "WHERE attrelid = 'deltakit.event_batches'::regclass AND attname = 'body'"
    )
    PostgresStore(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        if not conn.execute(lz4).fetchone()[0]:  # type: ignore[index]
            pytest.skip("this PostgreSQL has no lz4")
        assert conn.execute(body).fetchone() == ("l",)
        conn.execute("ALTER TABLE deltakit.event_batches ALTER COLUMN body SET COMPRESSION pglz")
    store = PostgresStore(pg_url)
    try:
        run = live_run(store, "r")
        for i in range(2000):
            run.log.append_text(f"chunk {i} ")
        finish(store, run)
        store.flush()
        assert store.load_run("r").events == run.log.encoded()  # type: ignore[union-attr]
    finally:
        store.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute(body).fetchone() == ("l",)
        method = conn.execute(
            "SELECT pg_column_compression(body) FROM deltakit.event_batches "
            "WHERE length(body) > 8000"
        ).fetchall()
        assert method and {m for (m,) in method} == {"lz4"}


def test_postgres_batches_go_in_one_statement_with_their_notifications(pg_url: str) -> None:
    """Rows of runs the server owns are written with their deltakit_events notifications in
    one statement; rows sharing a key (which one upsert statement cannot take) go the long way
    in one transaction, the last one winning."""
    import psycopg

    from deltakit_nb.stores import leases
    from deltakit_nb.stores.base import batch_row

    store = PostgresStore(pg_url)
    store.close()  # its writer thread stays out of the way: the test writes itself
    store.event_notices = leases.event_payloads
    with (
        psycopg.connect(pg_url, autocommit=True) as listener,
        store.connect() as conn,
    ):
        listener.execute(f"LISTEN {leases.CHANNEL_EVENTS}")
        conn.execute(
            "INSERT INTO deltakit.runs VALUES ('r', 't', 'demo', 'm', 'running', 0, NULL), "
            "('s', 't', 'demo', 'm', 'running', 0, NULL)"
        )
        rows = [batch_row("r", 0, ["a", "b"]), batch_row("s", 0, ["c"])]
        store._transaction(conn, [("rows", rows[:1]), ("rows", rows[1:])])
        got = {n.payload for n in listener.notifies(timeout=5, stop_after=2)}
        assert got == {"1 r", "0 s"}
        again = [batch_row("r", 2, ["d"]), batch_row("r", 2, ["d", "e"])]
        store._transaction(conn, [("rows", again)])
        bodies = conn.execute(
            "SELECT run_id, first_id, last_id, body FROM deltakit.event_batches "
            "ORDER BY run_id, first_id"
        ).fetchall()
        assert bodies == [("r", 0, 1, "a\nb"), ("r", 2, 3, "d\ne"), ("s", 0, 0, "c")]


def test_an_unreachable_postgres_raises_with_the_reason() -> None:
    from pgserver import free_port

    url = f"postgresql://user:secret@127.0.0.1:{free_port()}/db"
    with pytest.raises(StoreError) as info:
        open_store(url)
    assert "127.0.0.1" in str(info.value) and "secret" not in str(info.value)


def test_postgres_migrations_run_once_on_old_and_new_databases(
    pg_url: str, pg_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database of version 1 is taken to the current version by the migrations (in one
    transaction), and a new database gets version 1 and the same migrations."""
    import psycopg

    from deltakit_nb.stores import postgres

    PostgresStore(pg_url).close()  # version 1
    monkeypatch.setattr(postgres, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(
        postgres,
        "MIGRATIONS",
        {1: "CREATE TABLE deltakit.extra (x INT); INSERT INTO deltakit.extra VALUES (1)"},
    )
    fresh = pg_server.create_database()
    try:
        # The second open of the old one finds version 2 and migrates nothing.
        for url in (pg_url, pg_url, fresh):
            store = PostgresStore(url)
            try:
                assert store.schema_version() == 2
            finally:
                store.close()
        for url in (pg_url, fresh):
            with psycopg.connect(url) as conn:
                assert conn.execute("SELECT count(*) FROM deltakit.extra").fetchone() == (1,)
                version_rows = conn.execute("SELECT count(*) FROM deltakit.schema_version")
                assert version_rows.fetchone() == (1,)
    finally:
        pg_server.drop_database(fresh.rsplit("/", 1)[1])


def test_postgres_restarted_while_the_writer_is_idle_costs_no_retry(
    pg_url: str, pg_server: PostgresServer
) -> None:
    """The writer's connection went stale with the restart: the next write reconnects at
    once (no wait, no 'cannot be reached'); the reads' connection too."""
    store = PostgresStore(pg_url)
    try:
        store.bind_cell("k", "t1")
        assert store.flush(5) and store.cell_thread("k") == "t1"
        pg_server.restart()
        store.bind_cell("k", "t2")
        assert store.flush(5)
        assert store.cell_thread("k") == "t2"
        assert (store.retried, store.unreachable, store.write_errors) == (0, False, 0)
    finally:
        store.close()


def test_postgres_writes_wait_while_the_server_is_down(
    pg_url: str, pg_server: PostgresServer
) -> None:
    """Down for a while: flush waits (and says so), the log's events stay there, and once the
    server is back one retry writes them all, each once."""
    store = PostgresStore(pg_url)
    try:
        run = live_run(store, "r")
        run.log.append_text("before")
        assert store.flush(5)
        pg_server.stop()
        for i in range(50):
            run.log.append_text(f"{i} ")
        assert not store.flush(1)  # nothing can be committed now
        assert store.unreachable and store.backlog == 50
        pg_server.start()
        finish(store, run)
        assert store.flush(10)
        assert store.load_events("r") == run.log.encoded()
        assert not store.unreachable and store.retried == 1 and store.write_errors == 0
    finally:
        store.close()


def test_postgres_a_bad_write_on_a_live_connection_is_not_retried(pg_url: str) -> None:
    """An error of the write itself (here a statement timeout, an OperationalError too) loses
    that write only, as on SQLite; the writer does not wait for a database that is there."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION deltakit_slow() RETURNS trigger AS "
            "$$ BEGIN IF NEW.key = 'slow' THEN PERFORM pg_sleep(2); END IF; RETURN NEW; END $$ "
            "LANGUAGE plpgsql"
        )
    store = PostgresStore(pg_url)
    try:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(
                "CREATE TRIGGER slow BEFORE INSERT ON deltakit.cell_threads "
                "FOR EACH ROW EXECUTE FUNCTION deltakit_slow()"
            )
            dbname = pg_url.rsplit("/", 1)[1]
            conn.execute(f'ALTER DATABASE "{dbname}" SET statement_timeout = 500')
        store._write.close()  # type: ignore[union-attr]  # (a new one gets the setting)
        store.bind_cell("slow", "t")
        store.bind_cell("fine", "t")
        assert store.flush(10)
        assert store.cell_thread("fine") == "t" and store.cell_thread("slow") is None
        assert store.write_errors == 1 and not store.unreachable and store.retried == 0
    finally:
        store.close()


def test_postgres_url_forms() -> None:
    from deltakit_nb.stores.postgres import is_postgres_url, psycopg_url, redacted, sqlalchemy_url

    url = "postgres://me:pw@db:5432/runs?sslmode=require"
    assert is_postgres_url(url) and is_postgres_url("postgresql+psycopg://x/y")
    assert not is_postgres_url("/home/me/runs.sqlite") and not is_postgres_url("mysql://x/y")
    assert psycopg_url(url) == "postgresql://me:pw@db:5432/runs?sslmode=require"
    assert psycopg_url("postgresql+psycopg://x/y") == "postgresql://x/y"
    assert sqlalchemy_url(url) == "postgresql+psycopg://me:pw@db:5432/runs?sslmode=require"
    assert redacted(url) == "postgres://me:***@db:5432/runs?sslmode=require"
    assert redacted("postgresql://me@db/runs") == "postgresql://me@db/runs"
