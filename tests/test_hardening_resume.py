"""Resume, as a property: wherever a client is cut off — mid-run, between runs, in the middle
of a replay — and however it goes away, the events it ends up with for each run are exactly that
run's log: no gap, no duplicate, in order.

A client here is what the widget does: it keeps the events it has processed, remembers the last
eventId, and after a reconnect sends `{"runId", "lastEventId"}`. A cut may fall inside a frame
(a batch array): the client keeps only what it processed before the cut.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest
from hardening_util import capture_server_log
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from wsclient import RawSocket, assert_gap_free, recv, send

PROBE = {"runId": "no-such-run"}
PROBE_REPLY = {"type": "error", "message": "Run not found"}


@pytest.fixture
def jp_server_config() -> dict[str, object]:
    return {
        "ServerApp": {"jpserver_extensions": {"deltakit_nb": True}},
        "DeltakitApp": {
            "agents": {"demo": "deltakit_nb.offline:demo_agent"},
            "max_subscriptions_per_minute": 0,
        },
    }


@dataclass(frozen=True)
class Cut:
    """One connection of a client: process `events` more events (0: none at all, the cut comes
    before the replay), go away in one of three ways, and pause before reconnecting."""

    events: int
    how: str  # "close": a clean close; "drop": TCP gone, no close frame; "idle": stop reading
    pause: float  # seconds before reconnecting: the run goes on meanwhile


cuts = st.builds(
    Cut,
    events=st.integers(0, 40),
    how=st.sampled_from(["close", "drop", "idle"]),
    pause=st.sampled_from([0.0, 0.0, 0.01, 0.05, 0.2]),
)
runs = st.tuples(
    st.integers(5, 40),  # how many numbers the offline model counts
    st.sampled_from([0.0, 0.001, 0.005]),  # delay between chunks
    st.lists(cuts, min_size=1, max_size=4),  # the cuts while following this run
    st.booleans(),  # cut between this run and the next (after its terminal event)
)


class Client:
    """A resuming client on a raw socket (so that it can also vanish without a close)."""

    def __init__(self, port: int, path: str, token: str):
        self.port, self.path, self.token = port, path, token
        self.sock: RawSocket | None = None
        self.abandoned: list[RawSocket] = []

    async def connect(self) -> RawSocket:
        self.sock = await RawSocket.connect(self.port, self.path, self.token)
        return self.sock

    def go_away(self, how: str) -> None:
        assert self.sock is not None
        if how == "close":
            # a close frame, then the TCP close
            self.sock.writer.write(b"\x88\x82\x00\x00\x00\x00\x03\xe8")
            self.sock.close()
        elif how == "drop":
            self.sock.writer.transport.abort()  # RST: no close frame, no FIN handshake
        else:  # idle: the socket stays open and unread; the client opens another
            self.abandoned.append(self.sock)
        self.sock = None

    def close_all(self) -> None:
        if self.sock is not None:
            self.go_away("close")
        for sock in self.abandoned:
            sock.close()
        self.abandoned.clear()


async def follow_run(client: Client, message: str, cut_plan: list[Cut]) -> list[dict[str, Any]]:
    """Start a run and follow it to its terminal event through every cut; return what the
    client ended up with."""
    sock = await client.connect()
    await sock.send({"message": message})
    kept: list[dict[str, Any]] = []
    plan = list(cut_plan)
    while True:
        cut = plan.pop(0) if plan else None
        # The first connection must at least see run_started, to learn the run's id.
        target = None if cut is None else len(kept) + max(cut.events, 0 if kept else 1)
        while target is None or len(kept) < target:
            batch = await sock.recv()
            for item in batch:
                if target is not None and len(kept) >= target:
                    event("cut inside a batch")
                    break  # processed up to the cut: the rest of this frame is lost
                kept.append(item)
            if kept[-1]["type"] in ("done", "error"):
                return kept
        assert cut is not None
        event(f"cut by {cut.how}")
        client.go_away(cut.how)
        if cut.pause:
            await asyncio.sleep(cut.pause)
        sock = await client.connect()
        await sock.send({"runId": kept[0]["runId"], "lastEventId": kept[-1]["eventId"]})


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=st.lists(runs, min_size=1, max_size=3))
def test_client_ends_up_with_exactly_the_log(
    jp_serverapp: Any,
    jp_http_port: int,
    jp_base_url: str,
    jp_fetch: Any,
    jp_asyncio_loop: Any,
    plan: list[tuple[int, float, list[Cut], bool]],
) -> None:
    token = jp_serverapp.identity_provider.token
    path = f"{jp_base_url}deltakit/ws"

    async def example() -> None:
        client = Client(jp_http_port, path, token)
        for n, delay, cut_plan, cut_after in plan:
            message = f"count {n} delay {delay}" if delay else f"count {n}"
            got = await follow_run(client, message, cut_plan)
            run_id = got[0]["runId"]
            response = await jp_fetch("deltakit", "runs", run_id)
            log = json.loads(response.body)["events"]
            assert got == log
            assert_gap_free(got, run_id)
            assert "".join(e["delta"] for e in got if e["type"] == "text_delta") == "".join(
                f"{i} " for i in range(1, n + 1)
            )
            # Reconnecting after the end (between runs) gives nothing twice: the next thing
            # on the socket is the reply to our probe.
            sock = client.sock
            if cut_after and sock is not None:
                event("cut between runs")
                client.go_away("close")
                sock = await client.connect()
                await sock.send({"runId": run_id, "lastEventId": got[-1]["eventId"]})
                await sock.send(PROBE)
                assert await sock.recv() == [PROBE_REPLY]
        client.close_all()

    with capture_server_log(jp_serverapp) as server_log:
        jp_asyncio_loop.run_until_complete(asyncio.wait_for(example(), 60))
    assert server_log.problems() == []


async def test_replay_cut_inside_one_batch(jp_ws_fetch: Any, jp_fetch: Any) -> None:
    """A finished run's replay comes as one array frame (and its `done` in a frame of its
    own); a client that processed only part of it resumes from there and gets exactly the
    rest."""
    ws = await jp_ws_fetch("deltakit", "ws")
    # Chunks apart in time, so each is an event of its own (302 events in all).
    await send(ws, {"message": "count 300 delay 0.00001"})
    events: list[dict[str, Any]] = []
    while not events or events[-1]["type"] != "done":
        events.extend(await recv(ws))
    assert len(events) == 302
    run_id = events[0]["runId"]
    for cut in (1, 7, 150, 299, 301):
        await send(ws, {"runId": run_id, "lastEventId": -1})
        kept: list[dict[str, Any]] = []
        while not kept or kept[-1]["type"] != "done":  # the whole replay reaches the client
            kept.extend(await recv(ws))
        kept = kept[:cut]
        await send(ws, {"runId": run_id, "lastEventId": kept[-1]["eventId"]})
        rest: list[dict[str, Any]] = []
        while not rest or rest[-1]["type"] != "done":
            rest.extend(await recv(ws))
        assert kept + rest == events
    assert events == json.loads((await jp_fetch("deltakit", "runs", run_id)).body)["events"]
    ws.close()
