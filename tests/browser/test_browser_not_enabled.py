"""With the server extension disabled, the widget says so and how to enable it, instead of
spinning forever; with the extension enabled but failed to load, it gives the reason and points
to the server log (each on a server of its own, started for this module)."""

from __future__ import annotations

import urllib.error
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator

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


def load_error(session: Session, notebook: str) -> Locator:
    """The widget's notice for an extension whose set-up failed, once shown (after checking that
    the API answers 503)."""
    with pytest.raises(urllib.error.HTTPError) as err:
        session.lab.get("deltakit/agents")
    assert err.value.code == 503
    session.lab.write_notebook(notebook, "from deltakit_nb import ChatWidget\nChatWidget()")
    session.open_lab(notebook)
    session.run_cell(0)
    shown = session.page.locator(".dk-notice, .dk-load-error").filter(has_text="failed to load")
    shown.wait_for()
    return shown


@pytest.fixture(scope="module")
def failed_lab() -> Iterator[LabProcess]:
    with running_lab(extra_args=["--DeltakitApp.default_agent=nope"]) as proc:
        yield proc


@pytest.fixture
def failed_session(browser: Browser, failed_lab: LabProcess) -> Iterator[Session]:
    yield from open_session(browser, failed_lab)


def test_widget_explains_an_extension_that_failed_to_load(failed_session: Session) -> None:
    """Enabled but its set-up failed: the widget names the reason and the server log, and does
    not tell the user to enable what is enabled."""
    session = failed_session
    shown = load_error(session, "failed.ipynb")
    assert shown.get_attribute("role") == "alert"
    message = shown.inner_text()
    assert "deltakit_nb failed to load: default_agent 'nope' names no agent" in message
    assert "c.DeltakitApp.default_agent" in message
    assert "See the Jupyter server log." in message
    assert "enable" not in message
    ARTIFACTS.mkdir(exist_ok=True)
    session.chat().screenshot(path=str(ARTIFACTS / "widget-failed-to-load.png"))


@pytest.fixture(scope="module")
def no_postgres_lab() -> Iterator[LabProcess]:
    from jupyterproc import free_port

    url = f"postgresql://deltakit:s3cret@127.0.0.1:{free_port()}/runs"  # nothing listens
    with running_lab(extra_args=[f"--DeltakitApp.store_url={url}"]) as proc:
        yield proc


@pytest.fixture
def no_postgres_session(browser: Browser, no_postgres_lab: LabProcess) -> Iterator[Session]:
    yield from open_session(browser, no_postgres_lab)


def test_widget_explains_a_postgres_store_out_of_reach(no_postgres_session: Session) -> None:
    """store_url names a PostgreSQL server that cannot be reached: no fallback to memory; the
    widget says why (without the password)."""
    message = load_error(no_postgres_session, "nopg.ipynb").inner_text()
    assert "StoreError: PostgreSQL at postgresql://deltakit:***@127.0.0.1:" in message
    assert "s3cret" not in message
    assert "See the Jupyter server log." in message
