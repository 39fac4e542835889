"""Tools that return images (agno ToolResult) and an offline agent with them, for the image
tests; the server imports it as 'image_agents:image_agent'. No matplotlib needed."""

from __future__ import annotations

import random
import struct
import zlib

from agno.agent import Agent
from agno.media import Image
from agno.tools.function import ToolResult

from deltakit_nb.offline import OfflineModel, confirm_action


def png(width: int, height: int, noise: bool = False) -> bytes:
    """A valid RGB PNG of that size (`noise`: rows that do not compress, for large files)."""
    rows = b""
    for y in range(height):
        if noise:
            row = random.Random(y).randbytes(width * 3)
        else:
            row = b"".join(bytes((x * 40 % 256, y * 40 % 256, 128)) for x in range(width))
        rows += b"\x00" + row

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


GIF = (
    b"GIF89a\x02\x00\x03\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00"
    b",\x00\x00\x00\x00\x02\x00\x03\x00\x00\x02\x02D\x01\x00;"
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20 + b"\xff\xd9"
WEBP = (
    b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00"
    b"/\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
)


def square(size: int = 4) -> ToolResult:
    """A PNG square.

    Args:
        size: its side in pixels.
    """
    return ToolResult(
        content=f"a {size}px square", images=[Image(content=png(size, size), mime_type="image/png")]
    )


def two_squares() -> ToolResult:
    """Two PNGs in one result."""
    return ToolResult(
        content="two squares",
        images=[
            Image(content=png(2, 3), mime_type="image/png"),
            Image(content=png(5, 1), mime_type="image/png"),
        ],
    )


def noise(size: int = 100) -> ToolResult:
    """A PNG of noise, size x size pixels (about 3 * size * size bytes).

    Args:
        size: its side in pixels.
    """
    return ToolResult(
        content="noise", images=[Image(content=png(size, size, noise=True), mime_type="image/png")]
    )


def formats() -> ToolResult:
    """One image of each accepted type (GIF, JPEG, WebP: the format given, not a mime type)."""
    return ToolResult(
        content="formats",
        images=[
            Image(content=GIF, mime_type="image/gif"),
            Image(content=JPEG, format="jpg"),
            Image(content=WEBP, mime_type="image/webp"),
        ],
    )


def not_images() -> ToolResult:
    """Things that must not reach a browser as images."""
    return ToolResult(
        content="not images",
        images=[
            Image(
                content=b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
                mime_type="image/png",
                id="svg",
            ),
            Image(
                content=b"<html><script>alert(1)</script></html>", mime_type="text/html", id="html"
            ),
            Image(content=png(2, 2), mime_type="image/jpeg", id="liar"),
            Image(content=png(2, 2), mime_type="text/html", id="png-as-html"),
            # Port 9 (discard) on this machine: never fetched, but nothing outside if it were.
            Image(url="http://127.0.0.1:9/x.png", id="url"),
        ],
    )


def plain() -> str:
    """A tool without images."""
    return "no picture"


IMAGE_TOOLS = [plain, square, two_squares, noise, formats, not_images, confirm_action]


def image_agent() -> Agent:
    return Agent(
        name="images",
        model=OfflineModel(chunk_delay=0),
        tools=list(IMAGE_TOOLS),
        telemetry=False,
    )
