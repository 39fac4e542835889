"""Two real Jupyter servers on one real PostgreSQL database: live follow, Stop, threads,
DELETE and retention across them, and run ownership when a server dies (SIGKILL, SIGSTOP)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from jupyterproc import TOKEN, JupyterProcess
from pgserver import PostgresServer
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect
from wsclient import assert_gap_free, recv, recv_n, recv_until_terminal, send, text

LEASE, HEARTBEAT = 3.0, 0.5
SLOW = "count 300 delay 0.02"  # about 6 s of streaming


def pg_args(url: str, *more: str) -> list[str]:
    """The servers' options: the store, short lease timings, then `more` (which win: a trait
    given twice on the command line is a configuration error)."""
    traits = {"store_url": url, "lease_seconds": str(LEASE), "heartbeat_seconds": str(HEARTBEAT)}
    for option in more:
        name, _, value = option.removeprefix("--DeltakitApp.").partition("=")
        traits[name] = value
    return [f"--DeltakitApp.{name}={value}" for name, value in traits.items()]


@contextmanager
def two_servers(pg_url: str) -> Iterator[tuple[JupyterProcess, JupyterProcess]]:
    a = JupyterProcess(None, *pg_args(pg_url))
    b = JupyterProcess(None, *pg_args(pg_url))
    a.start()
    try:
        b.start()
        try:
            yield a, b
        finally:
            stop(b)
    finally:
        stop(a)


@pytest.fixture
def two(pg_url: str) -> Iterator[tuple[JupyterProcess, JupyterProcess]]:
    with two_servers(pg_url) as servers:
        yield servers


def stop(server: JupyterProcess) -> None:
    if server.proc is not None and server.proc.poll() is None:
        server.stop()


async def connect(server: JupyterProcess) -> WebSocketClientConnection:
    req = HTTPRequest(server.ws_url, headers={"Authorization": f"token {TOKEN}"})
    return await websocket_connect(req, max_message_size=1 << 28)


def raw(server: JupyterProcess, path: str, method: str = "GET") -> bytes:
    req = urllib.request.Request(
        server.base + path, method=method, headers={"Authorization": f"token {TOKEN}"}
    )
    if method != "GET":
        req.data = b""
    with urllib.request.urlopen(req, timeout=10) as response:
        return bytes(response.read())


async def get(server: JupyterProcess, path: str) -> Any:
    return json.loads(await asyncio.to_thread(raw, server, path))


async def start(server: JupyterProcess, message: str, thread: str, n: int = 5) -> Any:
    """A run started on `server`: (socket, the first `n` events)."""
    ws = await connect(server)
    await send(ws, {"message": message, "threadId": thread})
    return ws, await recv_n(ws, n)


async def resume(server: JupyterProcess, run_id: str, after: int) -> WebSocketClientConnection:
    ws = await connect(server)
    await send(ws, {"runId": run_id, "lastEventId": after})
    return ws


async def wait_status(server: JupyterProcess, run_id: str, timeout: float) -> str:
    """The run's status once it has ended on `server` (fails after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = (await get(server, f"/deltakit/runs/{run_id}"))["status"]
        if status not in ("pending", "running"):
            return str(status)
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} still {status} after {timeout} s")


async def test_live_follow_from_any_id_on_the_other_server(
    two: tuple[JupyterProcess, JupyterProcess],
) -> None:
    a, b = two
    ws_a, first = await start(a, SLOW, "t-live")
    run_id = first[0]["runId"]
    # B: one reader from the start, one from the middle of what exists so far.
    whole, middle = await resume(b, run_id, -1), await resume(b, run_id, 3)
    got_whole = await recv_n(whole, 60)
    got_middle = await recv_n(middle, 60)
    # Live on B while A still streams: the thread and active-run say so on both servers.
    for server in (a, b):
        assert (await get(server, "/deltakit/active-run?threadId=t-live"))["run_id"] == run_id
        thread = await get(server, "/deltakit/threads/t-live")
        assert thread["active_run_id"] == run_id
        assert [r["status"] for r in thread["runs"]] == ["running"]
    assert (await get(b, f"/deltakit/runs/{run_id}"))["status"] == "running"
    for server in (a, b):
        listed = (await get(server, "/deltakit/threads"))["threads"]
        assert [(t["thread_id"], t["status"]) for t in listed] == [("t-live", "running")]
    on_a = first + await recv_until_terminal(ws_a)
    got_whole += await recv_until_terminal(whole)
    got_middle += await recv_until_terminal(middle)
    assert_gap_free(on_a, run_id)
    assert on_a[-1]["type"] == "done" and on_a[-1]["status"] == "completed"
    assert len(on_a) > 300
    assert got_whole == on_a and got_middle == on_a[4:]
    # Replay: the same bytes from both servers, and the thread the same on both.
    await wait_status(b, run_id, 5)
    assert raw(a, f"/deltakit/runs/{run_id}") == raw(b, f"/deltakit/runs/{run_id}")
    assert raw(a, "/deltakit/threads/t-live") == raw(b, "/deltakit/threads/t-live")
    again = await resume(b, run_id, 100)
    assert await recv_until_terminal(again) == on_a[101:]
    for ws in (ws_a, whole, middle, again):
        ws.close()


async def test_a_thread_goes_on_from_the_other_server(
    two: tuple[JupyterProcess, JupyterProcess],
) -> None:
    a, b = two
    ws, _ = await start(a, "echo my name is Ada", "t-both", 1)
    await recv_until_terminal(ws)
    ws.close()
    ws, _ = await start(b, "recall", "t-both", 1)
    recall = await recv_until_terminal(ws)
    ws.close()
    assert text(recall) == "Earlier in this thread you said:\n\n- echo my name is Ada\n"
    path = "/deltakit/threads/t-both/messages"
    assert raw(a, path) == raw(b, path)


async def test_a_cell_bound_on_one_server_is_found_on_the_other(
    two: tuple[JupyterProcess, JupyterProcess],
) -> None:
    a, b = two

    def bind(server: JupyterProcess, thread: str) -> None:
        req = urllib.request.Request(
            f"{server.base}/deltakit/cells/nb-cell",
            data=json.dumps({"thread_id": thread}).encode(),
            method="PUT",
            headers={"Authorization": f"token {TOKEN}"},
        )
        urllib.request.urlopen(req, timeout=10).read()

    await asyncio.to_thread(bind, a, "t-one")
    for server in (a, b):
        assert (await get(server, "/deltakit/cells/nb-cell"))["thread_id"] == "t-one"
    await asyncio.to_thread(bind, b, "t-two")  # B's own read comes before, A's memory had t-one
    for server in (b, a):
        assert (await get(server, "/deltakit/cells/nb-cell"))["thread_id"] == "t-two"


async def test_stop_on_b_cancels_the_run_on_a(two: tuple[JupyterProcess, JupyterProcess]) -> None:
    a, b = two
    ws_a, first = await start(a, "count 2000 delay 0.02", "t-stop")
    run_id = first[0]["runId"]
    asked = time.monotonic()
    assert json.loads(raw(b, f"/deltakit/jobs/{run_id}/cancel", "POST")) == {"status": "ok"}
    # The cancel returns once the end has reached B.
    assert (await get(b, f"/deltakit/runs/{run_id}"))["status"] == "cancelled"
    events = first + await recv_until_terminal(ws_a)
    assert time.monotonic() - asked < 10
    assert events[-1]["type"] == "done" and events[-1]["status"] == "cancelled"
    assert_gap_free(events, run_id)
    assert len(events) < 1000
    assert (await get(a, f"/deltakit/runs/{run_id}"))["events"] == events
    ws_a.close()


async def test_a_socket_on_b_following_a_thread_hears_of_runs_started_on_a(
    two: tuple[JupyterProcess, JupyterProcess],
) -> None:
    a, b = two
    follower = await connect(b)
    await send(follower, {"followThread": "t-follow"})
    await asyncio.sleep(0.3)
    ws_a, first = await start(a, SLOW, "t-follow")
    notice = (await recv(follower))[0]
    assert notice["type"] == "thread_run" and notice["runId"] == first[0]["runId"]
    await send(follower, {"runId": notice["runId"], "lastEventId": -1})
    on_b = await recv_until_terminal(follower)
    assert on_b == first + await recv_until_terminal(ws_a)
    # A socket that starts following while the run is live on the other server hears of it.
    ws_a2, second = await start(a, SLOW, "t-follow")
    late = await connect(b)
    await send(late, {"followThread": "t-follow"})
    notice = (await recv(late))[0]
    assert notice["type"] == "thread_run" and notice["runId"] == second[0]["runId"]
    raw(b, f"/deltakit/jobs/{second[0]['runId']}/cancel", "POST")
    for ws in (follower, ws_a, ws_a2, late):
        ws.close()


async def test_delete_and_retention_seen_from_both(pg_url: str) -> None:
    args = pg_args(pg_url, "--DeltakitApp.runs_per_thread=2")
    with JupyterProcess(None, *args) as a, JupyterProcess(None, *args) as b:
        ids = []
        for i, server in enumerate([a, b, a]):  # retention on A drops the run B made
            ws, _ = await start(server, f"echo r{i}", "t-keep", 1)
            ids.append((await recv_until_terminal(ws))[-1]["runId"])
            ws.close()
        for server in (a, b):
            runs = (await get(server, "/deltakit/threads/t-keep"))["runs"]
            assert [r["message"] for r in runs] == ["echo r1", "echo r2"]
        assert raw(a, "/deltakit/threads/t-keep") == raw(b, "/deltakit/threads/t-keep")
        # A live run in the thread: DELETE on B stops it on A, and both forget the thread.
        ws, first = await start(a, SLOW, "t-keep")
        ids.append(first[0]["runId"])
        deleted = json.loads(raw(b, "/deltakit/threads/t-keep", "DELETE"))
        assert deleted == {"status": "ok", "deleted_runs": 3}
        assert (await recv_until_terminal(ws))[-1]["status"] == "cancelled"
        ws.close()
        for server in (a, b):
            thread = await get(server, "/deltakit/threads/t-keep")
            assert thread["runs"] == [] and thread["active_run_id"] is None
            for run_id in ids:
                with pytest.raises(urllib.error.HTTPError) as err:
                    raw(server, f"/deltakit/runs/{run_id}")
                assert err.value.code == 404


async def test_starting_a_server_leaves_the_other_servers_runs_alone(pg_url: str) -> None:
    with JupyterProcess(None, *pg_args(pg_url)) as a:
        ws_a, first = await start(a, SLOW, "t-join")
        run_id = first[0]["runId"]
        with JupyterProcess(None, *pg_args(pg_url)) as b:
            await asyncio.sleep(LEASE + 2 * HEARTBEAT)  # B sweeps a few times meanwhile
            follower = await resume(b, run_id, -1)
            events = first + await recv_until_terminal(ws_a)
            assert events[-1]["status"] == "completed"
            assert await recv_until_terminal(follower) == events
            follower.close()
        ws_a.close()
        assert "marked interrupted" not in a.log() + b.log()


async def test_sigkilled_server_its_runs_end_interrupted_on_the_other(pg_url: str) -> None:
    # A lease too long to run out during the test: only seeing A's process gone can end it.
    long_lease = 30.0
    args = pg_args(pg_url, f"--DeltakitApp.lease_seconds={long_lease}")
    with JupyterProcess(None, *args) as b:
        a = JupyterProcess(None, *args)
        a.start()
        try:
            await killed_owner(a, b)
        finally:
            stop(a)


async def killed_owner(a: JupyterProcess, b: JupyterProcess) -> None:
    ws_a, first = await start(a, "count 2000 delay 0.02", "t-kill", 20)
    run_id = first[0]["runId"]
    follower = await resume(b, run_id, -1)
    seen = await recv_n(follower, 20)
    a.kill()
    killed = time.monotonic()
    rest = await recv_until_terminal(follower)
    took = time.monotonic() - killed
    events = seen + rest
    assert_gap_free(events, run_id)
    assert events[-1] == {**events[-1], "type": "done", "status": "interrupted"}
    # Same machine: B sees A's process is gone at its next sweep, long before the lease.
    assert took < 10 * HEARTBEAT, took
    run = await get(b, f"/deltakit/runs/{run_id}")
    assert run["status"] == "interrupted" and run["events"] == events
    assert (await get(b, "/deltakit/active-run?threadId=t-kill"))["run_id"] is None
    assert "of a server that is gone are marked interrupted" in b.log()
    follower.close()
    ws_a.close()


async def test_frozen_server_loses_its_runs_when_its_lease_expires(
    two: tuple[JupyterProcess, JupyterProcess],
) -> None:
    a, b = two
    ws_a, first = await start(a, "count 2000 delay 0.02", "t-frozen", 20)
    run_id = first[0]["runId"]
    follower = await resume(b, run_id, -1)
    await recv_n(follower, 20)
    assert a.proc is not None
    os.kill(a.proc.pid, signal.SIGSTOP)  # alive, but no heartbeat: only the lease can tell
    frozen = time.monotonic()
    try:
        await asyncio.sleep(LEASE / 2)
        assert (await get(b, f"/deltakit/runs/{run_id}"))["status"] == "running"
        assert await wait_status(b, run_id, LEASE + 4 * HEARTBEAT) == "interrupted"
        took = time.monotonic() - frozen
        assert LEASE - HEARTBEAT <= took <= LEASE + 4 * HEARTBEAT, took
        events = await recv_until_terminal(follower)
        assert events[-1]["status"] == "interrupted"
    finally:
        os.kill(a.proc.pid, signal.SIGCONT)
    try:
        # Thawed, A finds its lease gone and ends the run too, instead of carrying on.
        on_a = first + await recv_until_terminal(ws_a)
        assert on_a[-1]["type"] == "done" and on_a[-1]["status"] == "interrupted"
        assert_gap_free(on_a, run_id)
        assert await wait_status(a, run_id, 5) == "interrupted"
        assert "lease had expired" in a.log()
    finally:
        a.kill()
    follower.close()
    ws_a.close()


async def test_owner_restarted_alone_ends_its_old_runs_at_start(pg_url: str) -> None:
    a = JupyterProcess(None, *pg_args(pg_url, "--DeltakitApp.lease_seconds=600"))
    a.start()
    ws, first = await start(a, "count 2000 delay 0.02", "t-alone", 10)
    run_id = first[0]["runId"]
    await asyncio.sleep(0.3)
    a.kill()
    ws.close()
    # A long lease: only the restarted server seeing its old process gone can end the run.
    a.start()
    try:
        run = await get(a, f"/deltakit/runs/{run_id}")
        assert run["status"] == "interrupted"
        assert_gap_free(run["events"], run_id)
        assert run["events"][:10] == first[:10]
        assert "marked interrupted" in a.log()
    finally:
        a.stop()


CONFIRM = 'tool confirm_action {"action": "ship it"}'


async def pause(server: JupyterProcess, thread: str) -> tuple[WebSocketClientConnection, Any]:
    """A run started on `server` that waits for a decision: (its socket, its events)."""
    ws = await connect(server)
    await send(ws, {"message": CONFIRM, "threadId": thread})
    paused: list[dict[str, Any]] = []
    while not paused or paused[-1]["type"] != "run_paused":
        paused += await recv(ws, 30)  # the first run of a fresh server builds its agent
    return ws, paused


def post_decision(server: JupyterProcess, run_id: str, requirement: str) -> tuple[int, bytes]:
    """POST runs/{id}/continue approving `requirement`: (HTTP status, body)."""
    req = urllib.request.Request(
        f"{server.base}/deltakit/runs/{run_id}/continue",
        data=json.dumps({"decisions": [{"id": requirement, "approve": True}]}).encode(),
        method="POST",
        headers={"Authorization": f"token {TOKEN}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=20) as response:
            return response.status, bytes(response.read())
    except urllib.error.HTTPError as err:
        return err.code, err.read()


async def test_a_run_paused_on_a_is_stopped_from_b(
    two: tuple[JupyterProcess, JupyterProcess],
) -> None:
    a, b = two
    ws_a, paused = await pause(a, "t-ask")
    run_id = paused[0]["runId"]
    follower = await resume(b, run_id, -1)
    assert await recv_n(follower, len(paused)) == paused
    assert (await get(b, "/deltakit/active-run?threadId=t-ask"))["run_id"] == run_id
    raw(b, f"/deltakit/jobs/{run_id}/cancel", "POST")
    end = await recv_until_terminal(follower)
    assert end[-1]["type"] == "done" and end[-1]["status"] == "cancelled"
    assert await recv_until_terminal(ws_a) == end
    for server in (a, b):
        assert await wait_status(server, run_id, 10) == "cancelled"
    for ws in (ws_a, follower):
        ws.close()


async def test_a_run_paused_on_a_is_decided_on_b_and_followed_on_a(
    two: tuple[JupyterProcess, JupyterProcess],
) -> None:
    """B takes the decision (and the run: agno's paused run is in the shared history db);
    A's socket sees the run go on to its end, the same events as B's."""
    a, b = two
    ws_a, paused = await pause(a, "t-ask-b")
    run_id, requirement = paused[0]["runId"], paused[-1]["requirements"][0]["id"]
    follower = await resume(b, run_id, -1)
    assert await recv_n(follower, len(paused)) == paused
    status, body = await asyncio.to_thread(post_decision, b, run_id, requirement)
    assert status == 200, body
    on_b = await recv_until_terminal(follower)
    assert on_b[0]["type"] == "run_resumed" and on_b[-1]["status"] == "completed"
    assert any(e["type"] == "tool_result" and "ship it" in e["output"] for e in on_b)
    assert await recv_until_terminal(ws_a) == on_b
    for server in (a, b):
        assert await wait_status(server, run_id, 10) == "completed"
        stored = await get(server, f"/deltakit/runs/{run_id}")
        assert [e["type"] for e in stored["events"]].count("run_resumed") == 1
    for ws in (ws_a, follower):
        ws.close()


async def test_two_servers_holding_a_paused_run_one_decision_wins(pg_url: str) -> None:
    """A paused run whose server is gone is held by both servers that start after it; two
    decisions sent to them at once: one continues the run, the other is refused (409) and its
    server follows the run the first one continues. One run_resumed, one end, on both."""
    first = JupyterProcess(None, *pg_args(pg_url))
    first.start()
    try:
        ws, paused = await pause(first, "t-race")
        ws.close()
    finally:
        first.stop()
    run_id, requirement = paused[0]["runId"], paused[-1]["requirements"][0]["id"]
    with two_servers(pg_url) as (a, b):
        sockets = [await resume(server, run_id, len(paused) - 1) for server in (a, b)]
        answers = await asyncio.gather(
            *(asyncio.to_thread(post_decision, s, run_id, requirement) for s in (a, b))
        )
        assert sorted(status for status, _ in answers) == [200, 409], answers
        refused = next(body for status, body in answers if status == 409)
        assert b"on another server first" in refused or b"being decided" in refused
        ends = [await recv_until_terminal(ws) for ws in sockets]
        assert ends[0] == ends[1]
        assert [e["type"] for e in ends[0]].count("run_resumed") == 1
        assert ends[0][-1]["status"] == "completed"
        for server in (a, b):
            stored = await get(server, f"/deltakit/runs/{run_id}")
            assert stored["status"] == "completed"
            assert_gap_free(stored["events"], run_id)
            assert stored["events"][len(paused) :] == ends[0]
        for ws in sockets:
            ws.close()


async def test_postgres_restart_mid_run_the_follower_on_b_gets_every_event(
    two: tuple[JupyterProcess, JupyterProcess], pg_server: PostgresServer
) -> None:
    a, b = two
    ws_a, first = await start(a, "count 400 delay 0.02", "t-restart", 20)
    run_id = first[0]["runId"]
    follower = await resume(b, run_id, -1)
    seen = await recv_n(follower, 20)
    await asyncio.to_thread(pg_server.restart)
    on_a = first + await recv_until_terminal(ws_a)
    seen += await recv_until_terminal(follower)
    # Every lease looked expired after the restart: no run may be taken for a dead server's.
    assert on_a[-1]["status"] == "completed"
    assert seen == on_a
    assert_gap_free(seen, run_id)
    assert await wait_status(b, run_id, 10) == "completed"
    assert raw(a, f"/deltakit/runs/{run_id}") == raw(b, f"/deltakit/runs/{run_id}")
    assert "marked interrupted" not in a.log() + b.log()
    assert "listening to the store failed" in b.log()  # the restart did cut it off
    for ws in (ws_a, follower):
        ws.close()


async def test_a_heartbeat_longer_than_half_the_lease_is_refused_with_the_reason(
    pg_url: str,
) -> None:
    args = pg_args(pg_url, "--DeltakitApp.lease_seconds=10", "--DeltakitApp.heartbeat_seconds=6")
    with JupyterProcess(None, *args) as server:
        with pytest.raises(urllib.error.HTTPError) as err:
            raw(server, "/deltakit/agents")
        assert err.value.code == 503
        message = json.loads(err.value.read())["message"]
        assert "heartbeat_seconds (6.0) must be positive and at most half of" in message
