"""A chat belongs to its notebook cell (issue 12), in real JupyterLab: re-running the cell after
a reload or a kernel restart shows the same run; every view of a thread is live; New chat and
the Conversations list; two cells never share; reopening never marks the notebook modified."""

from __future__ import annotations

from playwright.sync_api import Locator

from .browserkit import ARTIFACTS, Session

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
    session.open_chat("clean.ipynb", WIDGET)
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


def grew_while_running(session: Session) -> list[int]:
    return sorted({n for status, n in session.recorded_text() if status == "running"})


def rerun_cell(session: Session, index: int = 0) -> None:
    """Re-run cell `index` and wait for the new widget (the old view is marked first)."""
    session.page.locator(".dk-chat").evaluate_all("els => els.forEach(el => el.dataset.old = '1')")
    session.run_cell(index)
    # Open, and showing the thread the cell's binding settled on (not the key it starts from).
    new_chat = ".dk-chat:not([data-old])[data-conn=open][data-bound]"
    session.page.locator(new_chat).first.wait_for(timeout=60_000)


def test_reload_before_save_then_rerun_continues_the_same_run(session: Session) -> None:
    page = session.page
    session.open_chat("unsaved.ipynb", WIDGET)
    thread = thread_of(session)
    assert thread.startswith("cell-"), thread
    n = session.send(SLOW)
    session.run_el(n).locator(".dk-text", has_text="10 11").wait_for()
    run_id = session.chat().get_attribute("data-run-id") or ""

    # Never saved: after the reload the cell has no output at all.
    page.reload()
    session.wait_notebook()
    assert page.locator(".dk-chat").count() == 0
    session.run_cell(0)
    session.wait_chat()

    # Re-running the cell finds the cell's conversation, mid-run: the same run goes on live.
    chat = session.chat()
    chat.and_(page.locator(f"[data-run-id='{run_id}']")).wait_for()
    assert thread_of(session) == thread
    session.record_text()
    assert chat.get_attribute("data-run-status") == "running", "the run ended before the re-run"
    session.wait_status("completed", timeout=60_000)
    assert len(grew_while_running(session)) >= 3, "not followed live after the re-run"
    assert_exact(session, n, run_id)
    assert chat.locator(".dk-run").count() == 1


def test_two_tabs_a_run_from_one_streams_in_the_other_and_stops_from_it(session: Session) -> None:
    lab = session.lab
    session.open_chat("tabs.ipynb", WIDGET)
    session.save()
    other = Session(session.page.context.new_page(), lab)
    other.page.goto(lab.lab_url("tabs.ipynb"))
    other.wait_notebook()
    other.wait_chat()
    assert thread_of(other) == thread_of(session)
    other.record_text()

    n = session.send(SLOW)
    # Tab B shows the run as it streams: the user message at once, then the answer growing.
    run_b = other.run_el(n)
    run_b.locator(".dk-user").wait_for()
    assert run_b.locator(".dk-user").inner_text() == SLOW
    run_b.locator(".dk-text", has_text="10 11").wait_for()
    run_id = other.chat().get_attribute("data-run-id") or ""
    assert run_id == session.chat().get_attribute("data-run-id")
    assert len(grew_while_running(other)) >= 3, "tab B did not stream the run"

    # Stop from tab B: the run is cancelled on the server and both tabs say so.
    other.chat().locator(".dk-stop").click()
    other.wait_status("cancelled")
    session.wait_status("cancelled")
    assert lab.run(run_id)["status"] == "cancelled"
    other.page.close()


def menu_item(session: Session, thread: str) -> Locator:
    return session.chat().locator(f".dk-menu-item[data-thread-id='{thread}']")


def test_new_chat_then_rerun_shows_the_newest_and_the_list_opens_and_deletes(
    session: Session,
) -> None:
    lab, page = session.lab, session.page
    session.open_chat("newchat.ipynb", WIDGET)
    first = thread_of(session)
    # The header shows the thread id (its tail; all of it on hover) and copies all of it.
    thread_el = session.chat().locator(".dk-thread")
    assert first[-8:] in thread_el.inner_text()
    assert first in (thread_el.get_attribute("title") or "")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    session.chat().locator(".dk-copy").click()
    session.chat().locator(".dk-copy", has_text="Copied").wait_for()
    assert page.evaluate("() => navigator.clipboard.readText()") == first
    session.send("echo first conversation")
    session.wait_status("completed")

    session.chat().locator(".dk-new").click()
    page.wait_for_function(
        "t => document.querySelector('.dk-chat')?.dataset.threadId !== t", arg=first
    )
    second = thread_of(session)
    assert second.startswith(first + "-"), second
    assert session.chat().get_attribute("data-run-count") == "0"
    session.send("echo second conversation")
    session.wait_status("completed")

    # Re-running the cell shows the newest conversation, not the cell's first one.
    rerun_cell(session)
    assert thread_of(session) == second
    session.run_el(1).locator(".dk-text", has_text="second conversation").wait_for()
    assert session.chat().get_attribute("data-run-count") == "1"

    # The older one is in the list (title = its first message) and opens here.
    session.chat().locator(".dk-list-toggle").click()
    menu_item(session, first).wait_for()
    assert menu_item(session, second).get_attribute("class") == "dk-menu-item dk-current"
    assert "echo first conversation" in menu_item(session, first).inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "widget-conversations.png"
    shot.unlink(missing_ok=True)
    page.mouse.move(0, 0)  # no hover effects in the picture
    session.chat().screenshot(path=str(shot))
    assert shot.stat().st_size > 5_000
    menu_item(session, first).locator(".dk-menu-open").click()
    page.wait_for_function(
        "t => document.querySelector('.dk-chat')?.dataset.threadId === t", arg=first
    )
    session.run_el(1).locator(".dk-text", has_text="first conversation").wait_for()
    assert session.chat().locator(".dk-menu").is_hidden()
    # ...and stays the cell's conversation when the cell runs again.
    rerun_cell(session)
    assert thread_of(session) == first
    session.run_el(1).locator(".dk-text", has_text="first conversation").wait_for()

    # Delete the other one from the list, after a confirmation in the row.
    session.chat().locator(".dk-list-toggle").click()
    menu_item(session, second).locator(".dk-menu-delete").click()
    menu_item(session, second).locator(".dk-menu-confirm-delete").click()
    menu_item(session, second).wait_for(state="detached")
    listed = [t["thread_id"] for t in lab.get("deltakit/threads")["threads"]]
    assert second not in listed and first in listed


CONSOLE = "from deltakit_nb import ChatWidget; print('thread', ChatWidget().thread_id)"


def test_two_cells_never_share_and_a_console_gets_a_fresh_thread(session: Session) -> None:
    lab, page = session.lab, session.page
    lab.write_notebook("twocells.ipynb", WIDGET, WIDGET)
    session.open_lab("twocells.ipynb")
    session.run_cell(0)
    session.wait_chat(0)
    session.run_cell(1)
    session.wait_chat(1)
    t0, t1 = thread_of(session, 0), thread_of(session, 1)
    assert t0.startswith("cell-") and t1.startswith("cell-") and t0 != t1
    session.send("echo only in the first cell", 0)
    session.wait_status("completed", 0)
    assert session.chat(1).get_attribute("data-run-count") == "0"
    # Each cell keeps its own conversation when run again.
    session.run_cell(1)
    session.wait_chat(1)
    session.run_cell(0)
    page.locator(".dk-chat").nth(0).and_(page.locator("[data-run-count='1']")).wait_for()
    assert (thread_of(session, 0), thread_of(session, 1)) == (t0, t1)
    assert session.chat(1).get_attribute("data-run-count") == "0"

    # A console is not a notebook cell: each ChatWidget() there starts a conversation of its own.
    session.command("console:create", {"kernelPreference": {"name": "python3"}})
    page.locator(".jp-CodeConsole").wait_for()
    session.wait_kernel()
    threads = []
    for n in (1, 2):
        page.locator(".jp-CodeConsole-promptCell .jp-InputArea-editor").click()
        page.keyboard.type(CONSOLE)
        page.keyboard.press("Shift+Enter")
        out = page.locator(".jp-CodeConsole-content .jp-OutputArea-output", has_text="thread")
        out.nth(n - 1).wait_for()
        threads.append(out.nth(n - 1).inner_text().split()[1])
    assert len({*threads, t0, t1}) == 4, (threads, t0, t1)
    listed = {t["thread_id"] for t in lab.get("deltakit/threads?limit=500")["threads"]}
    assert not listed & set(threads), "a console widget showed an existing conversation"
