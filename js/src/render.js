// DOM for one view. Everything from the model or the server goes in through textContent,
// except markdown, which goes through markdown.js (html:false + DOMPurify).
import { buildDecision } from "./decision.js";
import { h, text } from "./dom.js";
import { fold, formatDuration, pretty, toolDuration } from "./fold.js";
import { checkedImage } from "./images.js";
import { MarkdownView } from "./mdview.js";
import { Pacer } from "./pacer.js";
import { activeRun, isTerminal, runText } from "./reducer.js";
import { relativeTime, shortId } from "./when.js";

const RETRYABLE = ["failed", "cancelled", "interrupted"];

// Copies `value`; the button says whether it worked (no permission: "Copy failed").
async function copyText(button, value) {
  let ok = false;
  try {
    await navigator.clipboard.writeText(value);
    ok = true;
  } catch {
    ok = false;
  }
  const label = button.dataset.label ?? button.textContent;
  button.dataset.label = label;
  button.textContent = ok ? "Copied" : "Copy failed";
  clearTimeout(button._timer);
  button._timer = setTimeout(() => (button.textContent = label), 1500);
}

// A Copy button on each code block of rendered markdown (added after sanitising: the model's
// HTML may not contain buttons).
function addCodeCopy(root) {
  for (const pre of root.querySelectorAll("pre")) {
    if (pre.parentElement?.classList.contains("dk-code")) continue;
    const wrap = h("div", "dk-code");
    const button = text("button", "dk-code-copy", "Copy");
    button.setAttribute("type", "button");
    button.setAttribute("title", "Copy this code");
    button.setAttribute("data-testid", "dk-code-copy");
    button.addEventListener("click", () => copyText(button, pre.textContent));
    pre.replaceWith(wrap);
    wrap.append(button, pre);
  }
}

// A <pre> of `value` showing its first lines, with "show all" when more are folded away (the
// rest is in the DOM, hidden, so the pre's text is always the whole value).
function foldedPre(value) {
  const { shown, hidden, lines } = fold(value);
  const pre = text("pre", "dk-pre", shown);
  if (!hidden) return pre;
  const rest = text("span", "dk-fold-rest", value.slice(shown.length));
  rest.hidden = true;
  pre.append(rest);
  const box = h("div", "dk-fold", { "data-testid": "dk-fold" });
  const more = text("button", "dk-fold-more", `show all (${lines} lines)`);
  more.setAttribute("type", "button");
  more.setAttribute("data-testid", "dk-fold-more");
  more.addEventListener("click", () => {
    rest.hidden = false;
    more.remove();
  });
  box.append(pre, more);
  return box;
}

const CONN_LABELS = {
  connecting: "connecting…",
  open: "connected",
  reconnecting: "reconnecting…",
  closed: "offline",
};

const STATUS_NOTES = {
  cancelled: "Stopped",
  interrupted: "Interrupted — the server stopped before this run finished",
};

const NEST_STATES = {
  completed: "done",
  failed: "failed",
  cancelled: "stopped",
  interrupted: "interrupted",
  skipped: "skipped",
};

// The `task` argument of a delegate call, or "".
function taskOf(args) {
  try {
    const task = JSON.parse(args)?.task;
    return typeof task === "string" ? task : "";
  } catch {
    return "";
  }
}

function hasRequest(entry) {
  return entry.parts.some((p) => p.request || (Array.isArray(p.parts) && hasRequest(p)) || p.members?.some(hasRequest));
}

export class ChatView {
  constructor(el, controller, model) {
    this.el = el;
    this.controller = controller;
    this.model = model;
    this.runs = new Map(); // run key -> { run, root, user, body, parts: [{ part, el, ... }] }
    this.stick = true;
    this.urls = []; // object URLs of tool images, revoked on dispose
    this.ticker = null; // ticks the elapsed time of running tool calls
    // Markdown rendering, spread over frames; data-rendering says some is still to come.
    this.pacer = new Pacer({
      onChange: (busy) => {
        if (busy) this.root.dataset.rendering = "1";
        else delete this.root.dataset.rendering;
      },
      afterFrame: () => this.resized || this.follow(),
    });
    this.build();
    this.unsubscribe = controller.subscribe(() => this.update());
    this.onTraits = () => this.applyTraits();
    for (const name of ["title", "placeholder", "height", "agent"]) model.on(`change:${name}`, this.onTraits);
    this.applyTraits();
  }

  build() {
    const root = h("div", "dk-chat", { "data-testid": "dk-chat", "data-run-status": "idle", "data-run-id": "" });
    const header = h("div", "dk-header");
    this.title = h("span", "dk-title");
    this.agent = h("span", "dk-agent");
    this.status = h("span", "dk-status", { "data-testid": "dk-status", role: "status" });
    this.statusDot = h("span", "dk-status-dot");
    this.statusLabel = h("span", "dk-status-label");
    this.status.append(this.statusDot, this.statusLabel);
    // Which conversation this is (copyable, to open it elsewhere with ChatWidget(thread_id=...)),
    // and the controls to start over or go back to an earlier one.
    this.thread = h("span", "dk-thread", { "data-testid": "dk-thread" });
    this.threadLabel = h("code", "dk-thread-id");
    this.copyButton = this.button("Copy", "dk-copy", "Copy the thread id");
    this.thread.append(text("span", "dk-thread-label", "thread"), this.threadLabel, this.copyButton);
    this.newButton = this.button("New chat", "dk-new", "Start a new conversation in this cell");
    this.listButton = this.button("Conversations", "dk-list-toggle", "Open an earlier conversation");
    this.listButton.setAttribute("aria-haspopup", "true");
    this.listButton.setAttribute("aria-expanded", "false");
    this.copyButton.addEventListener("click", () => this.copyThreadId());
    this.newButton.addEventListener("click", () => {
      this.closeMenu();
      this.controller.newChat();
    });
    this.listButton.addEventListener("click", () => (this.menu.hidden ? this.openMenu() : this.closeMenu()));
    // Status and buttons wrap as one group when the cell is narrow.
    const actions = h("span", "dk-actions");
    actions.append(this.status, this.newButton, this.listButton);
    header.append(this.title, this.agent, this.thread, actions);
    this.header = header;

    this.menu = h("div", "dk-menu", { "data-testid": "dk-menu", role: "dialog", "aria-label": "Conversations" });
    this.menu.hidden = true;
    this.menu.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.stopPropagation();
        this.closeMenu();
        this.listButton.focus();
      }
    });
    this.onOutside = (e) => {
      if (!this.menu.hidden && !this.menu.contains(e.target) && e.target !== this.listButton) this.closeMenu();
    };
    document.addEventListener("pointerdown", this.onOutside, true);
    // Plain keys on the header's buttons stay here, as in the input (JupyterLab would read them
    // as notebook commands).
    for (const el of [header, this.menu]) {
      el.addEventListener("keydown", (e) => {
        if (!(e.ctrlKey || e.metaKey || e.altKey)) e.stopPropagation();
      });
    }

    this.log = h("div", "dk-log", { "data-testid": "dk-log", tabindex: "0" });
    this.empty = text("div", "dk-empty", "Send a message to start the conversation.");
    this.log.append(this.empty);
    // Kept at the bottom while an answer streams, unless the user scrolls up. Content that
    // grows under the view (a lazy chunk laid out at its real height, taller than its size
    // hint) moves the bottom away without moving scrollTop up: that does not let go of it.
    // The resize observer follows the bottom once the frame's layout is done, before it is
    // painted: reading scrollHeight right after a change would force a layout of its own.
    this.lastTop = 0;
    this.log.addEventListener("scroll", () => {
      const top = this.log.scrollTop;
      const gap = this.log.scrollHeight - top - this.log.clientHeight;
      if (gap < 40) this.stick = true;
      else if (top < this.lastTop - 2) this.stick = false;
      this.lastTop = top;
    });
    this.resized = typeof ResizeObserver === "function" ? new ResizeObserver(() => this.follow()) : null;

    this.notice = h("div", "dk-notice", { role: "alert", hidden: "" });

    const footer = h("form", "dk-footer");
    this.input = h("textarea", "dk-input", { "data-testid": "dk-input", rows: "2" });
    this.sendButton = text("button", "dk-send", "Send");
    this.sendButton.setAttribute("type", "submit");
    this.sendButton.setAttribute("data-testid", "dk-send");
    this.stopButton = text("button", "dk-stop", "Stop");
    this.stopButton.setAttribute("type", "button");
    this.stopButton.setAttribute("data-testid", "dk-stop");
    this.stopButton.hidden = true;
    footer.append(this.input, this.sendButton, this.stopButton);
    footer.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    this.stopButton.addEventListener("click", () => this.controller.stop());
    this.input.addEventListener("keydown", (e) => {
      // Plain keys stay here (JupyterLab would read "a", "b", "dd"... as notebook commands);
      // chords such as Ctrl+S still reach JupyterLab.
      if (!(e.ctrlKey || e.metaKey || e.altKey)) e.stopPropagation();
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submit();
      }
    });

    root.append(header, this.menu, this.log, this.notice, footer);
    this.root = root;
    this.el.append(root);
  }

  applyTraits() {
    const m = this.model;
    this.title.textContent = m.get("title") || "";
    this.title.hidden = !m.get("title");
    if (!this.input.disabled) this.input.placeholder = m.get("placeholder") || "";
    const height = m.get("height");
    this.root.style.height = typeof height === "number" ? `${height}px` : String(height || "");
    this.updateHeader();
  }

  button(label, className, title) {
    const b = text("button", `dk-hbutton ${className}`, label);
    b.setAttribute("type", "button");
    b.setAttribute("title", title);
    b.setAttribute("data-testid", className);
    return b;
  }

  async copyThreadId() {
    const id = this.controller.threadId;
    let ok = false;
    try {
      await navigator.clipboard.writeText(id);
      ok = true;
    } catch {
      // No clipboard permission (or not a secure context): select it for Ctrl+C instead.
      const range = document.createRange();
      range.selectNodeContents(this.threadLabel);
      const sel = window.getSelection();
      sel?.removeAllRanges();
      sel?.addRange(range);
      this.threadLabel.textContent = id;
    }
    this.copyButton.textContent = ok ? "Copied" : "Ctrl+C";
    clearTimeout(this.copyTimer);
    this.copyTimer = setTimeout(() => {
      this.copyButton.textContent = "Copy";
      this.threadLabel.textContent = shortId(this.controller.threadId);
    }, 1500);
  }

  // ---- conversations menu ------------------------------------------------------------------

  async openMenu() {
    // Right under the header, however many lines it wrapped to.
    this.menu.style.top = `${this.header.offsetTop + this.header.offsetHeight + 2}px`;
    this.menu.hidden = false;
    this.listButton.setAttribute("aria-expanded", "true");
    this.menu.replaceChildren(text("div", "dk-menu-note", "Loading…"));
    const token = (this.menuToken = (this.menuToken ?? 0) + 1);
    let threads;
    try {
      threads = await this.controller.listThreads();
    } catch (err) {
      if (token === this.menuToken) this.menu.replaceChildren(text("div", "dk-menu-note dk-menu-error", `Could not list the conversations: ${err.message}`));
      return;
    }
    if (token !== this.menuToken || this.menu.hidden) return;
    this.fillMenu(threads);
  }

  fillMenu(threads) {
    const list = h("ul", "dk-menu-list", { role: "list" });
    const current = this.controller.threadId;
    for (const t of threads) {
      if (typeof t?.thread_id !== "string") continue;
      const item = h("li", "dk-menu-item", { "data-testid": "dk-menu-item", "data-thread-id": t.thread_id });
      if (t.thread_id === current) item.classList.add("dk-current");
      const open = h("button", "dk-menu-open", { type: "button", title: t.thread_id });
      const title = text("span", "dk-menu-title", t.title || "(no message)");
      const meta = [relativeTime(t.last_activity), t.status, `${t.runs ?? 0} ${t.runs === 1 ? "message" : "messages"}`]
        .filter(Boolean)
        .join(" · ");
      open.append(title, text("span", "dk-menu-meta", meta));
      open.addEventListener("click", () => {
        this.closeMenu();
        this.controller.switchThread(t.thread_id);
      });
      const del = this.button("Delete", "dk-menu-delete", "Delete this conversation");
      del.addEventListener("click", () => this.confirmDelete(item, t.thread_id));
      item.append(open, del);
      list.append(item);
    }
    const head = text("div", "dk-menu-head", "Recent conversations");
    this.menu.replaceChildren(head, list.childElementCount ? list : text("div", "dk-menu-note", "No conversations yet."));
  }

  // Asked in the row itself, not with window.confirm (which blocks the whole page).
  confirmDelete(item, threadId) {
    const bar = h("div", "dk-menu-confirm", { role: "alert" });
    const yes = this.button("Delete", "dk-menu-confirm-delete", "Delete it for good");
    const no = this.button("Cancel", "dk-menu-confirm-cancel", "Keep it");
    bar.append(text("span", "", "Delete this conversation and its runs?"), yes, no);
    item.append(bar);
    no.addEventListener("click", () => bar.remove());
    yes.addEventListener("click", async () => {
      yes.disabled = no.disabled = true;
      try {
        await this.controller.deleteThread(threadId);
        item.remove();
      } catch (err) {
        bar.replaceChildren(text("span", "dk-menu-error", `Delete failed: ${err.message}`));
      }
    });
    no.focus();
  }

  closeMenu() {
    this.menuToken = (this.menuToken ?? 0) + 1;
    this.menu.hidden = true;
    this.menu.replaceChildren();
    this.listButton.setAttribute("aria-expanded", "false");
  }

  updateHeader() {
    const threadId = this.controller.threadId || "";
    if (this.root.dataset.threadId !== threadId) {
      this.root.dataset.threadId = threadId;
      this.threadLabel.textContent = shortId(threadId);
      this.thread.title = `Thread ${threadId}\nOpen it anywhere with ChatWidget(thread_id="${threadId}")`;
    }
    const agent = this.model.get("agent") || this.controller.defaultAgent;
    this.agent.textContent = agent ? `agent: ${agent}` : "";
    const conn = this.controller.conn;
    this.status.dataset.state = conn;
    this.root.dataset.conn = conn;
    // Tells a test (or a user script) that the thread shown is the cell's settled one.
    if (this.controller.bound) this.root.dataset.bound = "1";
    this.statusLabel.textContent = CONN_LABELS[conn] ?? conn;
  }

  submit() {
    if (activeRun(this.controller.state)) return;
    const value = this.input.value;
    if (!value.trim()) return;
    this.input.value = "";
    this.stick = true;
    this.controller.send(value);
  }

  // ---- state -> DOM ----------------------------------------------------------------------

  update() {
    const { state } = this.controller;
    this.updateHeader();
    const active = activeRun(state);
    const current = active ?? state.runs[state.runs.length - 1] ?? null;
    this.root.dataset.runStatus = current ? current.status : "idle";
    this.root.dataset.runId = current?.runId ?? "";
    this.root.dataset.runCount = String(state.runs.length);
    const waiting = active?.status === "paused";
    this.input.disabled = waiting;
    this.input.placeholder = waiting
      ? "The agent is waiting for your decision on the tool call above."
      : this.model.get("placeholder") || "";
    this.stopButton.hidden = !active;
    this.stopButton.disabled = Boolean(active?.stopRequested);
    this.sendButton.hidden = Boolean(active);
    this.notice.hidden = !state.notice;
    this.notice.textContent = state.notice ?? "";
    this.empty.hidden = state.runs.length > 0;

    const seen = new Set();
    let prev = this.empty;
    const last = state.runs[state.runs.length - 1];
    for (const run of state.runs) {
      seen.add(run.key);
      let entry = this.runs.get(run.key);
      if (!entry) {
        entry = this.createRun(run);
        this.runs.set(run.key, entry);
      }
      // Only the last run offers Retry: its footer changes when a newer run appears.
      if (entry.run !== run || entry.isLast !== (run === last)) {
        entry.isLast = run === last;
        this.updateRun(entry, run);
      }
      if (prev.nextSibling !== entry.root) prev.after(entry.root);
      prev = entry.root;
    }
    for (const [key, entry] of this.runs) {
      if (!seen.has(key)) {
        for (const s of entry.parts) this.forgetPart(s);
        entry.root.remove();
        this.runs.delete(key);
      }
    }
    if (!this.resized) this.follow();
  }

  follow() {
    if (this.stick) this.log.scrollTop = this.log.scrollHeight;
  }

  createRun(run) {
    const root = h("div", "dk-run", { "data-run-key": run.key });
    this.resized?.observe(root);
    const user = h("div", "dk-msg dk-user", { "data-testid": "dk-user" });
    const userText = h("div", "dk-bubble");
    user.append(userText);
    const assistant = h("div", "dk-msg dk-assistant", { "data-testid": "dk-assistant" });
    const body = h("div", "dk-body");
    const typing = h("div", "dk-typing", { "aria-label": "waiting for the answer" });
    typing.append(h("span"), h("span"), h("span"));
    const footer = h("div", "dk-run-footer");
    assistant.append(body, typing, footer);
    root.append(user, assistant);
    return { run: null, root, userText, assistant, body, typing, footer, parts: [] };
  }

  updateRun(entry, run) {
    const done = isTerminal(run.status);
    entry.root.dataset.runId = run.runId ?? "";
    entry.root.dataset.status = run.status;
    entry.assistant.dataset.status = run.status;
    if (entry.userText.textContent !== run.message) entry.userText.textContent = run.message;

    this.renderParts(entry.body, entry.parts, run.parts, done, run);

    entry.typing.hidden = done || run.status === "paused" || run.parts.some((p) => p.kind === "text");
    entry.footer.replaceChildren();
    this.updateFooter(entry, run, done);
    entry.run = run;
  }

  // Status notes, the run's metrics, Copy of the whole answer and Retry of a run that did not
  // finish.
  updateFooter(entry, run, done) {
    if (run.status === "failed") {
      const err = h("div", "dk-error", { role: "alert", "data-testid": "dk-error" });
      err.textContent = run.error || "The run failed.";
      entry.footer.append(err);
    } else if (STATUS_NOTES[run.status]) {
      entry.footer.append(text("div", `dk-note dk-${run.status === "cancelled" ? "stopped" : run.status}`, STATUS_NOTES[run.status]));
    } else if (run.stopRequested && !done) {
      entry.footer.append(text("div", "dk-note dk-stopping", "Stopping…"));
    }
    if (!done) return;
    const line = h("div", "dk-run-meta", { "data-testid": "dk-run-meta" });
    const m = run.metrics;
    if (m) {
      const bits = [
        m.model,
        m.inputTokens !== null ? `${m.inputTokens.toLocaleString("en")} in` : null,
        m.outputTokens !== null ? `${m.outputTokens.toLocaleString("en")} out` : null,
        m.duration !== null ? formatDuration(m.duration) : null,
      ].filter(Boolean);
      line.append(text("span", "dk-metrics", bits.join(" · ")));
      line.lastChild.setAttribute("data-testid", "dk-metrics");
    }
    const answer = runText(run);
    if (answer) {
      const copy = text("button", "dk-answer-copy", "Copy answer");
      copy.setAttribute("type", "button");
      copy.setAttribute("title", "Copy the whole answer as markdown");
      copy.setAttribute("data-testid", "dk-answer-copy");
      copy.addEventListener("click", () => copyText(copy, answer));
      line.append(copy);
    }
    if (RETRYABLE.includes(run.status) && entry.isLast) {
      const retry = text("button", "dk-retry", "Retry");
      retry.setAttribute("type", "button");
      retry.setAttribute("title", "Send the same message again");
      retry.setAttribute("data-testid", "dk-retry");
      retry.addEventListener("click", () => {
        this.stick = true;
        this.controller.retry(run.runId);
      });
      line.append(retry);
    }
    if (line.childElementCount) entry.footer.append(line);
  }

  // Keeps `slots` (one per part, in order) and their elements in `host` in step with `parts`.
  // `done` says the parts' owner (the run, or a member or step inside it) has finished, so
  // nothing in them streams any more.
  renderParts(host, slots, parts, done, run) {
    parts.forEach((part, i) => {
      const streaming = !done && i === parts.length - 1;
      let slot = slots[i];
      if (slot && slot.part.kind !== part.kind) {
        for (const s of slots.splice(i)) this.removePart(s);
        slot = undefined;
      }
      if (!slot) {
        slot = { part: null, el: null, streaming: null, done: null, args: null, result: null, isError: null, nested: null };
        slot.el = this.createPart(part, slot);
        host.append(slot.el);
        slots[i] = slot;
      }
      // The owner's end changes how cards look (running -> no result, working -> stopped); a
      // text that did not change is not rendered again for it.
      const ended = slot.done !== done && part.kind !== "text" && part.kind !== "reasoning";
      if (slot.part !== part || slot.streaming !== streaming || ended) {
        this.updatePart(slot, part, streaming, done, run);
        slot.part = part;
        slot.streaming = streaming;
        slot.done = done;
      }
    });
    for (const s of slots.splice(parts.length)) this.removePart(s);
  }

  removePart(slot) {
    this.forgetPart(slot);
    slot.el.remove();
  }

  // Drops the markdown still waiting to be rendered in a part and the parts inside it.
  forgetPart(slot) {
    slot.md?.dispose();
    for (const s of [...(slot.nestSlots ?? []), ...(slot.members ?? [])]) this.forgetPart(s);
  }

  createPart(part, slot) {
    if (part.kind === "text") return h("div", "dk-text dk-markdown");
    if (part.kind === "reasoning") {
      const details = h("details", "dk-thinking", { "data-testid": "dk-thinking" });
      details.append(h("summary"), h("div", "dk-thinking-text"));
      return details;
    }
    if (part.kind === "member" || part.kind === "step") return this.createNest(part.kind, slot);
    const card = h("div", "dk-tool", { "data-testid": "dk-tool" });
    const head = h("div", "dk-tool-head");
    // Kept on the slot: a delegate card holds members' tool cards with the same classes.
    slot.toolName = h("span", "dk-tool-name");
    slot.toolState = h("span", "dk-tool-state");
    slot.toolTime = h("span", "dk-tool-time", { "data-testid": "dk-tool-time" });
    head.append(h("span", "dk-tool-icon"), slot.toolName, slot.toolState, slot.toolTime);
    const args = h("details", "dk-tool-args");
    slot.argsEl = args;
    slot.argsFold = h("div", "dk-fold-slot");
    args.append(text("summary", "", "arguments"), slot.argsFold);
    slot.resultSlot = h("div", "dk-tool-result-slot");
    slot.imagesEl = h("div", "dk-tool-images");
    // A delegate call's members, each a nested card, stacked in the order they started.
    slot.members = [];
    slot.membersEl = h("div", "dk-members", { "data-testid": "dk-members" });
    card.append(head, args, slot.membersEl, slot.resultSlot, slot.imagesEl);
    return card;
  }

  updatePart(slot, part, streaming, done, run) {
    if (part.kind === "text") this.updateText(slot, part.text, streaming);
    else if (part.kind === "reasoning") {
      slot.el.querySelector("summary").textContent = streaming ? "Thinking…" : "Thoughts";
      slot.el.querySelector(".dk-thinking-text").textContent = part.text;
    } else if (part.kind === "member" || part.kind === "step") this.updateNest(slot, part, done, run);
    else this.updateTool(slot, part, done, run);
  }

  // A member's card or a workflow step: a foldable box with its name and status, open while it
  // works and folded once it is done (a fold the user changes stays theirs until then).
  createNest(kind, slot) {
    const el = h("details", `dk-nest dk-${kind}`, { "data-testid": `dk-${kind}` });
    const head = h("summary", "dk-nest-head");
    slot.nestIndex = text("span", "dk-nest-index", "");
    slot.nestName = h("span", "dk-nest-name");
    slot.nestState = h("span", "dk-nest-state");
    slot.nestTask = h("span", "dk-nest-task");
    head.append(h("span", "dk-nest-icon"), slot.nestIndex, slot.nestName, slot.nestTask, slot.nestState);
    slot.nestBody = h("div", "dk-nest-body");
    slot.nestError = h("div", "dk-error dk-nest-error", { role: "alert" });
    slot.nestError.hidden = true;
    slot.nestSlots = [];
    slot.nestOpen = null;
    el.append(head, slot.nestBody, slot.nestError);
    return el;
  }

  updateNest(slot, entry, runDone, run) {
    const el = slot.el;
    const going = entry.status === "running" || entry.status === "paused";
    const running = going && !runDone;
    const status = going && runDone ? run.status : entry.status;
    el.dataset.status = running ? entry.status : status;
    el.dataset.name = entry.name;
    if (entry.kind === "member" && entry.runId) el.dataset.memberRunId = entry.runId;
    slot.nestIndex.textContent = entry.kind === "step" && Number.isInteger(entry.index) ? `${entry.index + 1}` : "";
    slot.nestIndex.hidden = !slot.nestIndex.textContent;
    slot.nestName.textContent = entry.name;
    slot.nestState.textContent = running
      ? entry.status === "paused" ? "waiting for you" : entry.kind === "step" ? "running…" : "working…"
      : NEST_STATES[status] ?? status;
    if (slot.nestOpen !== running) {
      el.open = running;
      slot.nestOpen = running;
    }
    // A request for the user inside keeps the box open: what is being decided is always in view.
    if (run.status === "paused" && hasRequest(entry)) el.open = true;
    this.renderParts(slot.nestBody, slot.nestSlots, entry.parts, !running, run);
    slot.nestError.hidden = !entry.error;
    slot.nestError.textContent = entry.error ?? "";
  }

  updateMembers(slot, members, done, run, task) {
    members.forEach((m, i) => {
      let ms = slot.members[i];
      if (!ms) {
        ms = { part: null, el: null, done: null };
        ms.el = this.createNest("member", ms);
        slot.membersEl.append(ms.el);
        slot.members[i] = ms;
      }
      if (ms.part !== m || ms.done !== done) {
        this.updateNest(ms, m, done, run);
        ms.nestTask.textContent = task;
        ms.nestTask.title = task;
        ms.part = m;
        ms.done = done;
      }
    });
    for (const ms of slot.members.splice(members.length)) ms.el.remove();
  }

  // Markdown through the view's pacer: see mdview.js.
  updateText(slot, value, streaming) {
    slot.md ??= new MarkdownView(slot.el, this.pacer, { decorate: addCodeCopy });
    slot.md.update(value, streaming);
  }

  updateTool(slot, part, done, run) {
    const card = slot.el;
    const waiting = Boolean(part.request) && run.status === "paused";
    const state = waiting ? "waiting" : part.result === null ? (done ? "incomplete" : "running") : part.isError ? "error" : "ok";
    card.dataset.status = state;
    card.dataset.toolName = part.name;
    if (part.callId) card.dataset.callId = part.callId;
    slot.toolName.textContent = part.name;
    slot.toolState.textContent =
      { running: "running…", ok: "done", error: "error", incomplete: "no result", waiting: "waiting for you" }[state];
    this.updateToolTime(slot, part, state);
    const args = pretty(part.args) || "{}";
    const argsEl = slot.argsEl;
    if (slot.args !== args) {
      slot.args = args;
      slot.argsFold.replaceChildren(foldedPre(args));
    }
    if (waiting) argsEl.open = true; // what is being decided on is always in view
    else if (!argsEl.dataset.touched) {
      // A delegate call's task is shown on its members' cards (`dk-nest-task`).
      argsEl.open = args.length < 400 && !part.name.startsWith("delegate_task_to_member");
      argsEl.dataset.touched = "1";
    }
    this.updateDecision(slot, waiting ? part.request : null, run.runId);
    this.updateMembers(slot, part.members ?? [], done, run, taskOf(part.args));
    const resultSlot = slot.resultSlot;
    const hasMembers = Boolean(part.members?.length);
    if (part.result === null) {
      if (slot.result !== null) resultSlot.replaceChildren();
      slot.result = null;
    } else if (slot.result !== part.result || slot.isError !== part.isError || slot.nested !== hasMembers) {
      slot.result = part.result;
      slot.isError = part.isError;
      slot.nested = hasMembers;
      const label = part.isError ? "error" : "result";
      const result = pretty(part.result);
      let box;
      if (hasMembers) {
        // A delegate's result repeats its members' answers, which are in view above: folded.
        box = h("details", "dk-tool-result", { "data-testid": "dk-tool-result" });
        box.append(text("summary", "", `${label} (${result.split("\n").length} lines)`), foldedPre(result));
      } else {
        box = h("div", "dk-tool-result", { "data-testid": "dk-tool-result" });
        box.append(text("div", "dk-tool-label", label), foldedPre(result));
      }
      resultSlot.replaceChildren(box);
    }
    this.updateImages(slot, part.images ?? []);
  }

  // Running: seconds since the call's server timestamp, ticking; done: end minus start.
  updateToolTime(slot, part, state) {
    const el = slot.toolTime;
    const card = slot.el;
    if (state === "running" && typeof part.startTs === "number") {
      el.dataset.since = String(part.startTs);
      el.textContent = formatDuration(Math.max(0, Date.now() / 1000 - part.startTs));
      this.startTicker();
      return;
    }
    delete el.dataset.since;
    const took = toolDuration(part);
    el.textContent = took === null || state === "running" ? "" : formatDuration(took);
    if (took !== null) card.dataset.duration = String(took);
  }

  startTicker() {
    if (this.ticker) return;
    this.ticker = setInterval(() => {
      const live = this.root.querySelectorAll(".dk-tool-time[data-since]");
      if (!live.length) {
        clearInterval(this.ticker);
        this.ticker = null;
      }
      const now = Date.now() / 1000;
      for (const el of live) el.textContent = formatDuration(Math.max(0, now - Number(el.dataset.since)));
    }, 250);
  }

  // Each image once (the reducer drops repeats by id); bytes not of the named type are not shown.
  updateImages(slot, images) {
    const card = slot.el;
    const box = slot.imagesEl;
    const shown = new Set([...box.children].map((c) => c.dataset.imageId));
    for (const image of images) {
      if (shown.has(image.id)) continue;
      const bytes = image.omitted ? null : checkedImage(image);
      let el;
      if (bytes) {
        // A blob: URL of exactly the checked type; never a URL from the server or the model.
        const url = URL.createObjectURL(new Blob([bytes], { type: image.mimeType }));
        this.urls.push(url);
        el = h("img", "dk-tool-image", { "data-testid": "dk-tool-image", alt: `image from ${card.dataset.toolName ?? "the tool"}` });
        if (image.width) el.setAttribute("width", String(image.width));
        if (image.height) el.setAttribute("height", String(image.height));
        el.src = url;
      } else {
        const why = image.omitted ?? "its bytes are not the image type it claims";
        el = text("div", "dk-tool-image-omitted", `Image not shown: ${why}`);
        el.setAttribute("data-testid", "dk-tool-image-omitted");
      }
      el.dataset.imageId = image.id;
      box.append(el);
    }
  }

  // The requirement's form, made once per requirement and kept while it is open.
  updateDecision(slot, request, runId) {
    if (slot.decision && slot.decision.id !== request?.id) {
      slot.decision.form.el.remove();
      slot.decision = null;
    }
    if (!request) return;
    if (!slot.decision) {
      const form = buildDecision(request, (decision) => this.controller.decide(runId, decision));
      slot.el.append(form.el);
      slot.decision = { id: request.id, form };
    }
    slot.decision.form.update(request);
  }

  dispose() {
    this.unsubscribe();
    this.pacer.stop();
    this.resized?.disconnect();
    clearInterval(this.ticker);
    for (const url of this.urls) URL.revokeObjectURL(url);
    clearTimeout(this.copyTimer);
    document.removeEventListener("pointerdown", this.onOutside, true);
    for (const name of ["title", "placeholder", "height", "agent"]) this.model.off(`change:${name}`, this.onTraits);
    this.root.remove();
  }
}
