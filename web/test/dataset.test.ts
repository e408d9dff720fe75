// A data-set job's per-round counts, said in words.

import assert from "node:assert/strict";
import { test } from "node:test";

import { reasonsText, roundsSummary } from "../src/dataset_format";

test("elimination reasons read most frequent first, ties by name", () => {
  assert.equal(reasonsText({ empty: 1, no_gain: 3, duplicate: 1 }), "no gain ×3, duplicate ×1, empty ×1");
  assert.equal(reasonsText({}), "—");
  assert.equal(reasonsText({ unanswerable: 0 }), "—");
});

test("the summary counts seeds and kept evolutions apart", () => {
  const rounds = [
    { round: 0, kept: 4, eliminated: 0, reasons: {} },
    { round: 1, kept: 3, eliminated: 1, reasons: { empty: 1 } },
    { round: 2, kept: 1, eliminated: 3, reasons: { no_gain: 2, unanswerable: 1 } },
  ];
  assert.equal(roundsSummary(rounds), "8 items: 4 seeds and 4 of 8 evolutions kept over 2 rounds");
  assert.equal(roundsSummary([{ round: 0, kept: 1, eliminated: 0, reasons: {} }]),
    "1 item: 1 seed and 0 of 0 evolutions kept over 0 rounds");
});
