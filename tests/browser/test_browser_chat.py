"""Typing, streaming markdown, tool cards and Stop, in real JupyterLab."""

from __future__ import annotations

from .browserkit import ARTIFACTS, Session

WIDGET = "from deltakit_nb import ChatWidget\nChatWidget(height=520)"


def open_chat(session: Session, name: str) -> None:
    session.open_chat(name, WIDGET)


def test_typed_message_streams_in_as_markdown(session: Session) -> None:
    open_chat(session, "stream.ipynb")
    session.record_text()
    n = session.send("tell me about markdown")
    run_id = session.wait_status("completed")
    answer = session.run_el(n).locator(".dk-assistant .dk-text")
    # Markdown, rendered: a heading, a list, emphasis and a fenced code block.
    assert answer.locator("h2").inner_text() == "Offline demo"
    assert answer.locator("ul > li").count() == 3
    assert answer.locator("strong").first.inner_text() == "offline demo model"
    assert "from deltakit_nb import ChatWidget" in answer.locator("pre > code").inner_text()
    # ...with the user's message above it and the reasoning in a collapsed "thinking" section.
    assert session.run_el(n).locator(".dk-user").inner_text() == "tell me about markdown"
    thinking = session.run_el(n).locator("details.dk-thinking")
    assert "I will answer in markdown" in thinking.locator(".dk-thinking-text").text_content()
    # It streamed in: the page showed the answer growing while the run was running.
    growing = sorted({length for status, length in session.recorded_text() if status == "running"})
    final = len(answer.text_content())
    assert len([x for x in growing if 0 < x < final]) >= 3, growing
    # The text shown is the server's text.
    assert session.lab.run(run_id)["status"] == "completed"
    assert "offline demo model" in session.lab.run_text(run_id)


def test_a_long_markdown_answer_streams_in_whole(session: Session) -> None:
    """Settled blocks move into the rendered head while the tail streams: at the end every
    block of the server's text is there once, in order."""
    open_chat(session, "long.ipynb")
    n = session.send("markdown 20")
    run_id = session.wait_status("completed")
    text = session.run_el(n).locator(".dk-assistant .dk-text")
    headings = text.locator("h2").all_inner_texts()
    assert headings == [f"Section {i}" for i in range(1, 21)]
    assert text.locator("li").count() == 40
    codes = text.locator("pre > code").all_text_contents()
    assert codes == [f"x = {i}\n" for i in range(1, 21)]
    assert session.lab.run_text(run_id).count("## Section") == 20


def test_tool_call_card_shows_name_arguments_and_result(session: Session) -> None:
    open_chat(session, "tools.ipynb")
    n = session.send("what is 12 * (3 + 4)?")
    run_id = session.wait_status("completed")
    card = session.run_el(n).locator(".dk-tool")
    assert card.count() == 1
    assert card.get_attribute("data-tool-name") == "calculator"
    assert card.get_attribute("data-status") == "ok"
    assert card.locator(".dk-tool-name").inner_text() == "calculator"
    args = card.locator(".dk-tool-args pre").text_content()
    assert '"expression": "12 * (3 + 4)"' in args  # pretty JSON
    assert card.locator(".dk-tool-result pre").text_content() == "84"
    # The answer after the tool quotes its real result, and so does the server.
    assert "84" in session.assistant_text(n)
    result = [e for e in session.lab.run(run_id)["events"] if e["type"] == "tool_result"]
    assert [e["output"] for e in result] == ["84"]

    # A slow tool shows its running indicator first, then the result.
    n = session.send('tool sleep_tool {"seconds": 1.5}')
    card = session.run_el(n).locator(".dk-tool")
    card.and_(session.page.locator("[data-status=running]")).wait_for()
    assert card.locator(".dk-tool-state").inner_text() == "running…"
    assert card.locator(".dk-tool-result").count() == 0
    card.and_(session.page.locator("[data-status=ok]")).wait_for()
    assert card.locator(".dk-tool-result pre").text_content() == "slept 1.5 s"
    session.wait_status("completed")

    # A tool that raises: the card is in its error state and shows the error text.
    n = session.send('tool broken_tool {"reason": "disk on fire"}')
    session.wait_status("completed")
    card = session.run_el(n).locator(".dk-tool")
    assert card.get_attribute("data-status") == "error"
    assert "disk on fire" in card.locator(".dk-tool-result").inner_text()


def test_stop_mid_run_ends_it_as_cancelled(session: Session) -> None:
    open_chat(session, "stop.ipynb")
    n = session.send("count 400 delay 0.05")
    run = session.run_el(n)
    run.locator(".dk-text", has_text="5 6").wait_for()
    stop = session.chat().locator(".dk-stop")
    assert stop.is_visible()
    run_id = session.chat().get_attribute("data-run-id")
    stop.click()
    assert session.wait_status("cancelled") == run_id
    note = run.locator(".dk-stopped")
    assert note.inner_text() == "Stopped"
    assert not stop.is_visible()
    assert session.chat().locator(".dk-send").is_visible()
    # The server agrees, and the run really stopped (far from its 400 numbers).
    record = session.lab.run(run_id)
    assert record["status"] == "cancelled"
    numbers = session.lab.run_text(run_id).split()
    assert 5 <= len(numbers) < 200
    assert session.assistant_text(n).split() == numbers  # all of it, nothing more
    # The widget is usable again.
    session.send("echo after the stop")
    session.wait_status("completed")
    assert session.assistant_text(n + 1) == "after the stop"


def test_screenshot_of_a_tool_calling_run(session: Session) -> None:
    open_chat(session, "screenshot.ipynb")
    n = session.send("what is 12 * (3 + 4)?")
    session.wait_status("completed")
    session.run_el(n).locator(".dk-tool-result").wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "widget-tool-call.png"
    path.unlink(missing_ok=True)
    session.page.mouse.move(0, 0)  # no hover effects in the picture
    session.chat().screenshot(path=str(path))
    assert path.stat().st_size > 5_000
