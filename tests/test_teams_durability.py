"""A team run's nested events and a team thread's history survive a real server restart."""

from __future__ import annotations

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
