"""The demo agent's plot tool (matplotlib, optional) and the offline model's token counts."""

from __future__ import annotations

import asyncio
import base64
import sys
from typing import Any

import pytest

from deltakit_nb.adapter import AgnoAdapter
from deltakit_nb.offline import demo_agent, plot


def translated(message: str) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        adapter, out = AgnoAdapter(), []
        async for e in demo_agent(chunk_delay=0).arun(message, stream=True, stream_events=True):
            out += adapter.translate(e)
        return out

    return asyncio.run(collect())


def test_plot_without_matplotlib_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib… now fails
    out = translated('tool plot {"kind": "line", "n": 50}')
    [result] = [e for e in out if e["type"] == "tool_result"]
    assert result["is_error"] is True and "images" not in result
    assert "pip install 'deltakit_nb[lab]'" in result["output"]
    assert out[-1]["type"] == "done"


def test_plot_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="kind must be one of line, bar, scatter"):
        plot("pie", 5)
    with pytest.raises(ValueError, match="n must be between 1 and 1000"):
        plot("line", 0)


def test_plot_draws_a_png_the_run_sends() -> None:
    pytest.importorskip("matplotlib")
    out = translated('tool plot {"kind": "bar", "n": 20}')
    [result] = [e for e in out if e["type"] == "tool_result"]
    [image] = result["images"]
    assert image["mime_type"] == "image/png" and (image["width"], image["height"]) == (640, 360)
    assert base64.b64decode(image["data"]).startswith(b"\x89PNG")
    assert result["output"].startswith("a bar plot of 20 points")
    # the model answers about the result, not about the image message agno adds for it
    answer = "".join(e["delta"] for e in out if e["type"] == "text_delta")
    assert answer.startswith("The `plot` returned **a bar plot of 20 points")


def test_the_offline_model_reports_tokens_deterministically() -> None:
    first, second = (translated("echo one two three")[-1] for _ in range(2))
    assert first["type"] == "done" and first["metrics"]["model"] == "offline"
    tokens = {k: first["metrics"][k] for k in ("input_tokens", "output_tokens")}
    assert tokens == {k: second["metrics"][k] for k in tokens}
    assert tokens["output_tokens"] == 3  # "one two three" in 6-character chunks
    assert tokens["input_tokens"] > 3  # the system prompt counts too
    assert first["metrics"]["duration"] >= 0
