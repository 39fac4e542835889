"""Rich answers in real JupyterLab: tool images (live and after a reload), placeholders for
images not sent, highlighted code with Copy, tool durations on replay, the run footer, Retry."""

from __future__ import annotations

import json

from playwright.sync_api import Locator

from .browserkit import ARTIFACTS, Session

WIDGET = 'from deltakit_nb import ChatWidget\nchat = ChatWidget(agent="rich", height=560)\nchat'


def open_chat(session: Session, name: str) -> None:
    session.open_chat(name, WIDGET)


# Every <img> in the widget: its src scheme and whether it decoded to a picture.
IMAGES = """() => [...document.querySelectorAll('.dk-chat img')].map(
  (i) => [i.src.split(':')[0], i.complete && i.naturalWidth, i.naturalHeight])"""


def run_with_image(session: Session, message: str) -> tuple[int, Locator, str]:
    """Send `message` (a tool that returns an image); once the run has completed and the
    image in its tool card has decoded: (the run's number, its tool card, its id)."""
    n = session.send(message)
    run_id = session.wait_status("completed")
    card = session.run_el(n).locator(".dk-tool")
    card.locator("[data-testid=dk-tool-image]").wait_for()
    session.page.wait_for_function(
        "() => document.querySelector('.dk-tool-image')?.naturalWidth > 0"
    )
    return n, card, run_id


def test_a_tool_image_is_shown_and_survives_a_reload_with_its_duration(session: Session) -> None:
    open_chat(session, "picture.ipynb")
    n, card, run_id = run_with_image(session, 'tool picture {"kind": "png"}')
    assert session.page.evaluate(IMAGES) == [["blob", 160, 80]]
    # The server's record has the image once, as base64 data.
    (result,) = [e for e in session.lab.run(run_id)["events"] if e["type"] == "tool_result"]
    assert [img["width"] for img in result["images"]] == [160]
    live = card.locator(".dk-tool-time").inner_text()
    assert live.endswith(" s"), live

    session.save()
    session.page.reload()
    session.wait_notebook()
    card = session.run_el(n).locator(".dk-tool")
    card.locator("[data-testid=dk-tool-image]").wait_for()
    session.page.wait_for_function(
        "() => document.querySelector('.dk-tool-image')?.naturalWidth > 0"
    )
    assert session.page.evaluate(IMAGES) == [["blob", 160, 80]]
    # The duration comes from the events' server timestamps: the same after the replay.
    assert card.locator(".dk-tool-time").inner_text() == live
    took = float(card.get_attribute("data-duration") or "nan")
    assert took == result["ts"] - next(
        e["ts"] for e in session.lab.run(run_id)["events"] if e["type"] == "tool_call"
    )


def test_images_not_sent_show_a_placeholder_and_nothing_is_loaded(session: Session) -> None:
    open_chat(session, "placeholders.ipynb")
    n = session.send('tool picture {"kind": "big"}')
    session.wait_status("completed")
    big = session.run_el(n).locator("[data-testid=dk-tool-image-omitted]")
    assert "too large" in big.inner_text()
    n = session.send('tool picture {"kind": "svg"}')
    session.wait_status("completed")
    omitted = session.run_el(n).locator("[data-testid=dk-tool-image-omitted]")
    assert omitted.count() == 2
    assert all(t.startswith("Image not shown: ") for t in omitted.all_inner_texts())
    # No <img> at all: not the SVG's bytes, not the remote URL (the session also asserts that
    # no request left for an outside host).
    assert session.page.evaluate(IMAGES) == []
    assert session.dialogs == []


def test_code_is_highlighted_and_copy_puts_it_on_the_clipboard(session: Session) -> None:
    session.page.context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=session.lab.origin
    )
    open_chat(session, "copy.ipynb")
    n = session.send("tell me about markdown")
    run_id = session.wait_status("completed")
    answer = session.run_el(n).locator(".dk-assistant .dk-text")
    code = answer.locator("pre > code").first
    assert code.locator(".hljs-keyword").count() >= 1, code.inner_html()
    answer.locator("[data-testid=dk-code-copy]").first.click()
    answer.locator("[data-testid=dk-code-copy]", has_text="Copied").wait_for()
    clipboard = session.page.evaluate("() => navigator.clipboard.readText()")
    assert clipboard == code.text_content()
    assert "from deltakit_nb import ChatWidget" in clipboard
    # Copy answer: the whole answer as the server wrote it (markdown source).
    session.run_el(n).locator("[data-testid=dk-answer-copy]").click()
    session.run_el(n).locator("[data-testid=dk-answer-copy]", has_text="Copied").wait_for()
    assert session.page.evaluate("() => navigator.clipboard.readText()") == session.lab.run_text(
        run_id
    )


def test_retry_after_a_failed_run_sends_the_message_again(session: Session) -> None:
    open_chat(session, "retry.ipynb")
    n = session.send("fail")
    failed = session.wait_status("failed")
    assert session.run_el(n).locator("[data-testid=dk-retry]").count() == 1
    session.run_el(n).locator("[data-testid=dk-retry]").click()
    session.page.wait_for_function(
        "(n) => document.querySelector('.dk-chat').dataset.runCount === String(n)", arg=n + 1
    )
    session.page.wait_for_function(
        "(id) => { const c = document.querySelector('.dk-chat');"
        " return c.dataset.runId && c.dataset.runId !== id && c.dataset.runStatus === 'failed'; }",
        arg=failed,
    )
    retried = session.chat().get_attribute("data-run-id") or ""
    assert session.run_el(n + 1).locator(".dk-user").inner_text() == "fail"
    # A new run in the same thread; only the last run offers Retry.
    assert session.lab.run(retried)["thread_id"] == session.lab.run(failed)["thread_id"]
    assert session.run_el(n).locator("[data-testid=dk-retry]").count() == 0
    assert session.run_el(n + 1).locator("[data-testid=dk-retry]").count() == 1


def test_screenshots_of_a_rich_answer(session: Session) -> None:
    open_chat(session, "rich-shot.ipynb")
    session.send("tell me about markdown")
    session.wait_status("completed")
    session.send('tool picture {"kind": "png"}')
    session.wait_status("completed")
    session.chat().evaluate("el => { el.style.height = '820px'; }")
    session.page.mouse.move(0, 0)
    ARTIFACTS.mkdir(exist_ok=True)
    for theme in ("light", "dark"):
        session.command("apputils:change-theme", {"theme": f"JupyterLab {theme.title()}"})
        session.page.wait_for_function(
            "(t) => document.body.dataset.jpThemeLight === String(t === 'light')", arg=theme
        )
        session.page.wait_for_timeout(300)  # the theme's CSS variables settle
        session.chat().locator(".dk-log").evaluate("el => { el.scrollTop = el.scrollHeight; }")
        path = ARTIFACTS / f"widget-rich-{theme}.png"
        session.chat().screenshot(path=str(path))
        assert path.stat().st_size > 10_000


def test_the_kernels_retry_sends_the_failed_message_again(session: Session) -> None:
    session.open_chat("kretry.ipynb", WIDGET, "chat.retry()\nprint('asked', chat.status)")
    session.send("fail")
    failed = session.wait_status("failed")
    # chat.messages (synced at the run's end) must know the run before retry() can name it.
    session.page.wait_for_timeout(300)
    session.run_cell(1)
    session.cell_output(1, "asked")
    session.page.wait_for_function(
        "() => document.querySelector('.dk-chat').dataset.runCount === '2'", timeout=30_000
    )
    session.page.wait_for_function(
        "(id) => { const c = document.querySelector('.dk-chat');"
        " return c.dataset.runId && c.dataset.runId !== id && c.dataset.runStatus === 'failed'; }",
        arg=failed,
    )
    assert session.run_el(2).locator(".dk-user").inner_text() == "fail"


def test_a_long_tool_result_is_folded_with_show_all(session: Session) -> None:
    open_chat(session, "fold.ipynb")
    reason = "\n".join(f"line {i}" for i in range(1, 41))
    n = session.send("tool broken_tool " + json.dumps({"reason": reason}))
    session.wait_status("completed")
    result = session.run_el(n).locator(".dk-tool-result")
    more = result.locator("[data-testid=dk-fold-more]")
    assert more.inner_text().startswith("show all (")
    shown = result.locator("pre").inner_text()
    assert "line 1\n" in shown and "line 40" not in shown
    more.click()
    assert "line 40" in result.locator("pre").inner_text()
    assert more.count() == 0


def test_the_demo_plot_tool_draws_with_matplotlib_inline(session: Session) -> None:
    # The demo agent's own plot tool, with the real matplotlib of the `lab` extra (a 640x360
    # PNG), not the test agent's prepared picture.
    session.open_chat(
        "plot.ipynb", "from deltakit_nb import ChatWidget\nchat = ChatWidget(height=560)\nchat"
    )
    _, _, run_id = run_with_image(session, 'tool plot {"kind": "line", "n": 50}')
    (result,) = [e for e in session.lab.run(run_id)["events"] if e["type"] == "tool_result"]
    assert [(img["width"], img["height"]) for img in result["images"]] == [(640, 360)]
    assert session.page.evaluate(IMAGES) == [["blob", 640, 360]]
    session.page.screenshot(path=str(ARTIFACTS / "demo_plot.png"))
