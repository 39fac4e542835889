// Where the server is and how to authenticate, from the page JupyterLab / Notebook 7 serve.

function readPageConfig(doc) {
  const el = doc?.getElementById?.("jupyter-config-data");
  if (!el) return null;
  try {
    return JSON.parse(el.textContent || "{}");
  } catch {
    return null;
  }
}

function withSlash(url) {
  return url.endsWith("/") ? url : `${url}/`;
}

// `location` and `doc` are parameters so tests can pass fakes.
export function serverConfig(doc = globalThis.document, location = globalThis.location) {
  const page = readPageConfig(doc);
  const base = new URL(withSlash(page?.baseUrl || "/"), location.href);
  let ws;
  if (page?.wsUrl) {
    ws = new URL(withSlash(page.wsUrl), location.href);
  } else {
    ws = new URL(base.href);
    ws.protocol = base.protocol === "https:" ? "wss:" : "ws:";
  }
  return {
    found: page !== null,
    baseUrl: base.href, // absolute, ends with "/"
    wsBase: ws.href,
    token: typeof page?.token === "string" ? page.token : "",
    doc,
  };
}

export function apiUrl(cfg, path) {
  return `${cfg.baseUrl}deltakit/${path}`;
}

export function socketUrl(cfg) {
  const url = `${cfg.wsBase}deltakit/ws`;
  // Browsers cannot set headers on a WebSocket: the token goes in the query. With an empty
  // token (JupyterHub) the session cookie authenticates and the server checks the origin.
  return cfg.token ? `${url}?token=${encodeURIComponent(cfg.token)}` : url;
}

export function xsrfCookie(doc) {
  const cookie = doc?.cookie ?? "";
  for (const piece of cookie.split(";")) {
    const [name, ...rest] = piece.trim().split("=");
    if (name === "_xsrf") return decodeURIComponent(rest.join("="));
  }
  return "";
}

export function authHeaders(cfg, method = "GET") {
  const headers = { Accept: "application/json" };
  if (cfg.token) headers.Authorization = `token ${cfg.token}`;
  if (method !== "GET") {
    const xsrf = xsrfCookie(cfg.doc);
    if (xsrf) headers["X-XSRFToken"] = xsrf;
  }
  return headers;
}

export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function fetchJson(cfg, path, { method = "GET", body, fetchImpl = globalThis.fetch } = {}) {
  const headers = authHeaders(cfg, method);
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetchImpl(apiUrl(cfg, path), {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      const data = await res.json();
      if (data?.message) message = data.message;
    } catch {
      // not JSON; keep the status line
    }
    throw new HttpError(res.status, message);
  }
  return res.json();
}
