// Reopening a notebook (or reloading the page) must not mark it modified. With saveState on,
// @jupyter-widgets/jupyterlab-manager sets the notebook dirty for every model it registers,
// also those it restores from the notebook's saved widget state or from a live kernel. That
// happens before any widget code runs, so the flag is put back afterwards: once the manager's
// restore is over, if the notebook's cells are still exactly those on disk (sources, outputs,
// the widget each output shows), nothing unsaved can be lost and the document is clean again.
// A widget made by running a cell brings a new output and execution count: it stays modified.
import { authHeaders, serverConfig } from "./config.js";

const pending = new WeakSet(); // notebook models a check is under way for

function outputSignature(output) {
  const view = output?.data?.["application/vnd.jupyter.widget-view+json"];
  return [output?.output_type ?? null, output?.execution_count ?? null, view?.model_id ?? null];
}

// The cells as the user sees them: what an edit or an execution would change.
export function cellsSignature(cells) {
  return JSON.stringify(
    (Array.isArray(cells) ? cells : []).map((c) => [
      c?.id ?? null,
      c?.cell_type ?? null,
      Array.isArray(c?.source) ? c.source.join("") : String(c?.source ?? ""),
      c?.execution_count ?? null,
      (Array.isArray(c?.outputs) ? c.outputs : []).map(outputSignature),
    ]),
  );
}

function contentsUrl(cfg, path) {
  const encoded = String(path).split("/").map(encodeURIComponent).join("/");
  return `${cfg.baseUrl}api/contents/${encoded}?type=notebook&content=1`;
}

async function onDisk(cfg, path) {
  const res = await fetch(contentsUrl(cfg, path), { headers: authHeaders(cfg), credentials: "same-origin" });
  if (!res.ok) return null;
  const data = await res.json();
  return data?.content?.cells ?? null;
}

export function keepCleanAfterRestore(model) {
  let manager;
  try {
    manager = model.widget_manager;
  } catch {
    return;
  }
  const context = manager?.context;
  const notebook = context?.model;
  if (!notebook || pending.has(notebook)) return;
  pending.add(notebook);
  const check = async () => {
    try {
      if (!notebook.dirty || typeof context.path !== "string") return;
      const saved = await onDisk(serverConfig(), context.path);
      if (saved && notebook.dirty && cellsSignature(notebook.toJSON().cells) === cellsSignature(saved)) {
        notebook.dirty = false;
      }
    } catch {
      // Leave the flag as it is: a false "modified" is better than a lost edit.
    } finally {
      pending.delete(notebook);
    }
  };
  if (manager.restoredStatus === false && typeof manager.restored?.connect === "function") {
    const done = () => {
      manager.restored.disconnect(done);
      check();
    };
    manager.restored.connect(done);
  } else {
    check();
  }
}
