"""A chat belongs to its notebook cell (issue 12), in real JupyterLab: re-running the cell after
a reload or a kernel restart shows the same run; every view of a thread is live; New chat and
the Conversations list; two cells never share; reopening never marks the notebook modified."""

from __future__ import annotations

from .browserkit import Session

WIDGET = "from deltakit_nb import ChatWidget\nChatWidget(height=360)"
# Long enough to reload, restart or re-run in the middle of it.
SLOW = "count 300 delay 0.04"
DIRTY = "() => window.jupyterapp.shell.currentWidget?.context?.model?.dirty"


def words(n: int) -> list[str]:
    return [str(i) for i in range(1, n + 1)]


def thread_of(session: Session, index: int = 0) -> str:
    return session.chat(index).get_attribute("data-thread-id") or ""


def assert_exact(session: Session, n: int, run_id: str) -> None:
    """The widget ends with exactly the server's record of the run, once."""
    record = session.lab.run(run_id)
    assert record["status"] == "completed"
    shown = session.run_el(n).locator(".dk-assistant .dk-text").text_content() or ""
    assert shown.strip() == session.lab.run_text(run_id).strip()
    assert shown.split() == words(300)
    assert session.chat().locator(f".dk-run[data-run-id='{run_id}']").count() == 1


def wait_clean(session: Session) -> None:
    session.page.wait_for_function(f"() => ({DIRTY})() === false", timeout=15_000)


def test_reopening_a_saved_chat_does_not_mark_the_notebook_modified(session: Session) -> None:
    lab, page = session.lab, session.page
    lab.write_notebook("clean.ipynb", WIDGET)
    session.open_lab("clean.ipynb")
    session.run_cell(0)
    session.wait_chat()
    session.send("what is 12 * (3 + 4)?")
    run_id = session.wait_status("completed")
    session.save()

    # Reload (the kernel and its widget live on): restored from the kernel, not modified.
    page.reload()
    session.wait_notebook()
    session.chat().and_(page.locator(f"[data-run-id='{run_id}']")).wait_for()
    wait_clean(session)
    assert page.locator(".jp-mod-dirty").count() == 0

    # Close, shut the kernel down, reopen: restored from the saved widget state, not modified,
    # and no broken-link icon although no kernel model stands behind the view.
    session.command("application:close-all")
    page.locator(".jp-Notebook").wait_for(state="detached")
    lab.shutdown_sessions()
    session.command("docmanager:open", {"path": "clean.ipynb"})
    session.wait_notebook()
    chat = session.chat()
    chat.and_(page.locator(f"[data-run-id='{run_id}']")).wait_for()
    wait_clean(session)
    host = page.locator(".dk-host.jupyter-widgets-disconnected")
    assert host.count() == 1, "the saved view should have no live comm"
    icon = host.evaluate("el => getComputedStyle(el, '::before').display")
    assert icon == "none"

    # A new message lives in the server; the notebook file does not change, so it stays clean.
    session.send("hello")
    session.wait_status("completed")
    assert page.evaluate(DIRTY) is False
