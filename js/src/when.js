// "5 min ago" for the conversation list. Pure (the clock is a parameter) so it runs in Node tests.

export function relativeTime(seconds, nowMs = Date.now()) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "";
  const ago = Math.max(0, nowMs / 1000 - seconds);
  if (ago < 45) return "just now";
  if (ago < 3600) return `${Math.round(ago / 60)} min ago`;
  if (ago < 86400) return `${Math.round(ago / 3600)} h ago`;
  if (ago < 7 * 86400) return `${Math.round(ago / 86400)} d ago`;
  return new Date(seconds * 1000).toISOString().slice(0, 10);
}

// Thread ids are long ("cell-<32 hex>-<12 hex>"); their tail tells them apart.
export function shortId(id) {
  const s = String(id ?? "");
  return s.length > 10 ? `…${s.slice(-8)}` : s;
}
