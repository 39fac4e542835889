// deltakit_nb/static/loader.js when the front end cannot be imported: what it tells the user
// for each answer of `deltakit/agents` (a fake page and fetch; Node cannot import the bundle).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

const source = readFileSync(new URL("../../deltakit_nb/static/loader.js", import.meta.url), "utf8");

function fakeElement() {
  return { style: {}, setAttribute() {}, textContent: "" };
}

async function shownFor(answer) {
  const asked = [];
  globalThis.location = { href: "http://127.0.0.1:9/lab" };
  globalThis.document = {
    getElementById: () => ({ textContent: JSON.stringify({ baseUrl: "/base/", token: "tok" }) }),
    createElement: fakeElement,
  };
  globalThis.fetch = async (url, init) => {
    asked.push([url, init.headers.Authorization]);
    if (answer === "network") throw new TypeError("network down");
    return {
      ok: answer.status === 200,
      status: answer.status,
      json: async () => {
        if (answer.body === undefined) throw new SyntaxError("not JSON");
        return answer.body;
      },
    };
  };
  // A fresh module per case: the loader caches its import.
  const mod = await import(`data:text/javascript,${encodeURIComponent(source)}%2F%2F${Math.random()}`);
  const shown = [];
  const quiet = console.error;
  console.error = () => {};
  try {
    await mod.default.render({ el: { replaceChildren: (box) => shown.push(box.textContent) } });
  } finally {
    console.error = quiet;
  }
  assert.deepEqual(asked, [["http://127.0.0.1:9/base/deltakit/agents", "token tok"]]);
  assert.equal(shown.length, 1);
  return shown[0];
}

test("a failed load shows the server's reason and points to its log", async () => {
  const message = "deltakit_nb failed to load: default_agent 'nope' names no agent. See the Jupyter server log.";
  const shown = await shownFor({ status: 503, body: { message } });
  assert.equal(shown, message);
  assert.doesNotMatch(shown, /enable/);
});

test("a 503 that is not the extension's keeps the status", async () => {
  assert.equal(await shownFor({ status: 503 }), "The deltakit_nb server extension answered HTTP 503.");
});

test("no endpoint (404) or no answer means the extension is not enabled", async () => {
  for (const answer of [{ status: 404 }, "network"]) {
    const shown = await shownFor(answer);
    assert.match(shown, /not enabled/);
    assert.match(shown, /jupyter server extension enable deltakit_nb/);
  }
});

test("an extension that answers but serves no bundle is a build problem", async () => {
  assert.match(await shownFor({ status: 200, body: {} }), /front end \(static\/deltakit_nb\/chat\.js\)/);
});
