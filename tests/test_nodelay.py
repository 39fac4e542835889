"""Both of the server's sockets turn Nagle's algorithm off once open (TCP_NODELAY): a stream
is many small frames, and with Nagle on, one written while the previous is unacknowledged
waits for the ACK, which the peer may delay by up to 40 ms (Linux). bench_stream showed it as
a live run's median start→done some 40 ms above its best."""

from __future__ import annotations

import gc
import socket
from typing import Any

from deltakit_nb.server.handlers import RunSocket
from deltakit_nb.server.kernel_runs import KernelSocket


def nodelay(handler: Any) -> int:
    sock = handler.ws_connection.stream.socket
    return int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


def open_handlers(cls: type) -> list[Any]:
    return [o for o in gc.get_objects() if isinstance(o, cls) and o.ws_connection is not None]


async def test_the_run_socket_sends_without_nagle(jp_ws_fetch: Any) -> None:
    ws = await jp_ws_fetch("deltakit", "ws")
    [handler] = open_handlers(RunSocket)
    assert nodelay(handler) == 1
    ws.close()


async def test_the_kernel_socket_sends_without_nagle(jp_ws_fetch: Any) -> None:
    ws = await jp_ws_fetch("deltakit", "kernel")
    [handler] = open_handlers(KernelSocket)
    assert nodelay(handler) == 1
    ws.close()
