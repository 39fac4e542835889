"""The key of a notebook cell's conversation, worked out in the kernel.

The key is a hash of the notebook's path and the cell's id. The path is ipykernel's
``__session__`` (from the JPY_SESSION_NAME that Jupyter server gives the kernel of a notebook
session); the cell id is the ``cellId`` that JupyterLab 4 and Notebook 7 put in each execute
request's metadata. Cell ids survive saving, reloading and reopening, and the path survives
kernel restarts, so re-running a cell finds the same key. The path is in the key because a
copied notebook keeps its cell ids: the copy gets conversations of its own.

Runs in the kernel, so it imports nothing of the server.
"""

from __future__ import annotations

import hashlib
from typing import Any

PREFIX = "cell-"


def cell_key(notebook_path: str, cell_id: str) -> str:
    data = f"{notebook_path}\0{cell_id}".encode("utf-8", "surrogatepass")
    return PREFIX + hashlib.sha256(data).hexdigest()[:32]


def current_cell_key() -> str:
    """The key of the notebook cell being executed; "" outside one (a console without cell
    ids, a script, plain IPython, a front end that sends no cell id, a kernel that was not
    started for a notebook session)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return ""
    shell: Any = get_ipython()
    if shell is None:
        return ""
    path = shell.user_ns.get("__session__")
    get_parent = getattr(getattr(shell, "kernel", None), "get_parent", None)
    if not isinstance(path, str) or not path or get_parent is None:
        return ""
    try:
        parent = get_parent("shell")
    except Exception:  # an ipykernel that tracks parents differently: no key, as outside
        return ""
    metadata = parent.get("metadata") if isinstance(parent, dict) else None
    cell_id = metadata.get("cellId") if isinstance(metadata, dict) else None
    if not isinstance(cell_id, str) or not cell_id:
        return ""
    return cell_key(path, cell_id)
