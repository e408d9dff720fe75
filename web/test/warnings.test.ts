// A job's warnings: read from SearchWarning events, each kept once whether it came live or again
// from the stored events.

import assert from "node:assert/strict";
import { test } from "node:test";

import { searchWarning, Warnings } from "../src/warnings";

const SPREAD = {
  kind: "SearchWarning", job_id: "abc", code: "no_spread",
  message: "Every candidate scored the same: the task model may answer one label to everything.",
};

test("an event's code and message make the warning", () => {
  assert.deepEqual(searchWarning(SPREAD), { code: "no_spread", message: SPREAD.message });
  assert.deepEqual(searchWarning({ code: "  odd  " }), { code: "odd", message: "odd" });
  assert.deepEqual(searchWarning({ message: "something" }), { code: "warning", message: "something" });
  assert.equal(searchWarning({ kind: "SearchWarning", code: 3, message: null }), null);
});

test("the same warning twice is shown once, in the order they first came", () => {
  const kept = new Warnings();
  assert.equal(kept.add(searchWarning(SPREAD)!), true);
  assert.equal(kept.add(searchWarning({ code: "budget", message: "low" })!), true);
  assert.equal(kept.add(searchWarning(SPREAD)!), false);
  assert.deepEqual(kept.items.map((w) => w.code), ["no_spread", "budget"]);
});
