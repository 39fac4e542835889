import assert from "node:assert/strict";
import { test } from "node:test";

import { initialState, openRequests, reduce, runText, toMessages, toPending } from "../src/reducer.js";

// Hand-written events in the wire shape of agno teams and workflows (issue 15) as logs stored
// before `member_run_id` have it, which the widget still reads: a member's text is
// `member_text_delta`, its other events the usual kinds with `member` and `parent_call_id` on
// each (teams_wire.test.mjs: today's shape gives the same view).
const R = { id: "researcher", name: "researcher", run_id: "m1" };
const W = { id: "writer", name: "writer", run_id: "m2" };

function ids(runId, body) {
  return body.map((e, eventId) => ({ ...e, runId, eventId }));
}

// One member with a tool call inside: `delegate researcher what is 6 * 7?`.
function teamScript(runId = "r1") {
  return ids(runId, [
    { type: "run_started", agent: "team" },
    { type: "text_delta", delta: "Asking the researcher." },
    { type: "tool_call", tool_name: "delegate_task_to_member", call_id: "d1", argument: { member_id: "researcher", task: "what is 6 * 7?" } },
    { type: "member_started", member: R, parent_call_id: "d1" },
    { type: "reasoning", text: "Multiply.", member: R, parent_call_id: "d1" },
    { type: "tool_call", tool_name: "multiply", call_id: "c1", argument: '{"a": 6, "b": 7}', member: R, parent_call_id: "d1" },
    { type: "tool_result", tool_name: "multiply", call_id: "c1", output: "42", member: R, parent_call_id: "d1" },
    { type: "member_text_delta", delta: "It is ", member: R, parent_call_id: "d1" },
    { type: "member_text_delta", delta: "**42**.", member: R, parent_call_id: "d1" },
    { type: "member_done", status: "completed", member: R, parent_call_id: "d1" },
    { type: "tool_result", tool_name: "delegate_task_to_member", call_id: "d1", output: "It is **42**." },
    { type: "text_delta", delta: " The answer is 42." },
    { type: "done", status: "completed" },
  ]);
}

// Two members in parallel: `delegate all summarise X`, their events interleaved.
function parallelScript(runId = "r2") {
  return ids(runId, [
    { type: "run_started", agent: "team" },
    { type: "tool_call", tool_name: "delegate_task_to_members", call_id: "d2", argument: { task: "summarise X" } },
    { type: "member_text_delta", delta: "R1 ", member: R, parent_call_id: "d2" },
    { type: "member_text_delta", delta: "W1 ", member: W, parent_call_id: "d2" },
    { type: "member_text_delta", delta: "R2", member: R, parent_call_id: "d2" },
    { type: "member_done", status: "completed", member: R, parent_call_id: "d2" },
    { type: "member_text_delta", delta: "W2", member: W, parent_call_id: "d2" },
    { type: "tool_result", tool_name: "delegate_task_to_members", call_id: "d2", output: "R1 R2\nW1 W2" },
    { type: "text_delta", delta: "Both done." },
    { type: "done", status: "completed" },
  ]);
}

function workflowScript(runId = "r3") {
  const s1 = { id: "s1", name: "research", index: 0 };
  const s2 = { id: "s2", name: "write", index: 1 };
  return ids(runId, [
    { type: "run_started", agent: "workflow" },
    { type: "step_started", step: s1 },
    { type: "member_text_delta", delta: "Facts.", step: s1, member: R },
    { type: "step_completed", step: s1, status: "completed" },
    { type: "step_started", step: s2 },
    { type: "tool_call", tool_name: "add", call_id: "c9", argument: "{}", step: s2 },
    { type: "tool_result", tool_name: "add", call_id: "c9", output: "3", step: s2 },
    { type: "text_delta", delta: "Essay.", step: s2 },
    { type: "step_completed", step: s2, status: "completed" },
    { type: "done", status: "completed" },
  ]);
}

const feed = (s, events) => reduce(s, { type: "events", events });

function threeWays(events) {
  let one = initialState();
  for (const e of events) one = feed(one, [e]);
  const all = feed(initialState(), events);
  // A replay: a reload that hydrates from the thread snapshot, then the same events again.
  let replay = reduce(initialState(), {
    type: "hydrate",
    thread: { runs: [{ run_id: events[0].runId, message: "", agent: "", status: "completed", events }] },
  });
  replay = feed(replay, events);
  return { one, all, replay };
}

test("a member's text, reasoning and tool card go inside the leader's delegate card", () => {
  const run = feed(initialState(), teamScript()).runs[0];
  assert.deepEqual(run.parts.map((p) => p.kind), ["text", "tool", "text"]);
  assert.equal(runText(run), "Asking the researcher. The answer is 42.", "members' text is not the leader's");
  const card = run.parts[1];
  assert.equal(card.name, "delegate_task_to_member");
  assert.equal(card.members.length, 1);
  const m = card.members[0];
  assert.equal(m.name, "researcher");
  assert.equal(m.runId, "m1");
  assert.equal(m.status, "completed", "the delegate's result ends the member");
  assert.deepEqual(m.parts.map((p) => p.kind), ["reasoning", "tool", "text"]);
  assert.equal(m.parts[1].result, "42");
  assert.equal(m.parts[2].text, "It is **42**.");
});

test("a member is running until its delegate call has a result", () => {
  const events = teamScript();
  const run = feed(initialState(), events.slice(0, 9)).runs[0];
  assert.equal(run.parts[1].members[0].status, "running");
  assert.equal(run.parts[1].members[0].parts[2].text, "It is **42**.");
  assert.equal(run.parts[1].result, null);
});

test("parallel members stack in one card, each with its own text and status", () => {
  const events = parallelScript();
  const mid = feed(initialState(), events.slice(0, 7)).runs[0];
  const [r, w] = mid.parts[0].members;
  assert.equal(r.parts[0].text, "R1 R2");
  assert.equal(r.status, "completed");
  assert.equal(w.parts[0].text, "W1 W2");
  assert.equal(w.status, "running");
  const end = feed(initialState(), events).runs[0];
  assert.deepEqual(end.parts[0].members.map((m) => m.status), ["completed", "completed"]);
  assert.equal(runText(end), "Both done.");
});

test("nested runs: one at a time == one batch == replay, for teams, parallel members and workflows", () => {
  for (const events of [teamScript(), parallelScript(), workflowScript()]) {
    const { one, all, replay } = threeWays(events);
    assert.deepEqual(one.runs[0].parts, all.runs[0].parts);
    assert.deepEqual(replay.runs[0].parts, all.runs[0].parts);
    assert.deepEqual(toMessages(one), toMessages(all));
    assert.deepEqual(toMessages(replay), toMessages(all));
  }
});

test("a replay from the middle of a member's stream applies each event once", () => {
  const events = teamScript();
  const full = feed(initialState(), events).runs[0];
  for (let cut = 0; cut <= events.length; cut++) {
    for (let from = 0; from <= cut; from++) {
      const s = feed(feed(initialState(), events.slice(0, cut)), events.slice(from));
      assert.deepEqual(s.runs[0].parts, full.parts, `cut=${cut} from=${from}`);
    }
  }
});

test("member events without their delegate call get a member card where they start", () => {
  const events = ids("r4", [
    { type: "run_started", agent: "team" },
    { type: "text_delta", delta: "Lead. " },
    { type: "text_delta", delta: "Hi", member: R },
    { type: "text_delta", delta: " there", member: R, parent_call_id: "unknown" },
    { type: "text_delta", delta: "More lead." },
    { type: "done", status: "completed" },
  ]);
  const run = feed(initialState(), events).runs[0];
  assert.deepEqual(run.parts.map((p) => p.kind), ["text", "member", "text"]);
  assert.equal(run.parts[1].parts[0].text, "Hi there");
  assert.equal(run.parts[1].status, "completed", "the run's end ends its members");
  assert.equal(runText(run), "Lead. More lead.");
});

test("a failing member shows failed: its error event, or its delegate result is_error", () => {
  const own = ids("r5", [
    { type: "run_started", agent: "team" },
    { type: "tool_call", tool_name: "delegate_task_to_member", call_id: "d1", argument: {} },
    { type: "member_text_delta", delta: "partial", member: R, parent_call_id: "d1" },
    { type: "member_done", status: "failed", message: "member boom", member: R, parent_call_id: "d1" },
    { type: "tool_result", call_id: "d1", tool_name: "delegate_task_to_member", output: "member boom", is_error: true },
    { type: "text_delta", delta: "The leader goes on." },
    { type: "done", status: "completed" },
  ]);
  const run = feed(initialState(), own).runs[0];
  assert.equal(run.status, "completed", "a member's error is not the run's");
  assert.equal(run.error, null);
  assert.equal(run.parts[0].members[0].status, "failed");
  assert.equal(run.parts[0].members[0].error, "member boom");
  const byResult = feed(initialState(), [...own.slice(0, 3), { ...own[4], eventId: 3 }]).runs[0];
  assert.equal(byResult.parts[0].members[0].status, "failed");
  assert.equal(byResult.parts[0].isError, true);
});

test("Stop mid-member: the run is cancelled and its running member shows stopped", () => {
  const events = teamScript().slice(0, 8);
  events.push({ type: "member_done", status: "cancelled", member: R, parent_call_id: "d1", runId: "r1", eventId: 8 });
  // agno may end a stopped member twice; the first end stands.
  events.push({ type: "member_done", status: "completed", member: R, parent_call_id: "d1", runId: "r1", eventId: 9 });
  events.push({ type: "done", status: "cancelled", runId: "r1", eventId: 10 });
  const run = feed(initialState(), events).runs[0];
  assert.equal(run.status, "cancelled");
  assert.equal(run.parts[1].members[0].status, "cancelled");
  // A run cut off by a restart, known only from the server's snapshot, ends its members too.
  const hydrated = reduce(initialState(), {
    type: "hydrate",
    thread: { runs: [{ run_id: "r1", message: "m", status: "interrupted", events: teamScript().slice(0, 8) }] },
  }).runs[0];
  assert.equal(hydrated.status, "interrupted");
  assert.equal(hydrated.parts[1].members[0].status, "interrupted");
});

test("a workflow's steps hold their content, each with its status", () => {
  const events = workflowScript();
  const mid = feed(initialState(), events.slice(0, 6)).runs[0];
  assert.deepEqual(mid.parts.map((p) => [p.kind, p.name, p.status]), [["step", "research", "completed"], ["step", "write", "running"]]);
  assert.equal(mid.parts[0].parts[0].kind, "member", "a step's member work nests in the step");
  const run = feed(initialState(), events).runs[0];
  assert.deepEqual(run.parts.map((p) => p.kind), ["step", "step"]);
  assert.deepEqual(run.parts[1].parts.map((p) => p.kind), ["tool", "text"]);
  assert.equal(run.parts[1].status, "completed");
  assert.equal(runText(run), "Essay.", "a step's own text is the workflow's answer, a member's is not");
  // A failed step keeps its message.
  const failed = feed(initialState(), [
    ...events.slice(0, 5),
    { type: "step_completed", step: { id: "s2", name: "write", index: 1 }, status: "failed", message: "no ink", runId: "r3", eventId: 5 },
  ]).runs[0];
  assert.equal(failed.parts[1].status, "failed");
  assert.equal(failed.parts[1].error, "no ink");
});

test("a member's approval request shows on its card inside the member's card", () => {
  const events = ids("r6", [
    { type: "run_started", agent: "team" },
    { type: "tool_call", tool_name: "delegate_task_to_member", call_id: "d1", argument: {} },
    { type: "tool_call", tool_name: "delete_file", call_id: "c5", argument: '{"path": "x"}', member: R, parent_call_id: "d1" },
    { type: "run_paused", requirements: [{ id: "q1", kind: "confirmation", call_id: "c5", tool_name: "delete_file", argument: { path: "x" }, member: R }] },
  ]);
  let s = feed(initialState(), events);
  let run = s.runs[0];
  assert.equal(run.status, "paused");
  const card = run.parts[0].members[0].parts[0];
  assert.equal(card.request.id, "q1");
  assert.deepEqual(openRequests(run).map((r) => r.id), ["q1"]);
  assert.equal(toPending(s)[0].call_id, "c5");
  s = reduce(s, { type: "sending", runId: "r6", ids: ["q1"] });
  assert.equal(s.runs[0].parts[0].members[0].parts[0].request.sending, true);
  s = feed(s, [{ type: "run_resumed", decisions: [{ id: "q1" }], runId: "r6", eventId: 4 }]);
  run = s.runs[0];
  assert.equal(run.status, "running");
  assert.equal(run.parts[0].members[0].parts[0].request, undefined);
  // A request naming a member whose call was never announced gets a card in that member's card.
  const bare = feed(initialState(), [
    ...events.slice(0, 2),
    { ...events[3], eventId: 2, requirements: [{ ...events[3].requirements[0], parent_call_id: "d1" }] },
  ]).runs[0];
  assert.equal(bare.parts[0].members[0].parts[0].request.id, "q1");
});

test("messages keep members' work nested: delegate calls list members, steps list theirs", () => {
  const s = feed(feed(feed(initialState(), teamScript()), parallelScript()), workflowScript());
  const msgs = toMessages(s);
  const team = msgs[1];
  assert.equal(team.text, "Asking the researcher. The answer is 42.");
  assert.deepEqual(team.tool_calls[0].members, [
    {
      id: "researcher",
      name: "researcher",
      run_id: "m1",
      status: "completed",
      text: "It is **42**.",
      reasoning: "Multiply.",
      tool_calls: [{ name: "multiply", args: { a: 6, b: 7 }, result: "42", is_error: false }],
    },
  ]);
  assert.deepEqual(msgs[3].tool_calls[0].members.map((m) => [m.name, m.text]), [["researcher", "R1 R2"], ["writer", "W1 W2"]]);
  const wf = msgs[5];
  assert.equal(wf.text, "Essay.");
  assert.deepEqual(wf.steps.map((st) => [st.name, st.index, st.status, st.text]), [["research", 0, "completed", ""], ["write", 1, "completed", "Essay."]]);
  assert.equal(wf.steps[0].members[0].text, "Facts.");
});

test("a member's approval as agno sends it: the delegate call ends, the member waits, then goes on", () => {
  const D = "call_20_delegate_task_to_member";
  const events = ids("r7", [
    { type: "run_started", agent: "team" },
    { type: "tool_call", tool_name: "delegate_task_to_member", call_id: D, argument: { member_id: "researcher", task: "ship" } },
    { type: "member_started", member: R, parent_call_id: D },
    { type: "tool_result", tool_name: "delegate_task_to_member", call_id: D, output: "Member 'researcher' requires human input" },
    {
      type: "run_paused",
      requirements: [{ id: "q1", kind: "confirmation", call_id: "c2", tool_name: "confirm_action", argument: { action: "ship it" }, member: R, parent_call_id: D }],
    },
    { type: "run_resumed", decisions: [{ id: "q1", approve: true }] },
    { type: "tool_call", tool_name: "confirm_action", call_id: "c2", argument: '{"action": "ship it"}', member: R, parent_call_id: D },
    { type: "tool_result", tool_name: "confirm_action", call_id: "c2", output: "done: ship it", member: R, parent_call_id: D },
    { type: "member_text_delta", delta: "Shipped.", member: R, parent_call_id: D },
    { type: "member_done", status: "completed", member: R, parent_call_id: D },
    { type: "text_delta", delta: "The team's answer." },
    { type: "done", status: "completed" },
  ]);
  const paused = feed(initialState(), events.slice(0, 5)).runs[0];
  assert.equal(paused.status, "paused");
  const m = paused.parts[0].members[0];
  assert.equal(m.status, "paused", "the member waits, though agno ended its delegate call");
  assert.equal(m.parts[0].request.id, "q1");
  assert.equal(m.parts[0].name, "confirm_action");
  const resumed = feed(initialState(), events.slice(0, 6)).runs[0];
  assert.equal(resumed.parts[0].members[0].status, "running");
  const run = feed(initialState(), events).runs[0];
  const done = run.parts[0].members[0];
  assert.equal(done.status, "completed");
  assert.deepEqual(done.parts.map((p) => [p.kind, p.result ?? p.text]), [["tool", "done: ship it"], ["text", "Shipped."]]);
  assert.equal(done.parts[0].request, undefined);
  const { one, all, replay } = threeWays(events);
  assert.deepEqual(one.runs[0].parts, all.runs[0].parts);
  assert.deepEqual(replay.runs[0].parts, all.runs[0].parts);
});
