// Pure helpers for tool cards: folding long text, pretty JSON, durations. No DOM, so Node tests
// can run them.

export const FOLD_LINES = 20;

// The first `max` lines of `value` and how many lines were left out (0: nothing folded). A
// fold that would hide only a line or two is not worth a "show all": it shows everything.
export function fold(value, max = FOLD_LINES) {
  const text = String(value ?? "");
  let pos = -1;
  for (let n = 0; n < max; n++) {
    pos = text.indexOf("\n", pos + 1);
    if (pos < 0) return { shown: text, hidden: 0, lines: n + 1 };
  }
  const lines = text.split("\n").length;
  if (lines - max <= 2) return { shown: text, hidden: 0, lines };
  return { shown: text.slice(0, pos), hidden: lines - max, lines };
}

// JSON objects and arrays indented; anything else as it came.
export function pretty(value) {
  if (value === "" || value == null) return "";
  const s = String(value);
  const first = s.trimStart()[0];
  if (first !== "{" && first !== "[") return s;
  try {
    const parsed = JSON.parse(s);
    return typeof parsed === "object" && parsed !== null ? JSON.stringify(parsed, null, 2) : s;
  } catch {
    return s;
  }
}

// "0.4 s", "12 s", "2 min 5 s".
export function formatDuration(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) return "";
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)} min ${whole % 60} s`;
}

// How long a tool call took, from its events' server timestamps (null if unknown).
export function toolDuration(part) {
  if (typeof part.startTs !== "number" || typeof part.endTs !== "number") return null;
  return Math.max(0, part.endTs - part.startTs);
}
