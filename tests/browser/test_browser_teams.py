"""Teams and workflows (issue 15) in real JupyterLab: the leader's delegate call is a card with
the member's live work inside, folded once the member is done; Stop mid-member stops the team
and shows the member stopped; a failing member is a failed card; a member's approval card sits
in the member's card; a workflow's steps are a list
of foldable boxes; all of it is the same after a reload and in a reopened notebook (it is derived
from the run's events)."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator

from .browserkit import ARTIFACTS, Session

CELLS = [
    'from deltakit_nb import ChatWidget\nChatWidget(agent="team", height=560)',
    'ChatWidget(agent="workflow", height=420)',
]
ONE = "delegate researcher what is 6 * 7?"
SLOW = "delegate researcher count 300 delay 0.05"

# What a chat shows of nested work, element by element, to compare a live view with a reload.
SHAPE = """(chat) => [...chat.querySelectorAll('.dk-tool, .dk-nest, .dk-text')].map((el) => [
  el.className, el.dataset.status ?? '', el.dataset.name ?? el.dataset.toolName ?? '',
  el.tagName === 'DETAILS' ? el.open : null, el.textContent.length,
])"""


def shape(session: Session, index: int) -> Any:
    return session.chat(index).evaluate(SHAPE)


def leader_text(run: Locator) -> str:
    return "".join(run.locator(".dk-assistant > .dk-body > .dk-text").all_inner_texts())


def test_team_and_workflow_nested_live_after_reload_reopen_and_stop(session: Session) -> None:
    lab, page = session.lab, session.page
    lab.write_notebook("teams.ipynb", *CELLS)
    session.open_lab("teams.ipynb")
    session.run_cell(0)
    session.wait_chat(0)
    session.run_cell(1)
    session.wait_chat(1)
    session.save()

    # One member with a tool call inside: its card sits in the leader's delegate card.
    n = session.send(ONE)
    run_id = session.wait_status("completed")
    run = session.run_el(n)
    card = run.locator(".dk-tool[data-tool-name=delegate_task_to_member]")
    assert card.get_attribute("data-status") == "ok"
    member = card.locator(".dk-member")
    assert member.get_attribute("data-name") == "researcher"
    assert member.get_attribute("data-status") == "completed"
    assert member.locator(".dk-nest-state").inner_text() == "done"
    assert not member.evaluate("(el) => el.open"), "a finished member is folded"
    calc = member.locator(".dk-tool[data-tool-name=calculator]")
    assert calc.get_attribute("data-status") == "ok"
    # A member's tool card is a full tool card: timed, its arguments pretty JSON.
    assert calc.get_attribute("data-duration") is not None
    assert calc.locator("[data-testid=dk-tool-time]").text_content().endswith(" s")
    assert '"expression"' in (calc.locator(".dk-tool-args .dk-fold-slot pre").text_content() or "")
    # The delegate card's own time and result (folded: the member's answer is in view above);
    # the team run's footer has the leader's metrics.
    own = card.evaluate(
        """(el) => [el.querySelector(':scope > .dk-tool-head > .dk-tool-time').textContent,
        el.querySelector(':scope > .dk-tool-result-slot > details.dk-tool-result')?.open]"""
    )
    assert own[0].endswith(" s") and own[1] is False
    assert "offline" in run.locator("[data-testid=dk-metrics]").inner_text()
    assert "42" in (member.locator(".dk-text").text_content() or "")
    # The member's text is not the leader's: the leader's answer quotes it once, after the card.
    assert leader_text(run).startswith("The team's answer")
    assert run.locator(".dk-assistant > .dk-body > .dk-member").count() == 0
    member.locator(".dk-nest-head").click()
    assert member.evaluate("(el) => el.open"), "the fold opens on a click"
    member.locator(".dk-nest-head").click()
    events = lab.run(run_id)["events"]
    assert [e["type"] for e in events].count("member_text_delta") > 1

    # A member streaming slowly: its card is open and fills live inside the delegate card;
    # Stop mid-member stops the team run and shows the member stopped.
    n2 = session.send(SLOW)
    run2 = session.run_el(n2)
    live = run2.locator(".dk-tool[data-tool-name=delegate_task_to_member] .dk-member")
    live.and_(page.locator("[data-status=running]")).wait_for()
    page.wait_for_function(
        "(el) => (el.querySelector('.dk-text')?.textContent.length ?? 0) > 20",
        arg=live.element_handle(),
    )
    assert live.evaluate("(el) => el.open"), "a working member is open"
    first = len(live.locator(".dk-text").inner_text())
    page.wait_for_function(
        "([el, n]) => el.querySelector('.dk-text').textContent.length > n",
        arg=[live.element_handle(), first],
    )
    assert leader_text(run2) == "", "no member text in the leader's answer"
    session.chat(0).locator("[data-testid=dk-stop]").click()
    run_id2 = session.wait_status("cancelled")
    assert live.get_attribute("data-status") == "cancelled"
    assert live.locator(".dk-nest-state").inner_text() == "stopped"
    assert "300" not in live.locator(".dk-text").inner_text(), "stopped mid-member"
    assert lab.run(run_id2)["status"] == "cancelled"

    # A failing member: a failed card with agno's message; the leader goes on.
    n3 = session.send("delegate researcher fail")
    session.wait_status("completed")
    failed = session.run_el(n3).locator(".dk-member")
    assert failed.get_attribute("data-status") == "failed"
    assert failed.locator(".dk-nest-state").inner_text() == "failed"
    assert "failed on purpose" in (failed.locator(".dk-nest-error").text_content() or "")
    assert leader_text(session.run_el(n3)).startswith("The team's answer")

    # A member's call that waits for approval: the card is inside the member's card, and the
    # decision continues the team run.
    n4 = session.send('delegate researcher tool confirm_action {"action": "ship it"}')
    session.wait_status("paused")
    asking = session.run_el(n4).locator(".dk-member")
    assert asking.get_attribute("data-status") == "paused"
    assert asking.locator(".dk-nest-state").inner_text() == "waiting for you"
    waiting = asking.locator(".dk-tool[data-status=waiting]")
    assert waiting.locator(".dk-tool-name").inner_text() == "confirm_action"
    waiting.locator("[data-testid=dk-approve]").click()
    session.wait_status("completed")
    assert asking.get_attribute("data-status") == "completed"
    assert "done: ship it" in (asking.locator(".dk-tool-result").text_content() or "")

    # A workflow: its steps as a list, each foldable, with the step's work inside.
    w = session.send("what is 6 * 7?", index=1)
    session.wait_status("completed", index=1)
    steps = session.run_el(w, index=1).locator(".dk-step")
    assert steps.count() == 2
    assert [steps.nth(i).get_attribute("data-name") for i in range(2)] == ["research", "write"]
    assert [steps.nth(i).locator(".dk-nest-index").inner_text() for i in range(2)] == ["1", "2"]
    assert all(steps.nth(i).get_attribute("data-status") == "completed" for i in range(2))
    steps.nth(0).locator(".dk-nest-head").click()
    research = steps.nth(0).locator(".dk-tool[data-tool-name=calculator]")
    assert research.get_attribute("data-status") == "ok"
    assert "Draft:" in (steps.nth(1).locator(".dk-text").text_content() or "")
    # Its footer adds up the steps' figures (agno's WorkflowMetrics).
    footer = session.run_el(w, index=1).locator("[data-testid=dk-metrics]").inner_text()
    assert footer.startswith("offline · ") and " in · " in footer and " out · " in footer, footer
    ARTIFACTS.mkdir(exist_ok=True)
    page.mouse.move(0, 0)
    session.run_el(w, index=1).screenshot(path=str(ARTIFACTS / "widget-workflow.png"))
    steps.nth(0).locator(".dk-nest-head").click()

    # A reload: the same nested cards, folds and statuses, from the server's record.
    before = [shape(session, 0), shape(session, 1)]
    page.reload()
    session.wait_notebook()
    session.wait_chat(0)
    session.wait_chat(1)
    session.run_el(n4).and_(page.locator("[data-status=completed]")).wait_for()
    assert session.run_el(n2).get_attribute("data-run-id") == run_id2
    session.chat(1).locator(".dk-step[data-status=completed]").nth(1).wait_for()
    assert [shape(session, 0), shape(session, 1)] == before

    # A reopened notebook (a new kernel, the widgets from the saved state): the same again.
    # Saved first: closing a notebook that is (still) marked modified opens a dialog.
    session.save()
    session.command("application:close-all")
    page.locator(".jp-Notebook").wait_for(state="detached")
    lab.shutdown_sessions()
    session.command("docmanager:open", {"path": "teams.ipynb"})
    session.wait_notebook()
    session.run_el(n4).and_(page.locator("[data-status=completed]")).wait_for()
    session.run_el(w, index=1).locator(".dk-step[data-status=completed]").nth(1).wait_for()
    assert [shape(session, 0), shape(session, 1)] == before
    session.run_el(n).locator(".dk-member .dk-nest-head").click()
    page.mouse.move(0, 0)
    session.run_el(n).screenshot(path=str(ARTIFACTS / "widget-team.png"))


def _stored_copy(db: Path, events: list[dict[str, Any]], thread_id: str, old: bool) -> str:
    """Store a copy of a finished team run as a new run of `thread_id`, with its member events
    in today's shape or (`old`) as the release before stored them: `member` and
    `parent_call_id` on each. Written straight into the event store, as a restarted server
    finds runs it holds."""
    run_id = str(uuid.uuid4())
    known: dict[str, dict[str, Any]] = {}
    encoded = []
    for event in events:
        event = {**event, "runId": run_id}
        if event["type"] == "member_started":
            known[event["member"]["run_id"]] = {
                "member": event["member"],
                "parent_call_id": event["parent_call_id"],
            }
        elif old and "member_run_id" in event:
            ids = {"eventId": event.pop("eventId"), "runId": event.pop("runId")}
            event = {**event, **known[event.pop("member_run_id")], **ids}
        encoded.append(json.dumps(event, separators=(",", ":")))
    now = time.time()
    with sqlite3.connect(db, timeout=10) as conn:
        conn.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, thread_id, "team", ONE, "completed", now, now),
        )
        conn.execute(
            "INSERT INTO event_batches VALUES (?, ?, ?, ?)",
            (run_id, 0, len(encoded) - 1, "\n".join(encoded)),
        )
    return run_id


def test_a_team_run_stored_in_the_old_shape_renders_as_today(session: Session) -> None:
    """Runs stored before `member_run_id` (each member event named its member in full) show
    the same nested cards as the same run in today's shape, and as it looked live."""
    lab, page = session.lab, session.page
    lab.write_notebook("team_live.ipynb", CELLS[0])
    session.open_lab("team_live.ipynb")
    session.run_cell(0)
    session.wait_chat(0)
    session.send(ONE)
    run_id = session.wait_status("completed")
    live = shape(session, 0)
    events = lab.run(run_id)["events"]
    assert any("member_run_id" in e for e in events)
    db = lab.tmp / "deltakit" / "runs.sqlite"
    suffix = uuid.uuid4().hex[:8]
    for name, old in (("today", False), ("old", True)):
        _stored_copy(db, events, f"shape-{name}-{suffix}", old)
    session.save()
    session.command("application:close-all")
    page.locator(".jp-Notebook").wait_for(state="detached")
    lab.write_notebook(
        "team_shapes.ipynb",
        f'from deltakit_nb import ChatWidget\nChatWidget(thread_id="shape-today-{suffix}", '
        "height=560)",
        f'ChatWidget(thread_id="shape-old-{suffix}", height=560)',
    )
    session.open_lab("team_shapes.ipynb")
    for i in (0, 1):
        session.run_cell(i)
        session.wait_chat(i)
        session.chat(i).and_(page.locator("[data-run-status=completed]")).wait_for()
        session.run_el(1, i).locator(".dk-member[data-status=completed]").wait_for()
    today, old = shape(session, 0), shape(session, 1)
    assert old == today == live
    member = session.run_el(1, 1).locator(
        ".dk-tool[data-tool-name=delegate_task_to_member] .dk-member"
    )
    assert member.get_attribute("data-name") == "researcher"
    assert "42" in (member.locator(".dk-text").text_content() or "")
