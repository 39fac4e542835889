"""Images, tool timestamps and run metrics through a real server process, and after its
restart (the store holds them)."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

from image_agents import png
from jupyterproc import TOKEN, JupyterProcess
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect
from wsclient import assert_gap_free, recv, recv_until_terminal, send

TESTS = Path(__file__).parent
AGENTS = {"demo": "deltakit_nb.offline:demo_agent", "images": "image_agents:image_agent"}
MAX_IMAGE = 1000  # a 4x4 square is under it, a 100x100 noise far over


def server(data_dir: Path) -> JupyterProcess:
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    return JupyterProcess(
        data_dir,
        f"--DeltakitApp.agents={json.dumps(AGENTS)}",
        f"--DeltakitApp.max_image_bytes={MAX_IMAGE}",
        env={"PYTHONPATH": path},
    )


async def run_events(proc: JupyterProcess, frame: dict[str, Any]) -> list[dict[str, Any]]:
    req = HTTPRequest(proc.ws_url, headers={"Authorization": f"token {TOKEN}"})
    ws = await websocket_connect(req, max_message_size=1 << 28)
    await send(ws, frame)
    events = await recv_until_terminal(ws)
    ws.close()
    return events


async def test_images_timestamps_and_metrics_live_and_after_a_restart(tmp_path: Path) -> None:
    message = 'tool square {"size": 4} then tool noise {"size": 100}'
    before = time.time()
    with server(tmp_path) as proc:
        live = await run_events(proc, {"message": message, "agent": "images", "threadId": "t"})
    after = time.time()
    run_id = live[0]["runId"]
    assert_gap_free(live, run_id)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for e in live:
        by_type.setdefault(e["type"], []).append(e)
    calls, results = by_type["tool_call"], by_type["tool_result"]
    stamps = [e["ts"] for e in live if "ts" in e]
    assert stamps == sorted(stamps) and len(stamps) == 4
    assert before <= stamps[0] and stamps[-1] <= after
    assert [c["call_id"] for c in calls] == [r["call_id"] for r in results]
    [square] = results[0]["images"]
    assert square["mime_type"] == "image/png" and (square["width"], square["height"]) == (4, 4)
    assert base64.b64decode(square["data"]) == png(4, 4)
    [noise] = results[1]["images"]  # the square is not repeated
    big = len(png(100, 100, noise=True))
    assert noise == {
        "id": noise["id"],
        "mime_type": "image/png",
        "omitted": f"too large: {big} bytes (limit {MAX_IMAGE})",
    }
    [done] = by_type["done"]
    metrics = done["metrics"]
    assert metrics["model"] == "offline" and metrics["output_tokens"] > 0
    assert metrics["input_tokens"] > 0 and 0 <= metrics["duration"] <= after - before

    with server(tmp_path) as proc:
        replayed = await run_events(proc, {"runId": run_id, "lastEventId": -1})
        stored = proc.get(f"/deltakit/runs/{run_id}")["events"]
    assert replayed == live  # images, ts and metrics as they were sent
    assert stored == live


async def test_a_continued_run_does_not_send_its_earlier_images_again(tmp_path: Path) -> None:
    """agno repeats the images from before a pause on the continued run's tool results."""
    message = (
        'tool square {"size": 2} then tool confirm_action {"action": "go"} '
        'then tool square {"size": 3}'
    )
    with server(tmp_path) as proc:
        req = HTTPRequest(proc.ws_url, headers={"Authorization": f"token {TOKEN}"})
        ws = await websocket_connect(req, max_message_size=1 << 28)
        await send(ws, {"message": message, "agent": "images", "threadId": "t-pause"})
        events: list[dict[str, Any]] = []
        while not events or events[-1]["type"] != "run_paused":
            events += await recv(ws)
        [requirement] = events[-1]["requirements"]
        decision = {"id": requirement["id"], "approve": True}
        await send(ws, {"runId": events[0]["runId"], "decisions": [decision]})
        events += await recv_until_terminal(ws)
        ws.close()
    results = [e for e in events if e["type"] == "tool_result"]
    assert [r["tool_name"] for r in results] == ["square", "confirm_action", "square"]
    sizes = [[(i["width"], i["height"]) for i in r.get("images", [])] for r in results]
    assert sizes == [[(2, 2)], [], [(3, 3)]]
