// deltakit_nb ChatWidget loader. Kept tiny because JupyterLab saves every widget's _esm into
// the notebook; the real front end is served by the server extension (js/ in the repository).
const VERSION = "__DELTAKIT_NB_VERSION__";
const NOT_ENABLED =
  "The deltakit_nb server extension is not enabled in this Jupyter server. " +
  "Run `jupyter server extension enable deltakit_nb` and restart Jupyter.";
const NOT_BUILT =
  "The deltakit_nb server extension is enabled, but its front end (static/deltakit_nb/chat.js) " +
  "is missing: this install was made without building it. Run `make dev` in a checkout, or " +
  "reinstall deltakit_nb from a wheel.";
const NO_SERVER =
  "This chat needs a Jupyter server page (JupyterLab or Notebook 7) to talk to the deltakit_nb server extension.";

let loading = null;

function load() {
  if (!loading) {
    const el = document.getElementById("jupyter-config-data");
    if (!el) return Promise.reject(new Error(NO_SERVER));
    let config = {};
    try {
      config = JSON.parse(el.textContent || "{}");
    } catch {}
    const base = new URL((config.baseUrl || "/").replace(/\/?$/, "/"), location.href).href;
    const url = `${base}static/deltakit_nb/chat.js?v=${VERSION}`;
    loading = import(url).then(
      (m) => m.default,
      async (err) => {
        loading = null; // a later cell may try again
        console.error("deltakit_nb: could not load", url, err);
        throw new Error(await whyNot(base, config.token));
      },
    );
  }
  return loading;
}

// The front end did not load: is the extension missing, did it fail to load (503 with the
// reason), or is only its bundle missing?
async function whyNot(base, token) {
  try {
    const headers = token ? { Authorization: `token ${token}` } : {};
    const r = await fetch(`${base}deltakit/agents`, { headers, credentials: "same-origin" });
    if (r.ok) return NOT_BUILT;
    if (r.status === 503) {
      const body = await r.json().catch(() => null);
      if (typeof body?.message === "string") return body.message;
    }
    if (r.status !== 404) return `The deltakit_nb server extension answered HTTP ${r.status}.`;
  } catch {}
  return NOT_ENABLED;
}

export default {
  // anywidget gives initialize() two seconds, so it must not wait for the network.
  initialize(ctx) {
    let cleanup = null;
    let disposed = false;
    load().then(
      (mod) => {
        if (!disposed) cleanup = mod.initialize?.(ctx) ?? null;
      },
      () => {}, // render() shows the reason
    );
    return () => {
      disposed = true;
      if (typeof cleanup === "function") cleanup();
    };
  },
  async render(ctx) {
    let mod;
    try {
      mod = await load();
    } catch (err) {
      const box = document.createElement("div");
      box.className = "dk-load-error";
      box.setAttribute("role", "alert");
      box.style.cssText =
        "padding:8px 10px;border-left:3px solid var(--jp-error-color1,#d32f2f);" +
        "background:var(--jp-error-color3,#ffcdd2);color:var(--jp-ui-font-color0,#000);white-space:pre-wrap";
      box.textContent = err.message;
      ctx.el.replaceChildren(box);
      return undefined;
    }
    return mod.render(ctx);
  },
};
