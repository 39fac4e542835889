// One controller per widget model (not per view): it owns the socket, the conversation state
// and the kernel-facing traits, so several views of one model share one run and a `send()`
// from Python is handled even before any view exists.
import { fetchJson, HttpError, serverConfig, socketUrl } from "./config.js";
import { activeRun, initialState, isTerminal, openRequests, reduce, toMessages, toPending } from "./reducer.js";
import { nextFrame, now } from "./frames.js";
import { stats } from "./stats.js";
import { ConnState, Transport } from "./transport.js";

let localCounter = 0;
function localId() {
  localCounter += 1;
  return `${Date.now().toString(36)}-${localCounter}`;
}

function randomHex(chars) {
  const bytes = new Uint8Array(Math.ceil(chars / 2));
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("").slice(0, chars);
}

function safeSave(model) {
  try {
    model.save_changes();
  } catch {
    // A model restored from saved notebook state may have no live comm; nothing to save to.
  }
}

export class Controller {
  constructor(model, { cfg = serverConfig(), WebSocketImpl, fetchImpl, schedule, backoff } = {}) {
    this.model = model;
    this.cfg = cfg;
    this.fetchImpl = fetchImpl ?? ((...a) => globalThis.fetch(...a));
    this.schedule = schedule ?? nextFrame;
    this.state = initialState();
    this.conn = ConnState.CONNECTING;
    this.listeners = new Set();
    this.inbox = [];
    this.flushScheduled = false;
    this.flushTimer = null;
    this.flushCost = 0; // ms the last flush took (state update and render)
    this.lastFlushEnd = 0;
    this.hydrated = false;
    this.syncing = null;
    this.syncAgain = false;
    this.queue = [];
    this.sent = new Map(); // localId -> socket generation its start frame went out on
    this.generation = 0; // bumped on every socket open
    this.syncedGeneration = -1; // the generation the last completed resync saw
    this.loadFailed = false;
    this.retryTimer = null;
    this.cancelled = new Set(); // runIds we POSTed a cancel for
    this.following = null;
    this.defaultAgent = "";
    this.messagesSignature = null;
    this.deciding = null; // runId whose decisions went out on the socket, until it answers
    this.handled = new Set(model.get("_handled") ?? []);
    this.disposed = false;
    this.thread = model.get("thread_id"); // the thread `state` belongs to
    this.stale = new Set(); // runIds of threads shown before: their late events are dropped

    this.onRequests = () => this.takeRequests();
    model.on("change:_requests", this.onRequests);
    this.onThread = () => this.threadChanged();
    model.on("change:thread_id", this.onThread);
    // Nothing is read or sent before the cell's binding says which thread this widget shows.
    this.bound = false; // true once the cell's binding has settled which thread this shows
    this.ready = this.bindCell().finally(() => {
      this.bound = true;
      this.emit();
    });

    this.transport = new Transport({
      url: socketUrl(cfg),
      WebSocketImpl,
      backoff,
      onOpen: () => {
        this.generation += 1;
        this.follow();
        this.resync();
      },
      onEvents: (events) => this.receive(events),
      onProtocolError: (message) => this.protocolError(message),
      onState: (state) => {
        this.conn = state;
        this.emit();
      },
    });
    this.transport.connect();
    this.resync();
    this.takeRequests();
    this.loadAgents();
  }

  get threadId() {
    return this.model.get("thread_id");
  }

  get cellKey() {
    return this.model.get("cell_key") || "";
  }

  // ---- views ------------------------------------------------------------------------------

  subscribe(listener) {
    this.listeners.add(listener);
    listener(this);
    return () => this.listeners.delete(listener);
  }

  emit() {
    for (const listener of this.listeners) listener(this);
  }

  dispatch(action) {
    const before = this.state;
    this.state = reduce(this.state, action);
    if (this.state !== before) this.afterChange();
  }

  // ---- user actions -----------------------------------------------------------------------

  send(text) {
    const message = String(text ?? "").trim();
    if (!message) return;
    this.queue.push({ message, stop: false });
    this.transport.kick();
    this.advance();
  }

  // Sends the message of the last run again, as a new run in this thread, when that run did not
  // finish (failed, cancelled, interrupted); `runId` (the kernel's request) must name it.
  // Only the last run can be retried (a newer run may have answered it already).
  retry(runId = null) {
    const runs = this.state.runs;
    const run = runs[runs.length - 1];
    if (runId && run?.runId !== runId) {
      this.dispatch({ type: "notice", message: "Retry: that run is no longer the last one of this conversation." });
      return;
    }
    if (!run || !["failed", "cancelled", "interrupted"].includes(run.status)) {
      this.dispatch({ type: "notice", message: "There is no failed, stopped or interrupted run to retry." });
      return;
    }
    this.send(run.message);
  }

  async stop() {
    const run = activeRun(this.state);
    if (run) {
      this.dispatch({ type: "stopRequested", runId: run.runId });
      await this.cancelIfRequested();
    }
  }

  // One requirement's decision ({id, approve?, note?, values?, result?}). Held until every open
  // requirement of the paused run has one, then all go out in one frame.
  decide(runId, decision) {
    this.decideAll(runId, [decision]);
  }

  decideAll(runId, decisions) {
    const run = this.state.runs.find((r) => r.runId === runId);
    if (!run || run.status !== "paused") {
      this.dispatch({ type: "notice", message: "No tool call is waiting for a decision." });
      return;
    }
    const open = new Set(openRequests(run).map((r) => r.id));
    const unknown = decisions.find((d) => !open.has(d?.id));
    if (unknown) {
      this.dispatch({ type: "notice", message: `No open request has the id ${JSON.stringify(unknown?.id)}.` });
      return;
    }
    this.dispatch({ type: "draft", runId, decisions });
    const requests = openRequests(this.state.runs.find((r) => r.runId === runId));
    if (requests.some((r) => r.sending) || !requests.every((r) => r.draft)) return;
    this.submitDecisions(runId, requests.map((r) => r.draft));
  }

  async submitDecisions(runId, decisions) {
    this.dispatch({ type: "sending", runId, decisions });
    // Over the socket when it is up (its error frame comes back there); else over HTTP.
    if (this.transport.send({ runId, decisions })) {
      this.deciding = runId;
      return;
    }
    try {
      await fetchJson(this.cfg, `runs/${encodeURIComponent(runId)}/continue`, {
        method: "POST",
        body: { runId, decisions },
        fetchImpl: this.fetchImpl,
      });
      // The run's own events (run_resumed...) arrive once the socket is back and resumes it.
      this.transport.kick();
    } catch (err) {
      this.dispatch({ type: "decideFailed", runId, decisions, message: `The decision was not taken: ${err.message}` });
    }
  }

  // Start a fresh conversation in this widget (the cell's earlier ones stay on the server).
  newChat() {
    const key = this.cellKey;
    return this.switchThread(key ? `${key}-${randomHex(12)}` : randomHex(32));
  }

  // Show another thread here; with a cell key, re-running the cell shows it too.
  async switchThread(threadId) {
    if (typeof threadId !== "string" || !threadId || threadId === this.threadId) return;
    this.model.set("thread_id", threadId);
    safeSave(this.model);
    this.threadChanged();
    const key = this.cellKey;
    if (key) {
      try {
        await fetchJson(this.cfg, `cells/${encodeURIComponent(key)}`, {
          method: "PUT",
          body: { thread_id: threadId },
          fetchImpl: this.fetchImpl,
        });
      } catch (err) {
        this.dispatch({ type: "notice", message: `Could not remember this conversation for the cell: ${err.message}` });
      }
    }
  }

  async listThreads(limit = 50) {
    const data = await fetchJson(this.cfg, `threads?limit=${limit}`, { fetchImpl: this.fetchImpl });
    return Array.isArray(data?.threads) ? data.threads : [];
  }

  async deleteThread(threadId) {
    await fetchJson(this.cfg, `threads/${encodeURIComponent(threadId)}`, {
      method: "DELETE",
      fetchImpl: this.fetchImpl,
    });
    if (threadId === this.threadId) await this.newChat();
  }

  // ---- kernel requests (synced, so they survive until a front end exists) -----------------

  takeRequests() {
    const requests = this.model.get("_requests") ?? [];
    // A decision or a retry names a run this view may not have read yet: it waits for the
    // thread's record.
    const fresh = requests.filter(
      (r) => r && typeof r.id === "string" && !this.handled.has(r.id) && ((r.op !== "decide" && r.op !== "retry") || this.hydrated),
    );
    if (!fresh.length) return;
    for (const r of fresh) this.handled.add(r.id);
    // Claim them in the synced trait first: another front end of this model (a second tab)
    // that sees the claim skips them.
    this.model.set("_handled", [...this.handled].slice(-200));
    safeSave(this.model);
    for (const r of fresh) {
      if (r.op === "send") this.send(r.text);
      else if (r.op === "retry") this.retry(typeof r.run_id === "string" ? r.run_id : null);
      else if (r.op === "decide") this.decideAll(r.run_id, Array.isArray(r.decisions) ? r.decisions : []);
      else if (r.op === "stop") {
        // A stop issued right after a send() applies to that send's run once it starts.
        if (!activeRun(this.state) && this.queue.length) this.queue[this.queue.length - 1].stop = true;
        else this.stop();
      }
    }
  }

  // ---- server --------------------------------------------------------------------------------

  // A cell's widget shows the thread last bound to its cell key, also when it comes back from
  // saved state (which may predate the last switch). When the kernel chose the thread
  // (`new=True`, an explicit `thread_id=`: `_fresh`), the cell is bound to it instead, once.
  async bindCell() {
    const key = this.cellKey;
    const thread = this.threadId;
    if (!key || !thread) return;
    const path = `cells/${encodeURIComponent(key)}`;
    try {
      if (this.model.get("_fresh")) {
        await fetchJson(this.cfg, path, { method: "PUT", body: { thread_id: thread }, fetchImpl: this.fetchImpl });
        this.model.set("_fresh", false);
        safeSave(this.model);
        return;
      }
      const data = await fetchJson(this.cfg, path, { fetchImpl: this.fetchImpl });
      const bound = data?.thread_id;
      // The user may have switched threads meanwhile: their choice wins.
      if (typeof bound === "string" && bound && bound !== thread && this.threadId === thread) {
        this.model.set("thread_id", bound);
        safeSave(this.model);
        this.threadChanged();
      }
    } catch (err) {
      if (!(err instanceof HttpError && err.status === 404)) {
        this.dispatch({ type: "notice", message: `Could not look up this cell's conversation: ${err.message}` });
      }
    }
  }

  // The socket is told which thread to watch, so runs started elsewhere show up here live.
  follow() {
    this.transport.send({ followThread: this.threadId });
  }

  threadChanged() {
    if (this.threadId === this.thread || this.disposed) return;
    this.thread = this.threadId;
    for (const run of this.state.runs) if (run.runId) this.stale.add(run.runId);
    this.inbox = [];
    this.queue = [];
    this.sent.clear();
    this.following = null;
    this.messagesSignature = null;
    this.deciding = null;
    this.hydrated = false;
    this.dispatch({ type: "reset" });
    this.follow();
    this.resync();
  }

  // `thread_run`: a run started in this thread from another view; show it and follow it.
  threadRun(notice) {
    if (notice.threadId !== this.threadId || typeof notice.runId !== "string" || !notice.runId) return;
    this.stale.delete(notice.runId);
    this.dispatch({ type: "remoteRun", runId: notice.runId, message: notice.message, agent: notice.agent });
    this.advance();
  }

  async loadAgents() {
    try {
      const data = await fetchJson(this.cfg, "agents", { fetchImpl: this.fetchImpl });
      this.defaultAgent = typeof data?.default === "string" ? data.default : "";
      this.emit();
    } catch {
      // Cosmetic only: the header shows the agent name when known.
    }
  }

  // Rebuild from the server's record of the thread, then follow its active run (if any) from
  // the last event applied here. Runs on first load and after every (re)connect.
  resync() {
    if (this.syncing) {
      this.syncAgain = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      await this.ready;
      do {
        this.syncAgain = false;
        const generation = this.generation;
        const threadId = this.threadId;
        try {
          const thread = await fetchJson(this.cfg, `threads/${encodeURIComponent(threadId)}`, {
            fetchImpl: this.fetchImpl,
          });
          if (threadId !== this.threadId) {
            // Switched threads while reading: this snapshot belongs to the previous one.
            this.syncAgain = true;
            continue;
          }
          for (const r of thread?.runs ?? []) this.stale.delete(r?.run_id);
          this.flush();
          this.dispatch({ type: "hydrate", thread });
          if (this.loadFailed) this.dispatch({ type: "notice", message: null });
          this.loadFailed = false;
        } catch (err) {
          if (threadId !== this.threadId) {
            this.syncAgain = true;
            continue;
          }
          if (!(err instanceof HttpError && err.status === 404)) {
            this.loadFailed = true;
            this.dispatch({ type: "notice", message: `Could not load the conversation: ${err.message}` });
            if (!this.hydrated && !this.disposed) {
              this.syncing = null;
              clearTimeout(this.retryTimer);
              this.retryTimer = setTimeout(() => this.resync(), 3000);
              return;
            }
          }
        }
        this.hydrated = true;
        this.syncedGeneration = generation;
        this.following = null;
        this.advance();
        this.takeRequests();
      } while (this.syncAgain && !this.disposed);
      this.syncing = null;
    })();
    return this.syncing;
  }

  // Make the socket follow the active run, or start the next queued message.
  advance() {
    // After a reconnect nothing goes out until the thread is re-read: a start whose
    // run_started was lost must be found on the server, not sent twice.
    if (!this.hydrated || this.disposed || this.syncedGeneration !== this.generation) return;
    const run = activeRun(this.state);
    if (run) {
      if (run.runId) {
        if (this.following === `local:${run.localId}`) {
          // run_started came back on the socket that sent the start: the server already
          // streams this run here. A resume would only make it replay what is in flight.
          this.following = run.runId;
        } else if (this.following !== run.runId && this.transport.isOpen) {
          this.transport.send({ runId: run.runId, lastEventId: run.lastEventId });
          this.following = run.runId;
        }
      } else if ((this.sent.get(run.localId) ?? -1) < this.generation && this.transport.isOpen) {
        // Not sent yet, or sent on a socket that dropped before run_started came back and the
        // resync after reconnecting did not find the run on the server: (re)send the start.
        const frame = { message: run.message, threadId: this.threadId };
        if (run.agent) frame.agent = run.agent;
        this.transport.send(frame);
        this.sent.set(run.localId, this.generation);
        this.following = `local:${run.localId}`;
      }
      return;
    }
    if (this.queue.length) {
      const { message, stop } = this.queue.shift();
      this.dispatch({ type: "send", localId: localId(), message, agent: this.model.get("agent") || "" });
      if (stop) this.dispatch({ type: "stopRequested", runId: null });
      this.advance();
    }
  }

  receive(frames) {
    const events = [];
    for (const e of frames) {
      if (e.type === "thread_run" && !Number.isInteger(e.eventId)) this.threadRun(e);
      else if (e.type === "run_started" && typeof e.threadId === "string" && e.threadId !== this.threadId) {
        // A start sent just before a thread switch: that run belongs to the thread left behind.
        this.stale.add(e.runId);
      } else if (!this.stale.has(e.runId)) events.push(e);
    }
    if (!events.length) return;
    this.inbox.push(...events);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // Applying events re-renders the open markdown block, which grows with a long answer.
      // Once a flush costs more than a few ms, leave the page twice that long to itself
      // before the next one (at most MAX_FLUSH_GAP_MS, so that one flush never has to catch
      // up with a long stretch of stream): typing, scrolling and other cells stay responsive.
      const gap = Math.min(2 * this.flushCost, MAX_FLUSH_GAP_MS);
      const wait = this.lastFlushEnd + gap - now();
      if (this.flushCost > 4 && wait > 0) {
        this.flushTimer = setTimeout(() => this.schedule(() => this.flush()), wait);
      } else {
        this.schedule(() => this.flush());
      }
    }
  }

  // Applied at most once per animation frame, however many deltas arrived.
  flush() {
    this.flushScheduled = false;
    if (!this.inbox.length || this.disposed) return;
    const events = this.inbox;
    this.inbox = [];
    stats.flushes += 1;
    stats.events += events.length;
    const started = now();
    this.dispatch({ type: "events", events });
    this.lastFlushEnd = now();
    this.flushCost = this.lastFlushEnd - started;
    stats.flushMs += this.flushCost;
    for (const run of this.state.runs) {
      if (run.gap && run.runId && this.transport.isOpen) {
        this.transport.send({ runId: run.runId, lastEventId: run.lastEventId });
        this.following = run.runId;
      }
    }
    this.cancelIfRequested();
    this.advance();
  }

  protocolError(message) {
    if (this.deciding) {
      // The server refused the decisions (the run stays paused): the cards take them back.
      const runId = this.deciding;
      this.deciding = null;
      this.dispatch({ type: "decideFailed", runId, message });
      return;
    }
    const run = activeRun(this.state);
    if (run && run.runId === null && this.sent.has(run.localId)) {
      this.dispatch({ type: "startFailed", message });
      this.advance();
    } else if (run && run.runId) {
      // A resume the server refused (e.g. it forgot the run): ask for the thread's truth.
      this.dispatch({ type: "notice", message });
      this.following = null;
      this.fetchRunStatus(run.runId);
    } else {
      this.dispatch({ type: "notice", message });
    }
  }

  async fetchRunStatus(runId) {
    try {
      const threadId = this.threadId;
      const thread = await fetchJson(this.cfg, `threads/${encodeURIComponent(threadId)}`, {
        fetchImpl: this.fetchImpl,
      });
      if (threadId !== this.threadId) return;
      this.dispatch({ type: "hydrate", thread });
      const run = this.state.runs.find((r) => r.runId === runId);
      if (run && !isTerminal(run.status) && thread?.active_run_id !== runId) {
        this.dispatch({ type: "runStatus", runId, status: "interrupted" });
      }
    } catch {
      // Leave it; the next reconnect resyncs.
    }
    this.advance();
  }

  async cancelIfRequested() {
    for (const run of this.state.runs) {
      if (!run.stopRequested || !run.runId || isTerminal(run.status) || this.cancelled.has(run.runId)) continue;
      this.cancelled.add(run.runId);
      try {
        await fetchJson(this.cfg, `jobs/${encodeURIComponent(run.runId)}/cancel`, {
          method: "POST",
          body: {},
          fetchImpl: this.fetchImpl,
        });
      } catch (err) {
        this.cancelled.delete(run.runId);
        this.dispatch({ type: "notice", message: `Stop failed: ${err.message}` });
      }
    }
  }

  // ---- traits -----------------------------------------------------------------------------

  afterChange() {
    const runs = this.state.runs;
    const current = activeRun(this.state) ?? runs[runs.length - 1] ?? null;
    const runId = current?.runId ?? "";
    const status = current ? current.status : "idle";
    let dirty = false;
    if (this.model.get("run_id") !== runId) {
      this.model.set("run_id", runId);
      dirty = true;
    }
    if (this.model.get("status") !== status) {
      this.model.set("status", status);
      dirty = true;
    }
    if (this.deciding && !openRequests(runs.find((r) => r.runId === this.deciding)).some((r) => r.sending)) {
      this.deciding = null; // answered by the run's own events
    }
    const pending = toPending(this.state);
    if (JSON.stringify(pending) !== JSON.stringify(this.model.get("pending") ?? [])) {
      this.model.set("pending", pending);
      dirty = true;
    }
    // `messages` changes only when a run finishes (or a snapshot brings finished runs).
    const signature = runs
      .filter((r) => isTerminal(r.status))
      .map((r) => `${r.key}:${r.status}:${r.lastEventId}`)
      .join("|");
    if (signature !== this.messagesSignature) {
      this.messagesSignature = signature;
      const messages = toMessages(this.state);
      if (JSON.stringify(messages) !== JSON.stringify(this.model.get("messages") ?? [])) {
        this.model.set("messages", messages);
        dirty = true;
      }
    }
    if (dirty) safeSave(this.model);
    this.emit();
  }

  dispose() {
    this.disposed = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.flushTimer);
    this.model.off("change:_requests", this.onRequests);
    this.model.off("change:thread_id", this.onThread);
    this.transport.close();
    this.listeners.clear();
  }
}

const MAX_FLUSH_GAP_MS = 50;
