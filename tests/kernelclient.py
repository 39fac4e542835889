"""Run code in a real ipykernel as a notebook front end would: an execute request on the shell
channel with the cell's id in its metadata; every wait bounded."""

from __future__ import annotations

import queue
import time
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient

TIMEOUT = 30.0


def wait_ready(kc: BlockingKernelClient, timeout: float = 60.0) -> None:
    """Wait until the kernel answers kernel_info on the shell channel and its iopub messages
    reach us (jupyter_client's wait_for_ready gives up when a kernel that is still starting
    misses a heartbeat, which happens on a busy machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg_id = kc.kernel_info()
        until = time.monotonic() + 2.0
        while time.monotonic() < until:
            try:
                msg = kc.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status":
                while True:  # drain what is left of this request
                    try:
                        kc.get_iopub_msg(timeout=0.2)
                    except queue.Empty:
                        return
    raise TimeoutError(f"the kernel did not answer in {timeout} s")


def execute(kc: BlockingKernelClient, code: str, cell_id: str | None = None) -> str:
    """The stdout of `code`, run as the cell `cell_id` (None: no cellId, as a console or a
    script sends); raises with the traceback if the code fails."""
    metadata = {"cellId": cell_id} if cell_id is not None else {}
    content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}}
    msg = kc.session.msg("execute_request", content, metadata=metadata)
    kc.shell_channel.send(msg)
    msg_id = msg["header"]["msg_id"]
    out: list[str] = []
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            reply: dict[str, Any] = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"no answer to {code!r} in {TIMEOUT} s") from None
        if reply["parent_header"].get("msg_id") != msg_id:
            continue
        kind, body = reply["msg_type"], reply["content"]
        if kind == "stream" and body["name"] == "stdout":
            out.append(body["text"])
        elif kind == "error":
            raise RuntimeError("\n".join(body["traceback"]))
        elif kind == "status" and body["execution_state"] == "idle":
            return "".join(out)
