"""Front-end streaming cost in a real browser (figures, not a test).

    .venv/bin/python benchmarks/bench_browser.py [--prompt "markdown 600"] [--repeats 2]

Starts `jupyter lab` (offline demo agent) and headless Debian Chromium, displays a ChatWidget,
streams one long answer into it and prints, for the time from Enter to the run's end and the
last frame of its rendering (a long answer is rendered over several frames):

- main-thread work from CDP `Performance.getMetrics` (TaskDuration, ScriptDuration,
  LayoutDuration, RecalcStyleDuration deltas) and the Long Tasks API (count, total, longest);
- the widget's own counters (`window.__deltakitStats`, js/src/stats.js): flushes, events and
  markdown renders, and from a requestAnimationFrame sampler the most markdown renders and
  flushes seen in one animation frame (the design wants at most one flush per frame);
- that the text shown equals the server's text: exactly for plain text (`count N`), and for
  markdown (`markdown N`: N sections, ~80 KB and ~20,000 deltas for N = 600) that every
  heading, list item and code block of the server's text is in the widget's DOM.
By default both prompts run. Each measured run has a page and a conversation of its own.

`--compare OLD.js` measures a second front end in the same sitting: each repeat runs the
prompt with the served bundle and with OLD.js (served in place of
`static/deltakit_nb/chat.js`, e.g. a build of an earlier commit), alternating which goes first,
and the medians of both are printed at the end.
Compare figures from one run; absolute times on this shared 2-core machine are noisy.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser.browserkit import Session, launch_chromium
from browser.labproc import LabProcess
from playwright.sync_api import sync_playwright

WIDGET = "from deltakit_nb import ChatWidget\nChatWidget(height=480)"

# Per animation frame: how many markdown renders and flushes happened since the last frame.
SAMPLER = """() => {
  const s = window.__deltakitStats;
  window.__frames = [];
  window.__stopFrames = false;
  let last = { ...s };
  const tick = () => {
    const now = { ...s };
    window.__frames.push([now.markdownRenders - last.markdownRenders, now.flushes - last.flushes,
                          now.events - last.events]);
    last = now;
    if (!window.__stopFrames) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  window.__long = [];
  window.__longObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__long.push(e.duration);
  });
  window.__longObserver.observe({ type: 'longtask' });
}"""

# Resolves with the run id once the widget's run has ended with `status` and its markdown is
# all rendered (Session.wait_status's condition), told by a MutationObserver on the widget's
# attributes. Session.wait_status (a locator's wait_for) polls the page while the answer
# streams, checking visibility, which forces style and layout in the page: measured with it,
# ~40 ms of the main-thread work per run was its own, and the span from Enter to the run's end
# was ~1.0 s instead of ~0.5 s (that much more of the page's idle frames counted too).
WAIT_DONE = """([status, timeoutMs]) => new Promise((resolve, reject) => {
  const chat = document.querySelector('.dk-chat');
  const done = () => chat.dataset.runStatus === status && !('rendering' in chat.dataset);
  if (done()) return resolve(chat.dataset.runId);
  const timer = setTimeout(() => {
    obs.disconnect();
    reject(new Error('the run did not end'));
  }, timeoutMs);
  const obs = new MutationObserver(() => {
    if (!done()) return;
    obs.disconnect();
    clearTimeout(timer);
    resolve(chat.dataset.runId);
  });
  obs.observe(chat, { attributes: true, attributeFilter: ['data-run-status', 'data-rendering'] });
})"""

NOTEBOOKS = itertools.count(1)
METRICS = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")


def metrics(cdp: Any) -> dict[str, float]:
    values = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return {k: float(values.get(k, 0.0)) for k in METRICS}


def calibrate(page: Any) -> bool:
    """Check that the Long Tasks API reports in this browser: block the main thread once."""
    return bool(
        page.evaluate(
            """() => new Promise((resolve) => {
              const seen = [];
              const obs = new PerformanceObserver((l) => seen.push(...l.getEntries()));
              obs.observe({ type: 'longtask' });
              setTimeout(() => {
                const t = performance.now();
                while (performance.now() - t < 120);
              }, 0);
              setTimeout(() => {
                obs.disconnect();
                resolve(seen.some((e) => e.duration >= 100));
              }, 400);
            })"""
        )
    )


def one_run(session: Session, cdp: Any, prompt: str) -> dict[str, Any]:
    page = session.page
    session.wait_idle()
    page.evaluate(SAMPLER)
    stats0 = page.evaluate("() => ({ ...window.__deltakitStats })")
    m0 = metrics(cdp)
    t0 = time.perf_counter()
    n = session.send(prompt)
    run_id = str(page.evaluate(WAIT_DONE, ["completed", 300_000]))
    wall = time.perf_counter() - t0
    m1 = metrics(cdp)
    page.evaluate("() => { window.__stopFrames = true; window.__longObserver.disconnect(); }")
    stats1 = page.evaluate("() => ({ ...window.__deltakitStats })")
    frames = page.evaluate("() => window.__frames")
    long_tasks = page.evaluate("() => window.__long")
    text_el = session.run_el(n).locator(".dk-assistant .dk-text")
    shown = text_el.text_content() or ""
    server = session.lab.run_text(run_id)
    if server.startswith("## "):  # markdown: compare the blocks, not the raw text
        counts = text_el.evaluate(
            "el => [el.querySelectorAll('h2').length, el.querySelectorAll('li').length,"
            " el.querySelectorAll('pre > code').length]"
        )
        expected = [server.count("## "), server.count("\n- "), server.count("```") // 2]
        exact = counts == expected
    else:
        exact = shown.strip() == server.strip()
    busy = [f for f in frames if f[0] or f[1]]
    return {
        "wall_s": wall,
        "work_ms": {k: (m1[k] - m0[k]) * 1000 for k in METRICS},
        "long_tasks": (len(long_tasks), sum(long_tasks), max(long_tasks, default=0.0)),
        "stats": {k: stats1[k] - stats0[k] for k in stats1},
        "frames": len(frames),
        "busy_frames": len(busy),
        "max_renders_per_frame": max((f[0] for f in frames), default=0),
        "max_flushes_per_frame": max((f[1] for f in frames), default=0),
        "mean_renders_per_busy_frame": statistics.mean(f[0] for f in busy) if busy else 0.0,
        "chars": len(server),
        "exact": exact,
    }


def measure(browser: Any, lab: LabProcess, prompt: str, bundle: Path | None) -> dict[str, Any]:
    """One run of `prompt` in a fresh page and conversation, with `bundle` as the front end if
    given."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        if bundle is not None:
            body = bundle.read_bytes()
            page.route(
                "**/static/deltakit_nb/chat.js*",
                lambda route: route.fulfill(body=body, content_type="text/javascript"),
            )
        session = Session(page, lab)
        k = next(NOTEBOOKS)
        notebook = f"bench-{k}.ipynb"
        lab.write_notebook(notebook, WIDGET)
        session.open_lab(notebook)
        session.run_cell(0)
        session.wait_chat()
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        session.send("echo warm-up")  # load markdown-it, DOMPurify, JIT
        session.wait_status("completed")
        if k == 1:
            print(f"long-task observer sees a planted 120 ms task: {calibrate(page)}")
        return one_run(session, cdp, prompt)
    finally:
        page.close()
        lab.shutdown_sessions()


def report(label: str, r: dict[str, Any]) -> None:
    w, st, lt = r["work_ms"], r["stats"], r["long_tasks"]
    print(
        f"{label}: {r['chars']} chars, {st['events']} events in "
        f"{r['wall_s']:.2f} s; text as the server's: {r['exact']}\n"
        f"  main thread: task {w['TaskDuration']:.0f} ms, script "
        f"{w['ScriptDuration']:.0f} ms, layout {w['LayoutDuration']:.0f} ms, "
        f"style {w['RecalcStyleDuration']:.0f} ms\n"
        f"  long tasks: {lt[0]} totalling {lt[1]:.0f} ms, longest {lt[2]:.0f} ms\n"
        f"  widget: {st['flushes']} flushes, {st['markdownRenders']} markdown "
        f"renders of {st['markdownChars'] / 1e6:.1f} M chars in total; "
        f"{st['flushMs']:.0f} ms applying events; {st['markdownMs']:.0f} ms in markdown "
        "(in flushes and in the frames after)\n"
        f"  frames: {r['frames']} sampled, {r['busy_frames']} with widget work; "
        f"per frame: max {r['max_renders_per_frame']} markdown renders "
        f"(mean {r['mean_renders_per_busy_frame']:.2f} when busy), "
        f"max {r['max_flushes_per_frame']} flushes",
        flush=True,
    )


def summary(label: str, runs: list[dict[str, Any]]) -> None:
    task = statistics.median(r["work_ms"]["TaskDuration"] for r in runs)
    longest = statistics.median(r["long_tasks"][2] for r in runs)
    worst = max(r["long_tasks"][2] for r in runs)
    over = sum(1 for r in runs if r["long_tasks"][0])
    renders = max(r["max_renders_per_frame"] for r in runs)
    exact = all(r["exact"] for r in runs)
    print(
        f"  {label:8s} {len(runs)} runs: median main-thread work {task:.0f} ms; a task over 50 ms "
        f"in {over} runs, median longest {longest:.0f} ms (0: none over 50 ms), worst "
        f"{worst:.0f} ms; max {renders} markdown renders per frame; text as the server's in "
        f"every run: {exact}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompt", action="append", help="repeatable")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--compare", type=Path, help="another build of chat.js to measure in the same sitting"
    )
    args = parser.parse_args()
    prompts = args.prompt or ["markdown 600", "count 20000 delay 0"]
    if args.compare is not None and not args.compare.is_file():
        parser.error(f"--compare: no such file: {args.compare}")
    variants: list[tuple[str, Path | None]] = [("this", None)]
    if args.compare is not None:
        variants.append(("compare", args.compare))

    lab = LabProcess(demo_delay=0.0)
    print(f"jupyter lab up in {lab.start():.1f} s", flush=True)
    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                for prompt in prompts:
                    print(f"prompt: {prompt!r}")
                    results: dict[str, list[dict[str, Any]]] = {v[0]: [] for v in variants}
                    for i in range(args.repeats):
                        order = variants if i % 2 == 0 else variants[::-1]
                        for label, bundle in order:
                            r = measure(browser, lab, prompt, bundle)
                            results[label].append(r)
                            report(f"run {i + 1} ({label})", r)
                    print(f"summary of {prompt!r}:")
                    for label, runs in results.items():
                        summary(label, runs)
            finally:
                browser.close()
    finally:
        lab.stop()


if __name__ == "__main__":
    main()
