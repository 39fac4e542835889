"""The widget under Notebook 7 (/tree → /notebooks/x.ipynb) and under a non-root base_url (as
under JupyterHub), on a second server started for this module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from .browserkit import Session, open_session
from .labproc import TOKEN, LabProcess, running_lab

WIDGET = "from deltakit_nb import ChatWidget\nChatWidget(height=360)"


@pytest.fixture(scope="module")
def alice() -> Iterator[LabProcess]:
    with running_lab(base_url="/user/alice/") as proc:
        yield proc


@pytest.fixture
def alice_session(browser: Browser, alice: LabProcess) -> Iterator[Session]:
    yield from open_session(browser, alice)


def deltakit_sockets(session: Session) -> list[str]:
    urls: list[str] = []
    session.page.on("websocket", lambda ws: urls.append(ws.url) if "deltakit" in ws.url else None)
    return urls


def notebook7_roundtrip(session: Session, name: str) -> None:
    lab, page = session.lab, session.page
    lab.write_notebook(name, WIDGET)
    page.goto(f"{lab.base}tree?token={TOKEN}")
    item = page.locator(".jp-DirListing-item", has_text=name)
    # Notebook 7 opens a notebook from the tree in a new browser tab.
    with page.context.expect_page() as opened:
        item.dblclick()
    nb = Session(opened.value, lab)
    nb.page.wait_for_url(f"{lab.base}notebooks/{name}*")
    urls = deltakit_sockets(nb)
    nb.wait_notebook()
    nb.run_cell(0)
    nb.wait_chat()
    n = nb.send("what is 12 * (3 + 4)?")
    run_id = nb.wait_status("completed")
    assert nb.run_el(n).locator(".dk-tool-result pre").text_content() == "84"
    assert lab.run(run_id)["status"] == "completed"
    socket = f"ws://127.0.0.1:{lab.port}{lab.base_url}deltakit/ws"
    assert urls and all(u.startswith(socket) for u in urls), urls
    nb.page.close()


def test_notebook7(session: Session) -> None:
    notebook7_roundtrip(session, "nb7.ipynb")


def test_notebook7_under_base_url(alice_session: Session) -> None:
    notebook7_roundtrip(alice_session, "nb7-alice.ipynb")


def test_lab_under_base_url_streams_stops_and_resumes(alice_session: Session) -> None:
    session, lab = alice_session, alice_session.lab
    assert lab.base_url == "/user/alice/"
    lab.write_notebook("alice.ipynb", WIDGET)
    urls = deltakit_sockets(session)
    session.open_lab("alice.ipynb")
    assert session.page.url.startswith(f"{lab.origin}/user/alice/lab/")
    session.run_cell(0)
    session.wait_chat()
    n = session.send("what is 12 * (3 + 4)?")
    session.wait_status("completed")
    assert session.run_el(n).locator(".dk-tool-result pre").text_content() == "84"

    # Stop: the cancel POST goes under the base URL (with the XSRF header), the server agrees.
    n = session.send("count 300 delay 0.03")
    session.run_el(n).locator(".dk-text", has_text="3 4").wait_for()
    with session.page.expect_request("**/deltakit/jobs/*/cancel") as cancel:
        session.chat().locator(".dk-stop").click()
    assert cancel.value.url.startswith(f"{lab.base}deltakit/jobs/")
    run_id = session.wait_status("cancelled")
    assert lab.run(run_id)["status"] == "cancelled"

    # Reload mid-run: the thread is read back under the base URL and the run followed to the end.
    n = session.send("count 120 delay 0.03")
    session.run_el(n).locator(".dk-text", has_text="3 4").wait_for()
    run_id = session.chat().get_attribute("data-run-id")
    session.save()
    session.page.reload()
    session.wait_notebook()
    session.chat().and_(session.page.locator(f"[data-run-id='{run_id}']")).wait_for()
    session.wait_status("completed")
    shown = session.run_el(n).locator(".dk-assistant .dk-text").text_content()
    assert shown.strip() == lab.run_text(run_id).strip()
    socket = f"ws://127.0.0.1:{lab.port}/user/alice/deltakit/ws"
    assert urls and all(u.startswith(socket) for u in urls), urls


def test_notebook7_under_base_url_kernel_restart_then_rerun_continues_the_run(
    alice_session: Session,
) -> None:
    """Issue 12 under Notebook 7 and /user/alice/: a kernel restart mid-run, then the cell is
    run again: its widget shows the same conversation and follows the same run to its end."""
    session, lab, page = alice_session, alice_session.lab, alice_session.page
    lab.write_notebook("restart7.ipynb", WIDGET)
    page.goto(f"{lab.base}notebooks/restart7.ipynb?token={TOKEN}")
    session.wait_notebook()
    session.run_cell(0)
    session.wait_chat()
    thread = session.chat().get_attribute("data-thread-id") or ""
    assert thread.startswith("cell-"), thread
    n = session.send("count 300 delay 0.04")
    session.run_el(n).locator(".dk-text", has_text="10 11").wait_for()
    run_id = session.chat().get_attribute("data-run-id") or ""

    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.restartKernel()")
    session.wait_kernel()
    session.chat().evaluate("el => el.dataset.old = '1'")
    session.run_cell(0)
    chat = page.locator(".dk-chat:not([data-old])")
    chat.and_(page.locator(f"[data-run-id='{run_id}']")).wait_for(timeout=60_000)
    assert chat.get_attribute("data-thread-id") == thread
    assert chat.get_attribute("data-run-status") == "running", "the run ended before the re-run"
    chat.and_(page.locator("[data-run-status=completed]")).wait_for(timeout=60_000)
    shown = chat.locator(".dk-run").nth(n - 1).locator(".dk-assistant .dk-text").text_content()
    assert (shown or "").strip() == lab.run_text(run_id).strip()
    assert (shown or "").split() == [str(i) for i in range(1, 301)]
    assert chat.locator(".dk-run").count() == 1
