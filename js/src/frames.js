// The clock and the next-frame scheduler the controller and the pacer share.

export const now = () => globalThis.performance?.now() ?? Date.now();

// When the work of the animation frame now running began: at the first of its callbacks
// scheduled here (the controller's flush, the pacer's tick, in either order).
let frameStamp = null; // requestAnimationFrame's timestamp: the same for all callbacks of a frame
let frameStart = 0;
let inFrame = false;

// fn once, at the next animation frame; requestAnimationFrame does not fire in a hidden tab,
// so a timer keeps the work going there.
export function nextFrame(fn) {
  let done = false;
  const once = (stamp) => {
    if (done) return;
    done = true;
    if (typeof stamp !== "number" || stamp !== frameStamp) {
      frameStamp = typeof stamp === "number" ? stamp : null;
      frameStart = now();
    }
    inFrame = true;
    try {
      fn();
    } finally {
      inFrame = false;
    }
  };
  if (typeof globalThis.requestAnimationFrame === "function") globalThis.requestAnimationFrame(once);
  globalThis.setTimeout(once, 250);
}

// Milliseconds of this animation frame's work done so far by callbacks of nextFrame: the pacer
// leaves them out of its budget, so that a flush and the rendering after it together stay
// within one frame's budget. 0 outside such a callback (an event handler's task of its own).
export function frameSpent() {
  return inFrame ? now() - frameStart : 0;
}
