// The controller against a fake server: resume after reload, reconnect, kernel requests, stop.
import assert from "node:assert/strict";
import { test } from "node:test";

import { apiUrl, serverConfig, socketUrl, xsrfCookie } from "../src/config.js";
import { Controller } from "../src/controller.js";
import { runText } from "../src/reducer.js";

const tick = () => new Promise((r) => setTimeout(r, 5));

async function until(cond, what = "condition") {
  for (let i = 0; i < 200; i++) {
    if (cond()) return;
    await tick();
  }
  throw new Error(`timed out waiting for ${what}`);
}

function fakeModel(initial = {}) {
  const attrs = {
    thread_id: "t1",
    agent: "",
    _requests: [],
    _handled: [],
    messages: [],
    run_id: "",
    status: "idle",
    _instance_id: "i1",
    ...initial,
  };
  const listeners = new Map();
  return {
    attrs,
    saves: 0,
    get: (k) => attrs[k],
    set(k, v) {
      attrs[k] = v;
    },
    save_changes() {
      this.saves += 1;
    },
    on(name, cb) {
      listeners.set(name, [...(listeners.get(name) ?? []), cb]);
    },
    off(name, cb) {
      listeners.set(name, (listeners.get(name) ?? []).filter((x) => x !== cb));
    },
    kernelSets(k, v) {
      attrs[k] = v;
      for (const cb of listeners.get(`change:${k}`) ?? []) cb();
    },
  };
}

// One run's events as the server logs them.
function runEvents(runId, text = "Hello, world. This is the full answer.") {
  const events = [{ type: "run_started", runId, threadId: "t1", agent: "demo" }];
  for (const word of text.match(/.{1,4}/g)) events.push({ type: "text_delta", delta: word });
  events.push({ type: "done", status: "completed" });
  return events.map((e, eventId) => ({ ...e, runId, eventId }));
}

class FakeServer {
  constructor() {
    this.runs = []; // { run_id, message, status, events }
    this.sockets = [];
    this.frames = [];
    this.follows = [];
    this.posts = [];
    this.requests = []; // "METHOD path" of every HTTP call but agents
    this.cells = new Map(); // cell key -> thread id
    this.others = new Map(); // thread id (not t1) -> runs
    this.list = [];
    this.autoRun = null; // (message) => events to emit for a start
  }

  thread() {
    const active = this.runs.find((r) => !["completed", "cancelled", "failed", "interrupted"].includes(r.status));
    return {
      thread_id: "t1",
      runs: this.runs.map((r) => ({ ...r, events: r.events.slice() })),
      active_run_id: active?.run_id ?? null,
    };
  }

  fetch = async (url, init) => {
    if (url.endsWith("/deltakit/agents")) return json({ default: "demo", agents: [] });
    const method = init?.method ?? "GET";
    this.requests.push(`${method} ${url.replace("http://h/base/deltakit/", "")}`);
    const cell = url.match(/\/deltakit\/cells\/([^?]+)$/);
    if (cell) {
      const key = decodeURIComponent(cell[1]);
      if (method === "PUT") {
        this.cells.set(key, JSON.parse(init.body).thread_id);
        return json({ status: "ok" });
      }
      return json({ key, thread_id: this.cells.get(key) ?? null });
    }
    if (url.includes("/deltakit/threads?")) return json({ threads: this.list });
    if (url.includes("/deltakit/threads/")) {
      const id = decodeURIComponent(url.split("/deltakit/threads/")[1]);
      if (method === "DELETE") return json({ status: "ok" });
      if (id !== "t1") {
        const other = this.others.get(id);
        return other ? json({ thread_id: id, runs: other, active_run_id: null }) : json({ message: "no such thread" }, 404);
      }
      if (!this.runs.length) return json({ message: "no such thread" }, 404);
      return json(this.thread());
    }
    if (url.includes("/continue")) {
      this.posts.push({ url, headers: init.headers, body: JSON.parse(init.body) });
      return this.continueReply ?? json({ status: "ok" });
    }
    if (url.includes("/cancel")) {
      this.posts.push({ url, headers: init.headers });
      return json({ status: "ok" });
    }
    return json({}, 404);
  };

  get WebSocket() {
    const server = this;
    return class FakeSocket {
      constructor(url) {
        this.url = url;
        this.readyState = 0;
        this.sent = [];
        server.sockets.push(this);
        setTimeout(() => {
          if (this.readyState !== 0) return;
          this.readyState = 1;
          this.onopen?.();
        }, 1);
      }
      send(data) {
        const frame = JSON.parse(data);
        this.sent.push(frame);
        // Thread follows are kept apart so the run frames read as before.
        if ("followThread" in frame) server.follows.push(frame.followThread);
        else server.frames.push(frame);
      }
      push(payload) {
        this.onmessage?.({ data: JSON.stringify(payload) });
      }
      drop() {
        this.readyState = 3;
        this.onclose?.();
      }
      close() {
        this.readyState = 3;
      }
    };
  }

  get socket() {
    return this.sockets[this.sockets.length - 1];
  }
}

function json(body, status = 200) {
  return { ok: status < 400, status, statusText: "", json: async () => body };
}

const cfg = {
  found: true,
  baseUrl: "http://h/base/",
  wsBase: "ws://h/base/",
  token: "tok",
  doc: { cookie: "a=b; _xsrf=2%7Cabc" },
};

function make(server, model = fakeModel()) {
  const controller = new Controller(model, {
    cfg,
    WebSocketImpl: server.WebSocket,
    fetchImpl: server.fetch,
    schedule: (fn) => setTimeout(fn, 0),
    backoff: { initial: 2, max: 5 },
  });
  return { controller, model };
}

test("config: URLs, token in the socket query, xsrf cookie", () => {
  assert.equal(apiUrl(cfg, "agents"), "http://h/base/deltakit/agents");
  assert.equal(socketUrl(cfg), "ws://h/base/deltakit/ws?token=tok");
  assert.equal(socketUrl({ ...cfg, token: "" }), "ws://h/base/deltakit/ws");
  assert.equal(xsrfCookie(cfg.doc), "2|abc");
  const doc = {
    getElementById: () => ({ textContent: JSON.stringify({ baseUrl: "/user/x/", wsUrl: "", token: "" }) }),
  };
  const c = serverConfig(doc, { href: "https://hub.example/user/x/lab" });
  assert.equal(c.baseUrl, "https://hub.example/user/x/");
  assert.equal(c.wsBase, "wss://hub.example/user/x/");
  assert.equal(c.token, "");
  const none = serverConfig({ getElementById: () => null }, { href: "http://h:8888/lab" });
  assert.equal(none.found, false);
  assert.equal(none.baseUrl, "http://h:8888/");
});

test("reload mid-run: rebuild from the thread, resume from the last event, same final text", async () => {
  const server = new FakeServer();
  const full = runEvents("r1");
  server.runs.push({ run_id: "r0", message: "first", status: "completed", events: runEvents("r0", "Old answer.") });
  server.runs.push({ run_id: "r1", message: "second", status: "running", events: full.slice(0, 6) });
  const { controller, model } = make(server);
  await until(() => server.frames.length > 0, "resume frame");
  assert.deepEqual(server.frames[0], { runId: "r1", lastEventId: 5 });
  assert.equal(server.socket.url, "ws://h/base/deltakit/ws?token=tok");
  // A sloppy replay that overlaps, split over frames, one of them an array.
  server.socket.push(full.slice(3, 8));
  for (const e of full.slice(8)) server.socket.push(e);
  await until(() => controller.state.runs[1]?.status === "completed", "run end");
  assert.equal(runText(controller.state.runs[1]), "Hello, world. This is the full answer.");
  assert.equal(model.attrs.status, "completed");
  assert.equal(model.attrs.run_id, "r1");
  assert.deepEqual(
    model.attrs.messages.map((m) => [m.role, m.text]),
    [
      ["user", "first"],
      ["assistant", "Old answer."],
      ["user", "second"],
      ["assistant", "Hello, world. This is the full answer."],
    ],
  );
  controller.dispose();
});

test("a dropped socket reconnects and resumes from what is rendered", async () => {
  const server = new FakeServer();
  const full = runEvents("r1");
  server.runs.push({ run_id: "r1", message: "q", status: "running", events: full.slice(0, 2) });
  const { controller } = make(server);
  await until(() => server.frames.length === 1);
  server.socket.push(full.slice(2, 7));
  await until(() => controller.state.runs[0].lastEventId === 6);
  server.runs[0].events = full.slice(0, 9);
  server.socket.drop();
  assert.equal(controller.conn, "reconnecting");
  await until(() => server.frames.length === 2, "resume after reconnect");
  assert.equal(server.sockets.length, 2);
  // The snapshot fetched on reconnect already had events up to 8.
  assert.deepEqual(server.frames[1], { runId: "r1", lastEventId: 8 });
  assert.equal(controller.conn, "open");
  server.socket.push(full.slice(9));
  await until(() => controller.state.runs[0].status === "completed");
  assert.equal(runText(controller.state.runs[0]), "Hello, world. This is the full answer.");
  controller.dispose();
});

test("send() from the kernel before any view: start frame once, claimed in _handled", async () => {
  const server = new FakeServer();
  const model = fakeModel({ agent: "demo", _requests: [{ id: "q1", op: "send", text: "hi there" }] });
  const { controller } = make(server, model);
  await until(() => server.frames.length === 1, "start frame");
  assert.deepEqual(server.frames[0], { message: "hi there", threadId: "t1", agent: "demo" });
  assert.deepEqual(model.attrs._handled, ["q1"]);
  // The kernel echoing the same list again does not start a second run.
  model.kernelSets("_requests", [{ id: "q1", op: "send", text: "hi there" }]);
  const events = runEvents("rX", "ok!");
  server.socket.push(events);
  await until(() => controller.state.runs[0].status === "completed");
  assert.equal(controller.state.runs.length, 1);
  assert.equal(server.frames.length, 1);
  // A second request queued while idle starts the next run.
  model.kernelSets("_requests", [{ id: "q2", op: "send", text: "more" }]);
  await until(() => server.frames.length === 2);
  assert.equal(server.frames[1].message, "more");
  controller.dispose();
});

test("a request already handled by another front end is not repeated", async () => {
  const server = new FakeServer();
  const model = fakeModel({ _requests: [{ id: "q1", op: "send", text: "x" }], _handled: ["q1"] });
  const { controller } = make(server, model);
  await until(() => controller.conn === "open" && controller.hydrated);
  await tick();
  assert.equal(server.frames.length, 0);
  controller.dispose();
});

test("stop posts cancel with the xsrf header and the token", async () => {
  const server = new FakeServer();
  const full = runEvents("r1");
  server.runs.push({ run_id: "r1", message: "q", status: "running", events: full.slice(0, 3) });
  const { controller, model } = make(server);
  await until(() => server.frames.length === 1);
  model.kernelSets("_requests", [{ id: "s1", op: "stop" }]);
  await until(() => server.posts.length === 1, "cancel POST");
  assert.equal(server.posts[0].url, "http://h/base/deltakit/jobs/r1/cancel");
  assert.equal(server.posts[0].headers["X-XSRFToken"], "2|abc");
  assert.equal(server.posts[0].headers.Authorization, "token tok");
  assert.equal(controller.state.runs[0].stopRequested, true);
  server.socket.push({ type: "done", status: "cancelled", runId: "r1", eventId: 3 });
  await until(() => controller.state.runs[0].status === "cancelled");
  assert.equal(model.attrs.status, "cancelled");
  assert.equal(model.attrs.messages[1].status, "cancelled");
  controller.dispose();
});

test("stop right after send cancels once run_started names the run", async () => {
  const server = new FakeServer();
  const model = fakeModel({
    _requests: [
      { id: "a", op: "send", text: "go" },
      { id: "b", op: "stop" },
    ],
  });
  const { controller } = make(server, model);
  await until(() => server.frames.length === 1);
  assert.equal(server.posts.length, 0);
  server.socket.push(runEvents("r9").slice(0, 1));
  await until(() => server.posts.length === 1);
  assert.match(server.posts[0].url, /jobs\/r9\/cancel$/);
  controller.dispose();
});

test("a start whose run_started was lost is found on the server, not sent twice", async () => {
  const server = new FakeServer();
  const { controller } = make(server);
  await until(() => controller.conn === "open" && controller.hydrated);
  controller.send("question");
  await until(() => server.frames.length === 1);
  // The server got it and started the run, but the socket died before run_started arrived.
  const events = runEvents("r5");
  server.runs.push({ run_id: "r5", message: "question", status: "running", events: events.slice(0, 4) });
  server.socket.drop();
  await until(() => server.frames.length === 2);
  assert.deepEqual(server.frames[1], { runId: "r5", lastEventId: 3 });
  server.socket.push(events.slice(4));
  await until(() => controller.state.runs[0].status === "completed");
  assert.equal(controller.state.runs.length, 1);
  controller.dispose();
});

test("a start the server never saw is sent again after reconnecting", async () => {
  const server = new FakeServer();
  const { controller } = make(server);
  await until(() => controller.conn === "open" && controller.hydrated);
  controller.send("question");
  await until(() => server.frames.length === 1);
  server.socket.drop();
  await until(() => server.frames.length === 2);
  assert.deepEqual(server.frames[1], { message: "question", threadId: "t1" });
  controller.dispose();
});

test("a protocol error for a start fails that run; the next message goes out", async () => {
  const server = new FakeServer();
  const { controller } = make(server);
  await until(() => controller.conn === "open" && controller.hydrated);
  controller.send("one");
  controller.send("two");
  await until(() => server.frames.length === 1);
  server.socket.push({ type: "error", message: "unknown agent 'x'" });
  await until(() => server.frames.length === 2);
  assert.equal(controller.state.runs[0].status, "failed");
  assert.equal(controller.state.runs[0].error, "unknown agent 'x'");
  assert.equal(server.frames[1].message, "two");
  controller.dispose();
});

test("many deltas arriving together are applied in one state update", async () => {
  const server = new FakeServer();
  server.runs.push({ run_id: "r1", message: "q", status: "running", events: runEvents("r1").slice(0, 1) });
  const { controller } = make(server);
  await until(() => server.frames.length === 1);
  let updates = 0;
  controller.subscribe(() => updates++);
  updates = 0;
  const rest = runEvents("r1").slice(1);
  for (const e of rest) server.socket.push(e);
  await until(() => controller.state.runs[0].status === "completed");
  assert.ok(updates <= 2, `expected one coalesced update, got ${updates}`);
  controller.dispose();
});

test("the socket that sent a start is not asked to resume that run once run_started arrives", async () => {
  const server = new FakeServer();
  const { controller } = make(server);
  await until(() => controller.hydrated && server.socket?.readyState === 1, "ready");
  controller.send("hello");
  await until(() => server.frames.length === 1, "start frame");
  const events = runEvents("r1");
  server.socket.push(events[0]);
  await until(() => controller.state.runs[0].runId === "r1", "run_started applied");
  await tick();
  for (const e of events.slice(1)) server.socket.push(e);
  await until(() => controller.state.runs[0].status === "completed", "run end");
  // The server follows a run on the socket that started it: a resume would make it replay.
  assert.deepEqual(server.frames, [{ message: "hello", threadId: "t1" }]);
  controller.dispose();
});

test("an expensive render spaces the next flush out, and nothing is lost", async () => {
  const server = new FakeServer();
  server.runs.push({ run_id: "r1", message: "q", status: "running", events: runEvents("r1").slice(0, 1) });
  const scheduled = [];
  const controller = new Controller(fakeModel(), {
    cfg,
    WebSocketImpl: server.WebSocket,
    fetchImpl: server.fetch,
    schedule: (fn) => {
      scheduled.push(fn);
      setTimeout(fn, 0);
    },
    backoff: { initial: 2, max: 5 },
  });
  await until(() => server.frames.length === 1, "resume");
  // A view whose render takes 12 ms (as a long markdown block would).
  controller.subscribe(() => {
    const end = performance.now() + 12;
    while (performance.now() < end);
  });
  const rest = runEvents("r1").slice(1);
  server.socket.push(rest[0]);
  await until(() => controller.flushCost >= 12, "one expensive flush");
  const before = scheduled.length;
  server.socket.push(rest[1]);
  // Not scheduled for the next frame: a timer waits out twice the last flush's cost first.
  assert.equal(scheduled.length, before);
  assert.ok(controller.flushTimer !== null);
  for (const e of rest.slice(2)) server.socket.push(e);
  await until(() => controller.state.runs[0].status === "completed", "run end");
  assert.equal(scheduled.length > before, true);
  assert.deepEqual(
    controller.state.runs[0].parts.filter((p) => p.kind === "text").map((p) => p.text).join(""),
    rest.filter((e) => e.type === "text_delta").map((e) => e.delta).join(""),
  );
  controller.dispose();
});

// ---- threads: a cell's binding, runs started elsewhere, switching ------------------------------

test("a cell's widget shows the thread last bound to its cell key", async () => {
  const server = new FakeServer();
  server.cells.set("cell-k", "cell-k-abc");
  server.others.set("cell-k-abc", [{ run_id: "r7", message: "older", status: "completed", events: runEvents("r7", "Kept.") }]);
  const model = fakeModel({ thread_id: "cell-k", cell_key: "cell-k", _fresh: false });
  const { controller } = make(server, model);
  await until(() => controller.state.runs.length === 1, "the bound thread's runs");
  assert.equal(model.attrs.thread_id, "cell-k-abc");
  assert.equal(runText(controller.state.runs[0]), "Kept.");
  // The key's own thread was never read: nothing of it can flash up first.
  assert.ok(!server.requests.includes("GET threads/cell-k"), server.requests.join());
  await until(() => server.follows.at(-1) === "cell-k-abc", "follow the bound thread");
  controller.dispose();
});

test("new=True or an explicit thread binds the cell once; a widget from saved state follows the binding", async () => {
  const server = new FakeServer();
  const fresh = fakeModel({ thread_id: "cell-k-123", cell_key: "cell-k", _fresh: true });
  const a = make(server, fresh).controller;
  await until(() => fresh.attrs._fresh === false, "PUT binding");
  assert.equal(server.cells.get("cell-k"), "cell-k-123");
  assert.equal(fresh.attrs.thread_id, "cell-k-123");
  assert.ok(!server.requests.includes("GET cells/cell-k"), "a fresh thread is not looked up");
  a.dispose();

  // Saved with a thread opened from the list; the cell was switched again before a reload.
  const server2 = new FakeServer();
  server2.cells.set("cell-k", "cell-k-newer");
  const saved = fakeModel({ thread_id: "from-the-list", cell_key: "cell-k", _fresh: false });
  const b = make(server2, saved).controller;
  await until(() => server2.requests.includes("GET threads/cell-k-newer"), "hydrate");
  assert.equal(saved.attrs.thread_id, "cell-k-newer");
  assert.ok(!server2.requests.includes("GET threads/from-the-list"));
  b.dispose();

  // Outside a notebook cell there is no key: no binding at all.
  const server3 = new FakeServer();
  const plain = fakeModel({ thread_id: "t9", cell_key: "", _fresh: true });
  const c = make(server3, plain).controller;
  await until(() => server3.requests.includes("GET threads/t9"), "hydrate");
  assert.ok(!server3.requests.some((r) => r.includes("cells/")), server3.requests.join());
  c.dispose();
});

test("thread_run: a run started in another view shows up and is resumed from its start", async () => {
  const server = new FakeServer();
  server.runs.push({ run_id: "r0", message: "first", status: "completed", events: runEvents("r0", "Old.") });
  const { controller } = make(server);
  await until(() => controller.hydrated && server.follows.length === 1, "follow");
  assert.equal(server.follows[0], "t1");
  server.socket.push({ type: "thread_run", threadId: "other", runId: "rx", message: "not ours" });
  server.socket.push({ type: "thread_run", threadId: "t1", runId: "r1", message: "from tab A", agent: "demo" });
  await until(() => server.frames.length === 1, "resume");
  assert.deepEqual(server.frames[0], { runId: "r1", lastEventId: -1 });
  assert.equal(controller.state.runs.length, 2);
  assert.equal(controller.state.runs[1].message, "from tab A");
  assert.equal(controller.state.runs[1].status, "running");
  // The same notice again (the follow after a reconnect) is no second run and no second resume.
  server.socket.push({ type: "thread_run", threadId: "t1", runId: "r1", message: "from tab A" });
  for (const e of runEvents("r1")) server.socket.push(e);
  await until(() => controller.state.runs[1].status === "completed", "run end");
  assert.equal(controller.state.runs.length, 2);
  assert.equal(server.frames.length, 1);
  assert.equal(runText(controller.state.runs[1]), "Hello, world. This is the full answer.");
  controller.dispose();
});

test("New chat: a fresh thread of the cell, bound to it; the old thread's late events are dropped", async () => {
  const server = new FakeServer();
  const full = runEvents("r1");
  server.runs.push({ run_id: "r1", message: "q", status: "running", events: full.slice(0, 3) });
  const model = fakeModel({ thread_id: "t1", cell_key: "cell-k", _fresh: false });
  const { controller } = make(server, model);
  await until(() => server.frames.length === 1, "resume");
  await controller.newChat();
  const id = model.attrs.thread_id;
  assert.match(id, /^cell-k-[0-9a-f]{12}$/);
  assert.equal(server.cells.get("cell-k"), id);
  assert.equal(server.follows.at(-1), id);
  assert.deepEqual(controller.state.runs, []);
  for (const e of full.slice(3)) server.socket.push(e);
  await until(() => server.requests.includes(`GET threads/${id}`), "hydrate the new thread");
  await tick();
  assert.deepEqual(controller.state.runs, [], "the old run leaked into the new thread");
  assert.equal(model.attrs.status, "idle");
  assert.deepEqual(model.attrs.messages, []);

  // Opening the old one from the list brings it back whole, and binds it again.
  server.runs[0].events = full;
  server.runs[0].status = "completed";
  await controller.switchThread("t1");
  await until(() => controller.state.runs[0]?.status === "completed", "old thread back");
  assert.equal(runText(controller.state.runs[0]), "Hello, world. This is the full answer.");
  assert.equal(server.cells.get("cell-k"), "t1");
  controller.dispose();
});

test("the conversation list and delete go to the threads endpoints; deleting the shown one starts over", async () => {
  const server = new FakeServer();
  server.list = [{ thread_id: "t1", title: "hi", status: "completed", runs: 1 }];
  const model = fakeModel();
  const { controller } = make(server, model);
  assert.deepEqual(await controller.listThreads(), server.list);
  assert.ok(server.requests.includes("GET threads?limit=50"));
  await controller.deleteThread("t1");
  assert.ok(server.requests.includes("DELETE threads/t1"));
  assert.notEqual(model.attrs.thread_id, "t1");
  assert.match(model.attrs.thread_id, /^[0-9a-f]{32}$/);
  controller.dispose();
});

test("a start sent just before New chat stays with the thread it was sent to", async () => {
  const server = new FakeServer();
  const model = fakeModel({ thread_id: "t1", cell_key: "" });
  const { controller } = make(server, model);
  await until(() => controller.hydrated, "hydrate");
  controller.send("to the old thread");
  await until(() => server.frames.some((f) => f.message === "to the old thread"), "start frame");
  await controller.newChat();
  // run_started for the old thread's run arrives after the switch, then its events.
  for (const e of runEvents("r1")) server.socket.push(e);
  await until(() => controller.hydrated, "hydrate the new thread");
  await tick();
  await tick();
  assert.deepEqual(controller.state.runs, []);
  controller.dispose();
});

// ---- human in the loop -------------------------------------------------------------------------

const CONFIRM = { id: "q1", kind: "confirmation", call_id: "c1", tool_name: "confirm_action", argument: '{"action":"x"}' };
const INPUT = {
  id: "q2",
  kind: "user_input",
  call_id: "c2",
  tool_name: "collect_input",
  argument: "{}",
  fields: [{ name: "answer", type: "str", description: "" }],
};

function pausedRun(runId, ...requirements) {
  return [
    { type: "run_started", runId, threadId: "t1" },
    { type: "run_paused", requirements },
  ].map((e, eventId) => ({ ...e, runId, eventId }));
}

async function pausedController(...requirements) {
  const server = new FakeServer();
  server.runs.push({ run_id: "r1", message: "tool confirm_action {}", status: "paused", events: pausedRun("r1", ...requirements) });
  const made = make(server);
  await until(() => made.controller.state.runs[0]?.status === "paused" && server.frames.length === 1, "paused run followed");
  assert.deepEqual(server.frames[0], { runId: "r1", lastEventId: 1 });
  return { server, ...made };
}

test("a paused run: pending reaches the kernel, Approve sends the decisions frame, run_resumed settles it", async () => {
  const { server, controller, model } = await pausedController(CONFIRM);
  assert.equal(model.attrs.status, "paused");
  assert.deepEqual(model.attrs.pending, [
    { id: "q1", kind: "confirmation", run_id: "r1", call_id: "c1", tool_name: "confirm_action", args: { action: "x" } },
  ]);
  controller.decide("r1", { id: "q1", approve: true, note: "ok" });
  assert.deepEqual(server.frames[1], { runId: "r1", decisions: [{ id: "q1", approve: true, note: "ok" }] });
  assert.equal(controller.state.runs[0].parts[0].request.sending, true);
  server.socket.push([
    { type: "run_resumed", runId: "r1", eventId: 2, decisions: [{ id: "q1", approve: true, note: "ok" }] },
    { type: "tool_result", runId: "r1", eventId: 3, call_id: "c1", tool_name: "confirm_action", output: "done: x" },
    { type: "done", runId: "r1", eventId: 4, status: "completed" },
  ]);
  await until(() => controller.state.runs[0].status === "completed", "run end");
  assert.deepEqual(model.attrs.pending, []);
  assert.equal(controller.deciding, null);
  assert.equal(server.posts.length, 0);
  controller.dispose();
});

test("a refused decision (error frame) gives the card its error back and keeps the run paused", async () => {
  const { server, controller } = await pausedController(CONFIRM);
  controller.decide("r1", { id: "q1", approve: true });
  server.socket.push({ type: "error", message: "requirement q1 is already resolved" });
  await until(() => controller.state.runs[0].parts[0].request.error !== null, "error on the card");
  const request = controller.state.runs[0].parts[0].request;
  assert.deepEqual([request.sending, request.error], [false, "requirement q1 is already resolved"]);
  assert.equal(controller.state.runs[0].status, "paused");
  // Not mistaken for a refused resume: no re-read, no second resume frame.
  assert.equal(server.frames.length, 2);
  controller.dispose();
});

test("two requirements: decisions wait until both are given, then go out in one frame", async () => {
  const { server, controller } = await pausedController(CONFIRM, INPUT);
  controller.decide("r1", { id: "q1", approve: false, note: "no" });
  assert.equal(server.frames.length, 1, "nothing sent while q2 is open");
  assert.deepEqual(controller.state.runs[0].parts[0].request.draft, { id: "q1", approve: false, note: "no" });
  controller.decide("r1", { id: "q2", values: { answer: "4" } });
  assert.deepEqual(server.frames[1], {
    runId: "r1",
    decisions: [
      { id: "q1", approve: false, note: "no" },
      { id: "q2", values: { answer: "4" } },
    ],
  });
  controller.dispose();
});

test("with the socket down the decision goes by POST runs/{id}/continue (XSRF), its error to the card", async () => {
  const { server, controller } = await pausedController(CONFIRM);
  server.continueReply = json({ message: "run r1 is not paused" }, 409);
  controller.transport.close();
  await controller.submitDecisions("r1", [{ id: "q1", approve: true }]);
  assert.equal(server.posts.length, 1);
  assert.equal(server.posts[0].url, "http://h/base/deltakit/runs/r1/continue");
  assert.deepEqual(server.posts[0].body, { runId: "r1", decisions: [{ id: "q1", approve: true }] });
  assert.equal(server.posts[0].headers["X-XSRFToken"], "2|abc");
  assert.match(controller.state.runs[0].parts[0].request.error, /run r1 is not paused/);
  controller.dispose();
});

test("the kernel's decide request (chat.approve()) goes out as the decisions frame, once", async () => {
  const { server, controller, model } = await pausedController(CONFIRM);
  const request = { id: "k1", op: "decide", run_id: "r1", decisions: [{ id: "q1", approve: true }] };
  model.kernelSets("_requests", [request]);
  assert.deepEqual(server.frames[1], { runId: "r1", decisions: [{ id: "q1", approve: true }] });
  assert.deepEqual(model.attrs._handled, ["k1"]);
  model.kernelSets("_requests", [request]);
  assert.equal(server.frames.length, 2);
  // A request for a run that no longer waits is refused with a notice, nothing sent.
  model.kernelSets("_requests", [{ id: "k2", op: "decide", run_id: "r0", decisions: [{ id: "q1", approve: true }] }]);
  assert.equal(controller.state.notice, "No tool call is waiting for a decision.");
  assert.equal(server.frames.length, 2);
  controller.dispose();
});

test("another view's decision (run_resumed without deciding here) resolves the card here too", async () => {
  const { server, controller, model } = await pausedController(CONFIRM);
  server.socket.push({ type: "run_resumed", runId: "r1", eventId: 2, decisions: [{ id: "q1", approve: true }] });
  await until(() => controller.state.runs[0].status === "running", "resumed");
  assert.deepEqual(model.attrs.pending, []);
  assert.equal(controller.state.runs[0].parts[0].request, undefined);
  controller.dispose();
});

test("Stop while paused cancels the run", async () => {
  const { server, controller } = await pausedController(CONFIRM);
  await controller.stop();
  assert.equal(server.posts.length, 1);
  assert.match(server.posts[0].url, /jobs\/r1\/cancel$/);
  server.socket.push({ type: "done", runId: "r1", eventId: 2, status: "cancelled" });
  await until(() => controller.state.runs[0].status === "cancelled", "cancelled");
  controller.dispose();
});

test("a kernel decision that arrives before the thread is read waits for it instead of failing", async () => {
  const server = new FakeServer();
  server.runs.push({ run_id: "r1", message: "m", status: "paused", events: pausedRun("r1", CONFIRM) });
  const model = fakeModel({ _requests: [{ id: "k1", op: "decide", run_id: "r1", decisions: [{ id: "q1", approve: true }] }] });
  const { controller } = make(server, model);
  // Over the socket, or by POST when it is not open yet.
  const sent = () => server.frames.find((f) => f.decisions) ?? server.posts.find((p) => p.url.endsWith("/continue"))?.body;
  await until(() => sent(), "decisions sent");
  assert.deepEqual(sent(), { runId: "r1", decisions: [{ id: "q1", approve: true }] });
  assert.equal(controller.state.notice, null);
  controller.dispose();
});
