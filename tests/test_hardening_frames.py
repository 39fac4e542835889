"""Bad frames, as a property: whatever a client sends, the server answers with an `error` frame
or closes the socket with a proper close code, keeps serving, and logs no unhandled exception.
Plus the limits (frame size, message length, concurrent runs, subscriptions per socket), each
refused with an error that names the limit.

The property tests are plain (sync) functions driving the server's own event loop with
`run_until_complete`, since hypothesis cannot run coroutine tests itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from typing import Any

import pytest
from hardening_util import capture_server_log, deltakit_app, read_raw_frame, wait_for, ws_frame
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tornado.websocket import WebSocketClosedError
from wsclient import RawSocket, recv, recv_until_terminal, send, text

from deltakit_nb import protocol
from deltakit_nb.protocol import FrameError

MAX_FRAME_BYTES = 8000
MAX_MESSAGE_CHARS = 2000
MAX_RUNS = 3
MAX_SUBSCRIPTIONS = 5
# RFC 6455 codes a server may close with on bad input (or a normal close).
CLOSE_CODES = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011}
PROBE = {"runId": "no-such-run"}
PROBE_REPLY = {"type": "error", "message": "Run not found"}
REAL = "<the id of a real, finished run>"
_REAL_RUNS: dict[int, dict[str, Any]] = {}  # per server: the real run the examples resume

HYPOTHESIS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def jp_server_config() -> dict[str, object]:
    return {
        "ServerApp": {"jpserver_extensions": {"deltakit_nb": True}},
        "DeltakitApp": {
            "agents": {"demo": "deltakit_nb.offline:demo_agent"},
            "max_message_chars": MAX_MESSAGE_CHARS,
            "max_frame_bytes": MAX_FRAME_BYTES,
            "max_concurrent_runs": MAX_RUNS,
            "max_subscriptions_per_minute": MAX_SUBSCRIPTIONS,
            "persist": False,
        },
    }


# Strategies ---------------------------------------------------------------------------------

FIELDS = ["message", "threadId", "agent", "runId", "lastEventId", "followThread", "decisions"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
last_event_ids = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([-2, -1, 0, 1, 2**31, 2**63, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    json_values,
)
objects = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=12), json_values, max_size=7)
resumes = st.builds(
    lambda run_id, last, extra: {**extra, "runId": run_id, "lastEventId": last},
    st.one_of(st.just(REAL), st.text(max_size=250), json_values),
    last_event_ids,
    st.dictionaries(st.text(max_size=12), json_values, max_size=3),
)
starts = st.builds(
    lambda message, thread, agent, extra: {
        **extra,
        "message": message,
        **({"threadId": thread} if thread is not None else {}),
        **({"agent": agent} if agent is not None else {}),
    },
    st.one_of(
        st.text(max_size=60).map(lambda s: "echo " + s),
        st.integers(MAX_MESSAGE_CHARS - 5, MAX_MESSAGE_CHARS + 5).map(lambda n: "echo " + "m" * n),
        json_values,
    ),
    st.one_of(st.none(), st.text(max_size=210), json_values),
    st.one_of(st.none(), st.just("demo"), st.text(max_size=20), json_values),
    st.dictionaries(st.text(max_size=12), json_values, max_size=3),
)


def deep(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


frames = st.one_of(
    objects.map(lambda o: json.dumps(o, allow_nan=True)),
    resumes.map(lambda o: json.dumps(o, allow_nan=True)),
    starts.map(lambda o: json.dumps(o, allow_nan=True)),
    st.one_of(st.text(max_size=210), json_values).map(lambda t: json.dumps({"followThread": t})),
    json_values.map(json.dumps),  # any JSON at all: arrays, strings, numbers, null
    st.text(max_size=200),  # not JSON, mostly
    st.integers(MAX_FRAME_BYTES - 20, MAX_FRAME_BYTES + 20).map(
        lambda n: json.dumps({"message": "echo " + "f" * n})[:n]  # around the limit, cut or not
    ),
    st.tuples(st.integers(1, 6000), st.sampled_from(["list", "object"])).map(lambda d: deep(*d)),
    st.binary(max_size=300),  # binary frames
)


def expected_error(frame: str | bytes) -> str | None:
    """The error message a frame must get, when the frame alone decides it."""
    size = len(frame if isinstance(frame, bytes) else frame.encode("utf-8", "surrogatepass"))
    if size > MAX_FRAME_BYTES:
        return f"frame too large: {size} bytes (limit max_frame_bytes={MAX_FRAME_BYTES})"
    try:
        protocol.parse_frame(frame, MAX_MESSAGE_CHARS)
    except FrameError as exc:
        return str(exc)
    return None


def run(loop: asyncio.AbstractEventLoop, coro: Any) -> Any:
    return loop.run_until_complete(asyncio.wait_for(coro, 30))


async def real_run(jp_ws_fetch: Any, cache: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of a finished run the examples may resume (one per server)."""
    if "run" not in cache:
        ws = await jp_ws_fetch("deltakit", "ws")
        await send(ws, {"message": "echo a real run to resume"})
        cache["run"] = await recv_until_terminal(ws)
        ws.close()
    return cache["run"]  # type: ignore[no-any-return]


async def normal_run_works(jp_ws_fetch: Any) -> None:
    ws = await jp_ws_fetch("deltakit", "ws")
    await send(ws, {"message": "echo still serving"})
    events = await recv_until_terminal(ws)
    assert text(events) == "still serving" and events[-1]["status"] == "completed"
    ws.close()


def check_reply(frames_seen: list[dict[str, Any]], expected: str | None) -> None:
    """What came back for a frame (before the probe's reply) is well-formed and, when the
    frame alone decides it, exactly the error it should be."""
    if expected is not None:
        assert frames_seen == [{"type": "error", "message": expected}], frames_seen
        return
    for item in frames_seen:
        if item["type"] == "error" and "eventId" not in item:
            assert isinstance(item["message"], str) and item["message"]
        elif item["type"] == "thread_run":  # a followed thread had a run in progress
            assert isinstance(item["runId"], str) and isinstance(item["threadId"], str)
        else:  # the events of a run the frame started or resumed
            assert isinstance(item["eventId"], int) and isinstance(item["runId"], str)


# Properties ---------------------------------------------------------------------------------


@HYPOTHESIS
@given(frame=frames)
def test_any_frame_gets_an_error_or_events_and_the_socket_stays_usable(
    jp_ws_fetch: Any, jp_serverapp: Any, jp_asyncio_loop: Any, frame: str | bytes
) -> None:
    cache = _REAL_RUNS.setdefault(id(jp_serverapp), {})

    async def example() -> None:
        real = await real_run(jp_ws_fetch, cache)
        payload = frame
        if isinstance(frame, str) and REAL in frame:
            payload = frame.replace(REAL, real[0]["runId"])
        expected = expected_error(payload)
        ws = await jp_ws_fetch("deltakit", "ws", max_message_size=1 << 24)
        await ws.write_message(payload, binary=isinstance(payload, bytes))
        await send(ws, PROBE)
        seen: list[dict[str, Any]] = []
        while True:
            batch = await recv(ws)
            if PROBE_REPLY in batch:
                seen.extend(batch[: batch.index(PROBE_REPLY)])
                break
            seen.extend(batch)
        check_reply(seen, expected)
        if expected is None and len(payload) <= MAX_FRAME_BYTES:
            parsed = protocol.parse_frame(payload, MAX_MESSAGE_CHARS)
            if isinstance(parsed, protocol.ResumeFrame) and parsed.run_id == real[0]["runId"]:
                assert seen == real[parsed.last_event_id + 1 :]  # exactly the rest of the log
        kinds = {"error" if "eventId" not in e else "run events" for e in seen} or {"nothing"}
        event(f"reply: {'+'.join(sorted(kinds))}")
        ws.close()
        await normal_run_works(jp_ws_fetch)

    with capture_server_log(jp_serverapp) as log:
        run(jp_asyncio_loop, example())
    assert log.problems() == []


# Decision frames on a real paused run (a confirm_action call of the demo agent).
PAUSED = "<the id of a real paused run>"
REQ = "<the id of its requirement>"
_PAUSED_RUNS: dict[int, dict[str, Any]] = {}  # per server: the paused run the examples decide
decision_objects = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.just(REQ), st.text(max_size=20), json_values),
        "approve": st.one_of(st.booleans(), json_values),
        "note": st.one_of(st.text(max_size=30), json_values),
        "values": st.one_of(st.dictionaries(st.text(max_size=8), json_values), json_values),
        "result": st.one_of(st.text(max_size=30), json_values),
    },
).flatmap(
    lambda d: st.dictionaries(st.text(max_size=8), json_values, max_size=2).map(
        lambda extra: {**extra, **d}
    )
)
decision_frames = st.builds(
    lambda run_id, decisions: {"runId": run_id, "decisions": decisions},
    st.one_of(st.just(PAUSED), st.text(max_size=30), json_values),
    st.one_of(
        st.lists(decision_objects, max_size=3),
        json_values,
        st.builds(  # valid ones too, so that some examples continue the run
            lambda approve, note: [{"id": REQ, "approve": approve, "note": note}],
            st.booleans(),
            st.one_of(st.none(), st.text(max_size=20)),
        ),
    ),
)


async def paused_run(jp_ws_fetch: Any, cache: dict[str, Any]) -> dict[str, Any]:
    """A run paused on a confirm_action call (a new one once an example has decided it)."""
    if "run" not in cache:
        ws = await jp_ws_fetch("deltakit", "ws")
        await send(ws, {"message": 'tool confirm_action {"action": "x"}'})
        events: list[dict[str, Any]] = []
        while not events or events[-1]["type"] != "run_paused":
            events.extend(await recv(ws))
        ws.close()
        cache["run"] = {"id": events[0]["runId"], "req": events[-1]["requirements"][0]["id"]}
    return cache["run"]  # type: ignore[no-any-return]


@HYPOTHESIS
@given(frame=decision_frames)
def test_any_decision_frame_is_refused_with_the_run_unchanged_or_continues_it(
    jp_ws_fetch: Any, jp_serverapp: Any, jp_asyncio_loop: Any, frame: dict[str, Any]
) -> None:
    cache = _PAUSED_RUNS.setdefault(id(jp_serverapp), {})
    registry = deltakit_app(jp_serverapp).registry

    async def example() -> None:
        paused = await paused_run(jp_ws_fetch, cache)
        text_frame = json.dumps(frame).replace(PAUSED, paused["id"]).replace(REQ, paused["req"])
        run = registry.get(paused["id"])
        before = list(run.log.encoded())
        ws = await jp_ws_fetch("deltakit", "ws")
        await ws.write_message(text_frame)
        await send(ws, PROBE)
        seen: list[dict[str, Any]] = []
        while PROBE_REPLY not in seen:
            seen.extend(await recv(ws))
        seen = seen[: seen.index(PROBE_REPLY)]
        ws.close()
        if run.status is protocol.RunStatus.PAUSED:  # refused: one error, nothing changed
            assert len(seen) == 1 and seen[0]["type"] == "error" and "eventId" not in seen[0]
            assert seen[0]["message"], seen
            assert run.log.encoded() == before and run.requirements
            event("refused")
            return
        # Accepted: exactly the one valid shape, and the run goes on to its end.
        assert seen == []
        [decision] = json.loads(text_frame)["decisions"]
        assert decision["id"] == paused["req"] and isinstance(decision["approve"], bool)
        assert {k for k, v in decision.items() if v is not None} <= {"id", "approve", "note"}
        await wait_for(lambda: run.done, 10)
        assert run.status is protocol.RunStatus.COMPLETED
        del cache["run"]
        event("continued")

    with capture_server_log(jp_serverapp) as log:
        run(jp_asyncio_loop, example())
    assert log.problems() == []


raw_payloads = st.one_of(
    st.binary(max_size=200),
    st.binary(min_size=126, max_size=300),
    st.sampled_from([b"\xff\xfe", b"\xc3\x28", b'{"message": "\xed\xa0\x80"}', b"\x80"]),
    st.just(json.dumps({"message": "echo raw"}).encode()),
)
RawFrame = tuple[bytes, int, bool, int, bool]  # payload, opcode, fin, rsv, masked
raw_frames = st.one_of(
    # anything goes: unknown opcodes, reserved bits, unmasked, fragments, control frames
    st.tuples(
        raw_payloads,
        st.sampled_from([0, 1, 2, 3, 7, 8, 9, 10, 11, 15]),
        st.booleans(),
        st.integers(0, 7),
        st.booleans(),
    ),
    # well-formed frames with bad content (invalid UTF-8 in a text frame, binary garbage)
    st.tuples(raw_payloads, st.sampled_from([1, 2]), st.just(True), st.just(0), st.just(True)),
)


@HYPOTHESIS
@given(garbage=st.lists(raw_frames, min_size=1, max_size=3))
def test_protocol_level_garbage_gets_an_error_or_a_clean_close(
    jp_serverapp: Any,
    jp_http_port: int,
    jp_base_url: str,
    jp_ws_fetch: Any,
    jp_asyncio_loop: Any,
    garbage: list[RawFrame],
) -> None:
    """Hand-built frames that break the WebSocket rules (bad opcodes, reserved bits, unmasked,
    fragments, invalid UTF-8, oversized control frames): tornado either carries on (and we
    answer with error frames) or drops the connection; the server never crashes."""
    token = jp_serverapp.identity_provider.token
    # RFC 6455 has the server echo a client's close code, valid or not (tornado does).
    echoes = {int.from_bytes(f[0][:2], "big") for f in garbage if f[1] == 8 and len(f[0]) >= 2}

    async def example() -> None:
        sock = await RawSocket.connect(jp_http_port, f"{jp_base_url}deltakit/ws", token)
        for payload, opcode, fin, rsv, masked in garbage:
            sock.writer.write(ws_frame(payload, opcode, fin, rsv, masked))
        probe = json.dumps(PROBE).encode()
        sock.writer.write(ws_frame(probe))
        closed = False
        with_error = False
        try:
            await sock.writer.drain()
        except ConnectionError:
            closed = True
        while not closed:
            got = await read_raw_frame(sock.reader)
            if got is None:  # the connection was dropped
                closed = True
            elif got[0] == 8:  # a close frame: a proper code, or the echo of the client's own
                if len(got[1]) >= 2:
                    assert int.from_bytes(got[1][:2], "big") in CLOSE_CODES | echoes, got
                closed = True
            elif got[0] == 1:
                data = json.loads(got[1])
                batch = data if isinstance(data, list) else [data]
                for item in batch:
                    assert isinstance(item, dict) and isinstance(item.get("type"), str)
                if PROBE_REPLY in batch:
                    with_error = True
                    break
            else:  # pongs for our pings
                assert got[0] == 10, got
        assert closed or with_error
        event("server closed the connection" if closed else "server answered with error frames")
        sock.close()
        if closed:  # the next client is served as usual
            ws = await jp_ws_fetch("deltakit", "ws")
            await send(ws, PROBE)
            assert await recv(ws) == [PROBE_REPLY]
            ws.close()

    with capture_server_log(jp_serverapp) as log:
        run(jp_asyncio_loop, example())
    assert log.problems() == []


# Explicit edge cases --------------------------------------------------------------------------


async def test_frame_over_tornados_message_limit_is_closed_with_1009(
    jp_ws_fetch: Any, jp_serverapp: Any
) -> None:
    with capture_server_log(jp_serverapp) as log:
        ws = await jp_ws_fetch("deltakit", "ws")
        # Over websocket_max_message_size (10 MiB): the server may hang up before we finish.
        with contextlib.suppress(WebSocketClosedError):
            await ws.write_message("x" * (11 << 20))
        assert await asyncio.wait_for(ws.read_message(), 10) is None
        assert ws.close_code == 1009
        await normal_run_works(jp_ws_fetch)
    assert log.problems() == []


@pytest.mark.parametrize(
    "frame",
    [
        '{"runId": "%s", "lastEventId": 1.5}',
        '{"runId": "%s", "lastEventId": -2}',
        '{"runId": "%s", "lastEventId": 1e400}',
        '{"runId": "%s", "lastEventId": NaN}',
        '{"runId": "%s", "lastEventId": true}',
        '{"runId": "%s", "lastEventId": 99999999999999999999999999}',
        '{"runId": "%s", "lastEventId": 0, "junk": {"deep": [1, 2, {}]}}',
    ],
)
async def test_odd_last_event_ids_on_a_real_run(jp_ws_fetch: Any, frame: str) -> None:
    ws = await jp_ws_fetch("deltakit", "ws")
    await send(ws, {"message": "echo abcdefghijkl"})
    events = await recv_until_terminal(ws)
    await send(ws, frame % events[0]["runId"])
    await send(ws, PROBE)
    replies: list[dict[str, Any]] = []
    while PROBE_REPLY not in replies:
        replies.extend(await recv(ws))
    replies = replies[: replies.index(PROBE_REPLY)]
    last = json.loads(frame % "x", parse_constant=lambda c: math.nan)["lastEventId"]
    if isinstance(last, int) and not isinstance(last, bool) and last >= -1:
        assert replies == events[last + 1 :]
    else:
        assert replies == [{"type": "error", "message": "'lastEventId' must be an integer >= -1"}]
    ws.close()


async def test_log_capture_sees_an_unhandled_exception(
    jp_ws_fetch: Any, jp_serverapp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The harness check: a handler that raises does show up as a problem in the log."""

    def explode(*args: Any) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(protocol, "parse_frame", explode)
    with capture_server_log(jp_serverapp) as log:
        ws = await jp_ws_fetch("deltakit", "ws")
        await send(ws, {"message": "hi"})
        assert await asyncio.wait_for(ws.read_message(), 10) is None
    assert any("KeyError" in p for p in log.problems()), log.lines()


# Limits ----------------------------------------------------------------------------------------


async def test_frame_and_message_limits_name_the_limit(jp_ws_fetch: Any) -> None:
    ws = await jp_ws_fetch("deltakit", "ws")
    await send(ws, {"message": "x" * (MAX_MESSAGE_CHARS + 1)})
    [reply] = await recv(ws)
    assert reply["message"] == (
        f"message too long: {MAX_MESSAGE_CHARS + 1} chars "
        f"(limit max_message_chars={MAX_MESSAGE_CHARS})"
    )
    await send(ws, {"message": "x" * MAX_FRAME_BYTES})
    [reply] = await recv(ws)
    assert f"(limit max_frame_bytes={MAX_FRAME_BYTES})" in reply["message"]
    ws.close()


async def test_concurrent_runs_limit(jp_ws_fetch: Any, jp_fetch: Any, jp_serverapp: Any) -> None:
    registry = deltakit_app(jp_serverapp).registry
    await wait_for(lambda: registry.active_run() is None)
    sockets, run_ids = [], []
    for _ in range(MAX_RUNS):
        ws = await jp_ws_fetch("deltakit", "ws")
        await send(ws, {"message": "count 400 delay 0.05"})
        [started] = await recv(ws)
        sockets.append(ws)
        run_ids.append(started["runId"])
    over = await jp_ws_fetch("deltakit", "ws")
    await send(over, {"message": "echo one too many"})
    [reply] = await recv(over)
    assert reply == {
        "type": "error",
        "message": f"too many runs in progress: {MAX_RUNS} (limit max_concurrent_runs={MAX_RUNS})",
    }
    # Finished runs free their slot.
    await jp_fetch("deltakit", "jobs", run_ids.pop(), "cancel", method="POST", body="")
    await send(over, {"message": "echo now there is room"})
    assert text(await recv_until_terminal(over)) == "now there is room"
    for run_id in run_ids:
        await jp_fetch("deltakit", "jobs", run_id, "cancel", method="POST", body="")
    for ws in [*sockets, over]:
        ws.close()


async def test_subscriptions_per_minute_limit(jp_ws_fetch: Any) -> None:
    ws = await jp_ws_fetch("deltakit", "ws")
    for _ in range(MAX_SUBSCRIPTIONS):
        await send(ws, PROBE)
        assert await recv(ws) == [PROBE_REPLY]
    limit_error = {
        "type": "error",
        "message": f"too many start/resume frames on this socket: {MAX_SUBSCRIPTIONS} in the "
        f"last minute (limit max_subscriptions_per_minute={MAX_SUBSCRIPTIONS})",
    }
    for frame in (PROBE, {"message": "echo refused"}):
        await send(ws, frame)
        assert await recv(ws) == [limit_error]
    # Bad frames are still told what is wrong with them, and other sockets are not limited.
    await send(ws, "not json")
    assert (await recv(ws))[0]["message"] == "frame is not valid JSON"
    await normal_run_works(jp_ws_fetch)
    ws.close()
