"""Human in the loop (issue 13) in real JupyterLab: a tool call that waits for the user shows a
card in place of the call; approving, rejecting with a note, filling a form (by clicking, or
with chat.approve() from a cell) continues the run; the card survives a reload, a decision in
one tab resolves it in the other, and Stop still works while paused."""

from __future__ import annotations

import json

from playwright.sync_api import Locator

from .browserkit import ARTIFACTS, Session

WIDGET = "from deltakit_nb import ChatWidget\nchat = ChatWidget(height=520)\nchat"
CONFIRM = 'tool confirm_action {"action": "deploy the site"}'
INPUT = 'tool collect_input {"question": "Which port?"}'
APPROVE_CELL = "print('waiting:', [r['tool_name'] for r in chat.pending])\nchat.approve()"


def open_chat(session: Session, name: str, *cells: str) -> None:
    session.open_chat(name, WIDGET, *cells)


def card(session: Session, n: int) -> Locator:
    """The tool card of run n once it waits for a decision."""
    c = session.run_el(n).locator(".dk-tool[data-status=waiting]")
    c.locator(".dk-decision").wait_for()
    return c


def pause(session: Session, prompt: str) -> tuple[int, str, Locator]:
    n = session.send(prompt)
    run_id = session.wait_status("paused")
    return n, run_id, card(session, n)


def test_approve_by_clicking_after_a_reload_and_a_user_input_form(session: Session) -> None:
    lab, page = session.lab, session.page
    open_chat(session, "hitl.ipynb")
    session.save()
    n, run_id, waiting = pause(session, CONFIRM)
    # The card: the tool, its arguments as pretty JSON, Approve / Reject and a note.
    assert waiting.locator(".dk-tool-name").inner_text() == "confirm_action"
    assert waiting.locator(".dk-tool-state").inner_text() == "waiting for you"
    args = waiting.locator(".dk-tool-args pre").inner_text()
    assert args == json.dumps({"action": "deploy the site"}, indent=2)
    assert waiting.locator("[data-testid=dk-approve]").is_enabled()
    assert waiting.locator("[data-testid=dk-reject]").is_enabled()
    # The input box says the run waits; Send is replaced by Stop.
    box = session.chat().locator(".dk-input")
    assert box.is_disabled()
    assert "waiting for your decision" in (box.get_attribute("placeholder") or "")
    assert lab.run(run_id)["status"] == "paused"
    assert session.run_el(n).locator(".dk-typing").is_hidden(), "no 'typing' dots while paused"
    ARTIFACTS.mkdir(exist_ok=True)
    page.mouse.move(0, 0)
    waiting.screenshot(path=str(ARTIFACTS / "widget-approval-card.png"))

    # A reload while paused: the card is back (from the server's record) and still works.
    page.reload()
    session.wait_notebook()
    session.wait_chat()
    session.chat().and_(page.locator(f"[data-run-id='{run_id}']")).wait_for()
    waiting = card(session, n)
    session.record_text()
    waiting.locator("[data-testid=dk-approve]").click()
    done = session.run_el(n).locator(".dk-tool[data-status=ok]")
    done.locator(".dk-tool-result", has_text="done: deploy the site").wait_for()
    session.wait_status("completed")
    assert session.run_el(n).locator(".dk-decision").count() == 0
    assert "done: deploy the site" in session.assistant_text(n)
    assert any(status == "running" for status, _ in session.recorded_text())
    events = [e["type"] for e in lab.run(run_id)["events"]]
    assert events.index("run_paused") < events.index("run_resumed") < events.index("done")
    assert not box.is_disabled()

    # user_input: a typed form; its value is the tool's result.
    n, run_id, waiting = pause(session, INPUT)
    field = waiting.locator("[data-field=answer]")
    assert field.get_attribute("type") == "text"
    field.fill("8888")
    waiting.locator("[data-testid=dk-submit]").click()
    session.wait_status("completed")
    result = session.run_el(n).locator(".dk-tool[data-status=ok] .dk-tool-result")
    assert "8888" in result.inner_text()
    resumed = [e for e in lab.run(run_id)["events"] if e["type"] == "run_resumed"]
    assert resumed[0]["decisions"][0]["values"] == {"answer": "8888"}

    # A reopened notebook (a new kernel, the widget from the saved state): the card is back.
    n, run_id, _ = pause(session, CONFIRM)
    session.save()  # closing a notebook marked modified would open a dialog
    session.command("application:close-all")
    page.locator(".jp-Notebook").wait_for(state="detached")
    lab.shutdown_sessions()
    session.command("docmanager:open", {"path": "hitl.ipynb"})
    session.wait_notebook()
    card(session, n).locator("[data-testid=dk-reject]").click()
    session.wait_status("completed")
    rejected = session.run_el(n).locator(".dk-tool[data-status=error] .dk-tool-result")
    assert "rejected" in rejected.inner_text().lower()


def test_two_tabs_reject_with_a_note_in_one_resolves_both_then_stop_while_paused(
    session: Session,
) -> None:
    lab = session.lab
    open_chat(session, "hitl-tabs.ipynb")
    session.save()
    other = Session(session.page.context.new_page(), lab)
    other.page.goto(lab.lab_url("hitl-tabs.ipynb"))
    other.wait_notebook()
    other.wait_chat()

    n, run_id, _ = pause(session, CONFIRM)
    theirs = card(other, n)
    theirs.locator("[data-testid=dk-note]").fill("not on a Friday")
    theirs.locator("[data-testid=dk-reject]").click()
    for s in (other, session):
        rejected = s.run_el(n).locator(".dk-tool[data-status=error]")
        rejected.locator(".dk-tool-result", has_text="not on a Friday").wait_for()
        s.wait_status("completed")
        assert s.run_el(n).locator(".dk-decision").count() == 0
    resumed = [e for e in lab.run(run_id)["events"] if e["type"] == "run_resumed"]
    assert resumed[0]["decisions"] == [
        {"id": resumed[0]["decisions"][0]["id"], "approve": False, "note": "not on a Friday"}
    ]

    # Stop while paused: the run ends cancelled, in both tabs, and the card goes away.
    n, run_id, _ = pause(session, CONFIRM)
    card(other, n)
    session.chat().locator(".dk-stop").click()
    for s in (session, other):
        s.wait_status("cancelled")
        assert s.run_el(n).locator(".dk-decision").count() == 0
    assert lab.run(run_id)["status"] == "cancelled"
    other.page.close()


def test_chat_approve_from_a_cell_continues_the_run(session: Session) -> None:
    open_chat(session, "hitl-kernel.ipynb", APPROVE_CELL)
    n, run_id, _ = pause(session, CONFIRM)
    session.run_cell(1)
    assert "waiting: ['confirm_action']" in session.cell_output(1, "waiting")
    session.run_el(n).locator(".dk-tool[data-status=ok] .dk-tool-result").wait_for()
    session.wait_status("completed")
    assert session.lab.run(run_id)["status"] == "completed"
