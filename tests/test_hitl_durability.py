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
from wsclient import assert_gap_free, recv_n, recv_until_terminal, send, text

CONFIRM = 'tool confirm_action {"action": "send the report"}'


async def paused_run(
    server: JupyterProcess, message: str, thread: str, raw: list[str] | None = None
) -> list[dict]:
    ws = await connect(server)
    await send(ws, {"message": message, "threadId": thread})
    events = await frames_until(ws, "run_paused", [] if raw is None else raw)
    ws.close()
    return events


async def frames_until(ws: Any, last_type: str, raw: list[str]) -> list[dict]:
    """Events up to (and with) the first run event of `last_type`; the frames' text, exactly
    as the server sent it, goes into `raw`."""
    events: list[dict] = []
    while not events or events[-1]["type"] != last_type or "eventId" not in events[-1]:
        text_frame = await asyncio.wait_for(ws.read_message(), 10)
        assert text_frame is not None, "socket closed"
        raw.append(text_frame)
        data = json.loads(text_frame)
        events.extend(data if isinstance(data, list) else [data])
    return events


def show(title: str, frames: list[str]) -> None:
    print(f"--- {title}")
    for frame in frames:
        print(frame)


@pytest.mark.parametrize("stop", ["SIGKILL", "clean stop"])
async def test_paused_run_survives_a_restart_and_continues(tmp_path: Path, stop: str) -> None:
    server = JupyterProcess(tmp_path)
    server.start()
    before: list[str] = []
    try:
        paused = await paused_run(server, CONFIRM, "t-pause", before)
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
    show(f"frames before the {stop}", before)
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
        after: list[str] = []
        replayed = await frames_until(ws, "run_paused", after)
        assert replayed == paused  # the card comes back: the log is open, the run waits
        show(f"after the restart ({stop}): the resume frame's replay", after)
        decision = {"runId": run_id, "decisions": [{"id": req["id"], "approve": True}]}
        await send(ws, decision)
        print(">>> sent:", json.dumps(decision))
        after = []
        rest = await frames_until(ws, "done", after)
        ws.close()
        show("the continuation, same run, same socket", after)
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
