"""A real Jupyter server on a real PostgreSQL store: runs, events and agno's history in the
database; a clear failure when it cannot be reached at start; no event lost or doubled when
it restarts mid-run."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from jupyterproc import TOKEN, JupyterProcess
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect
from wsclient import assert_gap_free, recv_n, recv_until_terminal, send, text

if TYPE_CHECKING:
    from pgserver import PostgresServer


async def connect(server: JupyterProcess) -> Any:
    req = HTTPRequest(server.ws_url, headers={"Authorization": f"token {TOKEN}"})
    return await websocket_connect(req, max_message_size=1 << 28)


async def run_to_end(server: JupyterProcess, message: str, thread: str) -> list[dict[str, Any]]:
    ws = await connect(server)
    await send(ws, {"message": message, "threadId": thread})
    events = await recv_until_terminal(ws)
    ws.close()
    return events


def stored_events(url: str, run_id: str) -> list[dict[str, Any]]:
    """The run's events as the database holds them, each batch checked against its ids."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT first_id, last_id, body FROM deltakit.event_batches WHERE run_id = %s "
            "ORDER BY first_id",
            (run_id,),
        ).fetchall()
    events = []
    for first, last, body in rows:
        batch = [json.loads(t) for t in body.split("\n")]
        assert [e["eventId"] for e in batch] == list(range(first, last + 1))
        events += batch
    return events


async def wait_stored(url: str, run_id: str, events: list[dict[str, Any]]) -> None:
    """Until the database holds exactly `events` for the run (the writer commits a batch
    every 20 ms; after a restart, at its next retry, at most RETRY_MAX away)."""
    for _ in range(100):
        if stored_events(url, run_id) == events:
            return
        await asyncio.sleep(0.1)
    assert stored_events(url, run_id) == events


async def test_runs_events_and_history_live_in_postgres(tmp_path: Path, pg_url: str) -> None:
    """store_url puts the event store and agno's history on PostgreSQL: nothing in SQLite
    files, and both survive a restart with a new data dir (a rescheduled server)."""
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    with JupyterProcess(first_dir, f"--DeltakitApp.store_url={pg_url}") as server:
        events = await run_to_end(server, "echo my name is Ada", "t-pg")
        run_id = events[0]["runId"]
        assert events[-1]["type"] == "done"
    assert stored_events(pg_url, run_id) == events
    assert not list((first_dir / "deltakit").glob("*.sqlite"))
    # Another server (another data dir) on the same database, configured by the environment.
    env = {"DELTAKIT_STORE_URL": pg_url}
    with JupyterProcess(second_dir, env=env) as server:
        assert server.get(f"/deltakit/runs/{run_id}")["events"] == events
        recall = await run_to_end(server, "recall", "t-pg")
        assert "- echo my name is Ada" in text(recall)  # agno's history, from PostgreSQL
        threads = server.get("/deltakit/threads")["threads"]
        assert [(t["thread_id"], t["runs"]) for t in threads] == [("t-pg", 2)]
    with psycopg.connect(pg_url) as conn:
        sessions = conn.execute("SELECT session_id FROM deltakit.agno_sessions").fetchall()
    assert sessions == [("t-pg",)]


async def test_a_server_holds_six_connections_to_the_database(tmp_path: Path, pg_url: str) -> None:
    """The README's sizing (max_connections: 6 per server): after runs, also at once."""

    def connections() -> int:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
        return int(row[0]) if row else 0

    with JupyterProcess(tmp_path, f"--DeltakitApp.store_url={pg_url}") as server:
        await run_to_end(server, "echo one", "t-conn")
        await asyncio.gather(*(run_to_end(server, "count 200", f"t-{i}") for i in range(4)))
        assert connections() <= 6


async def test_explicit_store_url_wins_over_the_environment(tmp_path: Path, pg_url: str) -> None:
    env = {"DELTAKIT_STORE_URL": "postgresql://nobody@127.0.0.1:1/nothing"}
    with JupyterProcess(tmp_path, f"--DeltakitApp.store_url={pg_url}", env=env) as server:
        events = await run_to_end(server, "echo hi", "t")
    assert stored_events(pg_url, events[0]["runId"]) == events


async def test_unreachable_postgres_at_start_fails_with_the_reason(tmp_path: Path) -> None:
    """No silent fallback to memory: every endpoint answers 503 with the reason (the widget
    shows it), and the log has it."""
    from pgserver import free_port

    url = f"postgresql://deltakit:s3cret@127.0.0.1:{free_port()}/runs"
    with JupyterProcess(tmp_path, f"--DeltakitApp.store_url={url}") as server:
        with pytest.raises(urllib.error.HTTPError) as err:
            server.get("/deltakit/agents")
        assert err.value.code == 503
        message = json.loads(err.value.read())["message"]
        assert "PostgreSQL at postgresql://deltakit:***@127.0.0.1" in message
        assert "s3cret" not in message
        assert "deltakit_nb failed to load" in server.log()
        assert "s3cret" not in server.log()


async def test_a_store_url_that_is_not_postgres_is_refused(tmp_path: Path) -> None:
    with JupyterProcess(tmp_path, "--DeltakitApp.store_url=mysql://x@y/z") as server:
        with pytest.raises(urllib.error.HTTPError) as err:
            server.get("/deltakit/agents")
        assert err.value.code == 503
        assert "store_url must be a PostgreSQL URL" in json.loads(err.value.read())["message"]


async def test_postgres_restarted_mid_run_loses_and_doubles_nothing(
    tmp_path: Path, pg_url: str, pg_server: PostgresServer
) -> None:
    """The server's writer retries through a PostgreSQL restart: the stored run is exactly
    what the client saw, every event once, and the server says what happened."""
    with JupyterProcess(tmp_path, f"--DeltakitApp.store_url={pg_url}") as server:
        ws = await connect(server)
        await send(ws, {"message": "count 300 delay 0.01", "threadId": "t-restart"})
        seen = await recv_n(ws, 20)
        run_id = seen[0]["runId"]
        await asyncio.to_thread(pg_server.stop)  # fast: every connection is cut
        await asyncio.sleep(1.0)  # events go on streaming meanwhile
        await asyncio.to_thread(pg_server.start)
        events = seen + await recv_until_terminal(ws)
        ws.close()
        assert events[-1]["type"] == "done" and events[-1]["status"] == "completed"
        assert_gap_free(events, run_id)
        await wait_stored(pg_url, run_id, events)
        assert server.get(f"/deltakit/runs/{run_id}")["status"] == "completed"
        # The next run goes to the database as usual.
        after = await run_to_end(server, "echo after", "t-restart")
        await wait_stored(pg_url, after[0]["runId"], after)
    log = server.log()
    assert "cannot be reached; its writes wait and are retried" in log
    assert "is back" in log


async def test_past_the_backlog_bound_runs_end_failed_and_nothing_is_lost(
    pg_url: str, pg_server: PostgresServer
) -> None:
    """While the database is down the events wait; past max_backlog the runs in progress end
    failed (saying why), new runs are refused, and once it is back every event sent (the
    error too) is in the database, once; then runs start again."""
    from deltakit_nb.server.agents import AgentCatalog
    from deltakit_nb.server.runs import RunLimitError, RunRegistry
    from deltakit_nb.stores.postgres import PostgresStore

    store = PostgresStore(pg_url)
    store.max_backlog = 200
    catalog = AgentCatalog({"demo": "deltakit_nb.offline:demo_agent"}, "demo", entry_points=False)
    registry = RunRegistry(catalog.build, store=store)
    try:
        run = registry.start("count 100000 delay 0.001", "t", "demo")
        await asyncio.sleep(0.3)
        await asyncio.to_thread(pg_server.stop)
        assert run.task is not None
        await asyncio.wait_for(asyncio.shield(run.task), 30)
        assert run.status.value == "failed"
        error = json.loads(run.log.encoded()[-1])
        assert error["type"] == "error" and "max_backlog 200" in error["message"]
        assert store.unreachable and 200 < store.backlog < 100_000
        with pytest.raises(RunLimitError, match="out of reach"):
            registry.start("echo refused", "t", "demo")
        await asyncio.to_thread(pg_server.start)
        assert await asyncio.to_thread(store.flush, 30)
        assert not store.unreachable
        assert stored_events(pg_url, run.id) == [json.loads(t) for t in run.log.encoded()]
        again = registry.start("echo back", "t", "demo")
        assert again.task is not None
        await asyncio.wait_for(asyncio.shield(again.task), 30)
        assert again.status.value == "completed"
    finally:
        if not pg_server.running:
            pg_server.start()
        await registry.shutdown()


async def test_a_decision_while_postgres_is_down_is_refused_and_taken_once_it_is_back(
    tmp_path: Path, pg_url: str, pg_server: PostgresServer
) -> None:
    """The claim that takes a paused run needs the database: without it the decision gets
    503 and a reason, the run stays paused; once the database is back, it is taken."""
    with JupyterProcess(tmp_path, f"--DeltakitApp.store_url={pg_url}") as server:
        ws = await connect(server)
        await send(ws, {"message": 'tool confirm_action {"action": "ship it"}', "threadId": "t"})
        paused: list[dict[str, Any]] = []
        while not paused or paused[-1]["type"] != "run_paused":
            paused += await recv_n(ws, 1)
        run_id, requirement = paused[0]["runId"], paused[-1]["requirements"][0]["id"]
        body = json.dumps({"decisions": [{"id": requirement, "approve": True}]}).encode()

        def decide() -> tuple[int, str]:
            req = urllib.request.Request(
                f"{server.base}/deltakit/runs/{run_id}/continue",
                data=body,
                method="POST",
                headers={"Authorization": f"token {TOKEN}"},
            )
            try:
                with urllib.request.urlopen(req, timeout=20) as response:
                    return int(response.status), response.read().decode()
            except urllib.error.HTTPError as err:
                return err.code, err.read().decode()

        await asyncio.to_thread(pg_server.stop)
        try:
            status, text_ = await asyncio.to_thread(decide)
            assert status == 503 and "stays paused" in text_ and "cannot be reached" in text_
            assert server.get(f"/deltakit/runs/{run_id}")["status"] == "paused"
        finally:
            await asyncio.to_thread(pg_server.start)
        status, text_ = await asyncio.to_thread(decide)
        assert status == 200, text_
        end = await recv_until_terminal(ws)
        assert end[0]["type"] == "run_resumed" and end[-1]["status"] == "completed"
        ws.close()
