"""%load_ext deltakit_nb, %chat and %%chat in a real IPython shell."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from ipywidgets import Widget

from deltakit_nb.kernel.widget import ChatWidget


@pytest.fixture
def ip() -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance()
    with capture_output() as cap:
        shell.run_line_magic("load_ext", "deltakit_nb")
    assert (cap.stdout, cap.stderr, cap.outputs) == ("", "", [])  # loading says nothing
    yield shell
    shell.run_line_magic("unload_ext", "deltakit_nb")


def run(ip: InteractiveShell, source: str) -> list[ChatWidget]:
    """Run a cell; return the ChatWidgets it displayed."""
    with capture_output() as cap:
        result = ip.run_cell(source)
    result.raise_error()
    assert cap.stderr == ""
    shown = []
    for out in cap.outputs:
        view = out.data.get("application/vnd.jupyter.widget-view+json")
        if view is not None:
            widget = Widget.widgets[view["model_id"]]  # type: ignore[attr-defined]
            assert isinstance(widget, ChatWidget)
            assert out.data["text/plain"] == repr(widget)
            shown.append(widget)
    return shown


def requests(widget: ChatWidget) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "id"} for r in widget._requests]


def test_line_magic_displays_a_widget_with_the_options(ip: InteractiveShell) -> None:
    (widget,) = run(
        ip, '%chat --agent demo --thread t-42 --title "My chat" --height 60vh --placeholder Ask'
    )
    assert widget.agent == "demo"
    assert widget.thread_id == "t-42"
    assert widget.title == "My chat"
    assert widget.height == "60vh"
    assert widget.placeholder == "Ask"
    assert requests(widget) == []


def test_line_magic_defaults_and_pixel_height(ip: InteractiveShell) -> None:
    (plain,) = run(ip, "%chat")
    assert (plain.agent, plain.title, plain.height) == ("", "", 480)
    assert len(plain.thread_id) == 32
    (tall,) = run(ip, "%chat -a demo --height 600")
    assert tall.height == 600 and tall.agent == "demo"
    assert tall.thread_id != plain.thread_id


def test_new_starts_a_new_conversation(ip: InteractiveShell) -> None:
    """(Outside a notebook cell here; in a real cell: tests/test_cellkey.py.)"""
    (plain,) = run(ip, "%chat")
    (new,) = run(ip, "%chat --new")
    assert new._fresh and not plain._fresh
    assert len(new.thread_id) == 32 and new.thread_id != plain.thread_id


def test_cell_magic_sends_the_body_as_the_first_message(ip: InteractiveShell) -> None:
    (widget,) = run(ip, "%%chat --agent demo --name chat\nwhat is 12 * (3 + 4)?\n\n")
    assert widget.agent == "demo"
    assert requests(widget) == [{"op": "send", "text": "what is 12 * (3 + 4)?"}]
    assert ip.user_ns["chat"] is widget


def test_cell_magic_keeps_a_multiline_body_and_skips_an_empty_one(ip: InteractiveShell) -> None:
    (widget,) = run(ip, "%%chat\nfirst line\n  second line\n")
    assert requests(widget) == [{"op": "send", "text": "first line\n  second line"}]
    (empty,) = run(ip, "%%chat --title Empty\n\n   \n")
    assert requests(empty) == [] and empty.title == "Empty"


def test_name_binds_the_widget_in_the_namespace(ip: InteractiveShell) -> None:
    (widget,) = run(ip, "%chat -n w")
    assert ip.user_ns["w"] is widget
    with capture_output():
        assert ip.run_cell("w.send('hi')").success
    assert requests(widget) == [{"op": "send", "text": "hi"}]


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("%chat --bogus", "unrecognized arguments"),
        ('%chat --title "unclosed', "No closing quotation"),
        ("%chat --name not-an-identifier", "not a Python identifier"),
        ("%chat --thread '  '", "thread_id"),
        ("%chat --new --thread t-1", "--new starts a new conversation"),
    ],
)
def test_bad_options_are_usage_errors(ip: InteractiveShell, line: str, needle: str) -> None:
    with capture_output() as cap:
        result = ip.run_cell(line)
    assert not result.success
    assert needle in str(result.error_in_exec)
    assert "UsageError" in cap.stderr and "Traceback" not in cap.stderr
    assert cap.outputs == []


def test_unload_removes_the_magics_and_load_restores_them(ip: InteractiveShell) -> None:
    manager = ip.magics_manager
    assert "chat" in manager.magics["line"] and "chat" in manager.magics["cell"]
    ip.run_line_magic("unload_ext", "deltakit_nb")
    assert "chat" not in manager.magics["line"]
    assert "chat" not in manager.magics["cell"]
    assert "ChatMagics" not in manager.registry
    with capture_output():
        assert not ip.run_cell("%chat").success
    ip.run_line_magic("load_ext", "deltakit_nb")
    (widget,) = run(ip, "%chat -a demo")
    assert widget.agent == "demo"


def test_unload_leaves_someone_elses_chat_magic(ip: InteractiveShell) -> None:
    def other(line: str) -> str:
        return "other"

    ip.register_magic_function(other, "line", "chat")
    ip.run_line_magic("unload_ext", "deltakit_nb")
    try:
        assert ip.run_line_magic("chat", "") == "other"
        assert "chat" not in ip.magics_manager.magics["cell"]
    finally:
        del ip.magics_manager.magics["line"]["chat"]
        ip.run_line_magic("load_ext", "deltakit_nb")
