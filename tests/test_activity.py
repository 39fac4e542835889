"""A streaming run keeps its server alive: with no client and no kernel, a live run counts as
jupyter_server activity (GET /api/status's last_activity, ServerApp's idle shutdown), and a
finished run stops counting. Real server processes; runs of the offline demo agent."""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jupyterproc import TOKEN, JupyterProcess
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect
from wsclient import recv, send

from deltakit_nb.server.activity import REFRESH_EVERY, SETTING, ActivityReporter
from deltakit_nb.server.agents import DEMO_SPEC, AgentCatalog
from deltakit_nb.server.runs import RunRegistry

RUN = "count 80 delay 0.1"  # about 8 s of streaming
TESTS = Path(__file__).parent


async def start_and_leave(server: JupyterProcess, message: str) -> str:
    """Start a run and close the socket: nothing but the run is left to count as activity."""
    req = HTTPRequest(server.ws_url, headers={"Authorization": f"token {TOKEN}"})
    ws = await websocket_connect(req)
    await send(ws, {"message": message})
    first = await recv(ws)
    ws.close()
    return str(first[0]["runId"])


def last_activity(server: JupyterProcess) -> datetime:
    value = server.get("/api/status")["last_activity"]  # not itself counted as activity
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def run_summary(server: JupyterProcess, run_id: str) -> dict[str, Any]:
    # no_track_activity: the test's own polling must not count as activity
    return dict(server.get(f"/deltakit/runs/{run_id}?no_track_activity=1"))


async def wait_finished(server: JupyterProcess, run_id: str, timeout: float = 30.0) -> float:
    """The run's finished_at, polling its summary (which fails once the server is gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = run_summary(server, run_id)
        if run["finished_at"] is not None:
            assert run["status"] == "completed", run["status"]
            return float(run["finished_at"])
        await asyncio.sleep(0.5)
    raise TimeoutError(f"run {run_id} still running after {timeout} s")


async def test_a_refresh_stamps_now_while_a_run_is_live_then_the_newest_end() -> None:
    registry = RunRegistry(AgentCatalog({"demo": DEMO_SPEC}, "demo", entry_points=False).build)
    settings: dict[str, Any] = {}
    reporter = ActivityReporter(registry, settings)
    reporter.refresh()
    assert SETTING not in settings and reporter.live_runs() == []  # no runs: no activity

    run = registry.start("count 5 delay 0.05", None, "demo")
    before = datetime.now(timezone.utc)
    reporter.refresh()
    assert settings[SETTING] >= before and reporter.live_runs() == [run.id]
    assert run.task is not None
    await asyncio.wait_for(run.task, 30)
    assert run.finished_at is not None
    reporter.refresh()
    end = datetime.fromtimestamp(run.finished_at, timezone.utc)
    assert reporter.live_runs() == [] and settings[SETTING] == end

    # A run that starts and ends between two refreshes counts with its end.
    short = registry.start("echo quick", None, "demo")
    assert short.task is not None
    await asyncio.wait_for(short.task, 30)
    assert short.finished_at is not None
    reporter.refresh()
    assert settings[SETTING] == datetime.fromtimestamp(short.finished_at, timezone.utc)
    stamped = settings[SETTING]
    reporter.refresh()
    assert settings[SETTING] == stamped  # nothing live: it stands still
    await registry.shutdown()


async def test_a_live_run_advances_last_activity_and_a_finished_one_stops(tmp_path: Path) -> None:
    with JupyterProcess(tmp_path) as server:
        started = time.time()
        run_id = await start_and_leave(server, RUN)
        await asyncio.sleep(1.5)
        early = last_activity(server)
        await asyncio.sleep(REFRESH_EVERY + 1)  # at least one refresh while the run streams
        assert run_summary(server, run_id)["finished_at"] is None, "the run ended too soon"
        late = last_activity(server)
        assert late > early and late.timestamp() >= started, (early, late)

        finished_at = await wait_finished(server, run_id)
        await asyncio.sleep(REFRESH_EVERY + 1)  # the refresh after the end stamps the end
        after = last_activity(server)
        assert abs(after.timestamp() - finished_at) < 0.01, (after, finished_at)
        await asyncio.sleep(REFRESH_EVERY + 1)
        assert last_activity(server) == after  # a finished run no longer counts


async def test_idle_shutdown_waits_for_a_live_run_then_stops_the_server(tmp_path: Path) -> None:
    config = tmp_path / "config"
    (config / "jupyter_server_config.d").mkdir(parents=True)
    (config / "jupyter_server_config.d" / "fast_idle_check.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"fast_idle_check": True}}})
    )
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    server = JupyterProcess(
        tmp_path,
        "--ServerApp.shutdown_no_activity_timeout=3",
        env={"JUPYTER_CONFIG_DIR": str(config), "PYTHONPATH": path},
    )
    server.start()
    try:
        assert "fast_idle_check | extension was successfully loaded" in server.log()
        run_id = await start_and_leave(server, RUN)
        server.request("/fast-idle-check/start", method="POST")  # idle from here on
        # The run streams for ~8 s, well past the 3 s timeout: the server must see it through.
        finished_at = await wait_finished(server, run_id)
        assert server.proc is not None and server.proc.poll() is None
        # Then it is idle and stops, the timeout counted from the run's end.
        code = await asyncio.to_thread(server.proc.wait, 3 + 10)
        assert code == 0 and time.time() >= finished_at + 3
        assert "shutting down" in server.log()
    finally:
        server.stop()
