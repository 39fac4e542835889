// Spreads a view's rendering over animation frames. A flush that catches up with a large batch
// of the stream could otherwise render all of it in one task (a long task: typing and
// scrolling in the notebook stall). Each frame gets a time budget; work items run in it at
// most once per frame, and what does not fit, or an item that has more to do, waits for the
// next frame. No DOM here: Node tests drive it with their own clock and frames.

import { nextFrame, now as defaultNow } from "./frames.js";

// Markdown work per frame. The frame's style, layout and paint come on top, and each frame that
// changes the page costs a few ms of those however little it adds (JupyterLab's page is large):
// measured with bench_browser, 24 ms gave less main-thread work in all than 12 ms and no longer
// tasks.
export const FRAME_BUDGET_MS = 24;

// An item has `step(budgetMs)`: do at most about `budgetMs` of work, return true if more is
// left. The pacer keeps `item.pacedFrame` on it (the frame it last ran in).
export class Pacer {
  constructor({ requestFrame = nextFrame, now = defaultNow, budgetMs = FRAME_BUDGET_MS, onChange = null, afterFrame = null } = {}) {
    this.requestFrame = requestFrame;
    this.now = now;
    this.budgetMs = budgetMs;
    this.onChange = onChange; // (busy) when work starts waiting for a frame and when none is left
    this.afterFrame = afterFrame; // after a frame callback that did some work
    this.frame = 0; // counts frame callbacks: "this frame" is everything since the last one
    this.spent = 0; // ms of work in this frame
    this.ran = false; // whether anything ran in this frame
    this.pending = new Set();
    this.tickRequested = false;
    this.stopped = false;
    this.busy = false;
  }

  // Runs `item` now if it did not run in this frame and the frame has budget left (or nothing
  // ran yet: every frame makes progress); otherwise in a later frame.
  request(item) {
    if (this.stopped) return;
    if (item.pacedFrame !== this.frame && (!this.ran || this.spent < this.budgetMs)) {
      this.pending.delete(item);
      this.run(item);
    } else {
      this.pending.add(item);
    }
    this.ensureTick();
    this.report();
  }

  cancel(item) {
    this.pending.delete(item);
    this.report();
  }

  stop() {
    this.stopped = true;
    this.pending.clear();
  }

  run(item) {
    item.pacedFrame = this.frame;
    const started = this.now();
    const more = item.step(Math.max(this.budgetMs - this.spent, 1));
    this.spent += this.now() - started;
    this.ran = true;
    if (more) this.pending.add(item);
  }

  // A frame callback after any work, even with nothing pending: it marks where the next frame
  // starts, so an item asked for again in the same frame waits.
  ensureTick() {
    if (this.tickRequested || this.stopped) return;
    this.tickRequested = true;
    this.requestFrame(() => this.tick());
  }

  tick() {
    this.tickRequested = false;
    if (this.stopped) return;
    this.frame += 1;
    this.spent = 0;
    this.ran = false;
    for (const item of [...this.pending]) {
      if (this.ran && this.spent >= this.budgetMs) break;
      this.pending.delete(item);
      this.run(item);
    }
    if (this.ran) this.ensureTick();
    this.report();
    if (this.ran) this.afterFrame?.();
  }

  report() {
    const busy = this.pending.size > 0;
    if (busy !== this.busy) {
      this.busy = busy;
      this.onChange?.(busy);
    }
  }
}
