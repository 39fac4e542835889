// Pure reducer: (state, action) -> state. No DOM, no I/O, no clocks, so it runs in Node tests.
//
// A conversation is a list of runs; each run is one user message plus the assistant's answer,
// built from the run's events. Events are applied strictly in eventId order and at most once:
// a replay that overlaps what is already applied is skipped event by event, and an event past
// a hole is not applied (the run is flagged `gap` so the controller can resume from the hole).

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

function applyOne(run, event) {
  switch (event.type) {
    case "run_started":
      if (event.runId && !run.runId) run.runId = event.runId;
      if (typeof event.agent === "string" && event.agent) run.agent = event.agent;
      if (!isTerminal(run.status)) run.status = "running";
      break;
    case "text_delta":
      appendText(run, "text", event.delta);
      break;
    case "reasoning":
      appendText(run, "reasoning", event.text);
      break;
    case "tool_call":
      run.parts.push({
        kind: "tool",
        callId: event.call_id ?? null,
        name: String(event.tool_name ?? "tool"),
        args: typeof event.argument === "string" ? event.argument : JSON.stringify(event.argument ?? {}),
        result: null,
        isError: false,
      });
      break;
    case "tool_result": {
      const i = findToolIndex(run, event.call_id ?? null, event.tool_name);
      const result = typeof event.output === "string" ? event.output : JSON.stringify(event.output);
      const isError = event.is_error === true;
      if (i >= 0) run.parts[i] = { ...run.parts[i], result, isError };
      else {
        run.parts.push({
          kind: "tool",
          callId: event.call_id ?? null,
          name: String(event.tool_name ?? "tool"),
          args: "",
          result,
          isError,
        });
      }
      break;
    }
    case "done":
      run.status = isTerminal(event.status) ? event.status : "completed";
      break;
    case "error":
      run.status = "failed";
      run.error = typeof event.message === "string" ? event.message : "The run failed.";
      break;
    default:
      // Unknown kinds are additions a newer server may send; ignore them (protocol rule).
      break;
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
    if (isTerminal(sr.status) && !isTerminal(run.status)) run = { ...run, status: sr.status };
    else if (sr.status === "running" && run.status === "pending") run = { ...run, status: "running" };
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
    case "reset":
      // Another thread is shown: nothing of the previous one may leak into it.
      return initialState();
    case "notice":
      return { ...state, notice: action.message ?? null };
    default:
      return state;
  }
}

// ---- selectors -------------------------------------------------------------------------------

export function activeRun(state) {
  for (let i = state.runs.length - 1; i >= 0; i--) {
    const r = state.runs[i];
    if (!isTerminal(r.status)) return r;
  }
  return null;
}

export function runText(run) {
  return run.parts
    .filter((p) => p.kind === "text")
    .map((p) => p.text)
    .join("");
}

function parseArgs(args) {
  if (args === "") return {};
  try {
    return JSON.parse(args);
  } catch {
    return args;
  }
}

// What the kernel sees as `ChatWidget.messages`: finished runs only, plain JSON.
export function toMessages(state) {
  const out = [];
  for (const run of state.runs) {
    if (!isTerminal(run.status)) continue;
    out.push({ role: "user", text: run.message, tool_calls: [], status: run.status, run_id: run.runId });
    const reasoning = run.parts.filter((p) => p.kind === "reasoning").map((p) => p.text).join("");
    const msg = {
      role: "assistant",
      text: runText(run),
      tool_calls: run.parts
        .filter((p) => p.kind === "tool")
        .map((p) => ({ name: p.name, args: parseArgs(p.args), result: p.result, is_error: p.isError })),
      status: run.status,
      run_id: run.runId,
    };
    if (reasoning) msg.reasoning = reasoning;
    if (run.error) msg.error = run.error;
    out.push(msg);
  }
  return out;
}
