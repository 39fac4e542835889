"""The kernel channel: how a kernel that hosts agents and the Jupyter server talk.

The kernel opens a WebSocket to ``{base_url}deltakit/kernel`` (authenticated with the server's
token, found by ``serverlink``) and keeps it open while it hosts agents. Frames are JSON objects
with an ``op``:

kernel → server
  ``{"op": "hello", "host": HOST}``                       first frame; HOST names this kernel
  ``{"op": "events", "runId": ID, "events": [EVENT…]}``   protocol events of a run (no ids)
  ``{"op": "end", "runId", "status": S, "message", "events"}`` its last events, then the run's
                                                           outcome (S: completed,
                                                           cancelled, failed, or paused
                                                           after a run_paused event)
server → kernel
  ``{"op": "ready"}``                                     answer to hello
  ``{"op": "start", "runId", "threadId", "agent", "message"}``  run agent KEY of this kernel
  ``{"op": "cancel", "runId": ID}``                       stop that run
  ``{"op": "continue", "runId", "decisions": [...]}``     continue a paused run with the
                                                           user's decisions (checked by the
                                                           server, see deltakit_nb.hitl)
  ``{"op": "error", "message": M}``                       a frame was refused

Shared by both processes (the server imports it, and so does the kernel); nothing else here.
"""

from __future__ import annotations

KERNEL_PATH = "deltakit/kernel"
# A widget's agent name for an agent hosted by a kernel: "kernel:HOST/KEY".
AGENT_PREFIX = "kernel:"
# Event types a kernel may publish; run_started and the terminal event are the server's.
PUBLISHABLE = frozenset({"text_delta", "reasoning", "tool_call", "tool_result", "run_paused"})
END_STATUSES = frozenset({"completed", "cancelled", "failed", "paused"})


def agent_name(host: str, key: str) -> str:
    return f"{AGENT_PREFIX}{host}/{key}"


def split_agent_name(name: str) -> tuple[str, str] | None:
    """(host, key) of a kernel agent name, or None if `name` is not one."""
    if not name.startswith(AGENT_PREFIX):
        return None
    host, _, key = name[len(AGENT_PREFIX) :].partition("/")
    return (host, key) if host and key else None
