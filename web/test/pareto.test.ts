// The Pareto scatter's layout: cost to the right, score up, points in order of cost.

import assert from "node:assert/strict";
import { test } from "node:test";

import { scatterLayout } from "../src/pareto";

const FRONT = [
  { candidate_id: "a", score: 0.9, prompt_tokens: 16, text: "long and good" },
  { candidate_id: "b", score: 0.5, prompt_tokens: 7, text: "short" },
  { candidate_id: "c", score: 0.2, prompt_tokens: 5, text: "shortest" },
];

test("the cheapest point is leftmost, the best point highest", () => {
  const layout = scatterLayout(FRONT, 420, 220);
  assert.equal(layout.costName, "prompt tokens");
  assert.deepEqual(layout.points.map((p) => p.id), ["c", "b", "a"]);
  const xs = layout.points.map((p) => p.x);
  const ys = layout.points.map((p) => p.y);
  assert.ok(xs[0] < xs[1] && xs[1] < xs[2]);
  assert.ok(ys[0] > ys[1] && ys[1] > ys[2]); // SVG y grows downwards
  for (const p of layout.points) {
    assert.ok(p.x > 0 && p.x < 420 && p.y > 0 && p.y < 220);
  }
});

test("a cost per call front is labelled in USD; one point sits inside the box", () => {
  const layout = scatterLayout([{ candidate_id: "x", score: 0.5, cost_per_call: 2e-5, text: "p" }], 300, 200);
  assert.equal(layout.costName, "USD per call");
  assert.equal(layout.points.length, 1);
  const [p] = layout.points;
  assert.ok(p.x > 0 && p.x < 300 && p.y > 0 && p.y < 200);
  assert.ok(layout.xRange[0] < 2e-5 && layout.xRange[1] > 2e-5);
});

test("a point without a cost is left out", () => {
  const layout = scatterLayout([{ candidate_id: "x", score: 0.5, text: "p" }, ...FRONT], 420, 220);
  assert.deepEqual(layout.points.map((p) => p.id), ["c", "b", "a"]);
});
