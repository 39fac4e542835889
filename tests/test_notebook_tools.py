"""deltakit_nb.notebook_tools(): the tools over the notebook's variables, called directly and
through agno's real loop with the offline model (no server, no kernel: a namespace dict)."""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import pytest
from agno.agent import Agent
from agno.tools.function import Function

import deltakit_nb
from deltakit_nb.kernel.tools import clip, describe, run_code, variables
from deltakit_nb.offline import OfflineModel


def tools_by_name(ns: dict[str, Any], **kw: Any) -> dict[str, Any]:
    tools = deltakit_nb.notebook_tools(ns, **kw)
    return {getattr(t, "name", None) or t.__name__: t for t in tools}


def test_list_variables_names_type_and_size() -> None:
    ns = {"rows": [1, 2, 3], "table": {"a": [1, 2]}, "n": 5, "_hidden": 1, "json": json}
    found = json.loads(tools_by_name(ns)["list_variables"]())
    assert found == [
        {"name": "rows", "type": "list", "size": "len 3"},
        {"name": "table", "type": "dict", "size": "len 1"},
        {"name": "n", "type": "int", "size": ""},
    ]


def test_describe_a_dict_of_columns_and_a_list_of_rows() -> None:
    columns = {"city": ["a", "b", "c"], "temp": [10, 20, 30]}
    rows = [{"city": "a", "temp": 10}, {"city": "b", "temp": 20}, {"city": "c", "temp": 30}]
    for table in (columns, rows):
        d = describe(table)
        assert d["rows"] == 3 and d["columns"] == ["city", "temp"]
        assert d["dtypes"] == {"city": ["str"], "temp": ["int"]}
        assert d["head"][0] == {"city": "a", "temp": 10}
        assert d["describe"] == {"temp": {"count": 3, "mean": 20.0, "min": 10, "max": 30}}
    with pytest.raises(TypeError, match="is not a table"):
        describe(42)


def test_describe_a_dataframe_like_object() -> None:
    # pandas is not in this venv; the tool uses only DataFrame's own methods, so any object
    # with them is described the same way
    class Frame:
        shape = (2, 1)
        columns = ["x"]
        dtypes = {"x": "int64"}

        def head(self) -> Any:
            return type("H", (), {"to_string": lambda self: "   x\n0  1\n1  2"})()

        def describe(self) -> Any:
            return type("D", (), {"to_string": lambda self: "count 2"})()

    assert describe(Frame()) == {
        "rows": 2,
        "columns": ["x"],
        "dtypes": {"x": "int64"},
        "head": "   x\n0  1\n1  2",
        "describe": "count 2",
    }


def test_describe_dataframe_tool_errors_name_the_problem() -> None:
    describe_dataframe = tools_by_name({"n": 1})["describe_dataframe"]
    with pytest.raises(KeyError, match="no variable 'df'"):
        describe_dataframe("df")
    with pytest.raises(TypeError, match="int is not a table"):
        describe_dataframe("n")


def test_run_python_output_result_error_and_namespace() -> None:
    ns: dict[str, Any] = {"data": [1, 2, 3]}
    assert run_code("print('hi')\ntotal = sum(data)\ntotal * 2", ns) == {
        "stdout": "hi\n",
        "result": "12",
        "error": "",
    }
    assert ns["total"] == 6
    failed = run_code("1 / 0", ns)
    assert failed == {"stdout": "", "result": "", "error": "ZeroDivisionError: division by zero"}
    assert run_code("def f(:", ns)["error"].startswith("SyntaxError")


def test_run_python_captures_only_its_own_thread() -> None:
    before = sys.stdout
    started, release = threading.Event(), threading.Event()

    def code_that_waits() -> None:
        started.set()
        release.wait(5)

    ns: dict[str, Any] = {"wait": code_that_waits}
    result: dict[str, str] = {}
    worker = threading.Thread(target=lambda: result.update(run_code("print('mine')\nwait()", ns)))
    worker.start()
    assert started.wait(5)
    print("a cell's own output", file=sys.stdout, end="")  # while run_python is running
    release.set()
    worker.join(5)
    assert result["stdout"] == "mine\n"
    assert sys.stdout is before


def test_run_python_needs_approval_and_results_are_cut() -> None:
    tools = tools_by_name({"big": "x" * 100}, max_chars=10)
    run_python = tools["run_python"]
    assert isinstance(run_python, Function) and run_python.requires_confirmation
    assert tools["list_variables"]() == clip(json.dumps(variables({"big": "x" * 100})), 10)
    assert tools["list_variables"]().endswith("more characters cut)")
    with pytest.raises(ValueError, match="max_chars"):
        deltakit_nb.notebook_tools({}, max_chars=-1)


async def test_an_offline_agent_describes_a_table_through_agnos_loop() -> None:
    ns = {"df": {"city": ["a", "b"], "temp": [1, 3]}}
    agent = Agent(model=OfflineModel(), tools=deltakit_nb.notebook_tools(ns), telemetry=False)
    out = await agent.arun('tool describe_dataframe {"name": "df"}')
    assert '"mean": 2.0' in str(out.content)
