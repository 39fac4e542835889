// The pacer (rendering spread over animation frames) and the markdown view that uses it:
// frames and the clock are the test's own, so nothing here depends on timing.
import assert from "node:assert/strict";
import { test } from "node:test";

import { JSDOM } from "jsdom";

const { window } = new JSDOM("<!doctype html><body></body>");
globalThis.window ??= window;
globalThis.document ??= window.document;

const { Pacer } = await import("../src/pacer.js");
const { CostModel, MarkdownView, MIN_PIECE, LAZY_AFTER, LAZY_CHUNK, chunkBlocks } = await import("../src/mdview.js");
const frames = await import("../src/frames.js");
const { createMarkdown } = await import("../src/markdown.js");
const { stats } = await import("../src/stats.js");

// Frame callbacks wait in a list until the test runs a frame; `clock.t` is the time in ms.
function harness(budgetMs = 10, frameSpent = () => 0) {
  const callbacks = [];
  const clock = { t: 0 };
  const changes = [];
  let frames = 0;
  const pacer = new Pacer({
    requestFrame: (fn) => callbacks.push(fn),
    now: () => clock.t,
    frameSpent,
    budgetMs,
    onChange: (busy) => changes.push(busy),
    afterFrame: () => (frames += 1),
  });
  const frame = () => {
    for (const fn of callbacks.splice(0)) fn();
  };
  return { pacer, clock, frame, changes, workFrames: () => frames, waiting: () => callbacks.length };
}

// An item that does `cost` ms of work per step and has `steps` steps to do.
function item(clock, steps, cost, log, name) {
  return {
    left: steps,
    step(budget) {
      log.push([name, budget]);
      clock.t += cost;
      this.left -= 1;
      return this.left > 0;
    },
  };
}

test("an item runs at once, at most once per frame, and its further steps wait for later frames", () => {
  const { pacer, clock, frame, changes } = harness();
  const log = [];
  const a = item(clock, 3, 1, log, "a");
  pacer.request(a);
  assert.deepEqual(log.map((l) => l[0]), ["a"]); // synchronously, in the caller's frame
  pacer.request(a); // asked again in the same frame: waits
  assert.equal(log.length, 1);
  assert.equal(pacer.busy, true);
  frame();
  assert.equal(log.length, 2);
  frame();
  assert.equal(log.length, 3);
  frame();
  assert.equal(log.length, 3, "done after its last step");
  assert.equal(pacer.busy, false);
  assert.deepEqual(changes, [true, false]);
});

test("each frame has a time budget: what does not fit waits, but every frame makes progress", () => {
  const { pacer, clock, frame } = harness(10);
  const log = [];
  const items = ["a", "b", "c", "d"].map((name) => item(clock, 1, 6, log, name));
  for (const it of items) pacer.request(it);
  // a runs (6 ms), b runs (budget left: 4 ms), then the frame's 10 ms are spent: c, d wait
  assert.deepEqual(log, [["a", 10], ["b", 4]]);
  frame();
  assert.deepEqual(log.slice(2), [["c", 10], ["d", 4]]);
  const slow = item(clock, 2, 50, log, "slow"); // far over budget: still one step per frame
  pacer.request(slow);
  frame();
  frame();
  assert.deepEqual(log.slice(4).map((l) => l[0]), ["slow", "slow"]);
});

test("work done earlier in the frame (a flush) counts against the frame's budget", () => {
  let frameStart = 0; // the frame's work so far is what the clock moved since
  const { pacer, clock, frame } = harness(10, () => clock.t - frameStart);
  const log = [];
  clock.t += 7; // the flush that asks for the items took 7 ms of this frame
  pacer.request(item(clock, 1, 1, log, "a"));
  pacer.request(item(clock, 1, 1, log, "b")); // 8 ms of the frame used: b still fits
  clock.t += 2;
  pacer.request(item(clock, 1, 1, log, "c")); // 11 ms used: c waits
  assert.deepEqual(log, [["a", 3], ["b", 2]]);
  frameStart = clock.t;
  clock.t += 9; // next frame: another callback took 9 ms before the pacer's tick
  frame();
  assert.deepEqual(log.slice(2), [["c", 1]]);
  // A frame over budget before the pacer's turn still makes progress: one item, the least budget.
  pacer.request(item(clock, 1, 1, log, "d"));
  pacer.request(item(clock, 1, 1, log, "e"));
  frameStart = clock.t;
  clock.t += 30;
  frame();
  assert.deepEqual(log.slice(3), [["d", 1]]);
  frameStart = clock.t;
  frame();
  assert.deepEqual(log.slice(4), [["e", 10]]);
});

test("frameSpent: the time since the first nextFrame callback of the animation frame", async () => {
  const rafs = [];
  const saved = globalThis.requestAnimationFrame;
  globalThis.requestAnimationFrame = (fn) => rafs.push(fn);
  try {
    let seen = [];
    const busy = (ms) => {
      const t = performance.now();
      while (performance.now() - t < ms);
    };
    frames.nextFrame(() => {
      seen.push(frames.frameSpent());
      busy(5);
    });
    frames.nextFrame(() => seen.push(frames.frameSpent()));
    assert.equal(frames.frameSpent(), 0, "outside a frame callback");
    for (const fn of rafs.splice(0)) fn(1000); // one animation frame: one timestamp
    assert.ok(seen[0] < 5 && seen[1] >= 5, `${seen}`);
    seen = [];
    frames.nextFrame(() => seen.push(frames.frameSpent()));
    for (const fn of rafs.splice(0)) fn(1016); // the next frame starts over
    assert.ok(seen[0] < 5, `${seen}`);
  } finally {
    globalThis.requestAnimationFrame = saved;
  }
});

test("a stopped pacer runs nothing more", () => {
  const { pacer, clock, frame } = harness();
  const log = [];
  const a = item(clock, 5, 1, log, "a");
  pacer.request(a);
  pacer.stop();
  frame();
  pacer.request(a);
  assert.equal(log.length, 1);
});

// ---- the markdown view --------------------------------------------------------------------

const md = createMarkdown(window);
const norm = (s) => s.replace(/\s+/g, " ").trim();
const wholeText = (value) => {
  const div = window.document.createElement("div");
  div.innerHTML = md.render(value, true);
  return norm(div.textContent);
};

function sections(n, from = 1) {
  let text = "";
  for (let i = from; i < from + n; i++) {
    text += `## Section ${i}\n\nSome *text* with **bold** and \`code\`.\n\n- item a${i}\n- item b${i}\n\n`;
    text += "```python\nx = " + i + "\n```\n\n";
  }
  return text;
}

// A view whose cost model says a frame's budget is worth `chars` characters.
function view(chars, budgetMs = 10) {
  const env = harness(budgetMs);
  const el = window.document.createElement("div");
  const decorated = [];
  const md = new MarkdownView(el, env.pacer, {
    cost: { chars: () => chars, record() {} }, // fixed: the test's clock stands still
    decorate: (fragment) => decorated.push(fragment.querySelectorAll("pre").length),
  });
  // Renders are counted per frame: the view's part of window.__deltakitStats.
  const renders = () => stats.markdownRenders;
  return { ...env, el, md, decorated, renders };
}

test("a catch-up of many settled blocks is spread over frames, a bounded piece per frame", () => {
  const room = 1000;
  const { el, md, frame, renders, pacer, decorated } = view(room);
  const text = sections(60); // ~7 KB, 180 blocks, settled up to its end
  const before = renders();
  md.update(text + "The open tail", true);
  const perFrame = [el.querySelector(".dk-md-head").textContent.length];
  assert.equal(renders() - before, 1, "one markdown render in the flush's frame");
  assert.equal(el.querySelector(".dk-md-tail").textContent, "", "the tail waits for the head");
  let frames = 0;
  while (pacer.busy) {
    const r = renders();
    const shown = norm(el.textContent);
    assert.ok(wholeText(text).startsWith(shown), "what is shown is a prefix of the text");
    frame();
    frames += 1;
    assert.ok(renders() - r <= 1, "at most one markdown render per frame");
    perFrame.push(el.querySelector(".dk-md-head").textContent.length - perFrame.reduce((a, b) => a + b, 0));
    assert.ok(frames < 100, "the queue drains");
  }
  assert.ok(frames >= 5, `spread over ${frames} frames`);
  // A piece is whole blocks worth about `room` characters of markdown source (its text
  // without the markup is shorter): never the whole catch-up at once.
  assert.ok(Math.max(...perFrame) <= room, `${perFrame}`);
  assert.equal(el.querySelectorAll(".dk-md-chunk").length, frames + 1);
  assert.equal(decorated.reduce((a, b) => a + b, 0), 60, "every code block decorated once");
  assert.equal(el.querySelectorAll("pre code .hljs-number").length, 60, "settled code highlighted");
  assert.equal(el.querySelector(".dk-md-tail").textContent.trim(), "The open tail");
  assert.equal(norm(el.textContent), wholeText(text + "The open tail"));
});

test("streamed in small deltas with frames in between, the view ends as a whole render", () => {
  const { el, md, frame, pacer } = view(300);
  const text = sections(25) + "1. one\n\n2. two\n\n```js\nlet a = 1;\n\nlet b = 2;\n```\n\n> quote\n\nend";
  let caughtUp = 0;
  for (let n = 0; n <= text.length; n += 37) {
    md.update(text.slice(0, n), true); // two updates in one frame: the second waits
    if (n % 74 !== 0) continue;
    frame();
    if (!pacer.busy) {
      assert.equal(norm(el.textContent), wholeText(text.slice(0, n)), `after ${n} chars`);
      caughtUp += 1;
    } else {
      const head = norm(el.querySelector(".dk-md-head").textContent);
      assert.ok(wholeText(text).startsWith(head), `after ${n} chars`);
    }
  }
  assert.ok(caughtUp > 10);
  md.update(text, false);
  for (let i = 0; i < 200 && pacer.busy; i++) frame();
  assert.equal(pacer.busy, false);
  assert.equal(norm(el.textContent), wholeText(text));
  assert.equal(el.querySelectorAll("ol").length, 1, "the loose list stays one list");
  assert.equal(el.querySelectorAll("pre code .hljs-keyword").length, 2, "the last code block highlighted once finished");
  assert.equal(el.querySelector(".dk-md-tail").textContent, "");
});

test("a long finished text (a reload) is parsed and rendered in pieces; blocks across a parse stretch stay whole", () => {
  const { el, md, frame, pacer } = view(4000);
  // Past the first 16,000 characters parsed in one step: a loose list and a fenced block with
  // blank lines cross that point.
  let text = sections(110);
  while (text.length < 15900) text += "Filler paragraph of some length.\n\n";
  text += "- loose one\n\n".repeat(20) + "```python\n" + "y = 1\n\n".repeat(30) + "```\n\n" + sections(20, 200);
  assert.ok(text.length > 17000);
  md.update(text, false);
  let frames = 1;
  while (pacer.busy) {
    frame();
    frames += 1;
    assert.ok(frames < 200);
  }
  assert.ok(frames >= 5, `${frames} frames`);
  assert.equal(norm(el.textContent), wholeText(text));
  const lists = [...el.querySelectorAll("ul")].filter((ul) => ul.textContent.includes("loose one"));
  assert.equal(lists.length, 1, "the loose list is one list");
  assert.equal(lists[0].querySelectorAll("li").length, 20);
  const fence = [...el.querySelectorAll("pre code")].find((c) => c.textContent.includes("y = 1"));
  assert.equal(fence.textContent, "y = 1\n\n".repeat(30));
});

test("a text that is not a continuation of the one shown starts over; a disposed view stops", () => {
  const { el, md, frame, pacer } = view(MIN_PIECE);
  md.update(sections(3), false);
  for (let i = 0; i < 20 && pacer.busy; i++) frame();
  md.update("Something else entirely.\n", false);
  for (let i = 0; i < 20 && pacer.busy; i++) frame();
  assert.equal(norm(el.textContent), "Something else entirely.");
  md.update(sections(40), false);
  md.dispose();
  const shown = el.textContent;
  frame();
  frame();
  assert.equal(el.textContent, shown);
  assert.equal(pacer.busy, false);
});

test("when a stream ends on a tail without code, its nodes are kept, not rendered again", () => {
  const { el, md, frame, pacer, renders } = view(MIN_PIECE);
  const text = "Intro.\n\n" + "word ".repeat(3000).trim(); // one long last paragraph
  md.update(text, true);
  frame();
  const paragraph = el.querySelector(".dk-md-tail p");
  assert.ok(paragraph.textContent.endsWith("word word"));
  const before = renders();
  md.update(text, false);
  assert.equal(renders(), before, "no markdown render for it");
  assert.equal(pacer.busy, false);
  assert.equal(el.querySelector(".dk-md-head").lastChild.firstChild, paragraph, "the same node, now settled");
  assert.equal(el.querySelector(".dk-md-tail").childNodes.length, 0);
  assert.equal(norm(el.textContent), wholeText(text));

  // A tail with code in it is rendered again, highlighted.
  const coded = "Intro.\n\n```python\nimport os\n```";
  const other = view(MIN_PIECE);
  other.md.update(coded, true);
  other.frame();
  assert.equal(other.el.querySelector(".hljs-keyword"), null);
  other.md.update(coded, false);
  for (let i = 0; i < 10 && other.pacer.busy; i++) other.frame();
  assert.ok(other.el.querySelector(".dk-md-head .hljs-keyword"));
  assert.equal(norm(other.el.textContent), wholeText(coded));
});

test("past LAZY_AFTER, blocks go into lazy chunks of about LAZY_CHUNK characters, none starting at a heading", () => {
  const block = (start, len, type = "paragraph_open") => ({ start, end: start + len, lines: 2, tokens: [{ type }] });
  const blocks = [];
  let at = LAZY_AFTER - 500;
  for (let i = 0; i < 40; i++) {
    const type = i % 4 === 0 ? "heading_open" : i % 4 === 3 ? "fence" : "paragraph_open";
    blocks.push(block(at, 200, type));
    at += 200;
  }
  const chunks = chunkBlocks(blocks);
  assert.deepEqual(chunks.flat(), blocks, "all blocks, in order");
  assert.ok(chunks[0].every((b) => b.start < LAZY_AFTER), "the eager part is one chunk of its own");
  for (const chunk of chunks.slice(1)) {
    assert.ok(chunk[0].start >= LAZY_AFTER);
    assert.notEqual(chunk[0].tokens[0].type, "heading_open");
    assert.ok(chunk[chunk.length - 1].end - chunk[0].start <= LAZY_CHUNK + 200, "a heading may go over");
  }
  assert.ok(chunks.length >= 6, `${chunks.length} chunks`);
  assert.equal(chunkBlocks([block(LAZY_AFTER, 5 * LAZY_CHUNK)]).length, 1, "a long block is a chunk of its own");
  assert.equal(chunkBlocks(blocks.slice(0, 2)).length, 1, "before LAZY_AFTER: one chunk");

  // In the view: a long finished text ends up in many lazy chunks, the text whole.
  const { el, md, frame, pacer } = view(32000);
  const text = sections(300);
  md.update(text, false);
  for (let i = 0; i < 50 && pacer.busy; i++) frame();
  const lazy = el.querySelectorAll(".dk-md-lazy");
  assert.ok(lazy.length >= (text.length - LAZY_AFTER) / (2 * LAZY_CHUNK), `${lazy.length} lazy chunks`);
  assert.ok(el.querySelector(".dk-md-chunk").classList.contains("dk-md-first"));
  assert.equal(el.querySelectorAll(".dk-md-first").length, 1);
  assert.equal(norm(el.textContent), wholeText(text));
});
