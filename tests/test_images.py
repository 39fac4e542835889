"""Images from tools: the adapter on real agno runs whose tools return ToolResult images."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from image_agents import GIF, JPEG, WEBP, image_agent, png

from deltakit_nb.adapter import AgnoAdapter
from deltakit_nb.images import ImageLimits, sniff


def run(message: str, limits: ImageLimits | None = None) -> tuple[list[dict], list[int]]:
    """The tool results of a real run, translated as the run goes (as the server does: agno
    extends one list of images, so a completed event read later shows the later ones too),
    and the number of images each ToolCallCompleted event carried when it came."""

    async def collect() -> tuple[list[dict], list[int]]:
        adapter, out, carried = AgnoAdapter(limits), [], []
        async for e in image_agent().arun(message, stream=True, stream_events=True):
            if e.event == "ToolCallCompleted":
                carried.append(len(e.images or []))
            out += adapter.translate(e)
        assert out[-1]["type"] == "done", out[-1]
        return [o for o in out if o["type"] == "tool_result"], carried

    return asyncio.run(collect())


def results(message: str, limits: ImageLimits | None = None) -> list[dict[str, Any]]:
    return run(message, limits)[0]


def test_each_image_once_though_agno_repeats_them() -> None:
    message = 'tool two_squares {} then tool square {"size": 3} then tool square {"size": 3}'
    (first, second, third), carried = run(message)
    # agno's fact this relies on: each completed event carries every image of the run so far
    assert carried == [2, 3, 4]
    assert [(i["width"], i["height"]) for i in first["images"]] == [(2, 3), (5, 1)]
    [image] = second["images"]
    assert image["mime_type"] == "image/png" and (image["width"], image["height"]) == (3, 3)
    assert base64.b64decode(image["data"]) == png(3, 3)
    [again] = third["images"]  # same bytes, another Image: shown again
    assert again["id"] != image["id"] and again["data"] == image["data"]
    ids = [i["id"] for r in (first, second, third) for i in r["images"]]
    assert len(set(ids)) == 4


def test_a_call_without_images_has_no_images_field() -> None:
    message = 'tool square {"size": 2} then tool plain {}'
    first, second = results(message)
    assert len(first["images"]) == 1
    assert "images" not in second  # agno repeats the square; it was sent already


def test_each_accepted_type_by_its_magic_bytes() -> None:
    [result] = results("tool formats {}")
    images = result["images"]
    assert [i["mime_type"] for i in images] == ["image/gif", "image/jpeg", "image/webp"]
    assert [base64.b64decode(i["data"]) for i in images] == [GIF, JPEG, WEBP]
    assert (images[0]["width"], images[0]["height"]) == (2, 3)
    assert all("omitted" not in i for i in images)


def test_anything_but_image_bytes_of_the_declared_type_is_refused() -> None:
    [result] = results("tool not_images {}")
    by_id = {i["id"]: i for i in result["images"]}
    assert list(by_id) == ["svg", "html", "liar", "png-as-html", "url"]
    for entry in by_id.values():
        assert "data" not in entry and entry["omitted"], entry
        assert "mime_type" not in entry  # nothing a client could build a data: URL from
    assert by_id["svg"]["omitted"] == "not a PNG, JPEG, GIF or WebP image"
    assert by_id["html"]["omitted"] == "not a PNG, JPEG, GIF or WebP image"
    assert by_id["liar"]["omitted"] == "declared image/jpeg but the bytes are image/png"
    assert by_id["png-as-html"]["omitted"] == "declared text/html but the bytes are image/png"
    assert by_id["url"]["omitted"].startswith("not sent")


def test_size_limits_per_image_and_per_run() -> None:
    small, big = len(png(3, 3)), len(png(100, 100, noise=True))
    limits = ImageLimits(per_image=big - 1, per_run=small * 2)
    message = (
        'tool square {"size": 3} then tool noise {"size": 100} then tool square {"size": 3} '
        'then tool square {"size": 3}'
    )
    first, second, third, fourth = [r["images"] for r in results(message, limits)]
    assert "data" in first[0] and "data" in third[0]
    assert second[0]["omitted"] == f"too large: {big} bytes (limit {big - 1})"
    assert second[0]["mime_type"] == "image/png" and "data" not in second[0]
    assert fourth[0]["omitted"] == (
        f"too large: {small} bytes (limit {small * 2} per run, {small * 2} sent)"
    )
    # the default limits take it
    assert all("data" in r["images"][0] for r in results('tool noise {"size": 100}'))


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (png(1, 1), "image/png"),
        (GIF, "image/gif"),
        (JPEG, "image/jpeg"),
        (WEBP, "image/webp"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", None),
        (b"<svg/>", None),
        (b"", None),
        (b"\x89PN", None),
    ],
)
def test_sniff(data: bytes, mime: str | None) -> None:
    assert sniff(data) == mime
