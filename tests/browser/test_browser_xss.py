"""XSS corpus in real JupyterLab: payloads in the model's text, its reasoning, tool names, tool
arguments and tool outputs (plain and error) render inert and stay readable.

Every payload would set `window.__pwned` (or open an alert) if it ran; the widget's DOM is also
checked for elements and attributes that could run script or load active content.
"""

from __future__ import annotations

import json
from typing import Any

from .browserkit import Session
from .xss_payloads import PAYLOADS, marker

CELLS = (
    "from deltakit_nb import ChatWidget\nChatWidget(height=320)",
    "ChatWidget(agent='xss', height=320)",
)

# Returns what is wrong with widget `i`'s DOM: anything that can run script or load active
# content, anywhere in the conversation log.
AUDIT = """(i) => {
  const root = document.querySelectorAll('.dk-chat')[i];
  const log = root.querySelector('.dk-log');
  const bad = [];
  const banned = 'script,iframe,frame,object,embed,svg,math,style,link,meta,base,form,input,' +
    'button,textarea,select,img,video,audio,source,details[ontoggle],body,html';
  // The widget's own buttons, each in its own place (payloads cannot make buttons: markdown
  // has raw HTML off and DOMPurify forbids <button>).
  const own = '.dk-code > button.dk-code-copy, .dk-run-meta > button.dk-answer-copy,' +
    '.dk-run-meta > button.dk-retry, .dk-fold > button.dk-fold-more';
  for (const el of log.querySelectorAll(banned)) {
    // The widget's own collapsible sections are <details>; payloads must not add any.
    if (el.matches(own) && el.attributes.length <= 4) continue;
    bad.push('element <' + el.localName + '>: ' + el.outerHTML.slice(0, 120));
  }
  for (const el of root.querySelectorAll('*')) {
    for (const a of el.attributes) {
      if (a.name.startsWith('on')) bad.push('attribute ' + a.name + ' on <' + el.localName + '>');
      if (/^\\s*(javascript|data|vbscript):/i.test(a.value)) bad.push(a.name + '=' + a.value);
    }
  }
  for (const el of log.querySelectorAll('[style]')) bad.push('style: ' + el.outerHTML.slice(0, 80));
  for (const a of log.querySelectorAll('a[href]')) {
    const href = a.getAttribute('href');
    if (!['http:', 'https:', 'mailto:'].includes(a.protocol) && !href.startsWith('#'))
      bad.push('href ' + href);
  }
  return bad;
}"""


def pwned(session: Session) -> Any:
    return session.page.evaluate("() => window.__pwned")


def check_inert(session: Session, index: int, what: str) -> None:
    assert pwned(session) is None, f"{what}: a payload ran (window.__pwned={pwned(session)!r})"
    assert session.dialogs == [], f"{what}: a payload opened a dialog: {session.dialogs}"
    assert session.page.evaluate(AUDIT, index) == [], what


def test_xss_corpus_renders_inert_and_readable(session: Session) -> None:
    session.lab.write_notebook("xss.ipynb", *CELLS)
    session.open_lab("xss.ipynb")
    session.run_cell(0)
    session.wait_chat(0)
    session.run_cell(1)
    session.wait_chat(1)
    frames_before = len(session.page.frames)

    for k, payload in enumerate(PAYLOADS):
        mark = marker(k)

        # Both widgets at once: the demo agent echoes the payload as the model's text (markdown
        # with raw HTML off + sanitiser); the xss agent streams it as reasoning and text, calls
        # a tool NAMED with it, passes it as arguments, gets it back as a tool output and as an
        # erroring tool's message, then quotes them in its answer.
        n0 = session.send(f"echo {payload}", 0)
        n1 = session.send(f"xss {k}", 1)
        session.wait_status("completed", 0)
        session.wait_status("completed", 1)

        run = session.run_el(n0, 0)
        assert run.locator(".dk-user").text_content() == f"echo {payload}"
        assert mark in run.locator(".dk-assistant .dk-text").text_content()
        check_inert(session, 0, f"echo payload {k}")

        run = session.run_el(n1, 1)
        assert run.locator(".dk-thinking-text").text_content() == payload
        texts = run.locator(".dk-assistant .dk-text")
        assert texts.count() == 2
        assert mark in texts.nth(0).text_content()
        assert mark in texts.nth(1).text_content()
        echo, broken = run.locator(".dk-tool").all()
        assert echo.locator(".dk-tool-name").text_content() == payload
        assert echo.get_attribute("data-tool-name") == payload
        assert json.loads(echo.locator(".dk-tool-args pre").text_content()) == {"text": payload}
        assert echo.locator(".dk-tool-result pre").text_content() == payload
        assert broken.get_attribute("data-status") == "error"
        assert json.loads(broken.locator(".dk-tool-args pre").text_content()) == {"reason": payload}
        assert payload in broken.locator(".dk-tool-result pre").text_content()
        check_inert(session, 1, f"xss agent payload {k}")

    # 3. The demo agent's own failing tool, with the whole corpus as its argument and error.
    corpus = "\n".join(PAYLOADS)
    n = session.send("tool broken_tool " + json.dumps({"reason": corpus}), 0)
    session.wait_status("completed", 0)
    card = session.run_el(n, 0).locator(".dk-tool")
    assert card.get_attribute("data-status") == "error"
    assert json.loads(card.locator(".dk-tool-args pre").text_content()) == {"reason": corpus}
    assert corpus in card.locator(".dk-tool-result pre").text_content()
    check_inert(session, 0, "broken_tool corpus")

    # 4. The calculator's error echoes its input (a string literal is not arithmetic).
    payload = PAYLOADS[1]
    n = session.send("tool calculator " + json.dumps({"expression": repr(payload)}), 0)
    session.wait_status("completed", 0)
    card = session.run_el(n, 0).locator(".dk-tool")
    assert card.get_attribute("data-status") == "error"
    assert "not an arithmetic expression" in card.locator(".dk-tool-result pre").text_content()
    assert marker(1) in card.locator(".dk-tool-result pre").text_content()
    check_inert(session, 0, "calculator error")

    # Nothing ran late either (image errors, focus, animation): give the page a moment.
    session.page.wait_for_timeout(500)
    check_inert(session, 0, "after all")
    check_inert(session, 1, "after all")
    assert len(session.page.frames) == frames_before
    assert not [line for line in session.console if "pageerror" in line]

    # The checks above can fail: a planted <img onerror> sets the flag and fails the audit.
    session.page.evaluate(
        """(i) => { const d = document.createElement('div');
             d.innerHTML = '<img src=x onerror="window.__pwned=1">';
             document.querySelectorAll('.dk-chat')[i].querySelector('.dk-log').append(d); }""",
        0,
    )
    session.page.wait_for_function("() => window.__pwned === 1")
    assert session.page.evaluate(AUDIT, 0) != []
    # ...and so can the outside-host watch every session has: a planted image load is seen.
    assert session.outside == []
    session.page.evaluate("() => { new Image().src = 'http://192.0.2.1/planted.png'; }")
    session.page.wait_for_timeout(500)
    assert session.outside == ["http://192.0.2.1/planted.png"]
    session.outside.clear()
