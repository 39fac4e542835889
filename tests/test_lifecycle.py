"""Configuration mistakes and a failed set-up, on real `jupyter server` processes: the default
agent rule, a failed load that answers 503 with its reason (not 404, which means "not
enabled"), and a server that still stops on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from jupyterproc import TOKEN, JupyterProcess
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect
from wsclient import recv_until_terminal, send, text

from deltakit_nb.server.agents import DEMO_SPEC, AgentCatalog, AgentError
from deltakit_nb.server.app import DeltakitApp

STOP_SECONDS = 5.0


# ---- the default agent rule (unit) -----------------------------------------------------------


def test_the_default_is_demo_when_there_is_one() -> None:
    catalog = AgentCatalog({"mine": DEMO_SPEC, "demo": DEMO_SPEC}, "", entry_points=False)
    assert catalog.default == "demo" and catalog.default_chosen


def test_the_default_is_assistant_when_a_model_is_configured() -> None:
    catalog = AgentCatalog({"demo": DEMO_SPEC}, "", model="offline", entry_points=False)
    assert catalog.default == "assistant"


def test_without_demo_the_default_is_the_first_configured_agent() -> None:
    catalog = AgentCatalog({"mine": DEMO_SPEC, "other": DEMO_SPEC}, "", entry_points=False)
    assert catalog.default == "mine" and catalog.default_chosen


def test_a_configured_default_is_kept() -> None:
    catalog = AgentCatalog({"mine": DEMO_SPEC, "other": DEMO_SPEC}, "other", entry_points=False)
    assert catalog.default == "other" and not catalog.default_chosen


def test_a_default_that_names_no_agent_is_a_clear_error() -> None:
    with pytest.raises(AgentError) as err:
        AgentCatalog({"mine": DEMO_SPEC, "other": DEMO_SPEC}, "nope", entry_points=False)
    message = str(err.value)
    assert "'nope'" in message and "mine, other" in message
    assert "c.DeltakitApp.default_agent" in message


def test_no_agents_at_all_is_a_clear_error() -> None:
    with pytest.raises(AgentError, match=r"no agents: c\.DeltakitApp\.agents is empty"):
        AgentCatalog({}, "", entry_points=False)


# ---- stop_extension whatever failed (unit) ---------------------------------------------------


async def test_stop_extension_after_no_set_up_does_nothing() -> None:
    await DeltakitApp().stop_extension()  # no registry: set-up failed or never ran


async def test_stop_extension_logs_a_failing_shutdown_instead_of_raising(
    capfd: pytest.CaptureFixture[str],
) -> None:
    class Broken:
        async def shutdown(self) -> None:
            raise RuntimeError("shutdown broke")

    app = DeltakitApp()
    app.registry = Broken()  # type: ignore[assignment]
    await app.stop_extension()
    err = capfd.readouterr().err  # the app's log handler writes to stderr
    assert "error while stopping" in err and "shutdown broke" in err


# ---- real servers ----------------------------------------------------------------------------


def http(
    server: JupyterProcess, path: str, method: str = "GET", token: bool = True
) -> tuple[int, bytes]:
    headers = {"Authorization": f"token {TOKEN}"} if token else {}
    data = b"" if method != "GET" else None
    req = urllib.request.Request(server.base + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def stop_within(server: JupyterProcess, seconds: float) -> float:
    """SIGTERM; the seconds until the process exited (it is killed, and the test fails, if it
    has not exited after `seconds`)."""
    assert server.proc is not None
    t0 = time.perf_counter()
    server.proc.send_signal(signal.SIGTERM)
    try:
        server.proc.wait(seconds)
    except subprocess.TimeoutExpired:
        server.kill()
        pytest.fail(f"the server did not exit within {seconds} s of SIGTERM:\n{server.log()}")
    server._log.close()
    return time.perf_counter() - t0


FAILING_CONFIGS = {
    "unknown default": (["--DeltakitApp.default_agent=nope"], "default_agent 'nope'"),
    "no agents": (
        ["--DeltakitApp.agents={}", "--DeltakitApp.entry_point_agents=False"],
        "no agents",
    ),
}


@pytest.mark.parametrize("case", sorted(FAILING_CONFIGS))
def test_a_failed_load_answers_503_with_the_reason(tmp_path: Path, case: str) -> None:
    args, reason = FAILING_CONFIGS[case]
    with JupyterProcess(tmp_path, *args, "--DeltakitApp.model=") as server:
        for method, path in (
            ("GET", "/deltakit/agents"),
            ("GET", "/deltakit/threads/t1"),
            ("GET", "/deltakit/ws"),
            ("POST", "/deltakit/jobs/r1/cancel"),
            ("DELETE", "/deltakit/threads/t1"),
        ):
            status, body = http(server, path, method)
            assert status == 503, (path, status, body)
            message = json.loads(body)["message"]
            assert message.startswith("deltakit_nb failed to load: ")
            assert reason in message and message.endswith("See the Jupyter server log.")
        # Only an authenticated user learns the reason.
        status, body = http(server, "/deltakit/agents", token=False)
        assert status == 403 and reason.encode() not in body
        # The bundle still loads, so the widget can show the reason.
        status, body = http(server, "/static/deltakit_nb/chat.js")
        assert status == 200 and len(body) > 10_000
        log = server.log()
        assert "[E " in log and "deltakit_nb failed to load: " in log
        assert "Traceback" in log and "AgentError" in log


@pytest.mark.parametrize("persist", [True, False])
@pytest.mark.parametrize("case", sorted(FAILING_CONFIGS))
def test_a_server_whose_extension_failed_to_load_stops_on_sigterm(
    tmp_path: Path, case: str, persist: bool
) -> None:
    """With persist on, the store was open when the set-up failed."""
    args, _ = FAILING_CONFIGS[case]
    server = JupyterProcess(
        tmp_path, *args, "--DeltakitApp.model=", f"--DeltakitApp.persist={persist}"
    )
    server.start()
    assert stop_within(server, STOP_SECONDS) < STOP_SECONDS
    assert "AttributeError" not in server.log()


async def run_once(server: JupyterProcess, message: str, **frame: Any) -> list[dict[str, Any]]:
    req = HTTPRequest(server.ws_url, headers={"Authorization": f"token {TOKEN}"})
    ws = await websocket_connect(req)
    try:
        await send(ws, {"message": message, **frame})
        return await asyncio.wait_for(recv_until_terminal(ws), 30)
    finally:
        ws.close()


async def test_agents_without_demo_load_with_the_first_as_default(tmp_path: Path) -> None:
    agents = {"mine": DEMO_SPEC, "other": DEMO_SPEC}
    server = JupyterProcess(
        tmp_path,
        f"--DeltakitApp.agents={json.dumps(agents)}",
        "--DeltakitApp.entry_point_agents=False",
        "--DeltakitApp.model=",
    )
    with server:
        listing = server.get("/deltakit/agents")
        assert listing["default"] == "mine"
        assert [a["name"] for a in listing["agents"]] == ["mine", "other"]
        events = await run_once(server, "echo first agent", threadId="t-default")
        assert events[0]["agent"] == "mine" and events[-1]["status"] == "completed"
        assert text(events) == "first agent"
    assert "default agent 'mine', the first configured agent" in server.log()
