// Syntax highlighting of settled code blocks: highlight.js core with a few common languages
// (the full bundle is ~1 MB). Colours come from style.css, which maps the hljs classes to
// JupyterLab's editor theme variables, so they follow the light/dark theme.
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import css from "highlight.js/lib/languages/css";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import markdown from "highlight.js/lib/languages/markdown";
import python from "highlight.js/lib/languages/python";
import shell from "highlight.js/lib/languages/shell";
import sql from "highlight.js/lib/languages/sql";
import typescript from "highlight.js/lib/languages/typescript";
import xml from "highlight.js/lib/languages/xml";
import yaml from "highlight.js/lib/languages/yaml";

const LANGUAGES = { bash, css, javascript, json, markdown, python, shell, sql, typescript, xml, yaml };
for (const [name, lang] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, lang);

// Highlighted HTML of `code` (escaped by highlight.js) or "" for a language not registered:
// markdown-it then escapes the block itself. No guessing of the language (highlightAuto runs
// every grammar, far too slow for a streaming answer).
export function highlightCode(code, lang) {
  const name = String(lang || "").trim().toLowerCase();
  if (!name || !hljs.getLanguage(name)) return "";
  try {
    return hljs.highlight(code, { language: name, ignoreIllegals: true }).value;
  } catch {
    return "";
  }
}
