"""Ready agno tools over the notebook's own data, for agents that run in the kernel.

``notebook_tools()`` gives ``list_variables`` and ``describe_dataframe`` (read-only) and
``run_python`` (changes the notebook, so it asks the user's approval first: agno's
``requires_confirmation``). They run in the agent's worker thread, next to whatever cell is
executing: a tool reads the namespace as it is at that moment.
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import sys
import threading
import traceback
from typing import Any

MAX_CHARS = 4000
_HIDDEN = frozenset({"In", "Out", "exit", "quit", "get_ipython"})


def clip(text: str, max_chars: int) -> str:
    """`text`, cut to `max_chars` with a note saying how much was left out."""
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    return text[:max_chars] + f"\n… ({len(text) - max_chars} more characters cut)"


def _user_namespace() -> dict[str, Any]:
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        raise RuntimeError("notebook_tools() needs an IPython kernel, or pass namespace=")
    user_ns: dict[str, Any] = shell.user_ns
    return user_ns


def _size(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        return "shape " + "x".join(str(n) for n in shape)
    try:
        return f"len {len(value)}"
    except TypeError:
        return ""


def variables(namespace: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for name, value in list(namespace.items()):
        if name.startswith("_") or name in _HIDDEN:
            continue
        if isinstance(value, type) or inspect.ismodule(value) or inspect.isroutine(value):
            continue
        out.append({"name": name, "type": type(value).__name__, "size": _size(value)})
    return out


def describe(value: Any) -> dict[str, Any]:
    """Columns, dtypes, first rows and a summary of a pandas DataFrame, a dict of columns
    (name -> list) or a list of row dicts."""
    if hasattr(value, "dtypes") and hasattr(value, "describe") and hasattr(value, "head"):
        return {
            "rows": int(value.shape[0]),
            "columns": [str(c) for c in value.columns],
            "dtypes": {str(k): str(v) for k, v in value.dtypes.items()},
            "head": value.head().to_string(),
            "describe": value.describe().to_string(),
        }
    if isinstance(value, list) and all(isinstance(r, dict) for r in value):
        names = list(dict.fromkeys(k for r in value for k in r))
        columns = {str(n): [r.get(n) for r in value] for n in names}
    elif isinstance(value, dict) and all(isinstance(v, list | tuple) for v in value.values()):
        columns = {str(k): list(v) for k, v in value.items()}
    else:
        raise TypeError(
            f"{type(value).__name__} is not a table (a DataFrame, a dict of column lists or a "
            "list of row dicts)"
        )
    rows = max((len(v) for v in columns.values()), default=0)
    summary: dict[str, Any] = {}
    for name, values in columns.items():
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if numbers and len(numbers) == len([v for v in values if v is not None]):
            summary[name] = {
                "count": len(numbers),
                "mean": sum(numbers) / len(numbers),
                "min": min(numbers),
                "max": max(numbers),
            }
    return {
        "rows": rows,
        "columns": list(columns),
        "dtypes": {n: sorted({type(v).__name__ for v in vs}) for n, vs in columns.items()},
        "head": [
            {n: vs[i] if i < len(vs) else None for n, vs in columns.items()}
            for i in range(min(rows, 5))
        ],
        "describe": summary,
    }


class _ThreadStdout(io.TextIOBase):
    """sys.stdout for the time of a run_python call: this thread's writes go to `buffer`,
    every other thread's (a cell running meanwhile) to the stream that was there before."""

    def __init__(self, before: Any, thread: int, buffer: io.StringIO):
        self.before, self.thread, self.buffer = before, thread, buffer

    def write(self, text: str) -> int:
        target = self.buffer if threading.get_ident() == self.thread else self.before
        return int(target.write(text) or 0)

    def flush(self) -> None:
        self.before.flush()


_stdout_lock = threading.Lock()


def run_code(code: str, namespace: dict[str, Any]) -> dict[str, str]:
    """Run `code` in `namespace` as a cell would: its stdout, the repr of its last expression
    and the error (the last line of the traceback), each '' when there is none."""
    buffer = io.StringIO()
    result, error = "", ""
    with _stdout_lock:
        before = sys.stdout
        sys.stdout = _ThreadStdout(before, threading.get_ident(), buffer)
    try:
        tree = ast.parse(code, "<run_python>", "exec")
        last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        if last is not None:
            tree.body.pop()
        exec(compile(tree, "<run_python>", "exec"), namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), "<run_python>", "eval"), namespace)
            result = "" if value is None else repr(value)
    except Exception:
        error = traceback.format_exc(limit=-1).strip().splitlines()[-1]
    finally:
        with _stdout_lock:
            if isinstance(sys.stdout, _ThreadStdout) and sys.stdout.buffer is buffer:
                sys.stdout = before
    return {"stdout": buffer.getvalue(), "result": result, "error": error}


def notebook_tools(
    namespace: dict[str, Any] | None = None, max_chars: int = MAX_CHARS
) -> list[Any]:
    """agno tools over the notebook's variables: ``list_variables``, ``describe_dataframe``
    and ``run_python`` (needs the user's approval). Each result is cut to `max_chars`.
    `namespace`: the variables to use (default: the notebook's, IPython's user_ns)."""
    from agno.tools import tool

    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 0:
        raise ValueError(f"max_chars must be an integer >= 0 (0: no limit), not {max_chars!r}")

    def ns() -> dict[str, Any]:
        return namespace if namespace is not None else _user_namespace()

    def list_variables() -> str:
        """List the notebook's variables: name, type, and shape or length."""
        return clip(json.dumps(variables(ns())), max_chars)

    def describe_dataframe(name: str) -> str:
        """Describe the table held by the notebook variable `name`: its columns, dtypes,
        first rows and summary statistics."""
        space = ns()
        if name not in space:
            raise KeyError(f"no variable {name!r} in the notebook")
        return clip(json.dumps(describe(space[name]), default=str), max_chars)

    def run_python(code: str) -> str:
        """Run Python `code` in the notebook (it can read and change its variables); returns
        its printed output, the value of its last expression and its error, if any."""
        return clip(json.dumps(run_code(code, ns())), max_chars)

    approved = tool(requires_confirmation=True)(run_python)
    return [list_variables, describe_dataframe, approved]
