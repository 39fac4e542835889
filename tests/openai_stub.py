"""A scripted OpenAI-compatible chat server for tests: stdlib only, 127.0.0.1 only.

It answers ``POST /v1/chat/completions`` (streamed as Server-Sent Events, or as one JSON body
when the request says ``"stream": false``) from a script: one step per request, in order. A
step is a function of the request body that returns a `Reply`:

    stub.script = [
        lambda body: ToolCall("calculator", ['{"expres', 'sion": "6 * 7"}']),
        lambda body: Text(["The answer ", "is ", tool_output(body)]),
    ]

Every request (path, headers, parsed body) is recorded in `stub.requests`, and every streamed
text in `stub.sent_texts`, so a test can check what the client sent and what the model said.
A request after the script ran out gets HTTP 500, so a test notices an unexpected call.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Body = dict[str, Any]


@dataclass(frozen=True)
class Text:
    """Stream these text pieces, one chunk each, then finish with "stop"."""

    chunks: list[str]


@dataclass(frozen=True)
class ToolCall:
    """Stream one call to tool `name`, its JSON arguments split over `argument_chunks`."""

    name: str
    argument_chunks: list[str]
    call_id: str = "call_stub_1"


@dataclass(frozen=True)
class Failure:
    """Answer with an HTTP error and an OpenAI-style error body."""

    status: int
    message: str
    code: str = "stub_error"
    headers: dict[str, str] = field(default_factory=dict)


Reply = Text | ToolCall | Failure
Step = Callable[[Body], Reply]


@dataclass
class Request:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Body


def tool_output(body: Body) -> str:
    """The content of the last `role: tool` message of a request (what the tool returned)."""
    tools = [m for m in body.get("messages", []) if m.get("role") == "tool"]
    assert tools, "the request carries no tool result"
    content = tools[-1]["content"]
    if isinstance(content, list):  # content parts
        content = "".join(part.get("text", "") for part in content)
    return str(content)


class OpenAIStub:
    """Start with `start()` (or as a context manager); `base_url` ends in /v1."""

    def __init__(self, script: list[Step] | None = None, chunk_delay: float = 0.0):
        self.script: list[Step] = list(script or [])
        self.chunk_delay = chunk_delay
        self.requests: list[Request] = []
        self.sent_texts: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "the stub is not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> OpenAIStub:
        stub = self

        class Handler(_Handler):
            owner = stub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_reply(self, request: Request) -> Reply:
        self._record(request)
        with self._lock:
            step = self.script.pop(0) if self.script else None
        if step is None:
            return Failure(500, "openai stub: the script has no step left for this request")
        reply = step(request.body)
        if isinstance(reply, Text):  # recorded before it is sent: the client cannot be ahead
            with self._lock:
                self.sent_texts.append("".join(reply.chunks))
        return reply

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


class _Handler(BaseHTTPRequestHandler):
    owner: OpenAIStub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_unparsed": raw.decode("utf-8", "replace")}
        request = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self.owner._record(request)
            self._json(404, _error_body(f"openai stub: no route {self.path}", "not_found"))
            return
        try:
            reply = self.owner._next_reply(request)
        except Exception as exc:  # a broken script step: say so to the client
            reply = Failure(500, f"openai stub: script step failed: {exc!r}")
        if isinstance(reply, Failure):
            self._json(reply.status, _error_body(reply.message, reply.code), reply.headers)
            return
        model = str(body.get("model", "stub"))
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._stream(reply, model, usage)
        else:
            self._json(200, _completion(reply, model))

    def _json(self, status: int, payload: Body, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def _stream(self, reply: Text | ToolCall, model: str, usage: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        for chunk in _chunks(reply, model, usage):
            self._write_chunked(f"data: {json.dumps(chunk)}\n\n".encode())
            if self.owner.chunk_delay:
                time.sleep(self.owner.chunk_delay)
        self._write_chunked(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        self.close_connection = True

    def _write_chunked(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def _error_body(message: str, code: str) -> Body:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}


_USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def _chunk(model: str, delta: Body, finish: str | None = None) -> Body:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _chunks(reply: Text | ToolCall, model: str, usage: bool) -> Iterator[Body]:
    if isinstance(reply, Text):
        yield _chunk(model, {"role": "assistant", "content": ""})
        for piece in reply.chunks:
            yield _chunk(model, {"content": piece})
        yield _chunk(model, {}, "stop")
    else:
        head = {"index": 0, "id": reply.call_id, "type": "function"}
        head["function"] = {"name": reply.name, "arguments": ""}
        yield _chunk(model, {"role": "assistant", "content": None, "tool_calls": [head]})
        for piece in reply.argument_chunks:
            yield _chunk(model, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        yield _chunk(model, {}, "tool_calls")
    if usage:
        yield {**_chunk(model, {}), "choices": [], "usage": _USAGE}


def _completion(reply: Text | ToolCall, model: str) -> Body:
    if isinstance(reply, Text):
        message: Body = {"role": "assistant", "content": "".join(reply.chunks)}
        finish = "stop"
    else:
        call = {
            "id": reply.call_id,
            "type": "function",
            "function": {"name": reply.name, "arguments": "".join(reply.argument_chunks)},
        }
        message, finish = {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": _USAGE,
    }
