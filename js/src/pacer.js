// Spreads a view's rendering over animation frames. A flush that catches up with a large batch
// of the stream could otherwise render all of it in one task (a long task: typing and
// scrolling in the notebook stall). Each frame gets a time budget; work items run in it at
// most once per frame, and what does not fit, or an item that has more to do, waits for the
// next frame. No DOM here: Node tests drive it with their own clock and frames.

import { frameSpent as defaultFrameSpent, nextFrame, now as defaultNow } from "./frames.js";

// Work per frame, the flush's included (frames.js frameSpent). The frame's style, layout and
// paint come on top, and each frame that changes the page costs a few ms of those however little
// it adds (JupyterLab's page is large). Measured with bench_browser (markdown 600, lazy chunks of
// about a screen): 16 ms gave as little main-thread work in all as 24 ms, and frames of ~30 ms
// instead of ~40 ms, well under the 50 ms of a long task on a busy machine.
export const FRAME_BUDGET_MS = 16;

// An item has `step(budgetMs)`: do at most about `budgetMs` of work, return true if more is
// left. The pacer keeps `item.pacedFrame` on it (the frame it last ran in).
export class Pacer {
  // `frameSpent()`: ms of the current frame's work done before the pacer's (frames.js).
  constructor({
    requestFrame = nextFrame,
    now = defaultNow,
    frameSpent = defaultFrameSpent,
    budgetMs = FRAME_BUDGET_MS,
    onChange = null,
    afterFrame = null,
  } = {}) {
    this.requestFrame = requestFrame;
    this.now = now;
    this.frameSpent = frameSpent;
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
    if (item.pacedFrame !== this.frame && (!this.ran || this.used() < this.budgetMs)) {
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
    const more = item.step(Math.max(this.budgetMs - this.used(), 1));
    this.spent += this.now() - started;
    this.ran = true;
    if (more) this.pending.add(item);
  }

  // The frame's budget used: by the pacer's work, or by all work of the frame so far (a flush
  // that applied a large batch of events just before) when that is more.
  used() {
    return Math.max(this.spent, this.frameSpent());
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
      if (this.ran && this.used() >= this.budgetMs) break;
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
