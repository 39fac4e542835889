"""Runs, events and history survive real server restarts (clean stops and SIGKILL)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.error
from pathlib import Path
from typing import Any

import pytest
from jupyterproc import TOKEN, JupyterProcess
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect
from wsclient import assert_gap_free, recv, recv_n, recv_until_terminal, send, text


async def connect(server: JupyterProcess) -> Any:
    req = HTTPRequest(server.ws_url, headers={"Authorization": f"token {TOKEN}"})
    return await websocket_connect(req, max_message_size=1 << 28)


async def run_to_end(server: JupyterProcess, message: str, thread: str) -> list[dict]:
    ws = await connect(server)
    await send(ws, {"message": message, "threadId": thread})
    events = await recv_until_terminal(ws)
    ws.close()
    return events


async def replay(server: JupyterProcess, run_id: str) -> list[dict]:
    ws = await connect(server)
    await send(ws, {"runId": run_id, "lastEventId": -1})
    events = await recv_until_terminal(ws)
    ws.close()
    return events


def history_session(data_dir: Path, thread: str) -> Any:
    from agno.db.base import SessionType
    from agno.db.sqlite import SqliteDb

    db = SqliteDb(db_file=str(data_dir / "deltakit" / "history.sqlite"))
    return db.get_session(session_id=thread, session_type=SessionType.AGENT)


async def test_finished_run_replays_identically_after_restart(tmp_path: Path) -> None:
    with JupyterProcess(tmp_path) as server:
        events = await run_to_end(server, "what is 6 * 7?", "t-restart")
        raw_before = server.get(f"/deltakit/runs/{events[0]['runId']}")
    with JupyterProcess(tmp_path) as server:
        run_id = events[0]["runId"]
        assert await replay(server, run_id) == events
        assert server.get(f"/deltakit/runs/{run_id}") == raw_before
        thread = server.get("/deltakit/threads/t-restart")
        assert [r["run_id"] for r in thread["runs"]] == [run_id]
        assert thread["runs"][0]["events"] == events and thread["active_run_id"] is None
        assert server.get("/deltakit/active-run?threadId=t-restart") == {"run_id": None}
        # A resume from the middle works against the store too.
        ws = await connect(server)
        await send(ws, {"runId": run_id, "lastEventId": 3})
        assert await recv_until_terminal(ws) == events[4:]
        ws.close()


async def test_sigkill_mid_run_leaves_an_interrupted_run(tmp_path: Path) -> None:
    server = JupyterProcess(tmp_path)
    server.start()
    try:
        first = await run_to_end(server, "echo the first message", "t-kill")
        ws = await connect(server)
        await send(ws, {"message": "count 400 delay 0.02", "threadId": "t-kill"})
        seen = await recv_n(ws, 12)
        run_id = seen[0]["runId"]
        await asyncio.sleep(0.3)
    finally:
        server.kill()
    with JupyterProcess(tmp_path) as server:
        run = server.get(f"/deltakit/runs/{run_id}")
        assert run["status"] == "interrupted" and run["finished_at"]
        events = run["events"]
        assert_gap_free(events, run_id)
        assert events[: len(seen)] == seen
        assert events[-1]["type"] == "done" and events[-1]["status"] == "interrupted"
        assert 12 < len(events) < 400
        # A client that resumes the dead run is told it ended, instead of waiting forever.
        assert await replay(server, run_id) == events
        assert server.get("/deltakit/active-run") == {"run_id": None}
        thread = server.get("/deltakit/threads/t-kill")
        assert [r["status"] for r in thread["runs"]] == ["completed", "interrupted"]
        assert thread["runs"][0]["events"] == first
        # The thread's history is intact: the next message sees the first one, not the dead run.
        recall = await run_to_end(server, "recall", "t-kill")
        assert text(recall) == "Earlier in this thread you said:\n\n- echo the first message\n"
    assert "marked interrupted" in server.log()


async def test_two_message_thread_across_restart(tmp_path: Path) -> None:
    with JupyterProcess(tmp_path) as server:
        await run_to_end(server, "echo my name is Ada", "t-hist")
        failed = await run_to_end(server, "fail", "t-hist")
        assert failed[-1]["type"] == "error"
        ws = await connect(server)
        await send(ws, {"message": "count 400 delay 0.02", "threadId": "t-hist"})
        started = await recv_n(ws, 5)
        await asyncio.to_thread(
            server.request, f"/deltakit/jobs/{started[0]['runId']}/cancel", "POST"
        )
        stopped = started + await recv_until_terminal(ws)
        ws.close()
        assert stopped[-1] == {**stopped[-1], "type": "done", "status": "cancelled"}
    with JupyterProcess(tmp_path) as server:
        second = await run_to_end(server, "recall", "t-hist")
    assert "- echo my name is Ada" in text(second)
    assert "- fail" not in text(second), "a failed run must not enter the history"
    assert "- count" not in text(second), "a cancelled run must not enter the history"
    # agno's own session: four runs, and the context it builds skips the failed and the
    # cancelled one.
    session = history_session(tmp_path, "t-hist")
    statuses = [r.status.value for r in session.runs]
    assert statuses == ["COMPLETED", "ERROR", "CANCELLED", "COMPLETED"]
    context = [m.content for m in session.get_messages() if m.role == "user"]
    assert context == ["echo my name is Ada", "recall"]


async def test_retention_and_delete(tmp_path: Path) -> None:
    with JupyterProcess(tmp_path, "--DeltakitApp.runs_per_thread=2") as server:
        a = [await run_to_end(server, f"echo a{i}", "t-a") for i in range(3)]
        b = await run_to_end(server, "echo b", "t-b")
        runs = server.get("/deltakit/threads/t-a")["runs"]
        assert [r["message"] for r in runs] == ["echo a1", "echo a2"]
        with pytest.raises(urllib.error.HTTPError) as err:
            server.get(f"/deltakit/runs/{a[0][0]['runId']}")
        assert err.value.code == 404
        assert history_session(tmp_path, "t-a") is not None
        assert server.request("/deltakit/threads/t-a", "DELETE") == {
            "status": "ok",
            "deleted_runs": 2,
        }
        assert server.get("/deltakit/threads/t-a")["runs"] == []
        for events in a:
            with pytest.raises(urllib.error.HTTPError):
                server.get(f"/deltakit/runs/{events[0]['runId']}")
        assert server.get(f"/deltakit/runs/{b[0]['runId']}")["events"] == b
    assert history_session(tmp_path, "t-a") is None
    assert history_session(tmp_path, "t-b") is not None
    db = sqlite3.connect(tmp_path / "deltakit" / "runs.sqlite")
    assert db.execute("SELECT DISTINCT thread_id FROM runs").fetchall() == [("t-b",)]
    stored = {r[0] for r in db.execute("SELECT DISTINCT run_id FROM event_batches")}
    assert stored == {b[0]["runId"]}


async def test_age_retention_at_start(tmp_path: Path) -> None:
    with JupyterProcess(tmp_path) as server:
        old = await run_to_end(server, "echo old", "t-age")
    await asyncio.sleep(1.2)
    with JupyterProcess(tmp_path, "--DeltakitApp.max_age_days=0.00001") as server:
        assert server.get("/deltakit/threads/t-age")["runs"] == []
        fresh = await run_to_end(server, "echo fresh", "t-age")
        assert [r["run_id"] for r in server.get("/deltakit/threads/t-age")["runs"]] == [
            fresh[0]["runId"]
        ]
    assert old[0]["runId"] != fresh[0]["runId"]


@pytest.mark.parametrize("damage", ["garbage", "wrong-schema", "locked"])
async def test_broken_store_falls_back_to_memory(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "deltakit" / "runs.sqlite"
    path.parent.mkdir(parents=True)
    holder = None
    if damage == "garbage":
        path.write_bytes(b"this is not a database" * 100)
    elif damage == "wrong-schema":
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE runs (something TEXT)")
        db.commit()
        db.close()
    else:
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
    try:
        with JupyterProcess(tmp_path) as server:
            events = await run_to_end(server, "echo still serving", "t-broken")
            assert text(events) == "still serving"
            assert server.get(f"/deltakit/runs/{events[0]['runId']}")["status"] == "completed"
        lines = [line for line in server.log().splitlines() if "event store" in line]
        assert len(lines) == 1 and "keeping runs in memory only" in lines[0], lines
    finally:
        if holder is not None:
            holder.close()


async def test_clean_stop_interrupts_live_runs(tmp_path: Path) -> None:
    server = JupyterProcess(tmp_path)
    server.start()
    ws = await connect(server)
    await send(ws, {"message": "count 400 delay 0.02", "threadId": "t-stop"})
    seen = await recv_n(ws, 5)
    server.stop()
    rest: list[dict] = []
    try:
        while not rest or rest[-1]["type"] != "done":
            rest.extend(await recv(ws, timeout=5))
    except (AssertionError, asyncio.TimeoutError):
        pass
    with JupyterProcess(tmp_path) as server:
        run = server.get(f"/deltakit/runs/{seen[0]['runId']}")
    assert run["status"] == "interrupted"
    assert run["events"][-1]["status"] == "interrupted"
    assert run["events"][: len(seen)] == seen
    assert json.dumps(run["events"])
