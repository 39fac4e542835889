"""Helpers for the hardening tests: server-log capture, socket-task census, raw frames."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
from collections.abc import Iterator
from typing import Any

from wsclient import TIMEOUT

# Loggers an unhandled exception in the server can end up in (tornado's are re-parented to the
# ServerApp's logger by jupyter_server, which does not propagate to the root).
WATCHED = ("", "tornado", "tornado.application", "tornado.general", "asyncio", "deltakit_nb")
PROBLEM_MARKS = ("Traceback", "Uncaught exception", "never retrieved", "Exception in callback")


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._seen: set[int] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if id(record) not in self._seen:
            self._seen.add(id(record))
            self.records.append(record)

    def lines(self, logger_prefix: str = "") -> list[str]:
        """Every captured record of loggers under `logger_prefix`, formatted with traceback."""
        fmt = logging.Formatter("%(name)s %(levelname)s %(message)s")
        return [fmt.format(r) for r in self.records if r.name.startswith(logger_prefix)]

    def problems(self) -> list[str]:
        """Records that show an unhandled exception or an error in the server.

        Left out: agno's own logger (it logs a traceback for every tool that raises, which is
        a tool result, not a server fault), our own warnings (a failed run is logged at
        WARNING with its traceback on purpose: it was handled, and the user needs the cause),
        and DEBUG/INFO records (tornado logs the garbage it refused at DEBUG, with traceback).
        """
        fmt = logging.Formatter("%(name)s %(levelname)s %(message)s")
        found = []
        for record in self.records:
            if record.name.startswith("agno"):
                continue
            if record.name.startswith("deltakit_nb") and record.levelno < logging.ERROR:
                continue
            if record.levelno < logging.WARNING:
                continue  # tornado logs garbage it refused (e.g. a bad close reason) at DEBUG
            text = fmt.format(record)
            if record.levelno >= logging.ERROR or any(m in text for m in PROBLEM_MARKS):
                found.append(text)
        return found


@contextlib.contextmanager
def capture_server_log(serverapp: Any) -> Iterator[LogCapture]:
    capture = LogCapture()
    loggers = [logging.getLogger(name) for name in WATCHED]
    loggers += [serverapp.log, deltakit_app(serverapp).log]  # handlers log to the extension's
    own = logging.getLogger("deltakit_nb")
    old_level = own.level
    own.setLevel(logging.DEBUG)
    for logger in loggers:
        logger.addHandler(capture)
    try:
        yield capture
    finally:
        for logger in loggers:
            logger.removeHandler(capture)
        own.setLevel(old_level)


def socket_tasks() -> list[asyncio.Task[Any]]:
    """Live tasks running a method of a RunSocket, whatever their name: its request task
    (tornado's receive loop) and its subscription."""
    from deltakit_nb.server.handlers import RunSocket

    found = []
    for task in asyncio.all_tasks():
        if task.done():
            continue
        coro: Any = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        owner = frame.f_locals.get("self") if frame is not None else None
        if isinstance(owner, RunSocket):
            found.append(task)
    return found


def busy_sockets() -> set[Any]:
    """The RunSockets that still have a live task (a connection or a subscription)."""
    return {task.get_coro().cr_frame.f_locals["self"] for task in socket_tasks()}  # type: ignore[union-attr]


async def wait_for(predicate: Any, timeout: float = TIMEOUT, step: float = 0.02) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        await asyncio.sleep(step)


def ws_frame(
    payload: bytes, opcode: int = 1, fin: bool = True, rsv: int = 0, masked: bool = True
) -> bytes:
    """One client WebSocket frame, built by hand (so it can break the rules on purpose)."""
    head = bytes([(0x80 if fin else 0) | (rsv & 0x7) << 4 | (opcode & 0x0F)])
    n = len(payload)
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack(">Q", n)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def read_raw_frame(
    reader: asyncio.StreamReader, timeout: float = TIMEOUT
) -> tuple[int, bytes] | None:
    """(opcode, payload) of the server's next frame, or None once the connection is closed."""
    try:
        b0, b1 = await asyncio.wait_for(reader.readexactly(2), timeout)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(await reader.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await reader.readexactly(8), "big")
        data = await asyncio.wait_for(reader.readexactly(n), timeout)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return b0 & 0x0F, data


def deltakit_app(serverapp: Any) -> Any:
    """The DeltakitApp inside a running ServerApp."""
    return next(iter(serverapp.extension_manager.extension_apps["deltakit_nb"]))
