// Cheap counters on the page (window.__deltakitStats) for the browser benchmark and tests:
// how many flushes, events and markdown renders the widget did. Integer increments only.
export const stats = (globalThis.__deltakitStats ??= {
  flushes: 0,
  events: 0,
  markdownRenders: 0,
  markdownChars: 0,
});
