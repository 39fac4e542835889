// Human in the loop in the pure reducer: a paused run, its open requirements on the tool cards,
// the user's drafts, and the server's run_resumed settling them.
import assert from "node:assert/strict";
import { test } from "node:test";

import { activeRun, initialState, isTerminal, openRequests, reduce, toMessages, toPending } from "../src/reducer.js";

const CONFIRM = {
  id: "req-1",
  kind: "confirmation",
  call_id: "c1",
  tool_name: "confirm_action",
  argument: '{"action": "x"}',
};
const INPUT = {
  id: "req-2",
  kind: "user_input",
  call_id: "c2",
  tool_name: "collect_input",
  argument: '{"question": "q", "answer": ""}',
  fields: [{ name: "answer", type: "str", description: "the answer" }, { bad: 1 }],
};

function events(runId, list, from = 0) {
  return list.map((e, i) => ({ ...e, runId, eventId: from + i }));
}

function paused(...requirements) {
  return reduce(initialState(), {
    type: "events",
    events: events("r1", [
      { type: "run_started", runId: "r1" },
      { type: "text_delta", delta: "Let me do that." },
      { type: "run_paused", requirements },
    ]),
  });
}

test("run_paused: the run is paused (active, not terminal) and each call gets a card with its request", () => {
  const s = paused(CONFIRM, INPUT);
  const run = s.runs[0];
  assert.equal(run.status, "paused");
  assert.equal(isTerminal("paused"), false);
  assert.equal(activeRun(s), run);
  assert.deepEqual(
    run.parts.map((p) => [p.kind, p.name, p.request?.id]),
    [
      ["text", undefined, undefined],
      ["tool", "confirm_action", "req-1"],
      ["tool", "collect_input", "req-2"],
    ],
  );
  assert.equal(run.parts[1].args, '{"action": "x"}');
  assert.deepEqual(run.parts[2].request.fields, [{ name: "answer", type: "str", description: "the answer" }]);
  assert.deepEqual(openRequests(run).map((r) => r.id), ["req-1", "req-2"]);
  // A paused run is not finished: nothing of it in `messages` yet.
  assert.deepEqual(toMessages(s), []);
});

test("a call announced by tool_call before the pause keeps one card, also when it is announced again", () => {
  let s = reduce(initialState(), {
    type: "events",
    events: events("r1", [
      { type: "run_started", runId: "r1" },
      { type: "tool_call", tool_name: "confirm_action", argument: '{"action": "x"}', call_id: "c1" },
      { type: "run_paused", requirements: [CONFIRM] },
    ]),
  });
  assert.equal(s.runs[0].parts.length, 1);
  assert.equal(s.runs[0].parts[0].request.id, "req-1");
  s = reduce(s, {
    type: "events",
    events: events(
      "r1",
      [
        { type: "run_resumed", decisions: [{ id: "req-1", approve: true }] },
        { type: "tool_call", tool_name: "confirm_action", argument: '{"action": "x"}', call_id: "c1" },
        { type: "tool_result", tool_name: "confirm_action", call_id: "c1", output: "done: x", is_error: false },
        { type: "text_delta", delta: "Done." },
        { type: "done", status: "completed" },
      ],
      3,
    ),
  });
  const run = s.runs[0];
  assert.equal(run.status, "completed");
  assert.deepEqual(run.parts[0], {
    kind: "tool",
    callId: "c1",
    name: "confirm_action",
    args: '{"action": "x"}',
    result: "done: x",
    isError: false,
    startTs: null,
    endTs: null,
    images: [],
  });
  assert.equal(run.parts.length, 2);
});

test("run_resumed settles the decided requirements: the run runs again and pending empties", () => {
  let s = paused(CONFIRM);
  assert.equal(toPending(s).length, 1);
  s = reduce(s, { type: "events", events: events("r1", [{ type: "run_resumed", decisions: [{ id: "req-1", approve: false, note: "no" }] }], 3) });
  const run = s.runs[0];
  assert.equal(run.status, "running");
  assert.deepEqual(run.requirements, []);
  assert.equal("request" in run.parts[1], false);
  assert.deepEqual(toPending(s), []);
  // The rejection's result, written by the server, lands on the same card.
  s = reduce(s, {
    type: "events",
    events: events("r1", [{ type: "tool_result", call_id: "c1", tool_name: "confirm_action", output: "rejected: no", is_error: true }], 4),
  });
  assert.equal(s.runs[0].parts[1].result, "rejected: no");
  assert.equal(s.runs[0].parts[1].isError, true);
});

test("a run that ends while paused (Stop) drops its requests", () => {
  let s = paused(CONFIRM);
  s = reduce(s, { type: "stopRequested", runId: "r1" });
  s = reduce(s, { type: "events", events: events("r1", [{ type: "done", status: "cancelled" }], 3) });
  assert.equal(s.runs[0].status, "cancelled");
  assert.deepEqual(openRequests(s.runs[0]), []);
  assert.equal(s.runs[0].parts.some((p) => p.request), false);
  assert.equal(activeRun(s), null);
});

test("toPending: what the kernel sees, with parsed arguments and the run id", () => {
  const feedback = {
    id: "req-3",
    kind: "user_feedback",
    call_id: "c3",
    tool_name: "ask",
    argument: "{}",
    questions: [{ question: "Which?", header: "Pick", options: [{ label: "A" }, { label: "B", description: "bee" }], multi_select: true }],
  };
  assert.deepEqual(toPending(paused(CONFIRM, INPUT, feedback)), [
    { id: "req-1", kind: "confirmation", run_id: "r1", call_id: "c1", tool_name: "confirm_action", args: { action: "x" } },
    {
      id: "req-2",
      kind: "user_input",
      run_id: "r1",
      call_id: "c2",
      tool_name: "collect_input",
      args: { question: "q", answer: "" },
      fields: [{ name: "answer", type: "str", description: "the answer" }],
    },
    {
      id: "req-3",
      kind: "user_feedback",
      run_id: "r1",
      call_id: "c3",
      tool_name: "ask",
      args: {},
      questions: [
        { question: "Which?", header: "Pick", options: [{ label: "A", description: "" }, { label: "B", description: "bee" }], multi_select: true },
      ],
    },
  ]);
  assert.deepEqual(toPending(initialState()), []);
});

test("drafts, sending and a refused decision are kept per request; the card gets the error back", () => {
  let s = paused(CONFIRM, INPUT);
  s = reduce(s, { type: "draft", runId: "r1", decisions: [{ id: "req-1", approve: true }] });
  let [a, b] = openRequests(s.runs[0]);
  assert.deepEqual(a.draft, { id: "req-1", approve: true });
  assert.equal(b.draft, null);
  s = reduce(s, { type: "sending", runId: "r1", decisions: [a.draft, { id: "req-2", values: { answer: "4" } }] });
  [a, b] = openRequests(s.runs[0]);
  assert.equal(a.sending && b.sending, true);
  s = reduce(s, { type: "decideFailed", runId: "r1", message: "missing field answer" });
  [a, b] = openRequests(s.runs[0]);
  assert.deepEqual([a.sending, a.draft, a.error], [false, null, "missing field answer"]);
  assert.equal(b.error, "missing field answer");
  assert.equal(s.runs[0].status, "paused");
});

test("a reload while paused rebuilds the card from the thread's events", () => {
  const thread = {
    runs: [
      {
        run_id: "r1",
        message: "tool confirm_action {}",
        status: "paused",
        events: events("r1", [{ type: "run_started", runId: "r1" }, { type: "run_paused", requirements: [CONFIRM] }]),
      },
    ],
  };
  let s = reduce(initialState(), { type: "hydrate", thread });
  assert.equal(s.runs[0].status, "paused");
  assert.equal(openRequests(s.runs[0])[0].id, "req-1");
  // A later snapshot says the run was stopped meanwhile: the card is gone.
  thread.runs[0].status = "cancelled";
  s = reduce(s, { type: "hydrate", thread });
  assert.equal(s.runs[0].status, "cancelled");
  assert.deepEqual(openRequests(s.runs[0]), []);
  assert.equal(s.runs[0].parts.some((p) => p.request), false);
});
