import assert from "node:assert/strict";
import { test } from "node:test";

import { initialState, reduce, runText, toMessages } from "../src/reducer.js";

// The team wire shape since member events got shorter: `member_started` introduces a member run
// (`member`, `parent_call_id`) and its later events name it by `member_run_id` only. Logs stored
// before carry `member` and `parent_call_id` on every member event (teams.test.mjs has that
// shape); both must give the same view, live and in replay.
const R = { id: "researcher", name: "researcher", run_id: "m1" };
const W = { id: "writer", name: "writer", run_id: "m2" };

function ids(runId, body) {
  return body.map((e, eventId) => ({ ...e, runId, eventId }));
}

const feed = (s, events) => reduce(s, { type: "events", events });

// `delegate researcher what is 6 * 7?`, then `delegate all summarise X` (two members at once,
// interleaved), then a member's call that waits for the user and goes on after the decision.
function script() {
  return ids("r1", [
    { type: "run_started", agent: "team" },
    { type: "tool_call", tool_name: "delegate_task_to_member", call_id: "d1", argument: { member_id: "researcher", task: "6 * 7" } },
    { type: "member_started", member: R, parent_call_id: "d1" },
    { type: "reasoning", text: "Multiply.", member_run_id: "m1" },
    { type: "tool_call", tool_name: "calculator", call_id: "c1", argument: '{"expression": "6 * 7"}', member_run_id: "m1" },
    { type: "tool_result", tool_name: "calculator", call_id: "c1", output: "42", member_run_id: "m1" },
    { type: "member_text_delta", delta: "It is ", member_run_id: "m1" },
    { type: "member_text_delta", delta: "**42**.", member_run_id: "m1" },
    { type: "member_done", status: "completed", member_run_id: "m1" },
    { type: "tool_result", tool_name: "delegate_task_to_member", call_id: "d1", output: "It is **42**." },
    { type: "tool_call", tool_name: "delegate_task_to_members", call_id: "d2", argument: { task: "summarise X" } },
    { type: "member_started", member: { ...R, run_id: "m3" }, parent_call_id: "d2" },
    { type: "member_started", member: W, parent_call_id: "d2" },
    { type: "member_text_delta", delta: "R1 ", member_run_id: "m3" },
    { type: "member_text_delta", delta: "W1 ", member_run_id: "m2" },
    { type: "member_text_delta", delta: "R2", member_run_id: "m3" },
    { type: "member_done", status: "completed", member_run_id: "m3" },
    { type: "member_text_delta", delta: "W2", member_run_id: "m2" },
    { type: "member_done", status: "failed", message: "no ink", member_run_id: "m2" },
    { type: "tool_result", tool_name: "delegate_task_to_members", call_id: "d2", output: "R1 R2" },
    { type: "text_delta", delta: "The answer is 42." },
    { type: "tool_call", tool_name: "delegate_task_to_member", call_id: "d3", argument: { member_id: "researcher", task: "ship" } },
    { type: "member_started", member: { ...R, run_id: "m4" }, parent_call_id: "d3" },
    { type: "tool_result", tool_name: "delegate_task_to_member", call_id: "d3", output: "Member 'researcher' requires human input" },
    {
      type: "run_paused",
      requirements: [
        { id: "q1", kind: "confirmation", call_id: "c2", tool_name: "confirm_action", argument: {}, member: { ...R, run_id: "m4" }, parent_call_id: "d3" },
      ],
    },
    { type: "run_resumed", decisions: [{ id: "q1", approve: true }] },
    { type: "tool_call", tool_name: "confirm_action", call_id: "c2", argument: "{}", member_run_id: "m4" },
    { type: "tool_result", tool_name: "confirm_action", call_id: "c2", output: "done", member_run_id: "m4" },
    { type: "member_text_delta", delta: "Shipped.", member_run_id: "m4" },
    { type: "member_done", status: "completed", member_run_id: "m4" },
    { type: "done", status: "completed" },
  ]);
}

// The same events as a server stored them before `member_run_id`: each member event names its
// member in full, with the delegate call it works in.
function legacy(events) {
  const known = {};
  return events.map((e) => {
    if (e.type === "member_started") known[e.member.run_id] = { member: e.member, parent_call_id: e.parent_call_id };
    if (!e.member_run_id) return e;
    const { member_run_id: id, ...rest } = e;
    return { ...rest, ...known[id] };
  });
}

test("member events by member_run_id nest as the full-member events of older logs do", () => {
  const events = script();
  const now = feed(initialState(), events);
  const before = feed(initialState(), legacy(events));
  assert.deepEqual(now.runs[0].parts, before.runs[0].parts);
  assert.deepEqual(toMessages(now), toMessages(before));
  const run = now.runs[0];
  assert.equal(runText(run), "The answer is 42.", "members' text is not the leader's");
  const [d1, d2, , d3] = run.parts;
  assert.deepEqual(d1.members.map((m) => [m.name, m.runId, m.status]), [["researcher", "m1", "completed"]]);
  assert.deepEqual(d1.members[0].parts.map((p) => [p.kind, p.result ?? p.text]), [["reasoning", "Multiply."], ["tool", "42"], ["text", "It is **42**."]]);
  assert.deepEqual(
    d2.members.map((m) => [m.name, m.runId, m.status, m.parts[0].text, m.error]),
    [["researcher", "m3", "completed", "R1 R2", null], ["writer", "m2", "failed", "W1 W2", "no ink"]],
  );
  assert.deepEqual(d3.members[0].parts.map((p) => [p.kind, p.result ?? p.text]), [["tool", "done"], ["text", "Shipped."]]);
  assert.equal(d3.members[0].status, "completed");
});

test("member_run_id events: one at a time == one batch == replay from any point", () => {
  const events = script();
  const full = feed(initialState(), events).runs[0];
  let one = initialState();
  for (const e of events) one = feed(one, [e]);
  assert.deepEqual(one.runs[0].parts, full.parts);
  for (let cut = 0; cut <= events.length; cut += 3) {
    for (let from = 0; from <= cut; from++) {
      const s = feed(feed(initialState(), events.slice(0, cut)), events.slice(from));
      assert.deepEqual(s.runs[0].parts, full.parts, `cut=${cut} from=${from}`);
    }
  }
  const replay = reduce(initialState(), {
    type: "hydrate",
    thread: { runs: [{ run_id: "r1", message: "", agent: "", status: "completed", events }] },
  });
  assert.deepEqual(replay.runs[0].parts, full.parts);
});

test("a paused run stored in the old shape goes on in the new one", () => {
  const events = script();
  const paused = events.findIndex((e) => e.type === "run_resumed");
  const mixed = [...legacy(events.slice(0, paused)), ...events.slice(paused)];
  assert.deepEqual(feed(initialState(), mixed).runs[0].parts, feed(initialState(), events).runs[0].parts);
});

test("a member_run_id never introduced gets a member card of its own where it starts", () => {
  const events = ids("r2", [
    { type: "run_started", agent: "team" },
    { type: "text_delta", delta: "Lead. " },
    { type: "member_text_delta", delta: "Hi", member_run_id: "m9" },
    { type: "member_text_delta", delta: " there", member_run_id: "m9" },
    { type: "member_done", status: "completed", member_run_id: "m9" },
    { type: "text_delta", delta: "More lead." },
    { type: "done", status: "completed" },
  ]);
  const run = feed(initialState(), events).runs[0];
  assert.deepEqual(run.parts.map((p) => p.kind), ["text", "member", "text"]);
  assert.deepEqual([run.parts[1].name, run.parts[1].runId, run.parts[1].status], ["member", "m9", "completed"]);
  assert.equal(run.parts[1].parts[0].text, "Hi there");
  assert.equal(runText(run), "Lead. More lead.");
});
