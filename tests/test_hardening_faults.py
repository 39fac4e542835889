"""Agent faults and dead clients: each fault gives a clear `error`/`tool_result` event and the
right run status, and the server keeps serving.

- a model that raises (before streaming and mid-stream),
- a tool that raises, a sync tool and an async tool that hang past tool_timeout_seconds,
- agent factories that raise, return the wrong thing, or cannot be imported,
- a client that drops its TCP connection mid-stream, and one that goes silent (no close, no
  pongs): neither leaves a subscription task behind, and the run completes.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from hardening_util import busy_sockets, capture_server_log, deltakit_app, wait_for
from wsclient import RawSocket, assert_gap_free, recv, recv_until_terminal, send, text

TOOL_TIMEOUT = 0.5
PING_INTERVAL_MS = 100
PING_TIMEOUT_MS = 300
AGENTS = {
    "demo": "deltakit_nb.offline:demo_agent",
    "midfail": "hardening_agents:midstream_failing_agent",
    "asynctools": "hardening_agents:async_tool_agent",
    "raises": "fixture_agents:broken_factory",
    "wrongtype": "hardening_agents:wrong_type_factory",
    "missing": "no_such_module_xyz:agent",
    "badimport": "hardening_broken_module:agent",
    "badspec": "no colon here",
}


@pytest.fixture
def jp_server_config() -> dict[str, object]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"deltakit_nb": True},
            "tornado_settings": {
                "ws_ping_interval": PING_INTERVAL_MS,
                "ws_ping_timeout": PING_TIMEOUT_MS,
            },
        },
        "DeltakitApp": {
            "agents": AGENTS,
            "tool_timeout_seconds": TOOL_TIMEOUT,
            "persist": False,
        },
    }


async def run_to_end(jp_ws_fetch: Any, message: str, **extra: Any) -> list[dict[str, Any]]:
    ws = await jp_ws_fetch("deltakit", "ws")
    await send(ws, {"message": message, **extra})
    events = await recv_until_terminal(ws)
    ws.close()
    assert_gap_free(events, events[0]["runId"])
    return events


async def status(jp_fetch: Any, run_id: str) -> str:
    return str(json.loads((await jp_fetch("deltakit", "runs", run_id)).body)["status"])


async def still_serving(jp_ws_fetch: Any, jp_fetch: Any) -> None:
    events = await run_to_end(jp_ws_fetch, "echo still serving")
    assert text(events) == "still serving" and events[-1]["status"] == "completed"
    agents = json.loads((await jp_fetch("deltakit", "agents")).body)
    assert {a["name"] for a in agents["agents"]} == set(AGENTS)


# Models -------------------------------------------------------------------------------------


async def test_model_that_raises_before_streaming(jp_ws_fetch: Any, jp_fetch: Any) -> None:
    events = await run_to_end(jp_ws_fetch, "fail")
    assert events[-1]["type"] == "error"
    assert "the offline model failed on purpose" in events[-1]["message"]
    assert await status(jp_fetch, events[0]["runId"]) == "failed"
    await still_serving(jp_ws_fetch, jp_fetch)


async def test_model_that_raises_mid_stream(jp_ws_fetch: Any, jp_fetch: Any) -> None:
    events = await run_to_end(jp_ws_fetch, "echo abcdefghijklmnopqrstuvwxyz", agent="midfail")
    assert text(events) == "abcdefghijklmnopqr"  # three chunks made it out before the failure
    assert events[-1]["type"] == "error"
    assert "connection dropped mid-stream" in events[-1]["message"]
    assert await status(jp_fetch, events[0]["runId"]) == "failed"
    await still_serving(jp_ws_fetch, jp_fetch)


# Tools --------------------------------------------------------------------------------------


def the_tool_result(events: list[dict[str, Any]]) -> dict[str, Any]:
    [call] = [e for e in events if e["type"] == "tool_call"]
    [result] = [e for e in events if e["type"] == "tool_result"]
    assert result["call_id"] == call["call_id"]
    return result


async def test_tool_that_raises(jp_ws_fetch: Any, jp_fetch: Any) -> None:
    events = await run_to_end(jp_ws_fetch, 'tool broken_tool {"reason": "disk on fire"}')
    result = the_tool_result(events)
    assert result["is_error"] is True and result["output"] == "disk on fire"
    assert events[-1] == {**events[-1], "type": "done", "status": "completed"}
    assert await status(jp_fetch, events[0]["runId"]) == "completed"


@pytest.mark.parametrize(
    ("agent", "tool"), [("demo", "sleep_tool"), ("asynctools", "async_sleep_tool")]
)
async def test_tool_that_hangs_times_out_and_the_run_goes_on(
    jp_ws_fetch: Any, jp_fetch: Any, agent: str, tool: str
) -> None:
    started = time.perf_counter()
    hung = await jp_ws_fetch("deltakit", "ws")
    await send(hung, {"message": f'tool {tool} {{"seconds": 30}}', "agent": agent})
    # While the tool hangs, other runs are served as usual.
    await still_serving(jp_ws_fetch, jp_fetch)
    events = await recv_until_terminal(hung)
    elapsed = time.perf_counter() - started
    result = the_tool_result(events)
    assert result["is_error"] is True
    assert result["output"] == (
        f"tool '{tool}' timed out after {TOOL_TIMEOUT:g} s "
        f"(limit tool_timeout_seconds={TOOL_TIMEOUT:g})"
    )
    assert "timed out" in text(events)  # the model saw the error and answered
    assert events[-1]["type"] == "done" and events[-1]["status"] == "completed"
    assert await status(jp_fetch, events[0]["runId"]) == "completed"
    assert elapsed < 10
    hung.close()


@pytest.mark.parametrize(
    ("agent", "tool"), [("demo", "sleep_tool"), ("asynctools", "async_sleep_tool")]
)
async def test_tool_within_the_timeout_is_untouched(
    jp_ws_fetch: Any, agent: str, tool: str
) -> None:
    events = await run_to_end(jp_ws_fetch, f'tool {tool} {{"seconds": 0.05}}', agent=agent)
    result = the_tool_result(events)
    assert result["is_error"] is False and result["output"].startswith("slept 0.05 s")


async def test_tool_timeout_zero_means_no_limit(jp_serverapp: Any) -> None:
    catalog = deltakit_app(jp_serverapp).catalog
    old = catalog.tool_timeout
    try:
        catalog.tool_timeout = 0
        assert not catalog.build("demo").tool_hooks
        catalog.tool_timeout = 7
        [hook] = catalog.build("demo").tool_hooks
        assert hook.seconds == 7
    finally:
        catalog.tool_timeout = old


# Agent factories ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "reason"),
    [
        ("raises", "agent 'raises' failed to build: this factory is broken on purpose"),
        ("wrongtype", "agent 'wrongtype' factory returned int"),
        ("missing", "cannot import agent 'no_such_module_xyz:agent': ModuleNotFoundError"),
        ("badimport", "ImportError: hardening_broken_module is broken on purpose"),
        ("badspec", "agent spec 'no colon here' is not of the form 'module:callable'"),
    ],
)
async def test_agent_factory_faults(
    jp_ws_fetch: Any, jp_fetch: Any, jp_serverapp: Any, agent: str, reason: str
) -> None:
    with capture_server_log(jp_serverapp) as log:
        events = await run_to_end(jp_ws_fetch, "hi", agent=agent)
    assert [e["type"] for e in events] == ["run_started", "error"]
    assert reason in events[-1]["message"], events[-1]
    assert await status(jp_fetch, events[0]["runId"]) == "failed"
    # The failure is logged as a failed run, not as an unhandled exception.
    assert log.problems() == []
    assert any(events[0]["runId"] in line for line in log.lines("deltakit_nb"))
    described = json.loads((await jp_fetch("deltakit", "agents")).body)["agents"]
    [entry] = [a for a in described if a["name"] == agent]
    assert entry["description"].startswith("(unavailable: ")
    await still_serving(jp_ws_fetch, jp_fetch)


# Dead clients ---------------------------------------------------------------------------------


async def raw_client(jp_serverapp: Any, port: int, base_url: str) -> RawSocket:
    token = jp_serverapp.identity_provider.token
    return await RawSocket.connect(port, f"{base_url}deltakit/ws", token)


async def test_client_that_drops_tcp_mid_stream_leaves_nothing_behind(
    jp_serverapp: Any, jp_http_port: int, jp_base_url: str, jp_fetch: Any
) -> None:
    registry = deltakit_app(jp_serverapp).registry
    with capture_server_log(jp_serverapp) as log:
        sock = await raw_client(jp_serverapp, jp_http_port, jp_base_url)
        await sock.send({"message": "count 40 delay 0.02"})
        [started] = await sock.recv()
        await sock.recv()
        assert len(busy_sockets()) == 1
        sock.writer.transport.abort()  # gone: no close frame
        await wait_for(lambda: not busy_sockets(), timeout=5)
        run = registry.get(started["runId"])
        assert run is not None and not run.done  # the run does not depend on its reader
        await wait_for(lambda: run.done, timeout=10)
    assert await status(jp_fetch, started["runId"]) == "completed"
    assert log.problems() == []


async def test_client_that_goes_silent_is_closed_by_pings(
    jp_serverapp: Any, jp_http_port: int, jp_base_url: str, jp_fetch: Any, jp_ws_fetch: Any
) -> None:
    """A client that vanished without a trace (no close, no FIN, no pongs) is found by the
    ping timeout and cleaned up; meanwhile a client that answers pings stays connected."""
    with capture_server_log(jp_serverapp) as log:
        live = await jp_ws_fetch("deltakit", "ws")  # tornado's client answers pings
        silent = await raw_client(jp_serverapp, jp_http_port, jp_base_url)  # never answers
        await silent.send({"message": "count 500 delay 0.02"})
        [started] = await silent.recv()
        run_id = started["runId"]
        await send(live, {"runId": run_id, "lastEventId": -1})
        # The live client keeps reading (tornado's client answers pings only while its
        # reader drains the queue).
        live_events = asyncio.create_task(recv_until_terminal(live))
        await wait_for(lambda: len(busy_sockets()) == 2, timeout=5)
        # The silent client's socket is closed after the ping timeout (plus tornado's wait
        # for the close handshake); the live one keeps its subscription.
        await wait_for(lambda: len(busy_sockets()) == 1, timeout=10)
        assert not live_events.done()
        assert (await status(jp_fetch, run_id)) == "running"
        await jp_fetch("deltakit", "jobs", run_id, "cancel", method="POST", body="")
        rest = await asyncio.wait_for(live_events, 10)
        assert rest[-1]["status"] == "cancelled"
        assert_gap_free(rest, run_id)
        live.close()
        await wait_for(lambda: not busy_sockets(), timeout=5)
        silent.close()
    assert any("ping timeout" in line for line in log.lines()), log.lines()
    assert log.problems() == []


async def test_subscription_task_census_sees_a_live_socket(jp_ws_fetch: Any) -> None:
    """The census used above is not vacuous: a socket following a run has a task, and a clean
    close removes it."""
    ws = await jp_ws_fetch("deltakit", "ws")
    await send(ws, {"message": "count 100 delay 0.02"})
    await recv(ws)
    assert len(busy_sockets()) == 1
    ws.close()
    await wait_for(lambda: not busy_sockets(), timeout=5)
    await asyncio.sleep(0)


# Store faults ---------------------------------------------------------------------------------


def test_lone_surrogate_in_a_message_does_not_kill_the_store(tmp_path: Any) -> None:
    import atexit

    from deltakit_nb.server.runs import Run
    from deltakit_nb.stores.sqlite import open_store

    store = open_store(tmp_path / "runs.sqlite")
    assert store is not None
    bad = Run(id="bad-run", thread_id="t", agent="demo", message="echo \ud800")
    good = Run(id="good-run", thread_id="t", agent="demo", message="echo fine")
    store.save_run(bad.summary())
    store.save_run(good.summary())
    store.flush(1.0)
    if not store._writer.is_alive():  # a dead writer makes close() (and atexit) wait 15 s
        atexit.unregister(store.close)
        store._closed = True
        raise AssertionError("the store's writer thread died")
    try:
        assert store.load_run("good-run") is not None
        stored = store.load_run("bad-run")
        assert stored is not None
        assert stored.summary["message"] == "echo \ufffd"
    finally:
        store.close()


def test_one_unwritable_write_loses_only_itself(tmp_path: Any) -> None:
    from types import SimpleNamespace

    from deltakit_nb.stores.sqlite import open_store

    store = open_store(tmp_path / "runs.sqlite")
    assert store is not None
    try:
        texts = ['{"eventId": 0}', "\ud800 cannot be UTF-8", '{"eventId": 2}']  # 1 is refused
        store.follow("r", SimpleNamespace(closed=True, encoded=lambda: texts))
        assert store.flush(5.0)
        assert store._writer.is_alive()
        assert store.write_errors == 1
        with store._read_lock:
            rows = store._read.execute(
                "SELECT first_id, last_id FROM event_batches ORDER BY first_id"
            ).fetchall()
        assert rows == [(0, 0), (2, 2)]
    finally:
        store.close()
