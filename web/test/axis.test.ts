// The generation axis: it spans the job's planned generations from the start, in whole numbers.

import assert from "node:assert/strict";
import { test } from "node:test";

import { generationSpan, integerTicks } from "../src/axis";

test("one generation done of four planned: the axis still runs 0 to 4", () => {
  assert.deepEqual(generationSpan([0], 4), [0, 4]);
  assert.deepEqual(generationSpan([0, 1], 4), [0, 4]);
});

test("without a plan the axis spans the generations seen, at least one wide", () => {
  assert.deepEqual(generationSpan([], null), [0, 1]);
  assert.deepEqual(generationSpan([0], null), [0, 1]);
  assert.deepEqual(generationSpan([0, 1, 2, 3, 4, 5, 6], null), [0, 6]);
});

test("a job that went past its plan (or a plan of none) widens the axis to what it did", () => {
  assert.deepEqual(generationSpan([0, 5, 7], 4), [0, 7]);
  assert.deepEqual(generationSpan([0, 2], 0), [0, 2]);
});

test("ticks are whole generations, 1, 2 or 5 times a power of ten apart", () => {
  assert.deepEqual(integerTicks(0, 4, 20), [0, 1, 2, 3, 4]);
  assert.deepEqual(integerTicks(0, 10, 6), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(integerTicks(0, 100, 3), [0, 50, 100]);
  assert.deepEqual(integerTicks(0, 1000, 12), [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
  for (const [lo, hi, most] of [[0, 4, 3], [0, 37, 5], [3, 997, 9], [0, 1, 2], [0, 60, 7]]) {
    const ticks = integerTicks(lo, hi, most);
    assert.ok(ticks.length >= 2 && ticks.length <= most, `${lo}..${hi} in ${most}: ${ticks}`);
    assert.ok(ticks.every((t) => Number.isInteger(t) && t >= lo && t <= hi), `${ticks}`);
  }
});

test("a very narrow chart labels fewer generations, still whole ones; a broken range none", () => {
  assert.deepEqual(integerTicks(0, 4, 0.5), [0]);
  assert.deepEqual(integerTicks(0, 8, 2), [0, 5]);
  assert.deepEqual(integerTicks(4, 0, 10), []);
  assert.deepEqual(integerTicks(0, Number.NaN, 10), []);
});
