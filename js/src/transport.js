// One WebSocket to `deltakit/ws`, reopened with exponential backoff until closed for good.
// It knows frames, not runs: what to send after a (re)open is the controller's business.

export const ConnState = Object.freeze({
  CONNECTING: "connecting",
  OPEN: "open",
  RECONNECTING: "reconnecting",
  CLOSED: "closed",
});

// A frame is one event object or an array of them. An `error` without an eventId is the
// server's reply to a bad frame, not part of any run.
export function parseFrame(data) {
  let parsed;
  try {
    parsed = JSON.parse(data);
  } catch {
    return { events: [], errors: ["The server sent a frame that is not JSON."] };
  }
  const items = Array.isArray(parsed) ? parsed : [parsed];
  const events = [];
  const errors = [];
  for (const item of items) {
    if (item === null || typeof item !== "object") continue;
    if (item.type === "error" && !Number.isInteger(item.eventId)) {
      errors.push(typeof item.message === "string" ? item.message : "Protocol error");
    } else {
      events.push(item);
    }
  }
  return { events, errors };
}

export function backoffDelay(attempt, { initial = 500, max = 10000, random = Math.random } = {}) {
  const delay = Math.min(max, initial * 2 ** attempt);
  return Math.round(delay * (0.75 + 0.5 * random()));
}

export class Transport {
  constructor({
    url,
    onOpen = () => {},
    onEvents = () => {},
    onProtocolError = () => {},
    onState = () => {},
    WebSocketImpl = globalThis.WebSocket,
    timers = globalThis,
    backoff = {},
  }) {
    this.url = url;
    this.onOpen = onOpen;
    this.onEvents = onEvents;
    this.onProtocolError = onProtocolError;
    this.onState = onState;
    this.WebSocketImpl = WebSocketImpl;
    this.timers = timers;
    this.backoff = backoff;
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.closed = false;
    this.state = ConnState.CLOSED;
  }

  get isOpen() {
    return this.socket !== null && this.socket.readyState === 1;
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.onState(state);
  }

  connect() {
    if (this.closed || this.socket || this.timer !== null) return;
    this.setState(this.attempt === 0 ? ConnState.CONNECTING : ConnState.RECONNECTING);
    let socket;
    try {
      socket = new this.WebSocketImpl(this.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.attempt = 0;
      this.setState(ConnState.OPEN);
      this.onOpen();
    };
    socket.onmessage = (msg) => {
      if (this.socket !== socket) return;
      const { events, errors } = parseFrame(msg.data);
      for (const e of errors) this.onProtocolError(e);
      if (events.length) this.onEvents(events);
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.scheduleReconnect();
    };
    socket.onerror = () => {
      // onclose follows; nothing to do here.
    };
  }

  scheduleReconnect() {
    if (this.closed) return;
    this.setState(ConnState.RECONNECTING);
    const delay = backoffDelay(this.attempt, this.backoff);
    this.attempt += 1;
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay);
  }

  // Reconnect now instead of waiting out the backoff (e.g. the user pressed Send).
  kick() {
    if (this.closed || this.socket) return;
    if (this.timer !== null) {
      this.timers.clearTimeout(this.timer);
      this.timer = null;
    }
    this.connect();
  }

  send(payload) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(payload));
    return true;
  }

  close() {
    this.closed = true;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
      try {
        socket.close();
      } catch {
        // already closing
      }
    }
    this.setState(ConnState.CLOSED);
  }
}
