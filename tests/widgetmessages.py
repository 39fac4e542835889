"""The widget's reducer (js/src/reducer.js, run by node) beside the server's `run_messages`:
both must read the same conversation out of a thread's runs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from deltakit_nb.server.messages import run_messages

REDUCER = Path(__file__).parent.parent / "js" / "src" / "reducer.js"

HYDRATE = """
import { initialState, reduce, toMessages } from %s;
let data = '';
process.stdin.on('data', (c) => (data += c));
process.stdin.on('end', () => {
  const state = reduce(initialState(), { type: 'hydrate', thread: JSON.parse(data) });
  process.stdout.write(JSON.stringify(toMessages(state)));
});
"""


def node(script: str, data: Any) -> Any:
    """Run an ES module `script` (%s: the reducer's URL) on `data` as JSON on stdin."""
    out = subprocess.run(
        ["node", "--input-type=module", "-e", script % json.dumps(REDUCER.as_uri())],
        input=json.dumps(data),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return json.loads(out)


def widget_messages(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`ChatWidget.messages` for a thread of these runs: toMessages after a hydrate."""
    messages: list[dict[str, Any]] = node(HYDRATE, {"runs": runs})
    return messages


def assert_same_as_widget(widget: list[dict[str, Any]], runs: list[dict[str, Any]]) -> None:
    """The widget's messages are the server's, but for `text` in place of `content` and
    `tool_calls` always present."""
    ours = [
        m for r in runs for m in run_messages(r["run_id"], r["message"], r["status"], r["events"])
    ]
    assert len(widget) == len(ours) == 2 * len(runs)
    for w, o in zip(widget, ours, strict=True):
        as_widget = {k: v for k, v in o.items() if k != "content"}
        as_widget["text"] = o["content"]
        as_widget.setdefault("tool_calls", [])
        assert w == as_widget
