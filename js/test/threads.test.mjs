// Pure helpers of the thread header and of keeping a reopened notebook clean.
import assert from "node:assert/strict";
import { test } from "node:test";

import { cellsSignature } from "../src/clean.js";
import { relativeTime, shortId } from "../src/when.js";

test("relative times for the conversation list", () => {
  const now = 1_000_000 * 1000;
  assert.equal(relativeTime(1_000_000 - 10, now), "just now");
  assert.equal(relativeTime(1_000_000 - 300, now), "5 min ago");
  assert.equal(relativeTime(1_000_000 - 7200, now), "2 h ago");
  assert.equal(relativeTime(1_000_000 - 3 * 86400, now), "3 d ago");
  assert.equal(relativeTime(0, now), "1970-01-01");
  assert.equal(relativeTime(null, now), "");
  assert.equal(relativeTime(1_000_000 + 60, now), "just now", "a clock a bit ahead is not 'in the future'");
});

test("thread ids are shown by their tail", () => {
  assert.equal(shortId("cell-0123456789abcdef0123456789abcdef-a1b2c3d4e5f6"), "…c3d4e5f6");
  assert.equal(shortId("short"), "short");
  assert.equal(shortId(undefined), "");
});

test("the cells' signature: equal for the same notebook however stored, different after an edit or a run", () => {
  const view = (id) => ({ output_type: "display_data", data: { "application/vnd.jupyter.widget-view+json": { model_id: id } } });
  const disk = [{ id: "a", cell_type: "code", source: ["x = 1\n", "x"], execution_count: 1, outputs: [view("m1")] }];
  const memory = [{ id: "a", cell_type: "code", source: "x = 1\nx", execution_count: 1, outputs: [view("m1")], metadata: {} }];
  assert.equal(cellsSignature(memory), cellsSignature(disk));
  assert.notEqual(cellsSignature([{ ...memory[0], source: "x = 2\nx" }]), cellsSignature(disk));
  assert.notEqual(cellsSignature([{ ...memory[0], outputs: [view("m2")] }]), cellsSignature(disk), "a new widget");
  assert.notEqual(cellsSignature([{ ...memory[0], execution_count: 2 }]), cellsSignature(disk));
  assert.notEqual(cellsSignature([...memory, { id: "b", cell_type: "markdown", source: "" }]), cellsSignature(disk));
});
