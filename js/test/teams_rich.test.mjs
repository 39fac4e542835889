import assert from "node:assert/strict";
import { test } from "node:test";

import { toolDuration } from "../src/fold.js";
import { initialState, reduce } from "../src/reducer.js";

// Teams and rich answers together: a member's tool card has the same shape as a run's (timing,
// images), images are shown once per run whichever card carries them, and a team run's end
// still sets the footer metrics and clears open requests.
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]).toString("base64");
const R = { id: "researcher", name: "researcher", run_id: "m1" };
const img = (id) => ({ id, mime_type: "image/png", data: PNG });

function run(body) {
  const events = body.map((e, eventId) => ({ runId: "r1", eventId, ...e }));
  return reduce(initialState(), { type: "events", events }).runs[0];
}

test("a member's tool card carries its timing and images; a run shows each image once", () => {
  const r = run([
    { type: "run_started", agent: "team" },
    { type: "tool_call", tool_name: "plot", call_id: "c0", argument: "{}", ts: 99 },
    { type: "tool_result", tool_name: "plot", call_id: "c0", output: "ok", images: [img("i0")], ts: 99.5 },
    { type: "tool_call", tool_name: "delegate_task_to_member", call_id: "d1", argument: { task: "plot" }, ts: 100 },
    { type: "tool_call", tool_name: "plot", call_id: "c1", argument: "{}", member: R, parent_call_id: "d1", ts: 101 },
    {
      type: "tool_result",
      tool_name: "plot",
      call_id: "c1",
      output: "ok",
      images: [img("i0"), img("i1")],
      member: R,
      parent_call_id: "d1",
      ts: 103.5,
    },
    { type: "member_done", status: "completed", member: R, parent_call_id: "d1" },
    { type: "tool_result", tool_name: "delegate_task_to_member", call_id: "d1", output: "done", ts: 104 },
    { type: "done", status: "completed", metrics: { model: "offline", input_tokens: 5, output_tokens: 7, duration: 4 } },
  ]);
  const delegate = r.parts[1];
  assert.equal(toolDuration(delegate), 4);
  const card = delegate.members[0].parts[0];
  assert.equal(card.kind, "tool");
  assert.equal(toolDuration(card), 2.5);
  assert.deepEqual(card.images.map((i) => i.id), ["i1"], "i0 is already on the leader's card");
  assert.deepEqual(r.imageIds, ["i0", "i1"]);
  assert.deepEqual(r.metrics, { model: "offline", inputTokens: 5, outputTokens: 7, duration: 4 });
  assert.equal(delegate.members[0].status, "completed");
});

test("a team run that fails while a member waits: metrics none, requests cleared, member failed", () => {
  const r = run([
    { type: "run_started", agent: "team" },
    { type: "tool_call", tool_name: "delegate_task_to_member", call_id: "d1", argument: "{}" },
    { type: "tool_call", tool_name: "confirm_action", call_id: "c1", argument: "{}", member: R, parent_call_id: "d1", ts: 1 },
    {
      type: "run_paused",
      requirements: [{ id: "q1", kind: "confirmation", call_id: "c1", tool_name: "confirm_action", member: R, parent_call_id: "d1" }],
    },
    { type: "error", message: "boom" },
  ]);
  assert.equal(r.status, "failed");
  assert.deepEqual(r.requirements, []);
  const card = r.parts[0].members[0].parts[0];
  assert.equal(card.request, undefined);
  assert.equal(card.startTs, 1);
  assert.equal(r.parts[0].members[0].status, "failed");
  assert.equal(r.metrics, null);
});
