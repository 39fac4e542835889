import assert from "node:assert/strict";
import { test } from "node:test";

import {
  activeRun,
  applyEvents,
  initialState,
  isTerminal,
  reduce,
  runText,
  toMessages,
} from "../src/reducer.js";

// A run as the server would stream it: ids 0..n-1, gap-free.
function script(runId, threadId = "t1") {
  const body = [
    { type: "run_started", runId, threadId, agent: "demo" },
    { type: "reasoning", text: "Let me " },
    { type: "reasoning", text: "think." },
    { type: "text_delta", delta: "Hello" },
    { type: "tool_call", tool_name: "add", argument: '{"a": 1, "b": 2}', call_id: "c1" },
    { type: "tool_result", tool_name: "add", call_id: "c1", output: "3", is_error: false },
    { type: "text_delta", delta: ", the sum " },
    { type: "text_delta", delta: "is **3**." },
    { type: "done", status: "completed" },
  ];
  return body.map((e, eventId) => ({ ...e, runId, eventId }));
}

function feed(state, events) {
  return reduce(state, { type: "events", events });
}

const FULL = "Hello, the sum is **3**.";

test("a full run builds text, reasoning and a tool card in order", () => {
  let s = reduce(initialState(), { type: "send", localId: "l1", message: "add 1 2" });
  assert.equal(s.runs[0].status, "pending");
  s = feed(s, script("r1"));
  const run = s.runs[0];
  assert.equal(run.runId, "r1");
  assert.equal(run.key, "local-l1", "key stays stable once the runId is known");
  assert.equal(run.status, "completed");
  assert.equal(run.agent, "demo");
  assert.equal(run.lastEventId, 8);
  assert.deepEqual(
    run.parts.map((p) => p.kind),
    ["reasoning", "text", "tool", "text"],
  );
  assert.equal(run.parts[0].text, "Let me think.");
  assert.deepEqual(run.parts[2], {
    kind: "tool",
    callId: "c1",
    name: "add",
    args: '{"a": 1, "b": 2}',
    result: "3",
    isError: false,
    startTs: null,
    endTs: null,
    images: [],
  });
  assert.equal(runText(run), FULL);
  assert.equal(activeRun(s), null);
});

test("events delivered one at a time equal the same events in one batch", () => {
  const events = script("r1");
  let one = initialState();
  for (const e of events) one = feed(one, [e]);
  const all = feed(initialState(), events);
  assert.deepEqual(one, all);
});

test("a replay overlapping what is rendered applies each event once", () => {
  const events = script("r1");
  for (let cut = 0; cut <= events.length; cut++) {
    for (let from = 0; from <= cut; from++) {
      // Rendered up to `cut`, then the server replays from `from` (an older lastEventId).
      let s = feed(initialState(), events.slice(0, cut));
      s = feed(s, events.slice(from));
      assert.equal(runText(s.runs[0]), FULL, `cut=${cut} from=${from}`);
      assert.equal(s.runs[0].parts.filter((p) => p.kind === "tool").length, 1);
      assert.equal(s.runs[0].parts[0].text, "Let me think.");
    }
  }
});

test("duplicated frames (two subscriptions, a double replay) are ignored", () => {
  const events = script("r1");
  const doubled = events.flatMap((e) => [e, e]);
  const s = feed(initialState(), doubled);
  assert.equal(runText(s.runs[0]), FULL);
  assert.equal(s.runs.length, 1);
});

test("an event past a hole is not applied and flags a gap until the hole is filled", () => {
  const events = script("r1");
  let s = feed(initialState(), events.slice(0, 3));
  s = feed(s, events.slice(5));
  assert.equal(s.runs[0].gap, true);
  assert.equal(s.runs[0].lastEventId, 2);
  assert.equal(runText(s.runs[0]), "");
  s = feed(s, events.slice(2)); // resume from lastEventId=2 replays 3.. (and 2 again)
  assert.equal(s.runs[0].gap, false);
  assert.equal(runText(s.runs[0]), FULL);
  assert.equal(s.runs[0].status, "completed");
});

test("hydrate from a thread snapshot then resume from the last rendered event id", () => {
  const r0 = script("r0");
  const r1 = script("r1");
  const thread = {
    thread_id: "t1",
    active_run_id: "r1",
    runs: [
      { run_id: "r0", message: "first", agent: "demo", status: "completed", events: r0 },
      { run_id: "r1", message: "second", agent: "demo", status: "running", events: r1.slice(0, 5) },
    ],
  };
  let s = reduce(initialState(), { type: "hydrate", thread });
  assert.equal(s.runs.length, 2);
  assert.equal(s.runs[0].message, "first");
  assert.equal(s.runs[0].status, "completed");
  assert.equal(s.runs[1].status, "running");
  const run = activeRun(s);
  assert.equal(run.runId, "r1");
  assert.equal(run.lastEventId, 4);
  // The server replays ids > lastEventId; a sloppy server that replays more is harmless.
  s = feed(s, r1.slice(run.lastEventId - 1));
  assert.equal(runText(s.runs[1]), FULL);
  assert.equal(s.runs[1].status, "completed");
});

test("a stale snapshot merged after live events does not roll text back", () => {
  const r1 = script("r1");
  let s = feed(initialState(), r1.slice(0, 8));
  const before = s.runs[0];
  s = reduce(s, {
    type: "hydrate",
    thread: { runs: [{ run_id: "r1", message: "m", status: "running", events: r1.slice(0, 4) }] },
  });
  assert.equal(runText(s.runs[0]), runText(before));
  assert.equal(s.runs[0].lastEventId, 7);
  assert.equal(s.runs[0].message, "m");
});

test("a local run waiting for its runId adopts the newer server run in a snapshot", () => {
  const old = { run_id: "old", message: "hi", status: "completed", events: script("old") };
  let s = reduce(initialState(), { type: "hydrate", thread: { runs: [old] } });
  s = reduce(s, { type: "send", localId: "a", message: "hi" });
  s = reduce(s, {
    type: "hydrate",
    thread: {
      runs: [old, { run_id: "new", message: "hi", status: "running", events: script("new").slice(0, 2) }],
    },
  });
  assert.equal(s.runs.length, 2);
  assert.equal(s.runs[0].runId, "old");
  assert.equal(s.runs[1].runId, "new");
  assert.equal(s.runs[1].key, "local-a");
  assert.equal(s.runs[1].status, "running");
});

test("a local run the snapshot does not know yet stays at the end", () => {
  let s = reduce(initialState(), { type: "send", localId: "a", message: "hi" });
  s = reduce(s, {
    type: "hydrate",
    thread: { runs: [{ run_id: "x", message: "other", status: "completed", events: [] }] },
  });
  assert.deepEqual(s.runs.map((r) => r.key), ["x", "local-a"]);
});

test("a snapshot of an interrupted run without a terminal event ends it", () => {
  const s = reduce(initialState(), {
    type: "hydrate",
    thread: { runs: [{ run_id: "r", message: "m", status: "interrupted", events: script("r").slice(0, 4) }] },
  });
  assert.equal(s.runs[0].status, "interrupted");
  assert.equal(activeRun(s), null);
});

test("cancelled and failed runs", () => {
  const ev = (runId, list) => list.map((e, eventId) => ({ ...e, runId, eventId }));
  let s = feed(
    initialState(),
    ev("c", [{ type: "run_started", runId: "c" }, { type: "text_delta", delta: "par" }, { type: "done", status: "cancelled" }]),
  );
  assert.equal(s.runs[0].status, "cancelled");
  assert.equal(runText(s.runs[0]), "par");
  s = feed(s, ev("f", [{ type: "run_started", runId: "f" }, { type: "error", message: "model exploded" }]));
  assert.equal(s.runs[1].status, "failed");
  assert.equal(s.runs[1].error, "model exploded");
  // `done` without a status is the seed recipe's plain done: completed.
  s = feed(s, ev("p", [{ type: "run_started", runId: "p" }, { type: "done" }]));
  assert.equal(s.runs[2].status, "completed");
  assert.ok(["completed", "cancelled", "failed", "interrupted"].every(isTerminal));
});

test("tool results match by call id, fall back to name, and keep error state", () => {
  const run = applyEvents(
    { key: "k", runId: "r", parts: [], lastEventId: -1, status: "running" },
    [
      { type: "tool_call", tool_name: "a", argument: "{}", call_id: "1" },
      { type: "tool_call", tool_name: "b", argument: "{}", call_id: null },
      { type: "tool_call", tool_name: "a", argument: "{}", call_id: "2" },
      { type: "tool_result", tool_name: "a", call_id: "2", output: "two", is_error: false },
      { type: "tool_result", tool_name: "b", call_id: null, output: "boom", is_error: true },
      { type: "tool_result", tool_name: "a", call_id: "1", output: "one" },
      { type: "tool_result", tool_name: "zzz", call_id: "9", output: "orphan" },
    ],
  );
  const tools = run.parts.filter((p) => p.kind === "tool");
  assert.deepEqual(
    tools.map((t) => [t.name, t.result, t.isError]),
    [["a", "one", false], ["b", "boom", true], ["a", "two", false], ["zzz", "orphan", false]],
  );
});

test("unknown event types are ignored but still advance the event id", () => {
  const s = feed(initialState(), [
    { type: "run_started", runId: "r", eventId: 0 },
    { type: "something_new", runId: "r", eventId: 1, x: 1 },
    { type: "text_delta", runId: "r", eventId: 2, delta: "ok" },
  ]);
  assert.equal(runText(s.runs[0]), "ok");
  assert.equal(s.runs[0].lastEventId, 2);
});

test("unchanged runs and parts keep their identity (the renderer relies on it)", () => {
  let s = feed(initialState(), script("a"));
  const a = s.runs[0];
  s = reduce(s, { type: "send", localId: "x", message: "more" });
  const r = script("b");
  s = feed(s, r.slice(0, 4));
  const b1 = s.runs[1];
  s = feed(s, r.slice(4, 5));
  assert.equal(s.runs[0], a);
  assert.equal(s.runs[1].parts[0], b1.parts[0], "finished reasoning part is reused");
  assert.equal(s.runs[1].parts[1], b1.parts[1], "text part before the tool card is reused");
});

test("events of two runs interleaved in one batch go to their runs", () => {
  const a = script("a");
  const b = script("b");
  const mixed = [];
  for (let i = 0; i < a.length; i++) mixed.push(a[i], b[i]);
  const s = feed(initialState(), mixed);
  assert.equal(s.runs.length, 2);
  assert.equal(runText(s.runs[0]), FULL);
  assert.equal(runText(s.runs[1]), FULL);
});

test("a rejected start fails the pending run; stop marks the run", () => {
  let s = reduce(initialState(), { type: "send", localId: "a", message: "hi" });
  s = reduce(s, { type: "stopRequested", runId: null });
  assert.equal(s.runs[0].stopRequested, true);
  s = reduce(s, { type: "startFailed", message: "unknown agent" });
  assert.equal(s.runs[0].status, "failed");
  assert.equal(s.runs[0].error, "unknown agent");
  s = reduce(s, { type: "startFailed", message: "orphan" });
  assert.equal(s.notice, "orphan");
});

test("toMessages exports finished runs only, with parsed tool args", () => {
  let s = feed(initialState(), script("a"));
  s = reduce(s, { type: "send", localId: "x", message: "still going" });
  const msgs = toMessages(s);
  assert.equal(msgs.length, 2);
  assert.deepEqual(msgs[0], { role: "user", text: "", tool_calls: [], status: "completed", run_id: "a" });
  assert.equal(msgs[1].role, "assistant");
  assert.equal(msgs[1].text, FULL);
  assert.equal(msgs[1].reasoning, "Let me think.");
  assert.deepEqual(msgs[1].tool_calls, [{ name: "add", args: { a: 1, b: 2 }, result: "3", is_error: false }]);
  JSON.stringify(msgs); // plain JSON
});

test("a long stream stays linear enough", () => {
  const n = 20000;
  const events = [{ type: "run_started", runId: "r", eventId: 0 }];
  for (let i = 1; i <= n; i++) events.push({ type: "text_delta", runId: "r", eventId: i, delta: "x" });
  let s = initialState();
  const t0 = Date.now();
  for (let i = 0; i < events.length; i += 50) s = feed(s, events.slice(i, i + 50));
  assert.equal(runText(s.runs[0]).length, n);
  assert.ok(Date.now() - t0 < 2000);
});

test("a run started in another view shows its user message at once, then fills by the resume", () => {
  let s = feed(initialState(), script("r1"));
  s = reduce(s, { type: "remoteRun", runId: "r2", message: "count 3", agent: "demo" });
  assert.equal(s.runs.length, 2);
  const shown = s.runs[1];
  assert.equal(shown.message, "count 3");
  assert.equal(shown.status, "running");
  assert.equal(shown.lastEventId, -1);
  assert.equal(activeRun(s), shown);
  // The resume replays the run from its first event: applied once, in order.
  s = feed(s, script("r2"));
  assert.equal(s.runs[1].status, "completed");
  assert.equal(runText(s.runs[1]), FULL);
  assert.equal(s.runs[1].message, "count 3");
});

test("a notice for a run known already (or without a run id) changes nothing", () => {
  const s = feed(initialState(), script("r1"));
  assert.equal(reduce(s, { type: "remoteRun", runId: "r1", message: "again" }), s);
  assert.equal(reduce(s, { type: "remoteRun", runId: "", message: "x" }), s);
  assert.equal(reduce(s, { type: "remoteRun", message: "x" }), s);
  // A snapshot read after the notice merges into the same run, not a second one.
  let t = reduce(initialState(), { type: "remoteRun", runId: "r9", message: "hi" });
  t = reduce(t, { type: "hydrate", thread: { runs: [{ run_id: "r9", message: "hi", status: "running", events: script("r9").slice(0, 3) }] } });
  assert.equal(t.runs.length, 1);
  assert.equal(t.runs[0].lastEventId, 2);
});

test("reset drops the previous thread's runs and notice", () => {
  let s = feed(initialState(), script("r1"));
  s = reduce(s, { type: "notice", message: "boom" });
  s = reduce(s, { type: "reset" });
  assert.deepEqual(s, initialState());
});

test("a notice for this view's own start (its run_started lost) names that run, not a second one", () => {
  let s = reduce(initialState(), { type: "send", localId: "l1", message: "count 3" });
  s = reduce(s, { type: "remoteRun", runId: "r1", message: "count 3" });
  assert.equal(s.runs.length, 1);
  assert.equal(s.runs[0].runId, "r1");
  assert.equal(s.runs[0].key, "local-l1");
  assert.equal(s.runs[0].status, "running");
  // Another message's run is another run.
  s = reduce(reduce(initialState(), { type: "send", localId: "l2", message: "mine" }), { type: "remoteRun", runId: "r2", message: "theirs" });
  assert.equal(s.runs.length, 2);
  assert.equal(s.runs[0].runId, null);
});
