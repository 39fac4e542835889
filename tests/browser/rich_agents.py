"""An offline agent whose `picture` tool returns images, for the rich-answer browser tests.

The browser tests' server loads it as `rich_agents:rich_agent` (agent "rich"). It is the demo
agent (same model and tools) plus `picture(kind)`, which needs no matplotlib:
`tool picture {"kind": "png"}` returns a real 160x80 PNG; "big" a PNG over the server's
2 MiB per-image limit (a placeholder); "svg" SVG bytes that claim to be a PNG and an image that
is only a remote URL (both placeholders: never sent, never fetched).
"""

from __future__ import annotations

import struct
import zlib

from agno.agent import Agent
from agno.media import Image
from agno.tools.function import ToolResult

from deltakit_nb.offline import DEMO_TOOLS, OfflineModel

REMOTE = "https://images.example.com/should-never-load.png"


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(width: int = 160, height: int = 80) -> bytes:
    """A real RGB PNG: a blue-to-orange gradient."""
    rows = b"".join(
        b"\x00"
        + b"".join(bytes((40 + 200 * x // width, 90, 220 - 200 * x // width)) for x in range(width))
        for _ in range(height)
    )
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(rows))
        + _chunk(b"IEND", b"")
    )


def picture(kind: str = "png") -> ToolResult:
    """Return a picture.

    Args:
        kind: "png", "big" or "svg".
    """
    if kind == "png":
        return ToolResult(
            content="a 160x80 gradient", images=[Image(content=png(), mime_type="image/png")]
        )
    if kind == "big":
        data = png() + b"\x00" * (3 << 20)  # bytes after IEND: still a PNG by its header
        return ToolResult(
            content="a very large picture", images=[Image(content=data, mime_type="image/png")]
        )
    if kind == "svg":
        svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>'
        return ToolResult(
            content="an svg and a remote picture",
            images=[Image(content=svg, mime_type="image/png"), Image(url=REMOTE)],
        )
    raise ValueError(f"kind must be png, big or svg, not {kind!r}")


def rich_agent() -> Agent:
    return Agent(name="rich", model=OfflineModel(), tools=[*DEMO_TOOLS, picture], telemetry=False)
