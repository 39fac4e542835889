"""The JupyterLab that `make lab` and these tests run: nothing pops up over the notebook."""

from __future__ import annotations

from .browserkit import Session

ANNOUNCEMENTS_CONFIG = "/api/config/jupyterlabapputilsextensionannouncements"
NEWS_PROMPT = "notified about official Jupyter news"


def test_no_jupyter_news_prompt_over_the_chat(session: Session) -> None:
    """JupyterLab asks "Would you like to get notified about official Jupyter news?" in a toast
    that stays until answered and covers the widget's Send button, unless the notification
    plugin's `fetchNews` setting has an answer (jupyter-config/make-lab gives it one)."""
    # 790 px puts the Send button in the bottom right corner of the 1280x1000 page, where the
    # toast would be.
    session.lab.write_notebook(
        "news.ipynb", "from deltakit_nb import ChatWidget\nChatWidget(height=790)"
    )
    # The announcements plugin asks once the app is restored and it has read its config
    # section: wait for that request, then for the notebook and the chat.
    with session.page.expect_response(lambda r: ANNOUNCEMENTS_CONFIG in r.url):
        session.open_lab("news.ipynb")
    session.run_cell(0)
    session.wait_chat()
    session.page.wait_for_timeout(1000)  # a toast renders within a frame or two of its emit
    toasts = session.page.locator(".Toastify__toast").all_inner_texts()
    assert not [t for t in toasts if NEWS_PROMPT in t], toasts
    send = session.chat().locator(".dk-send")
    box = send.bounding_box()
    assert box is not None
    # Nothing lies over the Send button: the element at its centre is the button.
    hit = session.page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y)?.closest('.dk-send') !== null",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    assert hit
