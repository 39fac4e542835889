import assert from "node:assert/strict";
import { test } from "node:test";

import { fold, formatDuration, pretty, toolDuration } from "../src/fold.js";
import { checkedImage, decodeBase64 } from "../src/images.js";
import { initialState, reduce } from "../src/reducer.js";

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]).toString("base64");
const GIF = Buffer.from("GIF89a\x01\x00\x01\x00", "latin1").toString("base64");

function run(events) {
  const all = events.map((e, eventId) => ({ runId: "r1", eventId, ...e }));
  return reduce(initialState(), { type: "events", events: all }).runs[0];
}

test("an image id is shown once: the second tool_result that repeats it adds nothing", () => {
  const img = { id: "i1", mime_type: "image/png", data: PNG, width: 640, height: 480 };
  const r = run([
    { type: "run_started" },
    { type: "tool_call", tool_name: "plot", call_id: "c1", argument: "{}", ts: 100 },
    { type: "tool_result", tool_name: "plot", call_id: "c1", output: "ok", images: [img], ts: 101.5 },
    { type: "tool_call", tool_name: "plot", call_id: "c2", argument: "{}", ts: 102 },
    // agno repeats every image of the run so far on each completed call
    { type: "tool_result", tool_name: "plot", call_id: "c2", output: "ok", images: [img, { ...img, id: "i2" }], ts: 103 },
  ]);
  const [a, b] = run_tools(r);
  assert.deepEqual(a.images.map((i) => i.id), ["i1"]);
  assert.deepEqual(a.images[0], { id: "i1", mimeType: "image/png", data: PNG, width: 640, height: 480 });
  assert.deepEqual(b.images.map((i) => i.id), ["i2"]);
  assert.deepEqual(r.imageIds, ["i1", "i2"]);
  assert.equal(toolDuration(a), 1.5);
});

function run_tools(r) {
  return r.parts.filter((p) => p.kind === "tool");
}

test("the same image id twice in one tool_result is kept once; a replay does not add it again", () => {
  const events = [
    { type: "run_started" },
    { type: "tool_call", tool_name: "plot", call_id: "c1", argument: "{}" },
    {
      type: "tool_result",
      tool_name: "plot",
      call_id: "c1",
      output: "ok",
      images: [
        { id: "i1", mime_type: "image/png", data: PNG },
        { id: "i1", mime_type: "image/png", data: PNG },
      ],
    },
  ].map((e, eventId) => ({ runId: "r1", eventId, ...e }));
  let s = reduce(initialState(), { type: "events", events });
  s = reduce(s, { type: "events", events }); // the same events again (a resume that overlaps)
  assert.deepEqual(run_tools(s.runs[0])[0].images.map((i) => i.id), ["i1"]);
});

test("placeholders are kept, other types and non-base64 data become placeholders, URLs are never kept", () => {
  const r = run([
    { type: "run_started" },
    { type: "tool_call", tool_name: "plot", call_id: "c1", argument: "{}" },
    {
      type: "tool_result",
      call_id: "c1",
      output: "ok",
      images: [
        { id: "big", mime_type: "image/png", omitted: "over the 2 MB limit" },
        { id: "svg", mime_type: "image/svg+xml", data: "PHN2Zz4=" },
        { id: "url", mime_type: "image/png", url: "https://example.com/x.png" },
        { id: "" },
        null,
      ],
    },
  ]);
  const images = run_tools(r)[0].images;
  assert.deepEqual(images, [
    { id: "big", mimeType: "image/png", omitted: "over the 2 MB limit" },
    { id: "svg", mimeType: "image/svg+xml", omitted: "not an image this view shows" },
    { id: "url", mimeType: "image/png", omitted: "not an image this view shows" },
  ]);
  for (const img of images) assert.equal(checkedImage(img), null);
});

test("the view's byte check: the magic bytes must match the named type", () => {
  assert.ok(checkedImage({ mimeType: "image/png", data: PNG }));
  assert.ok(checkedImage({ mimeType: "image/gif", data: GIF }));
  assert.equal(checkedImage({ mimeType: "image/jpeg", data: PNG }), null); // PNG bytes named JPEG
  assert.equal(checkedImage({ mimeType: "image/png", data: Buffer.from("<svg>").toString("base64") }), null);
  assert.equal(checkedImage({ mimeType: "text/html", data: PNG }), null);
  assert.equal(decodeBase64("data:image/png;base64,AAAA"), null);
});

test("done.metrics goes on the run; a done without metrics leaves none", () => {
  const r = run([
    { type: "run_started" },
    { type: "done", status: "completed", metrics: { model: "offline", input_tokens: 12, output_tokens: 34, duration: 0.5 } },
  ]);
  assert.deepEqual(r.metrics, { model: "offline", inputTokens: 12, outputTokens: 34, duration: 0.5 });
  assert.equal(run([{ type: "run_started" }, { type: "done", status: "completed" }]).metrics, null);
  assert.equal(run([{ type: "run_started" }, { type: "done", status: "completed", metrics: { x: 1 } }]).metrics, null);
});

test("fold keeps the first 20 lines and says how many are hidden; short text is not folded", () => {
  const long = Array.from({ length: 50 }, (_, i) => `line ${i}`).join("\n");
  const f = fold(long);
  assert.equal(f.shown.split("\n").length, 20);
  assert.equal(f.shown.split("\n")[19], "line 19");
  assert.equal(f.hidden, 30);
  assert.equal(f.lines, 50);
  const short = Array.from({ length: 20 }, (_, i) => `l${i}`).join("\n");
  assert.deepEqual(fold(short), { shown: short, hidden: 0, lines: 20 });
  // hiding one or two lines behind "show all" is not worth it
  const almost = Array.from({ length: 22 }, (_, i) => `l${i}`).join("\n");
  assert.equal(fold(almost).hidden, 0);
  assert.deepEqual(fold(""), { shown: "", hidden: 0, lines: 1 });
});

test("JSON results are pretty-printed; other text is left as it is", () => {
  assert.equal(pretty('{"a":1,"b":[1,2]}'), '{\n  "a": 1,\n  "b": [\n    1,\n    2\n  ]\n}');
  assert.equal(pretty("42"), "42");
  assert.equal(pretty("{not json"), "{not json");
  assert.equal(pretty(""), "");
});

test("durations read well", () => {
  assert.equal(formatDuration(0.42), "0.4 s");
  assert.equal(formatDuration(12.4), "12 s");
  assert.equal(formatDuration(125), "2 min 5 s");
  assert.equal(formatDuration(-1), "");
  assert.equal(toolDuration({ startTs: null, endTs: 3 }), null);
});
