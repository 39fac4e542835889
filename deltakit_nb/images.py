"""Images a tool produced, as the `images` of a `tool_result` event: checked, limited, base64.

Only bytes a tool returned (agno's `Image.content`) are sent: never a URL or a file path (the
server fetches and reads nothing on a tool's or a model's word), and only when the bytes are a
PNG, JPEG, GIF or WebP image of the declared type (by their magic bytes), so the browser gets
`data:` URLs of real images only.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass
from typing import Any

# The image types sent, by the magic bytes that start them.
MIME_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
MAX_ID_CHARS = 200


@dataclass(frozen=True)
class ImageLimits:
    """Raw bytes (before base64) per image and per run; an image over either is omitted."""

    per_image: int = 2 << 20
    per_run: int = 8 << 20


def sniff(data: bytes) -> str | None:
    """The mime type `data` is an image of, by its magic bytes, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def size(data: bytes, mime_type: str) -> tuple[int, int] | None:
    """(width, height) read from a PNG or GIF header; None for other types or a short header."""
    if mime_type == "image/png" and len(data) >= 24 and data[12:16] == b"IHDR":
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if mime_type == "image/gif" and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return int(w), int(h)
    return None


def _declared(image: Any) -> str:
    """The mime type the tool declared (agno's `mime_type`, else `format`), lower case."""
    mime = getattr(image, "mime_type", None)
    if isinstance(mime, str) and mime:
        return mime.strip().lower()
    fmt = getattr(image, "format", None)
    if isinstance(fmt, str) and fmt:
        fmt = fmt.strip().lower()
        return "image/jpeg" if fmt == "jpg" else f"image/{fmt}"
    return ""


class ImageCollector:
    """Picks, for each ToolCallCompleted event of one run, the images that are new in it.

    agno's event carries every image of the run so far, so each is taken once (by `Image.id`),
    and the per-run budget counts the images sent so far.
    """

    def __init__(self, limits: ImageLimits) -> None:
        self.limits = limits
        self.seen: set[str] = set()
        self.sent_bytes = 0

    def remember(self, encoded_events: list[str]) -> None:
        """Count the images a run's earlier events sent (a paused run that continues: agno
        repeats them on the continued run's tool results)."""
        for text in encoded_events:
            if '"images":' not in text:
                continue
            for entry in json.loads(text).get("images") or ():
                self.seen.add(str(entry.get("id")))
                if "data" in entry:
                    self.sent_bytes += len(base64.b64decode(entry["data"]))

    def new_images(self, images: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for image in images or ():
            image_id = getattr(image, "id", None)
            if not isinstance(image_id, str) or not image_id:
                image_id = f"image-{len(self.seen) + 1}"
            image_id = image_id[:MAX_ID_CHARS]
            if image_id in self.seen:
                continue
            self.seen.add(image_id)
            out.append(self._entry(image, image_id))
        return out

    def _entry(self, image: Any, image_id: str) -> dict[str, Any]:
        data = getattr(image, "content", None)
        if not isinstance(data, bytes) or not data:
            return {"id": image_id, "omitted": "not sent: only image bytes a tool returned are"}
        mime = sniff(data)
        declared = _declared(image)
        if mime is None:
            return {"id": image_id, "omitted": "not a PNG, JPEG, GIF or WebP image"}
        if declared and declared != mime:
            return {
                "id": image_id,
                "omitted": f"declared {declared[:100]} but the bytes are {mime}",
            }
        n = len(data)
        if n > self.limits.per_image:
            return self._omitted(image_id, mime, f"{n} bytes (limit {self.limits.per_image})")
        if self.sent_bytes + n > self.limits.per_run:
            return self._omitted(
                image_id,
                mime,
                f"{n} bytes (limit {self.limits.per_run} per run, {self.sent_bytes} sent)",
            )
        self.sent_bytes += n
        entry: dict[str, Any] = {
            "id": image_id,
            "mime_type": mime,
            "data": base64.b64encode(data).decode("ascii"),
        }
        if dims := size(data, mime):
            entry["width"], entry["height"] = dims
        return entry

    @staticmethod
    def _omitted(image_id: str, mime: str, why: str) -> dict[str, Any]:
        return {"id": image_id, "mime_type": mime, "omitted": f"too large: {why}"}
