"""A real provider end to end, with no network: the `assistant` agent on
``openai-compatible:stub-model`` (agno's OpenAILike and the real openai client) talks to a
scripted OpenAI-compatible server on 127.0.0.1, through a real Jupyter server and WebSocket.

(A model whose key is missing, `openai:gpt-4.1-mini` without OPENAI_API_KEY, is covered through
the server by test_providers.py::test_server_run_without_key_ends_with_an_error_naming_it.)
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import TEST_AGENTS
from openai_stub import Body, Failure, OpenAIStub, Text, ToolCall, tool_output
from wsclient import assert_gap_free, recv, recv_until_terminal, send, text

API_KEY = "stub-secret-key"
REAL_OPENAI_KEY = "sk-real-openai-key-that-must-not-leak"
ARGUMENT_CHUNKS = ['{"expres', 'sion": "6 ', '* 7"}']
CALL_ID = "call_stub_6x7"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", None}


def answer(body: Body) -> Text:
    """The second model turn: an answer quoting the tool result the request carried."""
    result = tool_output(body)
    return Text(["6 * 7 ", "is **", result, "**, ", "says the ", "calculator."])


@pytest.fixture
def blocked_lookups(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Refuse (and record) every DNS lookup of a host other than this machine, so that a call
    to api.openai.com, agno's telemetry or anything else fails the test instead of leaving."""
    blocked: list[Any] = []
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in LOCAL_HOSTS:
            blocked.append(name)
            raise socket.gaierror(socket.EAI_NONAME, f"test: no outside host ({name})")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    return blocked


@pytest.fixture
def provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DELTAKIT_MODEL", "DELTAKIT_BASE_URL", "DELTAKIT_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    # An openai-compatible server must never receive the real OpenAI key.
    monkeypatch.setenv("OPENAI_API_KEY", REAL_OPENAI_KEY)


@pytest.fixture
def stub(provider_env: None) -> Iterator[OpenAIStub]:
    with OpenAIStub() as server:
        yield server


@pytest.fixture
def jp_server_config(stub: OpenAIStub, blocked_lookups: list[Any]) -> dict[str, object]:
    return {
        "ServerApp": {"jpserver_extensions": {"deltakit_nb": True}},
        "DeltakitApp": {
            "agents": TEST_AGENTS,
            "model": "openai-compatible:stub-model",
            "model_base_url": stub.base_url,
        },
    }


async def run_to_end(jp_ws_fetch: Any, frame: dict[str, Any]) -> list[dict[str, Any]]:
    ws = await jp_ws_fetch("deltakit", "ws")
    try:
        await send(ws, frame)
        events = await recv(ws)
        assert events[0]["type"] == "run_started", events
        events += await recv_until_terminal(ws)
    finally:
        ws.close()
    assert_gap_free(events, events[0]["runId"])
    return events


async def get_json(jp_fetch: Any, *parts: str) -> Any:
    return json.loads((await jp_fetch("deltakit", *parts)).body)


async def test_assistant_calls_the_tool_and_answers_with_its_result(
    jp_ws_fetch: Any, jp_fetch: Any, stub: OpenAIStub, blocked_lookups: list[Any], monkeypatch: Any
) -> None:
    monkeypatch.setenv("DELTAKIT_API_KEY", API_KEY)  # read when the run builds its model
    stub.script = [lambda body: ToolCall("calculator", ARGUMENT_CHUNKS, CALL_ID), answer]

    listing = await get_json(jp_fetch, "agents")
    assert listing["default"] == "assistant"
    assert {"assistant", "demo"} <= {a["name"] for a in listing["agents"]}
    assert stub.requests == []  # listing builds the agent, which contacts nobody

    events = await run_to_end(jp_ws_fetch, {"message": "what is 6 * 7?", "threadId": "live"})
    run_id = events[0]["runId"]
    assert events[0]["agent"] == "assistant" and events[0]["threadId"] == "live"

    # The events: start, one tool call, its real result, the streamed answer, done.
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["run_started", "tool_call", "tool_result"], kinds
    assert set(kinds[3:-1]) == {"text_delta"} and kinds[-1] == "done", kinds
    call, result = events[1], events[2]
    assert call["tool_name"] == "calculator" and call["call_id"] == CALL_ID
    assert json.loads(call["argument"]) == {"expression": "6 * 7"}
    assert result["call_id"] == CALL_ID and result["tool_name"] == "calculator"
    assert result["output"] == "42" and result["is_error"] is False
    assert stub.sent_texts == ["6 * 7 is **42**, says the calculator."]
    assert text(events) == stub.sent_texts[0]
    assert kinds.count("text_delta") > 1  # streamed, not delivered in one piece
    done = {k: v for k, v in events[-1].items() if k != "metrics"}  # as the provider reports
    assert done == {"type": "done", "status": "completed", "eventId": len(events) - 1,
                    "runId": run_id}  # fmt: skip

    run = await get_json(jp_fetch, "runs", run_id)
    assert run["status"] == "completed" and run["events"] == events

    # What went over the wire: two streamed requests to the stub, with the configured key.
    assert len(stub.requests) == 2
    for request in stub.requests:
        assert request.path == "/v1/chat/completions"
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        assert REAL_OPENAI_KEY not in json.dumps(request.headers)
        assert request.body["model"] == "stub-model" and request.body["stream"] is True
        tools = {t["function"]["name"]: t["function"] for t in request.body["tools"]}
        assert set(tools) == {"calculator", "current_time"}
        assert tools["calculator"]["parameters"]["properties"]["expression"]["type"] == "string"
        assert tools["calculator"]["parameters"]["required"] == ["expression"]
    first, second = (r.body["messages"] for r in stub.requests)
    assert first[0]["role"] == "system" and "calculator tool" in first[0]["content"]
    assert first[-1] == {"role": "user", "content": "what is 6 * 7?"}
    # The second request replays the call, then carries the calculator's real output.
    assert second[: len(first)] == first
    replayed, tool_message = second[len(first) :]
    assert replayed["role"] == "assistant"
    assert replayed["tool_calls"] == [
        {
            "id": CALL_ID,
            "type": "function",
            "function": {"name": "calculator", "arguments": "".join(ARGUMENT_CHUNKS)},
        }
    ]
    assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == CALL_ID
    assert tool_message["content"] == "42"
    assert blocked_lookups == []


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, "Incorrect API key provided: not-provided"),
        (500, "The stub model server is having a bad day"),
    ],
)
async def test_provider_http_error_fails_the_run_with_its_message(
    jp_ws_fetch: Any,
    jp_fetch: Any,
    stub: OpenAIStub,
    blocked_lookups: list[Any],
    status: int,
    message: str,
) -> None:
    # retry-after-ms keeps the openai client's own retries of a 5xx quick.
    failure = Failure(status, message, headers={"retry-after-ms": "10"})
    stub.script = [lambda body: failure] * 5

    events = await run_to_end(jp_ws_fetch, {"message": "what is 6 * 7?"})
    assert [e["type"] for e in events] == ["run_started", "error"]
    assert message in events[-1]["message"]
    run = await get_json(jp_fetch, "runs", events[0]["runId"])
    assert run["status"] == "failed" and run["events"] == events

    # No DELTAKIT_API_KEY: OpenAILike's placeholder goes out, never the real OpenAI key.
    assert stub.requests, "the model server was never asked"
    for request in stub.requests:
        assert request.headers["authorization"] == "Bearer not-provided"
        assert REAL_OPENAI_KEY not in json.dumps(request.headers)
    # A 401 is final; a 5xx is retried by the openai client (not by agno) before failing.
    assert len(stub.requests) == 1 if status == 401 else len(stub.requests) > 1
    assert blocked_lookups == []
