// One text part of an answer, rendered as markdown a piece per animation frame (pacer.js).
//
// While it streams, the part is a head of settled blocks (rendered once, highlighted, with
// Copy buttons) and an open tail re-rendered per frame. Settled blocks are parsed once, when
// they settle, together with the tail (one parse), and queued; each frame renders as many of
// them as fit its time budget. A flush that catches up with a large batch of the stream
// therefore costs a few frames of bounded work instead of one long task. While blocks wait in
// the queue the tail is not shown: what is on screen is always a prefix of the text, in order.
// A finished text (a reload) goes the same way: all of it settled, in pieces.
import { h } from "./dom.js";
import { parseBlocks, renderChunks, renderTokens, stableSplit } from "./markdown.js";
import { stats } from "./stats.js";

export const LAZY_AFTER = 8000; // characters of an answer laid out eagerly (see renderPiece)
export const MIN_PIECE = 400; // characters rendered per frame at least (and one block)
const MAX_PIECE = 32000;
// Characters of markdown in a lazy chunk at most (unless one block is longer). A chunk is laid
// out whole once any of it is in view, and a streaming answer shows the end of its newest
// chunk: a chunk of a piece's size (several screens of a 480 px widget) would be laid out and
// painted all at once. About a screen each keeps that to what is in view.
export const LAZY_CHUNK = 1500;
const PARSE_AHEAD = 16000; // characters parsed in one step at most (unless one block is longer)

// What rendering a character of settled markdown costs here (markdown-it, highlight.js,
// DOMPurify, the DOM): learnt from the pieces rendered, shared by all parts of the page.
export class CostModel {
  constructor(msPerChar = 0.003) {
    this.msPerChar = msPerChar;
  }

  record(chars, ms) {
    if (chars < 200 || !(ms >= 0)) return; // too small to say anything
    this.msPerChar = 0.7 * this.msPerChar + 0.3 * Math.max(ms / chars, 0.0002);
  }

  chars(budgetMs) {
    return Math.min(MAX_PIECE, Math.max(MIN_PIECE, Math.floor(budgetMs / this.msPerChar)));
  }
}

const sharedCost = new CostModel();

export class MarkdownView {
  // `decorate(fragment)`: what the view adds to rendered nodes (Copy buttons on code blocks).
  constructor(el, pacer, { decorate = () => {}, cost = sharedCost } = {}) {
    this.el = el;
    this.pacer = pacer;
    this.decorate = decorate;
    this.cost = cost;
    this.clear();
  }

  clear() {
    this.value = "";
    this.streaming = false;
    this.cut = 0; // stableSplit(value) when last seen
    this.parsedTo = 0; // the text before this is parsed into settled blocks (queued or shown)
    this.queue = []; // settled blocks parsed and not shown yet, in order
    this.tailDirty = false; // the tail does not show the text after parsedTo yet
    this.shownTail = null; // { from, text } the tail shows, when it holds no code
    this.head = h("div", "dk-md-head");
    this.tail = h("div", "dk-md-tail");
    this.el.replaceChildren(this.head, this.tail);
  }

  // The part's text now, and whether more of it may come. Streamed text only grows; a text
  // replaced by another (a resync) starts over.
  update(value, streaming) {
    if (value.length < this.parsedTo || !value.startsWith(this.value.slice(0, this.parsedTo))) this.clear();
    if (value === this.value && streaming === this.streaming) return;
    this.value = value;
    this.streaming = streaming;
    this.tailDirty = true;
    this.pacer.request(this);
  }

  get pending() {
    return this.queue.length > 0 || this.tailDirty;
  }

  // One frame's work, one markdown render: parse what settled since the last step (with the
  // tail), render queued blocks for about `budgetMs`, and the tail once nothing is queued.
  step(budgetMs) {
    if (!this.streaming && this.keepShownTail()) return this.pending;
    const started = this.pacer.now();
    let rest = null;
    const cut = this.streaming ? stableSplit(this.value, this.cut) : this.value.length;
    if (this.streaming) this.cut = cut;
    let parsed = cut <= this.parsedTo; // all that settled is parsed
    if (this.tailDirty && !parsed) {
      rest = this.parseSettled(cut);
      parsed = rest !== null;
    }
    if (this.queue.length) this.renderPiece(budgetMs - (this.pacer.now() - started));
    if (this.queue.length || !parsed) {
      if (this.tail.firstChild) this.tail.replaceChildren();
      this.shownTail = null;
    } else if (this.tailDirty) {
      rest ??= parseBlocks(this.value.slice(this.parsedTo), 0).rest;
      this.tail.replaceChildren(renderTokens(rest));
      this.tailDirty = false;
      const code = rest.some((t) => t.type === "fence" || t.type === "code_block");
      this.shownTail = code ? null : { from: this.parsedTo, text: this.value.slice(this.parsedTo) };
    }
    stats.markdownRenders += 1;
    return this.pending;
  }

  // The stream ended with the tail showing exactly the rest of the text and no code block in
  // it: a settled render would give the same nodes (there is nothing to highlight), so the
  // tail's nodes become the last chunk as they are. A long last paragraph (an answer in one
  // block) is then not rendered once more, in one long task, when the run ends.
  keepShownTail() {
    const t = this.shownTail;
    const rest = this.value.length - this.parsedTo;
    if (!t || this.queue.length || t.from !== this.parsedTo || rest !== t.text.length || !this.value.endsWith(t.text)) return false;
    if (rest) {
      const chunk = this.chunk(t.from, t.text.split("\n").length);
      chunk.append(...this.tail.childNodes);
      this.head.append(chunk);
    }
    this.parsedTo = this.value.length;
    this.tailDirty = false;
    this.shownTail = null;
    return true;
  }

  // Parses the text after parsedTo and queues the blocks settled before `cut`; returns the
  // tokens of the tail, or null when only a first stretch of a long text was parsed (at most
  // PARSE_AHEAD characters, to the end of a line, so that a long text settling at once, a
  // reload, does not cost one long parse).
  parseSettled(cut) {
    const from = this.parsedTo;
    let end = this.value.length;
    if (end - from > PARSE_AHEAD) {
      const nl = this.value.indexOf("\n", from + PARSE_AHEAD);
      if (nl >= 0 && nl + 1 < end) end = nl + 1;
    }
    let parsed = parseBlocks(this.value.slice(from, end), Math.min(cut, end) - from, end < this.value.length);
    if (!parsed.settled.length && end < this.value.length) {
      // One block longer than PARSE_AHEAD: it takes a whole parse.
      end = this.value.length;
      parsed = parseBlocks(this.value.slice(from), cut - from);
    }
    for (const block of parsed.settled) {
      block.start += from;
      block.end += from;
      this.queue.push(block);
    }
    this.parsedTo = from + parsed.restStart;
    return end === this.value.length ? parsed.rest : null;
  }

  // Queued blocks worth about `budgetMs` (one block at least) as chunks of the head,
  // highlighted. Past the first LAZY_AFTER characters of an answer a chunk has
  // `content-visibility: auto`: the browser styles and lays out only the chunks in view, so a
  // long answer does not cost a layout of all of it (the DOM and its text are all there; only
  // layout-dependent reads such as innerText see nothing in a chunk out of view). The size
  // hint (from its line count) keeps the scrollbar steady for chunks never shown.
  renderPiece(budgetMs) {
    const room = this.cost.chars(budgetMs);
    const first = this.queue[0];
    let n = 1;
    while (n < this.queue.length && this.queue[n].end - first.start <= room) n += 1;
    if (n > 1 && n < this.queue.length && isHeading(this.queue[n])) n -= 1; // see chunkBlocks
    const blocks = this.queue.splice(0, n);
    const chars = blocks[n - 1].end - first.start;
    const started = this.pacer.now();
    const groups = chunkBlocks(blocks);
    const fragment = renderChunks(groups.map((group) => group.flatMap((b) => b.tokens)), true);
    this.decorate(fragment);
    [...fragment.children].forEach((chunk, i) => {
      const group = groups[i];
      this.dress(chunk, group[0].start, group.reduce((sum, b) => sum + b.lines, 0));
    });
    this.head.append(fragment);
    this.cost.record(chars, this.pacer.now() - started);
  }

  chunk(start, lines) {
    return this.dress(h("div", "dk-md-chunk"), start, lines);
  }

  // A chunk's classes and size hint, by where in the text it starts.
  dress(chunk, start, lines) {
    if (start === 0) chunk.classList.add("dk-md-first");
    if (start >= LAZY_AFTER) {
      chunk.classList.add("dk-md-lazy");
      chunk.style.containIntrinsicSize = `auto ${Math.max(24, lines * 14)}px`;
    }
    return chunk;
  }

  dispose() {
    this.pacer.cancel(this);
    this.queue = [];
    this.tailDirty = false;
  }
}

// The blocks of a piece (in order) as the chunks to render them in: those from before
// LAZY_AFTER in one chunk, the others in chunks of about LAZY_CHUNK characters (one block at
// least). A lazy chunk contains its margins, which therefore do not collapse with the next
// chunk's (style.css): a chunk does not start at a heading, so that the space above one is its
// own margin, as elsewhere, not that plus the margin of the block before it.
export function chunkBlocks(blocks) {
  const chunks = [];
  for (const block of blocks) {
    const chunk = chunks[chunks.length - 1];
    const lazy = block.start >= LAZY_AFTER;
    const split = chunk && lazy && (chunk[0].start < LAZY_AFTER || block.end - chunk[0].start > LAZY_CHUNK);
    if (!chunk || (split && !isHeading(block))) chunks.push([block]);
    else chunk.push(block);
  }
  return chunks;
}

function isHeading(block) {
  return block.tokens[0]?.type === "heading_open";
}
