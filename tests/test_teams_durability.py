"""A team run's nested events and a team thread's history survive a real server restart."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from jupyterproc import JupyterProcess
from test_durability import connect, replay
from wsclient import assert_gap_free, recv_until_terminal, send, text


async def test_team_run_replays_identically_after_restart(tmp_path: Path) -> None:
    with JupyterProcess(tmp_path) as server:  # the default agents: demo, team, workflow
        ws = await connect(server)
        await send(
            ws,
            {"message": "delegate researcher what is 6 * 7?", "agent": "team", "threadId": "tt"},
        )
        events = await recv_until_terminal(ws)
        ws.close()
    run_id = events[0]["runId"]
    assert_gap_free(events, run_id)
    assert any(e["type"] == "member_text_delta" for e in events)
    with JupyterProcess(tmp_path) as server:
        assert await replay(server, run_id) == events
        # From the middle of the member's stream, against the store.
        middle = next(e["eventId"] for e in events if e["type"] == "member_text_delta") + 1
        ws = await connect(server)
        await send(ws, {"runId": run_id, "lastEventId": middle})
        assert await recv_until_terminal(ws) == events[middle + 1 :]
        # The team's session (agno's history db) carries the thread across the restart.
        await send(ws, {"message": "recall", "agent": "team", "threadId": "tt"})
        recalled = await recv_until_terminal(ws)
        assert "- delegate researcher what is 6 * 7?" in text(recalled)
        ws.close()


def _old_shape(encoded: list[str]) -> list[str]:
    """A team run's events as a server stored them before `member_run_id`: every member event
    named its member and its delegate call in full."""
    known: dict[str, dict[str, object]] = {}
    out = []
    for text_ in encoded:
        event = json.loads(text_)
        if event["type"] == "member_started":
            known[event["member"]["run_id"]] = {
                "member": event["member"],
                "parent_call_id": event["parent_call_id"],
            }
        elif "member_run_id" in event:
            ids = {"eventId": event.pop("eventId"), "runId": event.pop("runId")}
            event = {**event, **known[event.pop("member_run_id")], **ids}
        out.append(json.dumps(event, separators=(",", ":")))
    return out


async def test_a_team_run_stored_in_the_old_shape_replays_and_reads_the_same(
    tmp_path: Path,
) -> None:
    with JupyterProcess(tmp_path) as server:
        ws = await connect(server)
        await send(ws, {"message": "delegate all summarise X", "agent": "team", "threadId": "to"})
        events = await recv_until_terminal(ws)
        ws.close()
        messages = server.get("/deltakit/threads/to/messages")
    run_id = events[0]["runId"]
    assert any("member_run_id" in e for e in events)
    # Rewrite the stored run as the previous server version wrote it (the store keeps the
    # encoded events verbatim, one batch row per line-joined batch).
    with sqlite3.connect(tmp_path / "deltakit" / "runs.sqlite") as db:
        rows = db.execute(
            "SELECT first_id, body FROM event_batches WHERE run_id = ?", (run_id,)
        ).fetchall()
        assert rows
        for first_id, body in rows:
            db.execute(
                "UPDATE event_batches SET body = ? WHERE run_id = ? AND first_id = ?",
                ("\n".join(_old_shape(body.split("\n"))), run_id, first_id),
            )
    old = [json.loads(e) for e in _old_shape([json.dumps(e) for e in events])]
    assert sum("member" in e for e in old) > sum("member" in e for e in events)
    with JupyterProcess(tmp_path) as server:
        assert await replay(server, run_id) == old  # sent as stored
        again = server.get("/deltakit/threads/to/messages")
    assert again == messages
    members = again[1]["tool_calls"]
    assert {m["name"]: m["text"] for c in members for m in c["members"]}["writer"] == (
        "Draft: summarise X"
    )
