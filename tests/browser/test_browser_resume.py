"""Resume in real JupyterLab: a page reload mid-run, and a notebook closed and reopened with a
fresh kernel while its run goes on in the server."""

from __future__ import annotations

from .browserkit import Session

WIDGET = "from deltakit_nb import ChatWidget\nChatWidget(height=420)"


def grew_while_running(session: Session) -> list[int]:
    return sorted({n for status, n in session.recorded_text() if status == "running"})


def test_reload_mid_run_finishes_the_same_run_exactly(session: Session) -> None:
    session.open_chat("reload.ipynb", WIDGET)
    n = session.send("count 300 delay 0.03")
    session.run_el(n).locator(".dk-text", has_text="10 11").wait_for()
    run_id = session.chat().get_attribute("data-run-id")
    assert run_id
    session.save()
    session.page.reload()
    session.wait_notebook()

    # The widget comes back by itself (no cell re-run), on the same run, still streaming.
    session.chat().and_(session.page.locator(f"[data-run-id='{run_id}']")).wait_for()
    session.record_text()
    assert session.chat().get_attribute("data-run-status") == "running"
    session.wait_status("completed")
    assert session.chat().get_attribute("data-run-id") == run_id
    assert len(grew_while_running(session)) >= 3, "the run was not followed live after the reload"

    # Exactly the server's answer: no duplicated and no missing characters.
    record = session.lab.run(run_id)
    assert record["status"] == "completed"
    full = session.lab.run_text(run_id)
    shown = session.run_el(n).locator(".dk-assistant .dk-text").text_content()
    assert shown.strip() == full.strip()
    assert shown.split() == [str(i) for i in range(1, 301)]
    assert session.chat().locator(".dk-run").count() == 1


def test_reopen_with_fresh_kernel_restores_conversation_and_follows_live_run(
    session: Session,
) -> None:
    lab = session.lab
    session.open_chat("reopen.ipynb", WIDGET)
    session.send("what is 12 * (3 + 4)?")
    session.wait_status("completed")
    n = session.send("count 300 delay 0.03")
    session.run_el(n).locator(".dk-text", has_text="10 11").wait_for()
    run_id = session.chat().get_attribute("data-run-id")
    session.save()
    saved = lab.read_notebook("reopen.ipynb").metadata["widgets"]
    assert saved["application/vnd.jupyter.widget-state+json"]["state"], "widget state not saved"
    (old_kernel,) = [s["kernel"]["id"] for s in lab.sessions()]

    # Close the notebook, shut its kernel down, reopen it: a fresh kernel, the same page.
    session.command("application:close-all")
    session.page.locator(".jp-Notebook").wait_for(state="detached")
    lab.shutdown_sessions()
    assert lab.get("api/kernels") == []
    session.command("docmanager:open", {"path": "reopen.ipynb"})
    session.wait_notebook()
    (new_kernel,) = [s["kernel"]["id"] for s in lab.sessions()]
    assert new_kernel != old_kernel

    # The widget renders from the saved state without running a cell: the conversation is back...
    chat = session.chat()
    chat.and_(session.page.locator(f"[data-run-id='{run_id}']")).wait_for()
    first = session.run_el(1)
    first.locator(".dk-tool[data-status=ok]").wait_for()
    assert first.locator(".dk-tool-result pre").text_content() == "84"
    # ...and the run still going is followed live to its end.
    session.record_text()
    assert chat.get_attribute("data-run-status") == "running"
    session.wait_status("completed")
    assert len(grew_while_running(session)) >= 3, "the run was not followed live after reopening"
    shown = session.run_el(n).locator(".dk-assistant .dk-text").text_content()
    assert shown.strip() == lab.run_text(run_id).strip()
    assert shown.split() == [str(i) for i in range(1, 301)]
    assert chat.locator(".dk-run").count() == 2


def test_a_dropped_socket_reconnects_and_resumes_exactly(session: Session) -> None:
    """The socket drops mid-run: the widget shows it, reconnects by itself, resumes from its
    last event and ends with exactly the server's text."""
    page = session.page
    page.add_init_script(
        """(() => { const Native = window.WebSocket; window.__sockets = [];
             window.WebSocket = class extends Native {
               constructor(...args) { super(...args); window.__sockets.push(this); } }; })()"""
    )
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url) if "/deltakit/ws" in ws.url else None)
    session.open_chat("drop.ipynb", WIDGET)
    opened = len(sockets)
    n = session.send("count 200 delay 0.03")
    session.run_el(n).locator(".dk-text", has_text="10 11").wait_for()
    run_id = session.chat().get_attribute("data-run-id")

    # Chromium's offline mode leaves loopback sockets alone, so the drop is made in the page:
    # the widget's socket is closed under it, as a proxy or a sleeping laptop would.
    page.evaluate(
        """() => { for (const ws of window.__sockets) if (ws.url.includes('/deltakit/ws'))
                       ws.close(4000, 'dropped by the test'); }"""
    )
    session.chat().and_(page.locator(":not([data-conn=open])")).wait_for(timeout=10_000)

    session.wait_status("completed")
    assert len(sockets) > opened, "no new socket: the drop was not seen"
    assert session.chat().get_attribute("data-run-id") == run_id
    assert session.chat().get_attribute("data-conn") == "open"
    full = session.lab.run_text(run_id)
    shown = session.run_el(n).locator(".dk-assistant .dk-text").text_content()
    assert shown.strip() == full.strip()
    assert full.split() == [str(i) for i in range(1, 201)]
