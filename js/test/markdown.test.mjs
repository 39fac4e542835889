import assert from "node:assert/strict";
import { test } from "node:test";

import { JSDOM } from "jsdom";

import { createMarkdown, stableSplit } from "../src/markdown.js";

const { window } = new JSDOM("<!doctype html><body></body>");
const md = createMarkdown(window);

function dom(html) {
  const div = window.document.createElement("div");
  div.innerHTML = html;
  return div;
}

test("markdown renders code blocks, emphasis and lists", () => {
  const html = md.render("Hi **there**\n\n```python\nprint(1 < 2)\n```\n\n- a\n- b\n");
  const d = dom(html);
  assert.equal(d.querySelector("strong").textContent, "there");
  assert.equal(d.querySelector("pre code.language-python").textContent, "print(1 < 2)\n");
  assert.equal(d.querySelectorAll("li").length, 2);
});

test("raw HTML in model text is shown as text, never as elements", () => {
  const payload = '<img src=x onerror="window.pwned=1"> <script>window.pwned=1</script> <b>b</b>';
  const d = dom(md.render(payload));
  assert.equal(d.querySelector("img"), null);
  assert.equal(d.querySelector("script"), null);
  assert.equal(d.querySelector("b"), null);
  assert.match(d.textContent, /<img src=x onerror=/);
  assert.match(d.textContent, /<script>/);
});

test("dangerous link and image URLs are dropped; links get rel=noopener", () => {
  const d = dom(
    md.render(
      "[a](javascript:alert(1)) [b](JaVaScRiPt:alert(1)) [c](data:text/html;base64,PHNjcmlwdD4=) " +
        "[d](vbscript:x) [e](https://example.org/x) ![i](data:image/png;base64,AAAA) ![j](https://example.org/i.png)",
    ),
  );
  for (const a of d.querySelectorAll("a")) {
    const href = a.getAttribute("href");
    assert.ok(href === null || href.startsWith("https://"), `unsafe href kept: ${href}`);
    assert.equal(a.getAttribute("rel"), "noopener noreferrer");
    assert.equal(a.getAttribute("target"), "_blank");
  }
  assert.equal(d.querySelector('a[href="https://example.org/x"]').textContent, "e");
  assert.equal(d.querySelector("img"), null);
  // markdown-it leaves a link with a bad URL as literal text, which is the right outcome.
  for (const el of d.querySelectorAll("*")) {
    for (const attr of el.attributes) assert.doesNotMatch(attr.value, /javascript:|vbscript:|data:/i);
  }
});

test("images are links the user can open, never fetched on render", () => {
  const d = dom(md.render("see ![the chart](https://example.org/c.png?q=secret) and ![](data:image/png;base64,AAAA)"));
  assert.equal(d.querySelector("img"), null);
  const [chart, data] = d.querySelectorAll("a.dk-image");
  assert.equal(chart.getAttribute("href"), "https://example.org/c.png?q=secret");
  assert.equal(chart.textContent, "🖼 the chart");
  assert.equal(chart.getAttribute("rel"), "noopener noreferrer");
  assert.equal(data.getAttribute("href"), null); // not a safe link: inert text
});

test("autolinks and reference links cannot smuggle script URLs", () => {
  const d = dom(md.render("<javascript:alert(1)>\n\n[x][r]\n\n[r]: javascript:alert(1)\n"));
  assert.equal(d.innerHTML.toLowerCase().includes("javascript:alert"), d.textContent.toLowerCase().includes("javascript:alert"));
  for (const a of d.querySelectorAll("a")) assert.equal(a.getAttribute("href"), null);
});

test("stableSplit cuts after the last blank line outside a code fence", () => {
  assert.equal(stableSplit(""), 0);
  assert.equal(stableSplit("one line still going"), 0);
  const t = "para one\n\npara two\n\nthird is stre";
  assert.equal(t.slice(stableSplit(t)), "third is stre");
  const fenced = "intro\n\n```\ncode\n\nmore code\n";
  assert.equal(fenced.slice(stableSplit(fenced)), "```\ncode\n\nmore code\n");
  const closed = "intro\n\n```\ncode\n\nmore\n```\n\ntail";
  assert.equal(closed.slice(stableSplit(closed)), "tail");
});

test("rendering the stable prefix and the tail separately matches for plain paragraphs", () => {
  const t = "# Title\n\nSome *text* here.\n\n```js\nlet a = 1;\n\nlet b = 2;\n```\n\nAnd a tail";
  const cut = stableSplit(t);
  assert.equal(md.render(t.slice(0, cut)) + md.render(t.slice(cut)), md.render(t));
});

// parseBlocks' settled blocks and rest, rendered (as the markdown view does) and serialised.
function split(text, cut, partial = false) {
  const { settled, rest, restStart } = md.parseBlocks(text, cut, partial);
  const html = (tokens, highlight) => {
    const div = window.document.createElement("div");
    div.append(md.renderTokens(tokens, highlight));
    return div.innerHTML;
  };
  return [html(settled.flatMap((b) => b.tokens), true), html(rest, false), restStart, settled];
}

test("parseBlocks: settled blocks and the rest from one parse, equal to rendering each part", () => {
  const text = "# Title\n\nA *paragraph*.\n\n```js\nx\n\ny\n```\n\nstill wri";
  const cut = stableSplit(text);
  const [settled, rest, start, blocks] = split(text, cut);
  assert.equal(start, cut);
  assert.equal(settled, md.render(text.slice(0, cut), true));
  assert.equal(rest, md.render(text.slice(cut)));
  assert.equal(settled + rest, md.render(text, true));
  // each block's offsets: its text, and where the next one starts
  assert.deepEqual(blocks.map((b) => text.slice(b.start, b.end)), ["# Title\n", "A *paragraph*.\n", "```js\nx\n\ny\n```\n"]);
  assert.deepEqual(blocks.map((b) => b.lines), [1, 1, 5]);
});

test("parseBlocks: a block that goes on past the cut (a loose list) stays whole in the rest", () => {
  const text = "Intro.\n\n- one\n\n- two\n- thr";
  const cut = stableSplit(text); // after "- one\n\n"
  assert.equal(text.slice(cut), "- two\n- thr");
  const [settled, rest, start] = split(text, cut);
  assert.equal(text.slice(start), "- one\n\n- two\n- thr");
  assert.equal(settled, md.render("Intro.\n"));
  assert.equal(rest, md.render(text.slice(start)));
  assert.equal(dom(rest).querySelectorAll("ul").length, 1);
});

test("parseBlocks: a cut at the end settles everything; a partial text keeps its last block back", () => {
  const text = "Para.\n\n- a\n\n- b";
  const [, rest, start, blocks] = split(text, text.length);
  assert.equal(rest, "");
  assert.equal(start, text.length);
  assert.equal(blocks.length, 2);
  const [, , partialStart, partialBlocks] = split(text, text.length, true);
  assert.equal(partialBlocks.length, 1, "the list may go on after the text");
  assert.equal(text.slice(partialStart), "- a\n\n- b");
});

test("settled code blocks are highlighted (a registered language only); the open tail never is", () => {
  const text = "```python\ndef f(x):\n    return 'a'\n```\n\n```python\nimport os\n";
  const [settled, tail] = split(text, stableSplit(text));
  const head = dom(settled);
  assert.ok(head.querySelector("code.language-python .hljs-keyword"), settled);
  assert.equal(head.querySelector("code").textContent, "def f(x):\n    return 'a'\n");
  assert.equal(dom(tail).querySelector(".hljs-keyword"), null, tail);
  // a whole render highlights only when asked (a finished answer), and sanitises the result
  assert.equal(dom(md.render("```js\nlet a = 1\n```\n")).querySelector("[class^=hljs]"), null);
  assert.ok(dom(md.render("```js\nlet a = 1\n```\n", true)).querySelector(".hljs-keyword"));
  const evil = dom(md.render("```html\n<img src=x onerror=alert(1)>\n```\n", true));
  assert.equal(evil.querySelector("img"), null);
  assert.equal(evil.querySelector("code").textContent, "<img src=x onerror=alert(1)>\n");
  // no guessing for a language that is not registered
  assert.equal(dom(md.render("```cobol\nMOVE A TO B\n```\n", true)).querySelector("[class^=hljs]"), null);
});

test("rendered tokens are sanitised as whole renders are: no images, no script URLs", () => {
  const text = "![x](https://example.org/i.png) [a](javascript:alert(1)) <img src=x onerror=alert(1)>\n\n";
  const [settled] = split(text, text.length);
  const d = dom(settled);
  assert.equal(d.querySelector("img"), null);
  assert.equal(d.querySelector("a.dk-image").getAttribute("href"), "https://example.org/i.png");
  for (const a of d.querySelectorAll("a")) assert.equal(a.getAttribute("rel"), "noopener noreferrer");
  assert.doesNotMatch(d.innerHTML, /href="javascript:/i);
  assert.equal(settled, md.render(text));
});

test("stableSplit from an earlier split gives the same answer as a whole scan", () => {
  let text = "";
  for (let i = 1; i <= 30; i++) text += `## S${i}\n\npara ${i}\n\n\`\`\`py\nx = ${i}\n\n\ny\n\`\`\`\n- a\n- b\n\n`;
  let cut = 0;
  for (let end = 0; end <= text.length; end += 7) {
    const prefix = text.slice(0, end);
    const whole = stableSplit(prefix);
    assert.equal(stableSplit(prefix, cut), whole, `at ${end}`);
    cut = whole;
  }
});

test("renderTokens (the streaming view's path, its sanitizer configured once) sanitizes as render does", () => {
  const payloads = [
    '<img src=x onerror="window.pwned=1"> <script>window.pwned=1</script> <b>b</b>',
    "[a](javascript:alert(1)) [c](data:text/html;base64,PHNjcmlwdD4=) [e](https://example.org/x) ![j](https://example.org/i.png)",
    "<javascript:alert(1)>\n\n[x][r]\n\n[r]: javascript:alert(1)\n",
  ];
  for (const payload of payloads) {
    for (let i = 0; i < 2; i++) {
      const [settled] = split(payload + "\n", payload.length + 1);
      assert.equal(settled, md.render(payload, true));
      const d = dom(settled);
      assert.equal(d.querySelector("img, script, b"), null);
      for (const a of d.querySelectorAll("a")) {
        const href = a.getAttribute("href");
        assert.ok(href === null || href.startsWith("https://"), `unsafe href kept: ${href}`);
        assert.equal(a.getAttribute("rel"), "noopener noreferrer");
      }
    }
  }
});

test("renderChunks: one chunk div per group of blocks, in one sanitize; raw HTML in the text makes no chunk", () => {
  const text = '# One\n\n<div class="dk-md-chunk">fake</div>\n\n```python\nx = 1\n```\n\n- a\n- b\n\nlast\n';
  const { settled } = md.parseBlocks(text, text.length);
  const groups = [settled.slice(0, 2), settled.slice(2, 3), settled.slice(3)].map((g) => g.flatMap((b) => b.tokens));
  const fragment = md.renderChunks(groups, true);
  const chunks = [...fragment.children];
  assert.equal(chunks.length, 3);
  assert.equal(fragment.childNodes.length, 3, "nothing between the chunks");
  groups.forEach((tokens, i) => {
    assert.equal(chunks[i].className, "dk-md-chunk");
    const div = window.document.createElement("div");
    div.append(md.renderTokens(tokens, true));
    assert.equal(chunks[i].innerHTML, div.innerHTML);
  });
  assert.match(chunks[0].textContent, /<div class="dk-md-chunk">fake<\/div>/);
  assert.ok(chunks[1].querySelector("pre code .hljs-number"));
});
