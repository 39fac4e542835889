// Pure reducer: (state, action) -> state. No DOM, no I/O, no clocks, so it runs in Node tests.
//
// A conversation is a list of runs; each run is one user message plus the assistant's answer,
// built from the run's events. Events are applied strictly in eventId order and at most once:
// a replay that overlaps what is already applied is skipped event by event, and an event past
// a hole is not applied (the run is flagged `gap` so the controller can resume from the hole).
//
// A run that waits for the user (`run_paused`: a tool call to approve, inputs to give) has status
// "paused", which is not terminal: the run is still the active one. Its open requirements are in
// `run.requirements`, and each is shown on its tool card (`part.request`) until `run_resumed`.
//
// Teams and workflows nest. `member_started` introduces a member agent's run (`member`: {id, name,
// run_id}; `parent_call_id`): its entry (`{kind: "member", parts, status, ...}`) goes inside the
// leader's delegate tool card named by `parent_call_id` (`part.members`), or is a member part of
// its own when no such card exists. The member's later events name its run by `member_run_id`
// and go into that entry (logs stored before `member_run_id` carry `member` and
// `parent_call_id` on every member event: read the same). An event with `step` goes into that
// workflow step's part (`{kind: "step", parts, status, ...}`, opened by `step_started`). Nested
// entries hold the same kinds of parts as a run, so the view and `toMessages` walk them the
// same way.

export const TERMINAL = Object.freeze(["completed", "cancelled", "failed", "interrupted"]);

export function isTerminal(status) {
  return TERMINAL.includes(status);
}

export function initialState() {
  return { runs: [], notice: null };
}

function newRun({ runId = null, localId = null, message = "", agent = "", status = "pending" }) {
  return {
    key: runId ?? `local-${localId}`,
    runId,
    localId,
    message,
    agent,
    status,
    lastEventId: -1,
    parts: [],
    error: null,
    gap: false,
    stopRequested: false,
    requirements: [],
    imageIds: [], // ids of the images already shown on a card of this run
    metrics: null,
  };
}

// Returns a copy of `run` with the events applied. `run` is copied once, then the copy and its
// fresh parts array are mutated; parts that change are replaced, never edited in place, so
// the renderer can compare parts by identity.
export function applyEvents(run, events) {
  const next = { ...run, parts: run.parts.slice() };
  for (const event of events) {
    if (Number.isInteger(event.eventId)) {
      if (event.eventId <= next.lastEventId) continue;
      if (event.eventId > next.lastEventId + 1) {
        next.gap = true;
        break;
      }
      next.lastEventId = event.eventId;
      next.gap = false;
    }
    applyOne(next, event);
  }
  return next;
}

function lastPart(run, kind) {
  const part = run.parts[run.parts.length - 1];
  return part && part.kind === kind ? part : null;
}

function appendText(run, kind, text) {
  if (typeof text !== "string" || text === "") return;
  const last = lastPart(run, kind);
  if (last) run.parts[run.parts.length - 1] = { ...last, text: last.text + text };
  else run.parts.push({ kind, text });
}

function findToolIndex(run, callId, name) {
  for (let i = run.parts.length - 1; i >= 0; i--) {
    const p = run.parts[i];
    if (p.kind !== "tool" || p.result !== null) continue;
    if (callId != null ? p.callId === callId : p.name === name) return i;
  }
  return -1;
}

function argText(argument) {
  return typeof argument === "string" ? argument : JSON.stringify(argument ?? {});
}

// Server epoch seconds of an event (`ts` on tool_call/tool_result), or null.
function tsOf(event) {
  return typeof event.ts === "number" && Number.isFinite(event.ts) ? event.ts : null;
}

export const IMAGE_TYPES = Object.freeze(["image/png", "image/jpeg", "image/gif", "image/webp"]);

// The images of a `tool_result` this run has not shown yet. agno repeats every image of the run
// so far on each completed tool call: an id is shown once, on the first card that carries it.
// Only base64 data of an allowed type (or the server's placeholder) is kept; the view checks
// the bytes again before showing anything.
function newImages(run, raw) {
  if (!Array.isArray(raw)) return [];
  const out = [];
  for (const img of raw) {
    if (!img || typeof img !== "object" || typeof img.id !== "string" || !img.id) continue;
    if (run.imageIds.includes(img.id)) continue;
    const mimeType = String(img.mime_type ?? "");
    let image;
    if (typeof img.omitted === "string") image = { id: img.id, mimeType, omitted: img.omitted || "omitted" };
    else if (IMAGE_TYPES.includes(mimeType) && typeof img.data === "string" && img.data) {
      image = { id: img.id, mimeType, data: img.data };
      if (Number.isInteger(img.width) && img.width > 0) image.width = img.width;
      if (Number.isInteger(img.height) && img.height > 0) image.height = img.height;
    } else image = { id: img.id, mimeType, omitted: "not an image this view shows" };
    run.imageIds = [...run.imageIds, img.id];
    out.push(image);
  }
  return out;
}

// `done.metrics` as the footer shows it, or null when the server sent none.
function metricsOf(raw) {
  if (!raw || typeof raw !== "object") return null;
  const num = (v) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : null);
  const m = {
    model: typeof raw.model === "string" && raw.model ? raw.model : null,
    inputTokens: num(raw.input_tokens),
    outputTokens: num(raw.output_tokens),
    duration: num(raw.duration),
  };
  return Object.values(m).some((v) => v !== null) ? m : null;
}

const KINDS = Object.freeze(["confirmation", "user_input", "external_execution", "user_feedback"]);

// One requirement of a `run_paused` event, as the view and the kernel use it (null if unusable).
function requirementOf(raw) {
  if (!raw || typeof raw !== "object" || typeof raw.id !== "string" || !raw.id) return null;
  const req = {
    id: raw.id,
    kind: KINDS.includes(raw.kind) ? raw.kind : "confirmation",
    callId: typeof raw.call_id === "string" ? raw.call_id : null,
    toolName: String(raw.tool_name ?? "tool"),
    args: argText(raw.argument),
    fields: [],
    questions: [],
    member: memberOf(raw.member),
    parentCallId: typeof raw.parent_call_id === "string" ? raw.parent_call_id : null,
  };
  if (Array.isArray(raw.fields)) {
    req.fields = raw.fields
      .filter((f) => f && typeof f.name === "string" && f.name)
      .map((f) => ({
        name: f.name,
        type: typeof f.type === "string" ? f.type : "str",
        description: typeof f.description === "string" ? f.description : "",
      }));
  }
  if (Array.isArray(raw.questions)) {
    req.questions = raw.questions
      .filter((q) => q && typeof q.question === "string")
      .map((q) => ({
        question: q.question,
        header: typeof q.header === "string" ? q.header : "",
        multiSelect: q.multi_select === true,
        options: (Array.isArray(q.options) ? q.options : [])
          .filter((o) => o && typeof o.label === "string")
          .map((o) => ({ label: o.label, description: typeof o.description === "string" ? o.description : "" })),
      }));
  }
  return req;
}

function onPaused(run, event) {
  const reqs = (Array.isArray(event.requirements) ? event.requirements : []).map(requirementOf).filter(Boolean);
  if (!isTerminal(run.status)) run.status = "paused";
  run.requirements = reqs;
  for (const req of reqs) {
    const request = { ...req, sending: false, draft: null, error: null };
    // The card of the paused call wherever it is (a member's card included), if it was
    // announced; otherwise a card of its own, in the member's card when the request names one.
    const found = req.callId != null &&
      mapDeep(run, (p) => (p.kind === "tool" && p.result === null && p.callId === req.callId ? { ...p, request } : p));
    // The member whose call waits shows as waiting (agno may have ended its delegate call).
    const host = req.member ? memberHost(run, req.member, req.parentCallId) : run;
    if (req.member) host.status = "paused";
    if (found) continue;
    host.parts.push({
      kind: "tool",
      callId: req.callId,
      name: req.toolName,
      args: req.args,
      result: null,
      isError: false,
      startTs: null,
      endTs: null,
      images: [],
      request,
    });
  }
}

function onResumed(run, event) {
  const decided = Array.isArray(event.decisions)
    ? new Set(event.decisions.map((d) => d?.id).filter((id) => typeof id === "string"))
    : null;
  // A resume with no list of decisions settles everything that was open.
  const ids = decided && decided.size ? decided : null;
  clearRequests(run, ids);
  if (!isTerminal(run.status)) run.status = run.requirements.length ? "paused" : "running";
  // Members whose requests are settled work again.
  const waiting = new Set(run.requirements.map((r) => r.member?.key).filter(Boolean));
  mapDeep(run, (p) => {
    const wake = (m) => (m.status === "paused" && !waiting.has(m.key) ? { ...m, status: "running" } : m);
    let next = p.kind === "member" ? wake(p) : p;
    if (p.members?.some((m) => wake(m) !== m)) next = { ...next, members: p.members.map(wake) };
    return next;
  });
}

// Drops the open requirements with the given ids (all of them for null), and their cards' forms.
function clearRequests(run, ids) {
  const gone = (id) => ids === null || ids.has(id);
  if (run.requirements.length) run.requirements = run.requirements.filter((r) => !gone(r.id));
  mapDeep(run, (p) => {
    if (!p.request || !gone(p.request.id)) return p;
    const { request: _, ...part } = p;
    return part;
  });
}

// ---- nesting (team members, workflow steps) --------------------------------------------------

// Replaces, in `host.parts` and every nested entry below it, each part that `fn` changes (by
// identity); the changed entries' parents are copied on the way up. `host.parts` must be
// the caller's own copy. Returns whether anything changed.
function mapDeep(host, fn) {
  let changed = false;
  host.parts.forEach((p, i) => {
    let next = fn(p);
    if (Array.isArray(next.parts)) {
      const inner = { ...next, parts: next.parts.slice() };
      if (mapDeep(inner, fn)) next = inner;
    }
    if (Array.isArray(next.members)) {
      let membersChanged = false;
      const members = next.members.map((m) => {
        const inner = { ...m, parts: m.parts.slice() };
        if (!mapDeep(inner, fn)) return m;
        membersChanged = true;
        return inner;
      });
      if (membersChanged) next = { ...next, members };
    }
    if (next !== p) {
      host.parts[i] = next;
      changed = true;
    }
  });
  return changed;
}

function memberOf(raw) {
  if (!raw || typeof raw !== "object") return null;
  const id = typeof raw.id === "string" ? raw.id : "";
  const runId = typeof raw.run_id === "string" ? raw.run_id : "";
  if (!id && !runId) return null;
  const name = typeof raw.name === "string" && raw.name ? raw.name : id || "member";
  return { key: runId || id, id, name, runId };
}

function stepOf(raw) {
  if (!raw || typeof raw !== "object") return null;
  const id = typeof raw.id === "string" ? raw.id : "";
  const index = Number.isInteger(raw.index) ? raw.index : null;
  if (!id && index === null) return null;
  const name = typeof raw.name === "string" && raw.name ? raw.name : id || `step ${index + 1}`;
  return { key: id || `#${index}`, id, name, index };
}

function newMember(m) {
  return { kind: "member", ...m, status: "running", error: null, parts: [] };
}

// The newest entry with this key, as a copy put in place of the original (so the caller may
// push to its parts); -1 if none.
function takeEntry(list, key) {
  for (let i = list.length - 1; i >= 0; i--) {
    if (list[i].key === key && Array.isArray(list[i].parts)) {
      list[i] = { ...list[i], parts: list[i].parts.slice() };
      return i;
    }
  }
  return -1;
}

// The member run `runId` as `member_started` introduced it inside `host`, and the delegate call
// it works in: found where its entry is (one of no known name when it never was introduced).
function memberRef(host, runId) {
  const meta = (m) => ({ key: m.key, id: m.id, name: m.name, runId: m.runId });
  for (let i = host.parts.length - 1; i >= 0; i--) {
    const p = host.parts[i];
    if (p.kind === "member" && p.runId === runId) return [meta(p), null];
    const m = p.kind === "tool" ? p.members?.find((e) => e.runId === runId) : undefined;
    if (m) return [meta(m), p.callId];
  }
  return [{ key: runId, id: "", name: "member", runId }, null];
}

// Where a member's event goes inside `host`: its entry in the delegate card `parentCallId`,
// else its own member part (made at the point its first event arrives).
function memberHost(host, member, parentCallId) {
  if (parentCallId) {
    for (let i = host.parts.length - 1; i >= 0; i--) {
      const tool = host.parts[i];
      if (tool.kind !== "tool" || tool.callId !== parentCallId) continue;
      const members = (tool.members ?? []).slice();
      let j = takeEntry(members, member.key);
      if (j < 0) j = members.push(newMember(member)) - 1;
      host.parts[i] = { ...tool, members };
      return members[j];
    }
  }
  const parts = host.parts;
  let i = -1;
  for (let k = parts.length - 1; k >= 0 && i < 0; k--) if (parts[k].kind === "member" && parts[k].key === member.key) i = k;
  if (i < 0) {
    parts.push(newMember(member));
    return parts[parts.length - 1];
  }
  parts[i] = { ...parts[i], parts: parts[i].parts.slice() };
  return parts[i];
}

function stepHost(run, step) {
  let i = takeEntry(run.parts, step.key);
  if (i < 0) i = run.parts.push({ kind: "step", ...step, status: "running", parts: [] }) - 1;
  return run.parts[i];
}

// A member's text comes as `member_text_delta` (so that a client knowing only `text_delta` never
// mixes it into the leader's answer); its other events are the usual kinds with `member_run_id`.
const CONTENT = Object.freeze(["text_delta", "member_text_delta", "reasoning", "tool_call", "tool_result"]);
// The end of a member's run: `member_done` (its `status`, `message` when it failed); a plain
// `done` or `error` that names a member run is read the same way.
const MEMBER_END = Object.freeze({ member_done: null, done: null, error: "failed" });

// A member's or a step's event; false when the event is the run's own.
function applyNested(run, event) {
  if (event.type === "step_started" || event.type === "step_completed") {
    const step = stepOf(event.step);
    if (!step) return true;
    const host = stepHost(run, step);
    if (event.type === "step_completed") {
      host.status = typeof event.status === "string" && event.status ? event.status : "completed";
      if (typeof event.message === "string" && event.message) host.error = event.message;
      settle(host, host.status);
    }
    return true;
  }
  const step = stepOf(event.step);
  let member = memberOf(event.member);
  let parentCallId = typeof event.parent_call_id === "string" ? event.parent_call_id : null;
  const ref = !member && typeof event.member_run_id === "string" && event.member_run_id ? event.member_run_id : null;
  const content = CONTENT.includes(event.type);
  if (!member && !ref && !(step && content)) return false;
  const starts = event.type === "member_started" || event.type === "run_started";
  if ((member || ref) && !content && !(event.type in MEMBER_END) && !starts) return false;
  let host = step ? stepHost(run, step) : run;
  if (ref) [member, parentCallId] = memberRef(host, ref);
  if (member) host = memberHost(host, member, parentCallId);
  if (content) applyContent(host, event, run);
  else if (!starts) {
    // The first end is the member's end: a stopped member may still report "completed" after
    // its "cancelled" (agno ends its run twice).
    if (isTerminal(host.status)) return true;
    const status = MEMBER_END[event.type] ?? (isTerminal(event.status) ? event.status : "completed");
    host.status = status;
    if (status === "failed") host.error = typeof event.message === "string" ? event.message : "The member failed.";
    settle(host, status);
  }
  return true;
}

// Entries still going under a finished host end with it: "completed" when it completed,
// else its own end (a stopped run's members show as stopped).
function settle(host, status) {
  const going = (e) => e.status === "running" || e.status === "paused";
  mapDeep(host, (p) => {
    let next = p;
    if ((p.kind === "member" || p.kind === "step") && going(p)) next = { ...p, status };
    if (Array.isArray(p.members) && p.members.some(going)) {
      next = { ...next, members: p.members.map((m) => (going(m) ? { ...m, status } : m)) };
    }
    return next;
  });
}

function applyOne(run, event) {
  if ((event.member || event.member_run_id || event.step) && applyNested(run, event)) return;
  switch (event.type) {
    case "run_started":
      if (event.runId && !run.runId) run.runId = event.runId;
      if (typeof event.agent === "string" && event.agent) run.agent = event.agent;
      if (!isTerminal(run.status)) run.status = "running";
      break;
    case "text_delta":
    case "reasoning":
    case "tool_call":
    case "tool_result":
      applyContent(run, event);
      break;
    case "step_started":
    case "step_completed":
      applyNested(run, event);
      break;
    case "run_paused":
      onPaused(run, event);
      break;
    case "run_resumed":
      onResumed(run, event);
      break;
    case "done":
      run.status = isTerminal(event.status) ? event.status : "completed";
      run.metrics = metricsOf(event.metrics);
      clearRequests(run, null);
      settle(run, run.status);
      break;
    case "error":
      run.status = "failed";
      clearRequests(run, null);
      settle(run, "failed");
      run.error = typeof event.message === "string" ? event.message : "The run failed.";
      break;
    default:
      // Unknown kinds are additions a newer server may send; ignore them (protocol rule).
      break;
  }
}

// Text, reasoning and tool events, into a run or a nested entry (anything with `parts`).
// `root` is the run itself: an image is shown once per run, whichever card first carries it.
function applyContent(run, event, root = run) {
  switch (event.type) {
    case "text_delta":
    case "member_text_delta":
      appendText(run, "text", event.delta);
      break;
    case "reasoning":
      appendText(run, "reasoning", event.text);
      break;
    case "tool_call": {
      // The continuation of a paused call announces it again: it stays on the same card.
      const i = event.call_id != null ? findToolIndex(run, event.call_id, null) : -1;
      if (i >= 0) {
        const { request: _, ...part } = run.parts[i];
        run.parts[i] = {
          ...part,
          name: String(event.tool_name ?? part.name),
          args: argText(event.argument) || part.args,
          startTs: part.startTs ?? tsOf(event),
        };
        break;
      }
      run.parts.push({
        kind: "tool",
        callId: event.call_id ?? null,
        name: String(event.tool_name ?? "tool"),
        args: argText(event.argument),
        result: null,
        isError: false,
        startTs: tsOf(event),
        endTs: null,
        images: [],
      });
      break;
    }
    case "tool_result": {
      const i = findToolIndex(run, event.call_id ?? null, event.tool_name);
      const result = typeof event.output === "string" ? event.output : JSON.stringify(event.output);
      const isError = event.is_error === true;
      const images = newImages(root, event.images);
      const endTs = tsOf(event);
      if (i >= 0) {
        const { request: _, ...part } = run.parts[i];
        let done = { ...part, result, isError, endTs, images: [...(part.images ?? []), ...images] };
        // A failed delegation fails its members still going. A good result does not end them:
        // agno also ends the call of a member that waits for the user, who then goes on.
        if (isError && done.members?.some((m) => m.status === "running")) {
          done = { ...done, members: done.members.map((m) => (m.status === "running" ? { ...m, status: "failed" } : m)) };
        }
        run.parts[i] = done;
      } else {
        run.parts.push({
          kind: "tool",
          callId: event.call_id ?? null,
          name: String(event.tool_name ?? "tool"),
          args: "",
          result,
          isError,
          startTs: null,
          endTs,
          images,
        });
      }
      break;
    }
  }
}

function replaceRun(state, index, run) {
  const runs = state.runs.slice();
  runs[index] = run;
  return { ...state, runs };
}

function indexOfRun(state, runId) {
  return state.runs.findIndex((r) => r.runId === runId);
}

// The oldest run that was sent from here and has not been told its runId yet.
function indexOfPending(state) {
  return state.runs.findIndex((r) => r.runId === null && !isTerminal(r.status));
}

function onEvents(state, events) {
  // Group consecutive events of one run so each run is copied once per batch.
  let next = state;
  let i = 0;
  while (i < events.length) {
    const runId = events[i].runId;
    let j = i + 1;
    while (j < events.length && events[j].runId === runId) j++;
    const batch = events.slice(i, j);
    i = j;
    if (typeof runId !== "string" || runId === "") continue;
    let index = indexOfRun(next, runId);
    if (index < 0) {
      const pending = batch[0].type === "run_started" ? indexOfPending(next) : -1;
      if (pending >= 0) {
        next = replaceRun(next, pending, { ...next.runs[pending], runId });
        index = pending;
      } else {
        // A run this view did not start (another tab, or the kernel before hydration).
        next = { ...next, runs: [...next.runs, newRun({ runId })] };
        index = next.runs.length - 1;
      }
    }
    next = replaceRun(next, index, applyEvents(next.runs[index], batch));
  }
  return next;
}

// Merge a `GET threads/{id}` snapshot. Runs already known keep what they have (the snapshot's
// events are applied through the same dedupe, so an older snapshot cannot roll text back);
// a local run still waiting for its runId adopts the first newer unknown server run with its
// message (the controller hydrates before it sends, so older runs are always known).
function onHydrate(state, thread) {
  const serverRuns = Array.isArray(thread?.runs) ? thread.runs : [];
  const usedKeys = new Set();
  const runs = [];
  // Only server runs newer than every run known here can be the answer to a local send.
  let lastKnown = -1;
  serverRuns.forEach((sr, i) => {
    if (state.runs.some((r) => r.runId !== null && r.runId === sr?.run_id)) lastKnown = i;
  });
  for (const [i, sr] of serverRuns.entries()) {
    if (typeof sr?.run_id !== "string") continue;
    let local = state.runs.find((r) => r.runId === sr.run_id);
    if (!local && i > lastKnown) {
      local = state.runs.find(
        (r) => r.runId === null && !usedKeys.has(r.key) && !isTerminal(r.status) && r.message === sr.message,
      );
      if (local) local = { ...local, runId: sr.run_id };
    }
    if (local) usedKeys.add(local.key);
    let run = local ?? newRun({ runId: sr.run_id });
    run = {
      ...run,
      message: typeof sr.message === "string" ? sr.message : run.message,
      agent: typeof sr.agent === "string" && sr.agent ? sr.agent : run.agent,
    };
    run = applyEvents(run, Array.isArray(sr.events) ? sr.events : []);
    // The server's word on a finished run wins: a run cut short by a server restart is
    // "interrupted" without necessarily having a terminal event of its own.
    if (isTerminal(sr.status) && !isTerminal(run.status)) {
      run = applyEvents(run, []);
      clearRequests(run, null);
      settle(run, sr.status);
      run.status = sr.status;
    } else if (sr.status === "running" && run.status === "pending") run = { ...run, status: "running" };
    runs.push(run);
  }
  // Local runs the snapshot does not know yet (sent a moment ago) keep their place at the end.
  for (const r of state.runs) if (!usedKeys.has(r.key)) runs.push(r);
  return { ...state, runs };
}

export function reduce(state, action) {
  switch (action.type) {
    case "send":
      return {
        ...state,
        notice: null,
        runs: [
          ...state.runs,
          newRun({ localId: action.localId, message: action.message, agent: action.agent ?? "" }),
        ],
      };
    case "events":
      return onEvents(state, action.events);
    case "hydrate":
      return onHydrate(state, action.thread);
    case "stopRequested": {
      const i = action.runId ? indexOfRun(state, action.runId) : indexOfPending(state);
      if (i < 0) return state;
      return replaceRun(state, i, { ...state.runs[i], stopRequested: true });
    }
    case "startFailed": {
      // A protocol error reply to a start frame: the run never existed on the server.
      const i = indexOfPending(state);
      if (i < 0) return { ...state, notice: action.message };
      return replaceRun(state, i, { ...state.runs[i], status: "failed", error: action.message });
    }
    case "runStatus": {
      const i = indexOfRun(state, action.runId);
      if (i < 0 || isTerminal(state.runs[i].status)) return state;
      return replaceRun(state, i, { ...state.runs[i], status: action.status, error: action.error ?? state.runs[i].error });
    }
    case "remoteRun": {
      // A run another view started in this thread (a `thread_run` notice): shown at once with
      // its user message, then filled by the resume. A run known here already is left alone.
      if (typeof action.runId !== "string" || !action.runId || indexOfRun(state, action.runId) >= 0) return state;
      // This view's own start whose run_started was lost with a dropped socket: the notice
      // names its run (the server tells every socket but the one that sent the start).
      const pending = indexOfPending(state);
      if (pending >= 0 && state.runs[pending].message === action.message) {
        return replaceRun(state, pending, { ...state.runs[pending], runId: action.runId, status: "running" });
      }
      const run = newRun({
        runId: action.runId,
        message: typeof action.message === "string" ? action.message : "",
        agent: typeof action.agent === "string" ? action.agent : "",
        status: "running",
      });
      return { ...state, runs: [...state.runs, run] };
    }
    case "draft":
    case "sending":
    case "decideFailed":
      return onDecision(state, action);
    case "reset":
      // Another thread is shown: nothing of the previous one may leak into it.
      return initialState();
    case "notice":
      return { ...state, notice: action.message ?? null };
    default:
      return state;
  }
}

// The user's side of a decision, before the server's `run_resumed` settles it: `draft` holds a
// requirement's decision until every open one of the run has one, `sending` while the frame is
// on its way, `decideFailed` gives the cards their error back (with the forms usable again).
function onDecision(state, action) {
  const i = indexOfRun(state, action.runId);
  if (i < 0) return state;
  const run = state.runs[i];
  const ids = new Set((action.decisions ?? action.ids ?? []).map((d) => (typeof d === "string" ? d : d?.id)));
  const byId = new Map((action.decisions ?? []).map((d) => [d?.id, d]));
  const next = { ...run, parts: run.parts.slice() };
  const changed = mapDeep(next, (p) => {
    if (!p.request || (ids.size && !ids.has(p.request.id))) return p;
    let request;
    if (action.type === "draft") {
      if (!byId.has(p.request.id)) return p;
      request = { ...p.request, draft: byId.get(p.request.id), error: null };
    } else if (action.type === "sending") request = { ...p.request, sending: true, error: null };
    else request = { ...p.request, sending: false, draft: null, error: action.message ?? "The decision failed." };
    return { ...p, request };
  });
  if (!changed) return action.type === "decideFailed" ? { ...state, notice: action.message ?? null } : state;
  return replaceRun(state, i, next);
}

// The open requirements of a paused run, with the user's drafts and send state.
export function openRequests(run) {
  if (!run || run.status !== "paused") return [];
  const ids = new Set(run.requirements.map((r) => r.id));
  const out = [];
  const walk = (parts) => {
    for (const p of parts) {
      if (p.request && ids.has(p.request.id)) out.push(p.request);
      if (Array.isArray(p.parts)) walk(p.parts);
      for (const m of p.members ?? []) walk(m.parts);
    }
  };
  walk(run.parts);
  return out;
}

// What the kernel sees as `ChatWidget.pending`: the open requirements of the paused run.
export function toPending(state) {
  const run = activeRun(state);
  if (!run || run.status !== "paused") return [];
  return run.requirements.map((r) => {
    const out = { id: r.id, kind: r.kind, run_id: run.runId, call_id: r.callId, tool_name: r.toolName, args: parseArgs(r.args) };
    if (r.kind === "user_input") out.fields = r.fields;
    if (r.kind === "user_feedback") {
      out.questions = r.questions.map((q) => ({ question: q.question, header: q.header, options: q.options, multi_select: q.multiSelect }));
    }
    return out;
  });
}

// ---- selectors -------------------------------------------------------------------------------

export function activeRun(state) {
  for (let i = state.runs.length - 1; i >= 0; i--) {
    const r = state.runs[i];
    if (!isTerminal(r.status)) return r;
  }
  return null;
}

// The run's answer: its text and its workflow steps' (a step's text is the workflow's answer, sent
// as plain `text_delta`s), never a team member's.
export function runText(run) {
  return ownText(run);
}

function ownText(host) {
  return host.parts.map((p) => (p.kind === "text" ? p.text : p.kind === "step" ? ownText(p) : "")).join("");
}

function parseArgs(args) {
  if (args === "") return {};
  try {
    return JSON.parse(args);
  } catch {
    return args;
  }
}

// A run's or a nested entry's own work, plain JSON: its text (its steps' too, never its members'), its tool
// calls (a delegate call lists its members' work under `members`), its reasoning, and the
// member parts and workflow steps it holds (`members`, `steps`) when it has any.
function workOf(host) {
  const text = ownText(host);
  const reasoning = host.parts.filter((p) => p.kind === "reasoning").map((p) => p.text).join("");
  const out = {
    text,
    tool_calls: host.parts
      .filter((p) => p.kind === "tool")
      .map((p) => {
        const call = { name: p.name, args: parseArgs(p.args), result: p.result, is_error: p.isError };
        if (p.members?.length) call.members = p.members.map(memberWork);
        return call;
      }),
  };
  if (reasoning) out.reasoning = reasoning;
  const members = host.parts.filter((p) => p.kind === "member");
  if (members.length) out.members = members.map(memberWork);
  const steps = host.parts.filter((p) => p.kind === "step");
  if (steps.length) {
    out.steps = steps.map((st) => {
      const step = { id: st.id, name: st.name, index: st.index, status: st.status, ...workOf(st) };
      if (st.error) step.error = st.error;
      return step;
    });
  }
  return out;
}

function memberWork(m) {
  const out = { id: m.id, name: m.name, run_id: m.runId, status: m.status, ...workOf(m) };
  if (m.error) out.error = m.error;
  return out;
}

// What the kernel sees as `ChatWidget.messages`: finished runs only, plain JSON.
export function toMessages(state) {
  const out = [];
  for (const run of state.runs) {
    if (!isTerminal(run.status)) continue;
    out.push({ role: "user", text: run.message, tool_calls: [], status: run.status, run_id: run.runId });
    const { text, tool_calls, ...rest } = workOf(run);
    const msg = { role: "assistant", text, tool_calls, status: run.status, run_id: run.runId, ...rest };
    if (run.error) msg.error = run.error;
    out.push(msg);
  }
  return out;
}
