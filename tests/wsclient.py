"""A small test client for the deltakit socket: every read is bounded by a timeout."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tornado.websocket import WebSocketClientConnection

TIMEOUT = 10.0
Event = dict[str, Any]


async def send(ws: WebSocketClientConnection, frame: Any) -> None:
    await ws.write_message(frame if isinstance(frame, str | bytes) else json.dumps(frame))


async def recv(ws: WebSocketClientConnection, timeout: float = TIMEOUT) -> list[Event]:
    """The events of the next frame (a frame holds one event or an array of them)."""
    raw = await asyncio.wait_for(ws.read_message(), timeout)
    assert raw is not None, "socket closed"
    data = json.loads(raw)
    return data if isinstance(data, list) else [data]


async def recv_until_terminal(ws: WebSocketClientConnection) -> list[Event]:
    events: list[Event] = []
    while not events or events[-1]["type"] not in ("done", "error") or "eventId" not in events[-1]:
        events.extend(await recv(ws))
    return events


async def recv_frames_until_terminal(ws: WebSocketClientConnection) -> list[Event | list[Event]]:
    """The frames as sent (an event, or an array of events) up to the run's terminal event."""
    frames: list[Event | list[Event]] = []
    while True:
        raw = await asyncio.wait_for(ws.read_message(), TIMEOUT)
        assert raw is not None, "socket closed"
        frames.append(json.loads(raw))
        last = frames[-1][-1] if isinstance(frames[-1], list) else frames[-1]
        if last["type"] in ("done", "error") and "eventId" in last:
            return frames


def events_of(frames: list[Event | list[Event]]) -> list[Event]:
    return [e for f in frames for e in (f if isinstance(f, list) else [f])]


async def recv_n(ws: WebSocketClientConnection, n: int) -> list[Event]:
    events: list[Event] = []
    while len(events) < n:
        events.extend(await recv(ws))
    return events


def text(events: list[Event]) -> str:
    return "".join(e["delta"] for e in events if e["type"] == "text_delta")


def assert_gap_free(events: list[Event], run_id: str) -> None:
    assert [e["eventId"] for e in events] == list(range(len(events)))
    assert all(e["runId"] == run_id for e in events)
    assert events[0]["type"] == "run_started"
    terminals = [e for e in events if e["type"] in ("done", "error")]
    assert terminals == [events[-1]], "exactly one terminal event, and it is the last"


class RawSocket:
    """A WebSocket client on a plain TCP socket with a tiny receive buffer, so that a test can
    stop reading and really make the server's send side back up."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, path: str, token: str, rcvbuf: int = 4096) -> RawSocket:
        import base64
        import os
        import socket

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 24)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: token {token}\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def send(self, payload: Any) -> None:
        import os

        data = json.dumps(payload).encode()
        mask = os.urandom(4)
        n = len(data)
        header = bytes([0x81]) + (
            bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
        )
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.writer.write(header + mask + masked)
        await self.writer.drain()

    async def recv(self, timeout: float = TIMEOUT) -> list[Event]:
        while True:
            b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), timeout)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(await self.reader.readexactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await self.reader.readexactly(8), "big")
            data = await asyncio.wait_for(self.reader.readexactly(n), timeout)
            if b0 & 0x0F == 1:
                parsed = json.loads(data)
                return parsed if isinstance(parsed, list) else [parsed]
            assert b0 & 0x0F != 8, "socket closed"

    def close(self) -> None:
        self.writer.close()
