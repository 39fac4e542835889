"""A paused run outlives real server restarts (clean stop and SIGKILL) and a decision after
the restart continues it; a run that was running still ends interrupted."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from jupyterproc import JupyterProcess
from test_durability import connect, history_session
from wsclient import assert_gap_free, recv, recv_n, recv_until_terminal, send, text

CONFIRM = 'tool confirm_action {"action": "send the report"}'


async def paused_run(server: JupyterProcess, message: str, thread: str) -> list[dict]:
    ws = await connect(server)
    await send(ws, {"message": message, "threadId": thread})
    events: list[dict] = []
    while not events or events[-1]["type"] != "run_paused":
        events.extend(await recv(ws))
    ws.close()
    return events


def show(title: str, frames: list[Any]) -> None:
    print(f"--- {title}")
    for frame in frames:
        print(json.dumps(frame))


@pytest.mark.parametrize("stop", ["SIGKILL", "clean stop"])
async def test_paused_run_survives_a_restart_and_continues(tmp_path: Path, stop: str) -> None:
    server = JupyterProcess(tmp_path)
    server.start()
    try:
        paused = await paused_run(server, CONFIRM, "t-pause")
        run_id, [req] = paused[0]["runId"], paused[-1]["requirements"]
        # A second run, streaming when the server goes: it must end interrupted.
        ws = await connect(server)
        await send(ws, {"message": "count 400 delay 0.02", "threadId": "t-live"})
        live = await recv_n(ws, 5)
        await asyncio.sleep(0.3)  # the store's writer commits every 20 ms
    finally:
        if stop == "SIGKILL":
            server.kill()
        else:
            server.stop()
    show(f"before the {stop}", paused)
    with JupyterProcess(tmp_path) as server:
        run = server.get(f"/deltakit/runs/{run_id}")
        assert run["status"] == "paused" and run["finished_at"] is None
        assert run["events"] == paused
        active = server.get("/deltakit/active-run?threadId=t-pause")
        assert active["run_id"] == run_id and active["events"] == paused
        thread = server.get("/deltakit/threads/t-pause")
        assert thread["active_run_id"] == run_id and thread["runs"][0]["status"] == "paused"
        listed = {t["thread_id"]: t["status"] for t in server.get("/deltakit/threads")["threads"]}
        assert listed == {"t-pause": "paused", "t-live": "interrupted"}
        assert server.get(f"/deltakit/runs/{live[0]['runId']}")["status"] == "interrupted"

        ws = await connect(server)
        await send(ws, {"runId": run_id, "lastEventId": -1})
        replayed: list[dict] = []
        while not replayed or replayed[-1]["type"] != "run_paused":
            replayed.extend(await recv(ws))
        assert replayed == paused  # the card comes back: the log is open, the run waits
        await send(ws, {"runId": run_id, "decisions": [{"id": req["id"], "approve": True}]})
        rest = await recv_until_terminal(ws)
        ws.close()
        show(f"after the restart ({stop}), the decision and the rest", rest)
        events = paused + rest
        assert_gap_free(events, run_id)
        assert [e["type"] for e in rest[:3]] == ["run_resumed", "tool_call", "tool_result"]
        assert rest[2]["output"] == "done: send the report" and rest[2]["is_error"] is False
        assert text(events) == "The `confirm_action` returned **done: send the report**."
        assert events[-1]["status"] == "completed"
        assert server.get(f"/deltakit/runs/{run_id}")["events"] == events
    with JupyterProcess(tmp_path) as server:  # and once more: the continuation was stored
        assert server.get(f"/deltakit/runs/{run_id}")["events"] == events
        assert server.get(f"/deltakit/runs/{run_id}")["status"] == "completed"
    session = history_session(tmp_path, "t-pause")
    assert [r.status.value for r in session.runs] == ["COMPLETED"]


async def test_paused_run_stopped_after_a_restart(tmp_path: Path) -> None:
    with JupyterProcess(tmp_path) as server:
        paused = await paused_run(server, CONFIRM, "t-stop")
    run_id = paused[0]["runId"]
    with JupyterProcess(tmp_path) as server:
        assert server.request(f"/deltakit/jobs/{run_id}/cancel", "POST") == {"status": "ok"}
        run = server.get(f"/deltakit/runs/{run_id}")
        assert run["status"] == "cancelled"
        assert run["events"][:-1] == paused and run["events"][-1]["status"] == "cancelled"
        assert server.get("/deltakit/active-run?threadId=t-stop") == {"run_id": None}
    with JupyterProcess(tmp_path) as server:
        assert server.get(f"/deltakit/runs/{run_id}")["events"] == run["events"]


async def test_age_retention_removes_a_paused_run(tmp_path: Path) -> None:
    with JupyterProcess(tmp_path, "--DeltakitApp.runs_per_thread=1") as server:
        paused = await paused_run(server, CONFIRM, "t-old")
        # runs_per_thread never drops a paused run: a newer finished one does not push it out.
        ws = await connect(server)
        await send(ws, {"message": "echo newer", "threadId": "t-old"})
        await recv_until_terminal(ws)
        ws.close()
        runs = server.get("/deltakit/threads/t-old")["runs"]
        assert [r["status"] for r in runs] == ["paused", "completed"]
    await asyncio.sleep(1.2)
    with JupyterProcess(tmp_path, "--DeltakitApp.max_age_days=0.00001") as server:
        assert server.get("/deltakit/threads/t-old")["runs"] == []
        assert server.get("/deltakit/active-run?threadId=t-old") == {"run_id": None}
    db = sqlite3.connect(tmp_path / "deltakit" / "runs.sqlite")
    ids = {r[0] for r in db.execute("SELECT run_id FROM event_batches")}
    assert paused[0]["runId"] not in ids
