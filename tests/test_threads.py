"""Following threads (the followThread frame and the thread_run notice), cell bindings and the
threads listing, over a real Jupyter server, real WebSockets and the real agno loop."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_AGENTS
from tornado.httpclient import HTTPClientError
from wsclient import assert_gap_free, recv, recv_n, recv_until_terminal, send, text

PROBE = {"runId": "no-such-run"}
PROBE_REPLY = {"type": "error", "message": "Run not found"}


@pytest.fixture
def jp_server_config(request: pytest.FixtureRequest) -> dict[str, object]:
    return {
        "ServerApp": {"jpserver_extensions": {"deltakit_nb": True}},
        "DeltakitApp": {
            "agents": TEST_AGENTS,
            "model": "",
            "persist": getattr(request, "param", True),
        },
    }


async def get_json(jp_fetch: Any, *parts: str, **kw: Any) -> Any:
    return json.loads((await jp_fetch("deltakit", *parts, **kw)).body)


async def until_probe(ws: Any) -> list[dict[str, Any]]:
    """Every frame the socket got before the reply to a probe sent now: what it was sent."""
    await send(ws, PROBE)
    seen: list[dict[str, Any]] = []
    while PROBE_REPLY not in (batch := await recv(ws)):
        seen += batch
    return seen + batch[: batch.index(PROBE_REPLY)]


async def test_a_follower_is_told_of_a_run_started_elsewhere_and_can_stop_it(
    jp_ws_fetch: Any, jp_fetch: Any
) -> None:
    a = await jp_ws_fetch("deltakit", "ws")
    b = await jp_ws_fetch("deltakit", "ws")
    for ws in (a, b):
        await send(ws, {"followThread": "T"})
    assert await until_probe(b) == []  # nothing runs in T yet
    await send(a, {"message": "count 500 delay 0.02", "threadId": "T"})
    started = await recv_n(a, 3)
    run_id = started[0]["runId"]
    [notice] = await recv(b)
    assert notice == {
        "type": "thread_run",
        "threadId": "T",
        "runId": run_id,
        "message": "count 500 delay 0.02",
        "agent": "demo",
        "createdAt": notice["createdAt"],
    }
    run = await get_json(jp_fetch, "runs", run_id)
    assert notice["createdAt"] == run["created_at"]
    await send(b, {"runId": run_id, "lastEventId": -1})
    seen_b = await recv_n(b, 3)
    response = await jp_fetch("deltakit", "jobs", run_id, "cancel", method="POST", body="")
    assert json.loads(response.body) == {"status": "ok"}
    events_a = started + await recv_until_terminal(a)
    events_b = seen_b + await recv_until_terminal(b)
    assert events_b == events_a and events_a[-1]["status"] == "cancelled"
    assert_gap_free(events_a, run_id)
    assert all(e["type"] != "thread_run" for e in events_a)  # the starter is not told
    assert all(e["type"] != "thread_run" for e in events_b)  # and B once only
    a.close()
    b.close()


async def test_a_follow_after_the_start_is_told_of_the_active_run(jp_ws_fetch: Any) -> None:
    a = await jp_ws_fetch("deltakit", "ws")
    await send(a, {"message": "count 200 delay 0.02", "threadId": "late"})
    [started] = await recv(a)
    b = await jp_ws_fetch("deltakit", "ws")
    await send(b, {"followThread": "late"})
    [notice] = await recv(b)
    assert notice["type"] == "thread_run" and notice["runId"] == started["runId"]
    await send(b, {"runId": started["runId"]})
    events = await recv_until_terminal(b)
    assert text(events) == "".join(f"{i} " for i in range(1, 201))
    assert_gap_free(events, started["runId"])
    a.close()
    b.close()


async def test_follow_replaces_and_null_stops(jp_ws_fetch: Any) -> None:
    b = await jp_ws_fetch("deltakit", "ws")
    a = await jp_ws_fetch("deltakit", "ws")
    await send(b, {"followThread": "one"})
    await send(b, {"followThread": "two"})
    assert await until_probe(b) == []  # (the probe's reply: both frames were taken)

    async def start(thread: str) -> str:
        await send(a, {"message": "echo hi", "threadId": thread})
        events = await recv_until_terminal(a)
        return str(events[0]["runId"])

    await start("one")
    assert await until_probe(b) == []  # no longer follows "one"
    in_two = await start("two")
    assert [n["runId"] for n in await until_probe(b)] == [in_two]
    await send(b, {"followThread": None})
    assert await until_probe(b) == []
    await start("two")
    assert await until_probe(b) == []
    a.close()
    b.close()


async def test_a_plain_client_never_sees_a_notice(jp_ws_fetch: Any) -> None:
    """DeltaKit's recipe clients send no followThread: their frames are run events only."""
    follower = await jp_ws_fetch("deltakit", "ws")
    await send(follower, {"followThread": "shared"})
    assert await until_probe(follower) == []
    plain = await jp_ws_fetch("deltakit", "ws")
    other = await jp_ws_fetch("deltakit", "ws")
    await send(plain, {"message": "echo mine", "threadId": "shared"})
    mine = await recv_until_terminal(plain)
    await send(other, {"message": "echo theirs", "threadId": "shared"})
    await recv_until_terminal(other)
    assert all("eventId" in e for e in mine + await until_probe(plain))
    notices = await until_probe(follower)
    assert [n["message"] for n in notices] == ["echo mine", "echo theirs"]
    for ws in (follower, plain, other):
        ws.close()


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ('{"followThread": 42}', "'followThread' must be a non-empty string of at most 200"),
        ('{"followThread": ""}', "'followThread' must be a non-empty string"),
        ('{"followThread": ["T"]}', "'followThread' must be a non-empty string"),
        ('{"followThread": "' + "t" * 201 + '"}', "at most 200 chars"),
        ('{"followThread": "a\\ud800b"}', "'followThread' must be valid Unicode text"),
    ],
)
async def test_bad_follow_frames_get_an_error_and_the_socket_stays_usable(
    jp_ws_fetch: Any, frame: str, expected: str
) -> None:
    ws = await jp_ws_fetch("deltakit", "ws")
    await send(ws, frame)
    [reply] = await recv(ws)
    assert reply["type"] == "error" and expected in reply["message"], reply
    await send(ws, {"followThread": "fine"})
    assert await until_probe(ws) == []
    other = await jp_ws_fetch("deltakit", "ws")
    await send(other, {"message": "echo still following", "threadId": "fine"})
    await recv_until_terminal(other)
    [notice] = await until_probe(ws)
    assert notice["type"] == "thread_run" and notice["message"] == "echo still following"
    other.close()
    ws.close()


async def test_a_closed_follower_is_forgotten(jp_ws_fetch: Any, jp_serverapp: Any) -> None:
    from deltakit_nb.server.app import DeltakitApp

    [app] = [
        ext
        for ext in jp_serverapp.extension_manager.extension_apps.get("deltakit_nb", ())
        if isinstance(ext, DeltakitApp)
    ]
    ws = await jp_ws_fetch("deltakit", "ws")
    await send(ws, {"followThread": "gone"})
    await until_probe(ws)
    assert len(app.registry.thread_listeners["gone"]) == 1
    ws.close()
    for _ in range(100):
        if "gone" not in app.registry.thread_listeners:
            break
        await asyncio.sleep(0.02)
    assert "gone" not in app.registry.thread_listeners


@pytest.mark.parametrize("jp_server_config", [True, False], indirect=True, ids=["store", "memory"])
async def test_cells_bind_and_the_threads_listing(jp_ws_fetch: Any, jp_fetch: Any) -> None:
    assert await get_json(jp_fetch, "cells", "cell-abc") == {"key": "cell-abc", "thread_id": None}
    body = json.dumps({"thread_id": "t-1"})
    assert await get_json(jp_fetch, "cells", "cell-abc", method="PUT", body=body) == {
        "status": "ok"
    }
    assert await get_json(jp_fetch, "cells", "cell-abc") == {"key": "cell-abc", "thread_id": "t-1"}
    body = json.dumps({"thread_id": "t-2"})
    await jp_fetch("deltakit", "cells", "cell-abc", method="PUT", body=body)
    assert (await get_json(jp_fetch, "cells", "cell-abc"))["thread_id"] == "t-2"

    ws = await jp_ws_fetch("deltakit", "ws")
    long_message = "echo " + "x" * 300
    for message, thread in [(long_message, "t-1"), ("echo again", "t-1"), ("fail", "t-2")]:
        await send(ws, {"message": message, "threadId": thread})
        await recv_until_terminal(ws)
    await send(ws, {"message": "count 300 delay 0.02", "threadId": "t-3"})
    [started] = await recv(ws)
    listing = (await get_json(jp_fetch, "threads"))["threads"]
    assert [t["thread_id"] for t in listing] == ["t-3", "t-2", "t-1"]
    three, two, one = listing
    assert three["status"] == "running" and three["runs"] == 1
    assert three["title"] == "count 300 delay 0.02"
    run_three = await get_json(jp_fetch, "runs", started["runId"])
    assert three["last_activity"] == three["created_at"] == run_three["created_at"]
    assert two["status"] == "failed" and two["title"] == "fail"
    runs_one = (await get_json(jp_fetch, "threads", "t-1"))["runs"]
    assert one == {
        "thread_id": "t-1",
        "title": long_message[:120],
        "created_at": runs_one[0]["created_at"],
        "last_activity": runs_one[1]["finished_at"],
        "status": "completed",
        "runs": 2,
    }
    limited = await get_json(jp_fetch, "threads", params={"limit": "2"})
    assert [t["thread_id"] for t in limited["threads"]] == ["t-3", "t-2"]
    await jp_fetch("deltakit", "jobs", started["runId"], "cancel", method="POST", body="")
    await recv_until_terminal(ws)
    assert (await get_json(jp_fetch, "threads"))["threads"][0]["status"] == "cancelled"

    # Deleting a thread drops the bindings to it (and only those).
    await jp_fetch("deltakit", "cells", "cell-other", method="PUT", body='{"thread_id": "t-1"}')
    await jp_fetch("deltakit", "threads", "t-2", method="DELETE")
    assert (await get_json(jp_fetch, "cells", "cell-abc"))["thread_id"] is None
    assert (await get_json(jp_fetch, "cells", "cell-other"))["thread_id"] == "t-1"
    listing = (await get_json(jp_fetch, "threads"))["threads"]
    assert [t["thread_id"] for t in listing] == ["t-3", "t-1"]
    ws.close()


@pytest.mark.parametrize(
    ("parts", "kw", "expected"),
    [
        (("cells", "k" * 201), {}, "'key' must be a non-empty string of at most 200 chars"),
        (("cells", "k"), {"method": "PUT", "body": "nope"}, "body is not valid JSON"),
        (("cells", "k"), {"method": "PUT", "body": "[1]"}, "body must be a JSON object"),
        (("cells", "k"), {"method": "PUT", "body": "{}"}, "'thread_id' must be a non-empty"),
        (
            ("cells", "k"),
            {"method": "PUT", "body": '{"thread_id": "a\\udc00"}'},
            "'thread_id' must be valid Unicode text",
        ),
        (("threads",), {"params": {"limit": "0"}}, "'limit' must be a positive integer"),
        (("threads",), {"params": {"limit": "ten"}}, "'limit' must be a positive integer"),
    ],
)
async def test_bad_requests_get_400_naming_the_problem(
    jp_fetch: Any, parts: tuple[str, ...], kw: dict[str, Any], expected: str
) -> None:
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("deltakit", *parts, **kw)
    assert err.value.code == 400
    assert err.value.response is not None
    assert expected in json.loads(err.value.response.body)["message"]


async def test_limit_is_capped(jp_fetch: Any) -> None:
    assert await get_json(jp_fetch, "threads", params={"limit": "100000"}) == {"threads": []}


async def test_bindings_and_the_listing_survive_a_restart(tmp_path: Path) -> None:
    import urllib.request

    from jupyterproc import TOKEN, JupyterProcess
    from test_durability import run_to_end

    def put(server: JupyterProcess, path: str, body: dict[str, Any]) -> Any:
        req = urllib.request.Request(
            server.base + path,
            method="PUT",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"token {TOKEN}"},
        )
        with urllib.request.urlopen(req, timeout=10) as response:
            return json.loads(response.read())

    with JupyterProcess(tmp_path) as server:
        await run_to_end(server, "echo kept", "t-kept")
        assert put(server, "/deltakit/cells/cell-kept", {"thread_id": "t-kept"}) == {"status": "ok"}
        before = server.get("/deltakit/threads")
    with JupyterProcess(tmp_path) as server:
        assert server.get("/deltakit/cells/cell-kept") == {
            "key": "cell-kept",
            "thread_id": "t-kept",
        }
        assert server.get("/deltakit/threads") == before
        assert [t["title"] for t in before["threads"]] == ["echo kept"]
