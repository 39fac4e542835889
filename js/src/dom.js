// The two DOM builders every view module uses. Text only ever goes in through textContent.

export function h(tag, className, attrs = {}) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

export function text(tag, className, value) {
  const el = h(tag, className);
  el.textContent = value;
  return el;
}
