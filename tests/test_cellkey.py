"""The key of a notebook cell's conversation, in a real ipykernel started as Jupyter server
starts a notebook's kernel (JPY_SESSION_NAME), run with the cellId a notebook front end sends."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from jupyter_client.manager import KernelManager
from kernelclient import execute, wait_ready

from deltakit_nb.kernel.cellkey import cell_key

SHOW = (
    "import json\n"
    "from deltakit_nb import ChatWidget\n"
    "from deltakit_nb.kernel.cellkey import current_cell_key\n"
    "w = ChatWidget()\n"
    "print(json.dumps([current_cell_key(), w.cell_key, w.thread_id, w._fresh]))\n"
)


class Kernel:
    def __init__(self, session_name: str | None):
        env = {**os.environ}
        env.pop("JPY_SESSION_NAME", None)
        if session_name is not None:
            env["JPY_SESSION_NAME"] = session_name
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env)
        self.connect()

    def connect(self) -> None:
        self.kc = self.km.client()
        self.kc.start_channels()
        wait_ready(self.kc)

    def show(self, cell_id: str | None) -> tuple[str, str, str, bool]:
        """(current_cell_key(), and a new ChatWidget's cell_key, thread_id, _fresh)."""
        key, widget_key, thread, fresh = json.loads(execute(self.kc, SHOW, cell_id))
        return key, widget_key, thread, fresh

    def restart(self) -> None:
        self.kc.stop_channels()
        self.km.restart_kernel(now=True)
        self.connect()

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture
def kernels() -> Iterator[Any]:
    started: list[Kernel] = []

    def start(session_name: str | None) -> Kernel:
        started.append(Kernel(session_name))
        return started[-1]

    yield start
    for kernel in started:
        kernel.close()


NB = "/home/u/work/analysis.ipynb"


def test_a_cell_keeps_its_key_across_reruns_and_restarts(kernels: Any) -> None:
    kernel = kernels(NB)
    key, widget_key, thread, fresh = kernel.show("cell-a-id")
    assert key == widget_key == thread == cell_key(NB, "cell-a-id")
    assert key.startswith("cell-") and len(key) == 37 and not fresh
    assert kernel.show("cell-a-id")[:3] == (key, key, key)  # the same cell run again
    other = kernel.show("cell-b-id")
    assert other[0] == other[2] != key  # another cell of the notebook
    kernel.restart()
    assert kernel.show("cell-a-id")[:3] == (key, key, key)
    assert kernel.show("cell-b-id")[0] == other[0]


def test_another_path_has_other_keys(kernels: Any) -> None:
    key = kernels(NB).show("cell-a-id")[0]
    copy = kernels("/home/u/work/analysis-Copy1.ipynb").show("cell-a-id")[0]
    assert copy != key and copy.startswith("cell-")


def test_without_a_cell_id_or_a_session_a_random_thread(kernels: Any) -> None:
    for kernel, cell_id in [(kernels(NB), None), (kernels(None), "cell-a-id")]:
        key, widget_key, thread, fresh = kernel.show(cell_id)
        assert (key, widget_key, fresh) == ("", "", False)
        assert len(thread) == 32 and int(thread, 16) >= 0  # a uuid4 hex, as before
        assert kernel.show(cell_id)[2] != thread


def test_new_and_explicit_threads_in_a_cell(kernels: Any) -> None:
    kernel = kernels(NB)
    key = cell_key(NB, "c1")
    code = (
        "import json\nfrom deltakit_nb import ChatWidget\n"
        "n1, n2 = ChatWidget(new=True), ChatWidget(new=True)\n"
        "x = ChatWidget(thread_id='chosen')\n"
        "print(json.dumps([[w.cell_key, w.thread_id, w._fresh] for w in (n1, n2, x)]))\n"
    )
    (k1, t1, f1), (k2, t2, f2), (kx, tx, fx) = json.loads(execute(kernel.kc, code, "c1"))
    assert k1 == k2 == kx == key and f1 and f2 and fx
    assert t1.startswith(key + "-") and t2.startswith(key + "-") and t1 != t2
    assert len(t1) == len(key) + 13
    assert tx == "chosen"


def test_magics_in_a_cell(kernels: Any) -> None:
    kernel = kernels(NB)
    key = cell_key(NB, "m1")
    code = (
        "import json\n"
        "%load_ext deltakit_nb\n"
        "%chat -n same\n"
        "%chat --new -n fresh\n"
        "print(json.dumps([[w.thread_id, w._fresh] for w in (same, fresh)]))\n"
    )
    (same, same_fresh), (fresh, fresh_fresh) = json.loads(execute(kernel.kc, code, "m1"))
    assert (same, same_fresh) == (key, False)
    assert fresh.startswith(key + "-") and fresh_fresh
