"""Re-make the README's pictures of the widget in real JupyterLab + headless Chromium.

    PYTHONPATH=$PWD python docs/make_screenshots.py [NAME.png ...]

Writes docs/widget.png (light theme), docs/widget-dark.png (JupyterLab Dark),
docs/widget-conversations.png (the Conversations menu open), docs/widget-approval.png (a tool
call waiting for approval), docs/widget-team.png (a team run: members' work inside the leader's
delegate cards) and docs/widget-workflow.png (a workflow's steps). Uses the browser tests' lab
process and helpers, so it needs what they need (Debian's Chromium). With names, only those
pictures are written.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from browser.browserkit import Session, launch_chromium, open_session  # noqa: E402
from browser.labproc import running_lab  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

CELL = 'from deltakit_nb import ChatWidget\nChatWidget(title="Quickstart", height=700)'
DOCS = ROOT / "docs"


def converse(session: Session, *messages: str) -> None:
    for message in messages:
        session.send(message)
        session.wait_status("completed", timeout=60_000)


ONLY = set(sys.argv[1:])


def shoot(session: Session, name: str, index: int = 0) -> None:
    if ONLY and name not in ONLY:
        return
    session.page.mouse.move(0, 0)  # no hover effects in the picture
    session.page.wait_for_timeout(300)  # let the caret and transitions settle
    session.chat(index).screenshot(path=str(DOCS / name))
    print("wrote", DOCS / name)


def main() -> None:
    with sync_playwright() as pw, running_lab() as lab:
        browser = launch_chromium(pw)
        sessions = open_session(browser, lab)
        session = next(sessions)
        page = session.page
        page.set_viewport_size({"width": 850, "height": 1100})
        lab.write_notebook("quickstart.ipynb", CELL)
        session.open_lab("quickstart.ipynb")
        session.command("application:toggle-left-area")
        session.run_cell(0)
        session.wait_chat()
        # Two earlier conversations, so the list has something to show.
        converse(session, "what time is it?")
        session.chat().locator(".dk-new").click()
        converse(session, "count 40 delay 0.01")
        session.chat().locator(".dk-new").click()
        converse(session, "tell me about markdown", "what is 2 ** 10 - 24?")
        session.run_el(1).locator("details.dk-thinking summary").click()
        shoot(session, "widget.png")

        session.chat().locator(".dk-list-toggle").click()
        session.chat().locator(".dk-menu-item").nth(2).wait_for()
        shoot(session, "widget-conversations.png")
        session.chat().locator(".dk-list-toggle").click()

        session.command("apputils:change-theme", {"theme": "JupyterLab Dark"})
        page.wait_for_function("() => document.body.dataset.jpThemeName === 'JupyterLab Dark'")
        shoot(session, "widget-dark.png")
        session.command("apputils:change-theme", {"theme": "JupyterLab Light"})
        page.wait_for_function("() => document.body.dataset.jpThemeName === 'JupyterLab Light'")

        # Human in the loop: a tool call that waits for the user's approval.
        session.chat().locator(".dk-new").click()
        converse(session, "what is 12 * (3 + 4)?")
        session.send('tool confirm_action {"action": "email the report to the team"}')
        session.wait_status("paused", timeout=60_000)
        note = session.chat().locator("[data-testid=dk-note]")
        note.fill("use the short version")
        note.evaluate("el => el.blur()")  # no focus ring in the picture
        session.chat().evaluate("el => { el.style.height = '600px'; }")
        shoot(session, "widget-approval.png")

        # Teams and workflows: members' work nested in the leader's delegate cards, and steps.
        if not ONLY or ONLY & {"widget-team.png", "widget-workflow.png"}:
            teams(session)
        sessions.close()
        browser.close()


TEAM_CELLS = [
    'from deltakit_nb import ChatWidget\nChatWidget(title="Team", agent="team", height=760)',
    'ChatWidget(title="Workflow", agent="workflow", height=340)',
]


def teams(session: Session) -> None:
    session.lab.write_notebook("teams.ipynb", *TEAM_CELLS)
    session.open_lab("teams.ipynb")
    for index in (0, 1):
        session.run_cell(index)
        session.wait_chat(index)
    session.send("delegate researcher what is 6 * 7?")
    session.wait_status("completed", timeout=60_000)
    session.send("delegate all summarise the meeting notes")
    session.wait_status("completed", timeout=60_000)
    # The researcher's fold opened, to show its tool call and text inside the delegate card.
    session.run_el(1).locator(".dk-member .dk-nest-head").click()
    shoot(session, "widget-team.png")
    session.send("what is 6 * 7?", index=1)
    session.wait_status("completed", index=1, timeout=60_000)
    session.run_el(1, index=1).locator(".dk-step").nth(1).locator(".dk-nest-head").click()
    session.page.locator(".jp-Notebook .jp-Cell").nth(1).scroll_into_view_if_needed()
    shoot(session, "widget-workflow.png", index=1)


if __name__ == "__main__":
    main()
