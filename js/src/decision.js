// The form on a paused tool call's card: Approve / Reject with a note (confirmation), typed inputs
// (user_input), a result box (external_execution), choices (user_feedback). It is built once per
// requirement, so what the user types survives re-renders; `update` only toggles its state.
// Everything shown goes in through textContent.
import { h, text } from "./dom.js";

function button(label, className, testid) {
  const b = text("button", `dk-dbutton ${className}`, label);
  b.setAttribute("type", "button");
  b.setAttribute("data-testid", testid);
  return b;
}

const PROMPTS = {
  confirmation: "The agent wants to run this tool. Allow it?",
  user_input: "The agent needs input to run this tool.",
  external_execution: "Run this tool yourself and paste its result.",
  user_feedback: "The agent asks:",
};

const NUMBER_TYPES = new Set(["int", "integer", "float", "number"]);
const BOOL_TYPES = new Set(["bool", "boolean"]);
const JSON_TYPES = new Set(["list", "dict", "array", "object"]);

// One input for a user_input field, and how to read its value back (throws on bad input).
function fieldInput(field, id) {
  const type = field.type.toLowerCase();
  if (BOOL_TYPES.has(type)) {
    const input = h("input", "dk-dcheck", { type: "checkbox", id, "data-field": field.name });
    return { input, read: () => input.checked };
  }
  if (NUMBER_TYPES.has(type)) {
    const integer = type === "int" || type === "integer";
    const input = h("input", "dk-dinput", { type: "number", id, "data-field": field.name, step: integer ? "1" : "any" });
    return {
      input,
      read: () => {
        const value = input.valueAsNumber;
        if (input.value.trim() === "" || !Number.isFinite(value)) throw new Error(`${field.name} needs a number`);
        if (integer && !Number.isInteger(value)) throw new Error(`${field.name} needs a whole number`);
        return value;
      },
    };
  }
  if (JSON_TYPES.has(type)) {
    const input = h("textarea", "dk-dinput", { rows: "2", id, "data-field": field.name, placeholder: "JSON" });
    return {
      input,
      read: () => {
        try {
          return JSON.parse(input.value);
        } catch {
          throw new Error(`${field.name} needs JSON (${type})`);
        }
      },
    };
  }
  const input = h("input", "dk-dinput", { type: "text", id, "data-field": field.name });
  return { input, read: () => input.value };
}

let formCounter = 0;

// `decide(decision)` is called with the requirement's decision; it may throw nothing.
export function buildDecision(request, decide) {
  formCounter += 1;
  const prefix = `dk-d${formCounter}`;
  const root = h("div", "dk-decision", { "data-testid": "dk-decision", "data-kind": request.kind, role: "group" });
  root.append(text("div", "dk-dprompt", PROMPTS[request.kind] ?? PROMPTS.confirmation));
  const body = h("div", "dk-dbody");
  const actions = h("div", "dk-dactions");
  const error = h("div", "dk-derror", { role: "alert", "data-testid": "dk-decision-error" });
  error.hidden = true;
  const status = h("span", "dk-dstatus", { "data-testid": "dk-decision-status" });
  const controls = [];
  const note = h("input", "dk-dinput dk-dnote", { type: "text", placeholder: "Note for the agent (optional)", "data-testid": "dk-note" });
  const fail = (message) => {
    error.textContent = message;
    error.hidden = false;
  };
  const noteValue = () => note.value.trim();
  const reject = button("Reject", "dk-reject", "dk-reject");
  reject.addEventListener("click", () => {
    const d = { id: request.id, approve: false };
    if (noteValue()) d.note = noteValue();
    decide(d);
  });

  if (request.kind === "user_input") {
    const reads = [];
    for (const [i, field] of request.fields.entries()) {
      const row = h("div", "dk-dfield");
      const { input, read } = fieldInput(field, `${prefix}-${i}`);
      const label = h("label", "dk-dlabel", { for: `${prefix}-${i}` });
      label.append(text("span", "dk-dname", field.name));
      if (field.description) label.append(text("span", "dk-ddesc", field.description));
      row.append(label, input);
      body.append(row);
      controls.push(input);
      reads.push([field.name, read]);
    }
    const submit = button("Submit", "dk-approve", "dk-submit");
    submit.addEventListener("click", () => {
      const values = {};
      try {
        for (const [name, read] of reads) values[name] = read();
      } catch (err) {
        fail(err.message);
        return;
      }
      decide({ id: request.id, values });
    });
    actions.append(submit);
    controls.push(submit);
  } else if (request.kind === "external_execution") {
    const result = h("textarea", "dk-dinput dk-dresult", { rows: "3", placeholder: "The tool's result", "data-testid": "dk-result" });
    body.append(result);
    const submit = button("Submit result", "dk-approve", "dk-submit");
    submit.addEventListener("click", () => decide({ id: request.id, result: result.value }));
    actions.append(submit);
    controls.push(result, submit);
  } else if (request.kind === "user_feedback") {
    const reads = [];
    for (const [i, q] of request.questions.entries()) {
      const box = h("fieldset", "dk-dquestion");
      const legend = h("legend", "dk-dlabel");
      if (q.header) legend.append(text("span", "dk-dheader", q.header));
      legend.append(text("span", "dk-dname", q.question));
      box.append(legend);
      const inputs = [];
      for (const [j, option] of q.options.entries()) {
        const id = `${prefix}-${i}-${j}`;
        const input = h("input", "dk-dcheck", { type: q.multiSelect ? "checkbox" : "radio", name: `${prefix}-${i}`, id, value: option.label });
        const label = h("label", "dk-doption", { for: id });
        label.append(text("span", "dk-dname", option.label));
        if (option.description) label.append(text("span", "dk-ddesc", option.description));
        const row = h("div", "dk-dchoice");
        row.append(input, label);
        box.append(row);
        inputs.push(input);
        controls.push(input);
      }
      body.append(box);
      reads.push([q, inputs]);
    }
    const submit = button("Submit", "dk-approve", "dk-submit");
    submit.addEventListener("click", () => {
      const values = {};
      for (const [q, inputs] of reads) {
        const chosen = inputs.filter((el) => el.checked).map((el) => el.value);
        if (!chosen.length) {
          fail(`Choose an answer to: ${q.question}`);
          return;
        }
        values[q.question] = chosen; // a list of labels, also for a single choice
      }
      decide({ id: request.id, values });
    });
    actions.append(submit);
    controls.push(submit);
  } else {
    const approve = button("Approve", "dk-approve", "dk-approve");
    approve.addEventListener("click", () => {
      const d = { id: request.id, approve: true };
      if (noteValue()) d.note = noteValue();
      decide(d);
    });
    actions.append(approve, reject);
    controls.push(approve, reject);
  }
  if (actions.contains(reject)) {
    body.append(note);
    controls.push(note);
  }
  actions.append(status);
  root.append(body, actions, error);
  // Plain keys typed here stay here (JupyterLab would read them as notebook commands).
  root.addEventListener("keydown", (e) => {
    if (!(e.ctrlKey || e.metaKey || e.altKey)) e.stopPropagation();
  });

  return {
    el: root,
    update(req) {
      const busy = req.sending || Boolean(req.draft);
      for (const c of controls) c.disabled = busy;
      root.dataset.state = req.sending ? "sending" : req.draft ? "draft" : "open";
      status.textContent = req.sending ? "Sending…" : req.draft ? "Waiting for the other decisions…" : "";
      if (req.error) fail(req.error);
      else if (busy) error.hidden = true;
    },
  };
}
