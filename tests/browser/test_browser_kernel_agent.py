"""An agent defined in a notebook cell, in real JupyterLab: it runs in the kernel, its tool reads
a notebook variable, a cell runs while it works, and a page reload mid-run resumes the run."""

from __future__ import annotations

from .browserkit import Session

AGENT = """\
from agno.agent import Agent
from deltakit_nb import ChatWidget
from deltakit_nb.offline import OfflineModel

sales = {"region": ["north", "south"], "units": [12, 30]}

def total_units(name: str) -> str:
    '''Sum the units column of the table in variable `name`.'''
    return str(sum(globals()[name]["units"]))

agent = Agent(name="cell agent", model=OfflineModel(chunk_delay=0.03), tools=[total_units],
              telemetry=False)
ChatWidget(agent=agent, height=420)"""

OTHER_CELL = "sales['units'].append(100)\nprint('units now', sum(sales['units']))"


def test_a_cell_agent_chats_lets_cells_run_and_resumes_after_a_reload(session: Session) -> None:
    session.open_chat("kernel_agent.ipynb", AGENT, OTHER_CELL)

    # The tool reads the notebook's variable; its result shows as a tool card.
    first = session.send('tool total_units {"name": "sales"}')
    session.wait_status("completed")
    card = session.run_el(first).locator(".dk-tool[data-status=ok]")
    assert card.locator(".dk-tool-result pre").text_content() == "42"
    assert "kernel:" in (session.chat().locator(".dk-agent").text_content() or "")

    # A long run; meanwhile another cell runs in the same kernel, and finishes first.
    n = session.send("count 300 delay 0.03")
    session.run_el(n).locator(".dk-text", has_text="10 11").wait_for()
    run_id = session.chat().get_attribute("data-run-id")
    assert run_id
    session.run_cell(1)
    assert "units now 142" in session.cell_output(1, "units now")
    assert session.lab.run(run_id)["status"] == "running"

    # Reload mid-run: the widget comes back on the same run, still streaming from the kernel.
    session.save()
    session.page.reload()
    session.wait_notebook()
    session.chat().and_(session.page.locator(f"[data-run-id='{run_id}']")).wait_for()
    session.wait_status("completed", timeout=60_000)
    shown = session.run_el(n).locator(".dk-assistant .dk-text").text_content() or ""
    assert shown.strip() == session.lab.run_text(run_id).strip()
    assert shown.split() == [str(i) for i in range(1, 301)]
    assert not [m for m in session.console if "pageerror" in m]


NOTEBOOK_AGENT = """\
from agno.agent import Agent
from deltakit_nb import ChatWidget, notebook_tools
from deltakit_nb.offline import OfflineModel

agent = Agent(name="nb agent", model=OfflineModel(), tools=notebook_tools(), telemetry=False)
chat = ChatWidget(agent=agent, height=480)
chat"""

SET_ANSWER = 'tool run_python {"code": "answer = 6 * 7; answer"}'
SET_OTHER = 'tool run_python {"code": "other = 1"}'
READ_BACK = "print('answer' in globals(), globals().get('answer'), 'other' in globals())"


def test_run_python_from_a_cell_agent_waits_for_approval_in_the_card(session: Session) -> None:
    # notebook_tools()'s run_python changes the notebook, so agno asks first: the approval card
    # shows inside the kernel agent's run, and only an approved call touches the variables.
    session.open_chat("nb_agent.ipynb", NOTEBOOK_AGENT, READ_BACK)

    n = session.send(SET_ANSWER)
    session.wait_status("paused")
    waiting = session.run_el(n).locator(".dk-tool[data-status=waiting]")
    waiting.locator(".dk-decision").wait_for()
    assert waiting.locator(".dk-tool-name").inner_text() == "run_python"
    assert "answer = 6 * 7" in waiting.locator(".dk-tool-args pre").inner_text()
    waiting.locator("[data-testid=dk-approve]").click()
    run_id = session.wait_status("completed")
    result = session.run_el(n).locator(".dk-tool[data-status=ok] .dk-tool-result").inner_text()
    assert '"result": "42"' in result, result
    assert session.lab.run(run_id)["status"] == "completed"

    # Rejected: the run goes on without running the code.
    m = session.send(SET_OTHER)
    session.wait_status("paused")
    rejected = session.run_el(m).locator(".dk-tool[data-status=waiting]")
    rejected.locator("[data-testid=dk-reject]").click()
    session.wait_status("completed")

    session.run_cell(1)
    assert "True 42 False" in session.cell_output(1, "True 42")
    assert not [msg for msg in session.console if "pageerror" in msg]
