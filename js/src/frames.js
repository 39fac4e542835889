// The clock and the next-frame scheduler the controller and the pacer share.

export const now = () => globalThis.performance?.now() ?? Date.now();

// fn once, at the next animation frame; requestAnimationFrame does not fire in a hidden tab,
// so a timer keeps the work going there.
export function nextFrame(fn) {
  let done = false;
  const once = () => {
    if (done) return;
    done = true;
    fn();
  };
  if (typeof globalThis.requestAnimationFrame === "function") globalThis.requestAnimationFrame(once);
  globalThis.setTimeout(once, 250);
}
