"""The kernel-side Python API, driven from real notebook cells."""

from __future__ import annotations

import json

from .browserkit import Session

CELLS = (
    # send() in the same cell that displays the widget, before its view exists.
    "from deltakit_nb import ChatWidget\n"
    "chat = ChatWidget(height=360)\n"
    'chat.send("what is 12 * (3 + 4)?")\n'
    "chat",
    "import json\n"
    "print(chat.status, chat.run_id)\n"
    "print(json.dumps(chat.messages))\n"
    'print("----")\n'
    "print(chat.to_markdown())",
)


def test_send_from_the_displaying_cell_then_messages_and_markdown(session: Session) -> None:
    lab = session.lab
    session.open_chat("api.ipynb", *CELLS)
    run_id = session.wait_status("completed")
    first = session.run_el(1)
    assert first.locator(".dk-user").inner_text() == "what is 12 * (3 + 4)?"
    assert first.locator(".dk-tool-result pre").text_content() == "84"
    assert session.chat().locator(".dk-run").count() == 1  # sent once, not once per view/save

    # A follow-up cell reads what the front end synced back at the end of the run.
    session.run_cell(1)
    out = session.cell_output(1, "----")
    head, markdown = out.split("----", 1)
    status_line, messages_line = head.strip().splitlines()
    assert status_line == f"completed {run_id}"
    messages = json.loads(messages_line)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[0]["text"] == "what is 12 * (3 + 4)?"
    (call,) = messages[1]["tool_calls"]
    assert call["name"] == "calculator"
    assert call["result"] == "84"
    assert "12 * (3 + 4)" in json.dumps(call["args"])
    assert messages[1]["text"] == lab.run_text(run_id)
    assert "**You:** what is 12 * (3 + 4)?" in markdown
    assert "Tool call `calculator`" in markdown
    assert "84" in markdown
