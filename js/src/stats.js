// Cheap counters on the page (window.__deltakitStats) for the browser benchmark and tests:
// how many flushes, events and markdown renders the widget did, and the time they took.
export const stats = (globalThis.__deltakitStats ??= {
  flushes: 0,
  events: 0,
  markdownRenders: 0,
  markdownChars: 0,
  markdownMs: 0, // time in markdown-it + DOMPurify
  flushMs: 0, // time applying events: state update, render, markdown included
});
