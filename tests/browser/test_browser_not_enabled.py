"""With the server extension disabled, the widget says so and how to enable it, instead of
spinning forever (on a second server started for this module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from .browserkit import ARTIFACTS, Session, open_session
from .labproc import LabProcess, running_lab


@pytest.fixture(scope="module")
def bare_lab() -> Iterator[LabProcess]:
    with running_lab(extra_args=["--ServerApp.jpserver_extensions=deltakit_nb=False"]) as proc:
        yield proc


@pytest.fixture
def bare_session(browser: Browser, bare_lab: LabProcess) -> Iterator[Session]:
    yield from open_session(browser, bare_lab)


def test_widget_explains_a_disabled_extension(bare_session: Session) -> None:
    session, lab = bare_session, bare_session.lab
    with pytest.raises(OSError):  # the extension's endpoints are really not there
        lab.get("deltakit/agents")
    lab.write_notebook("bare.ipynb", "from deltakit_nb import ChatWidget\nChatWidget()")
    session.open_lab("bare.ipynb")
    session.run_cell(0)
    error = session.page.locator(".dk-load-error")
    error.wait_for()
    assert error.get_attribute("role") == "alert"
    message = error.inner_text()
    assert "deltakit_nb server extension is not enabled" in message
    assert "jupyter server extension enable deltakit_nb" in message
    assert session.page.locator(".dk-chat").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    error.screenshot(path=str(ARTIFACTS / "widget-not-enabled.png"))
