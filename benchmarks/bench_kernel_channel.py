"""The measurements behind the kernel channel's design (figures, not a test; README: "Why the
kernel reaches the server").

    .venv/bin/python benchmarks/bench_kernel_channel.py [--cell-seconds 3] [--messages 20000]

Channel A, the server reaching its kernel through a comm, is tried on a real kernel with a second
client in the server's place: (1) how long a comm message waits while a cell runs (start and Stop
would travel that way), and (2) how long 20,000 unbatched comm messages sent from a kernel thread
take to reach one client (iopub goes to every client of the kernel, the browser included).
"""

from __future__ import annotations

import argparse
import queue
import time
import uuid
from typing import Any

from jupyter_client.manager import start_new_kernel

SETUP = """
import threading, time
from comm import create_comm, get_comm_manager
handled = []
def target(comm, msg):
    handled.append(time.time())
get_comm_manager().register_target("deltakit_trial", target)
"""


def run(kc: Any, code: str) -> str:
    out: list[str] = []
    kc.execute_interactive(
        code, timeout=60, output_hook=lambda m: out.append(m["content"].get("text", ""))
    )
    return "".join(out).strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cell-seconds", type=float, default=3.0)
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        run(kc, SETUP)
        kc.execute(f"time.sleep({args.cell_seconds})")
        time.sleep(0.3)
        sent = time.time()
        opened = {"comm_id": uuid.uuid4().hex, "target_name": "deltakit_trial", "data": {}}
        kc.shell_channel.send(kc.session.msg("comm_open", opened))
        time.sleep(args.cell_seconds + 0.5)
        waited = float(run(kc, f"print(handled[0] - {sent})"))
        print(
            f"A: a comm message sent while a {args.cell_seconds:g} s cell ran was handled after "
            f"{waited:.2f} s"
        )
        code = (
            "c = create_comm(target_name='nobody')\n"
            f"def go():\n    for _ in range({args.messages}): c.send({{'delta': 'tok '}})\n"
            "t = threading.Thread(target=go); t.start(); t.join()"
        )
        start, received = time.perf_counter(), 0
        kc.execute(code)
        while received < args.messages:
            try:
                msg = kc.get_iopub_msg(timeout=10)
            except queue.Empty:
                break
            received += msg["msg_type"] == "comm_msg"
        elapsed = time.perf_counter() - start
        print(f"A: {received} unbatched comm messages reached one client in {elapsed:.2f} s")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


if __name__ == "__main__":
    main()
