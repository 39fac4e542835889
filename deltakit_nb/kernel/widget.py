"""The chat widget: an anywidget whose front end talks to the deltakit_nb server extension.

The run lives in the Jupyter server, not in the kernel: the browser opens the WebSocket itself,
so the conversation survives a page reload or a fresh kernel. The kernel side only sets options
and posts requests (``send``/``stop``/``retry``, and the decisions of
``approve``/``reject``/``respond`` on a paused run) through synced state, and receives the
finished conversation in ``messages`` at the end of each run and a paused run's open requests
in ``pending``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from deltakit_nb import __version__
from deltakit_nb.kernel.cellkey import current_cell_key

__all__ = ["ChatWidget"]

STATIC = Path(__file__).parent.parent / "static"
_OPTIONS = ("thread_id", "agent", "title", "placeholder", "height")


def _loader_esm() -> str:
    # The query string busts the browser cache whenever the bundle changes (served with a long
    # cache lifetime because of its `v` argument).
    bundle = STATIC / "chat.js"
    stamp = __version__
    if bundle.exists():
        stamp += "-" + hashlib.sha256(bundle.read_bytes()).hexdigest()[:12]
    return (
        (STATIC / "loader.js").read_text(encoding="utf-8").replace("__DELTAKIT_NB_VERSION__", stamp)
    )


def _new_id() -> str:
    return uuid.uuid4().hex


class ChatWidget(anywidget.AnyWidget):
    """A chat with an agno agent that runs in the Jupyter server.

    >>> chat = ChatWidget(agent="demo")   # doctest: +SKIP
    >>> chat.send("What is 2 + 2?")       # works before the widget is displayed
    """

    _esm = _loader_esm()

    agent = traitlets.Unicode(
        "",
        help="Configured agent name; empty for the server's default. The constructor also "
        "takes an agno Agent made in the notebook (or a callable returning one): it then runs "
        "in this kernel and this trait holds its 'kernel:…' name.",
    ).tag(sync=True)
    thread_id = traitlets.Unicode(
        help="Conversation id. In a notebook cell it starts as the cell's key (the cell's "
        "first conversation); the front end then shows the one the cell last had open."
    ).tag(sync=True)
    cell_key = traitlets.Unicode(
        "",
        help="Key of the notebook cell that made the widget (kernel/cellkey.py); '' outside one.",
    ).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    placeholder = traitlets.Unicode(
        "Message the agent… (Enter to send, Shift+Enter for a new line)"
    ).tag(sync=True)
    height = traitlets.Union(
        [traitlets.Int(), traitlets.Unicode()],
        default_value=480,
        help="Height in pixels, or any CSS length such as '60vh'.",
    ).tag(sync=True)

    # Written by the front end: the finished conversation, updated when a run ends.
    messages = traitlets.List(traitlets.Dict(), read_only=True).tag(sync=True)
    run_id = traitlets.Unicode("", read_only=True).tag(sync=True)
    status = traitlets.Unicode("idle", read_only=True).tag(sync=True)
    # Written by the front end: the open requirements of the paused run (a tool call waiting for
    # approval, input or a result), each {"id", "kind", "run_id", "call_id", "tool_name", "args",
    # "fields"? (user_input), "questions"? (user_feedback)}; [] when no run waits.
    pending = traitlets.List(traitlets.Dict(), read_only=True).tag(sync=True)

    # Kernel -> front end requests. Synced state rather than custom messages, because custom
    # messages sent before a view exists are dropped; `_handled` records the ids a front end
    # has taken, so a request is carried out once however many views there are.
    _requests = traitlets.List(traitlets.Dict()).tag(sync=True)
    _handled = traitlets.List(traitlets.Unicode()).tag(sync=True)
    # Tells this model apart from others in the front end (anywidget hands out proxies).
    _instance_id = traitlets.Unicode().tag(sync=True)
    # The kernel chose thread_id (new=True or an explicit thread_id): the front end binds the
    # cell to it instead of switching to the thread the cell last showed.
    _fresh = traitlets.Bool(False).tag(sync=True)

    def __init__(self, *, new: bool = False, **kwargs: Any) -> None:
        explicit = frozenset(k for k in _OPTIONS if k in kwargs)
        if new and "thread_id" in kwargs:
            raise ValueError("ChatWidget: new=True starts a new conversation; drop thread_id=")
        if "cell_key" not in kwargs:
            kwargs["cell_key"] = current_cell_key()
        key = kwargs["cell_key"]
        if new:
            kwargs["thread_id"] = f"{key}-{uuid.uuid4().hex[:12]}" if key else _new_id()
        elif key and "thread_id" not in kwargs:
            kwargs["thread_id"] = key
        kwargs.setdefault("_fresh", new or "thread_id" in explicit)
        hosted = kwargs.get("agent")
        if hosted is not None and not isinstance(hosted, str):
            from deltakit_nb.kernel.link import host_agent

            kwargs["agent"] = host_agent(hosted)
        super().__init__(**kwargs)
        self._explicit = explicit
        # Shown in the repr instead of the 'kernel:…' name, which changes with every kernel.
        self._hosted = None if hosted is None or isinstance(hosted, str) else _label(hosted)

    @traitlets.default("thread_id")
    def _default_thread_id(self) -> str:
        return _new_id()

    @traitlets.default("_instance_id")
    def _default_instance_id(self) -> str:
        return _new_id()

    @traitlets.validate("thread_id")
    def _valid_thread_id(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if not isinstance(value, str) or not value.strip():
            raise traitlets.TraitError("thread_id must be a non-empty string")
        return str(value)

    @traitlets.observe("_handled")
    def _forget_handled(self, change: dict[str, Any]) -> None:
        handled = set(change["new"])
        pending = [r for r in self._requests if r.get("id") not in handled]
        if len(pending) != len(self._requests):
            self._requests = pending

    def _request(self, op: str, **fields: Any) -> str:
        request = {"id": _new_id(), "op": op, **fields}
        self._requests = [*self._requests, request]
        return str(request["id"])

    def send(self, text: str) -> None:
        """Send ``text`` as if typed in the widget; queued until a front end picks it up."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("send() needs a non-empty string")
        self._request("send", text=text)

    def stop(self) -> None:
        """Stop the run in progress (or the one just requested with ``send``)."""
        self._request("stop")

    def retry(self) -> None:
        """Send the last run's message again, as a new run in the same thread, when that run
        failed, was stopped or was interrupted (as its Retry button does)."""
        status = self.status
        if status not in _RETRYABLE:
            raise RuntimeError(
                f"retry(): the last run is {status!r}; only a failed, cancelled or "
                "interrupted run can be retried"
            )
        asked = [m for m in self.messages if m.get("role") == "user"]
        last = asked[-1] if asked else None
        if last is None or last.get("run_id") != self.run_id or not last.get("text"):
            raise RuntimeError("retry(): the last run's message is not known yet; try again")
        # The front end checks that run_id is still its last run, then sends `text`.
        self._request("retry", run_id=self.run_id, text=str(last["text"]))

    def approve(self, note: str | None = None) -> None:
        """Allow the tool call(s) the paused run waits to confirm, as the card's Approve does."""
        self._decide(_CONFIRM, "approve", lambda r: _confirmation(r, True, note))

    def reject(self, note: str | None = None) -> None:
        """Refuse the tool call(s) the paused run waits to confirm; ``note`` goes to the agent."""
        self._decide(_CONFIRM, "reject", lambda r: _confirmation(r, False, note))

    def respond(self, values: dict[str, Any] | str, *, id: str | None = None) -> None:
        """Answer the paused run's request for input: a dict of field values (``user_input``),
        ``{question: [labels]}`` (``user_feedback``; one label may be a string), or the result
        text of a tool you ran yourself (``external_execution``). ``id`` picks one request when
        several wait."""
        if isinstance(values, str):
            kinds: tuple[str, ...] = ("external_execution",)
        elif isinstance(values, dict):
            kinds = ("user_input", "user_feedback")
        else:
            raise TypeError("respond() takes a dict of values or a result string")
        open_ = self._open(kinds, "respond", id)
        if len(open_) > 1:
            ids = ", ".join(str(r.get("id")) for r in open_)
            raise ValueError(f"respond(): several requests wait ({ids}); pass id=")
        req = open_[0]
        if isinstance(values, str):
            decision: dict[str, Any] = {"id": req["id"], "result": values}
        else:
            _check_values(req, values)
            if req.get("kind") == "user_feedback":
                values = {q: [a] if isinstance(a, str) else a for q, a in values.items()}
            decision = {"id": req["id"], "values": values}
        self._send_decisions(str(req.get("run_id") or ""), [decision])

    def _open(self, kinds: tuple[str, ...], name: str, id: str | None = None) -> list[Any]:
        if not self.pending:
            raise RuntimeError(f"{name}(): no run is waiting for a decision (pending is empty)")
        open_ = [r for r in self.pending if r.get("kind") in kinds and id in (None, r.get("id"))]
        if not open_:
            waiting = ", ".join(f"{r.get('tool_name')} ({r.get('kind')})" for r in self.pending)
            what = f"the request {id!r}" if id is not None else " or ".join(kinds)
            raise ValueError(f"{name}(): no open request for {what}; waiting: {waiting}")
        return open_

    def _decide(self, kinds: tuple[str, ...], name: str, make: Any) -> None:
        open_ = self._open(kinds, name)
        self._send_decisions(str(open_[0].get("run_id") or ""), [make(r) for r in open_])

    def _send_decisions(self, run_id: str, decisions: list[dict[str, Any]]) -> None:
        # Through the synced requests, like send(): carried out once by whichever view takes it.
        self._request("decide", run_id=run_id, decisions=decisions)

    def to_markdown(self) -> str:
        """The finished conversation as Markdown."""
        out: list[str] = []
        for msg in self.messages:
            role = msg.get("role")
            text = str(msg.get("text") or "")
            if role == "user":
                out.append(f"**You:** {text}" if "\n" not in text else f"**You:**\n\n{text}")
                continue
            parts: list[str] = ["**Assistant:**"]
            for call in msg.get("tool_calls") or []:
                parts.append(_tool_markdown(call))
            if text:
                parts.append(text)
            status = msg.get("status")
            if status == "cancelled":
                parts.append("_(stopped)_")
            elif status == "interrupted":
                parts.append("_(interrupted)_")
            elif status == "failed":
                parts.append(f"_(failed: {msg.get('error') or 'error'})_")
            out.append("\n\n".join(parts))
        return "\n\n---\n\n".join(out) + ("\n" if out else "")

    def __repr__(self) -> str:
        # Stable across runs (nbval compares text/plain): no memory address, no random ids.
        hosted = getattr(self, "_hosted", None)
        shown = [
            f"agent=<kernel agent {hosted!r}>"
            if name == "agent" and hosted
            else f"{name}={getattr(self, name)!r}"
            for name in _OPTIONS
            if name in getattr(self, "_explicit", ()) or (name == "agent" and self.agent)
        ]
        return f"{type(self).__name__}({', '.join(shown)})"


_CONFIRM = ("confirmation",)
_RETRYABLE = ("failed", "cancelled", "interrupted")


def _confirmation(req: dict[str, Any], approve: bool, note: str | None) -> dict[str, Any]:
    decision: dict[str, Any] = {"id": req["id"], "approve": approve}
    if note is not None:
        if not isinstance(note, str):
            raise TypeError("note must be a string")
        if note.strip():
            decision["note"] = note
    return decision


def _check_values(req: dict[str, Any], values: dict[str, Any]) -> None:
    # Caught here with the names at hand; the server checks types and answers the same way.
    if req.get("kind") == "user_input":
        names = [str(f.get("name")) for f in req.get("fields") or []]
    else:
        names = [str(q.get("question")) for q in req.get("questions") or []]
    missing = [n for n in names if n not in values]
    unknown = [k for k in values if k not in names]
    if missing or unknown:
        problems = [
            f"missing {missing}" if missing else "",
            f"unknown {unknown}" if unknown else "",
        ]
        raise ValueError(
            f"respond() for {req.get('tool_name')}: {'; '.join(problems)} (expected {names})"
        )


def _label(agent: Any) -> str:
    return str(getattr(agent, "name", None) or getattr(agent, "__name__", "") or "agent")


def _tool_markdown(call: dict[str, Any]) -> str:
    args = call.get("args")
    args_text = (
        json.dumps(args, indent=2, ensure_ascii=False) if not isinstance(args, str) else args
    )
    result = call.get("result")
    label = "error" if call.get("is_error") else "result"
    fence = _fence(args_text, str(result or ""))
    lines = [f"Tool call `{call.get('name', 'tool')}`:", "", f"{fence}json", args_text, fence]
    if result is not None:
        lines += ["", f"{label.capitalize()}:", "", fence, str(result), fence]
    return "\n".join(lines)


def _fence(*texts: str) -> str:
    # A fence longer than any backtick run inside, so tool output cannot close it early.
    longest = 2
    for text in texts:
        run = 0
        for ch in text:
            run = run + 1 if ch == "`" else 0
            longest = max(longest, run)
    return "`" * (longest + 1)
