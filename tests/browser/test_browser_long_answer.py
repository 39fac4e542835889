"""A long markdown answer arriving fast, in real JupyterLab: rendered a piece per frame, whole,
highlighted, and followed to its end; again after a reload."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from .browserkit import Session, open_session
from .labproc import LabProcess, running_lab

WIDGET = "from deltakit_nb import ChatWidget\nChatWidget(height=520)"
SECTIONS = 600  # `markdown 600`: 82 KB, far more than one frame renders

# Per animation frame, the most markdown renders seen, and whether the widget was ever marked
# as still rendering (data-rendering) — the answer did not all land in one frame.
WATCH = """() => {
  const s = window.__deltakitStats;
  window.__watch = { maxRenders: 0, rendering: false };
  let last = s.markdownRenders;
  const tick = () => {
    window.__watch.maxRenders = Math.max(window.__watch.maxRenders, s.markdownRenders - last);
    last = s.markdownRenders;
    if (document.querySelector('.dk-chat[data-rendering]')) window.__watch.rendering = true;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""

# How far the log is from its bottom (px).
GAP = "el => el.scrollHeight - el.scrollTop - el.clientHeight"


@pytest.fixture(scope="module")
def fast_lab() -> Iterator[LabProcess]:
    """The offline model without its per-chunk delay: the answer arrives in a few big batches."""
    with running_lab(demo_delay=0.0) as proc:
        yield proc


@pytest.fixture
def fast_session(browser: Browser, fast_lab: LabProcess) -> Iterator[Session]:
    yield from open_session(browser, fast_lab)


def check_answer(session: Session, n: int) -> None:
    text = session.run_el(n).locator(".dk-assistant .dk-text")
    counts = text.evaluate(
        """el => [[...el.querySelectorAll('h2')].map((h) => h.textContent),
                  el.querySelectorAll('li').length, el.querySelectorAll('pre > code').length,
                  el.querySelectorAll('pre > code .hljs-number').length,
                  el.querySelectorAll('[data-testid=dk-code-copy]').length,
                  el.querySelectorAll('.dk-md-chunk').length]"""
    )
    headings, items, codes, highlighted, copies, chunks = counts
    assert headings == [f"Section {i}" for i in range(1, SECTIONS + 1)]
    assert (items, codes, highlighted, copies) == (2 * SECTIONS, SECTIONS, SECTIONS, SECTIONS)
    assert chunks > 3, "rendered in pieces"


def test_a_long_answer_is_rendered_over_frames_whole_and_followed_to_its_end(
    fast_session: Session,
) -> None:
    session = fast_session
    session.open_chat("long.ipynb", WIDGET)
    session.page.evaluate(WATCH)
    n = session.send(f"markdown {SECTIONS}")
    run_id = session.wait_status("completed", timeout=120_000)
    assert session.lab.run_text(run_id).count("## Section") == SECTIONS
    check_answer(session, n)
    watch = session.page.evaluate("() => window.__watch")
    assert watch["rendering"], "the answer was rendered over several frames"
    assert watch["maxRenders"] <= 1, watch
    # The view followed the answer to its last line, though most of it is laid out lazily.
    log = session.chat().locator(".dk-log")
    session.page.wait_for_timeout(300)  # a few frames for any late layout
    assert log.evaluate(GAP) < 40

    # A reload renders the finished answer the same way: whole, in pieces, at its end.
    session.save()
    session.page.reload()
    session.wait_notebook()
    session.wait_chat()
    session.wait_status("completed", timeout=120_000)
    check_answer(session, n)
    session.page.wait_for_timeout(300)
    assert session.chat().locator(".dk-log").evaluate(GAP) < 40
