// The family tree's layout: every edge label gets room of its own, clear of the nodes, of the
// other labels and of the drawing's edges, however long the operator's name.

import assert from "node:assert/strict";
import { test } from "node:test";

import { type Box, layoutTree, type Measure, overlaps, type TreeEdge, type TreeNode } from "../src/tree_layout";

const measure: Measure = (text) => text.length * 6.2; // as wide as 10 px text, or wider

function node(id: string, generation: number, operator = "seed"): TreeNode {
  return { id, generation, operator, score: 0.5 };
}

// the shape of a real winner's tree: seeds, a paraphrase made in generation 0, a crossover child
// of two parents, and an edge that skips a generation
const NODES = [
  node("s1", 0), node("s2", 0), node("s3", 0),
  node("p1", 0, "paraphrase"), node("p2", 0, "paraphrase"),
  node("c1", 1, "ga_crossover_mutation"), node("w", 2, "ga_crossover_mutation"),
];
const EDGES: TreeEdge[] = [
  { source: "s1", target: "p1", operator: "paraphrase" },
  { source: "s3", target: "p2", operator: "paraphrase" },
  { source: "p1", target: "c1", operator: "ga_crossover_mutation" },
  { source: "s2", target: "c1", operator: "ga_crossover_mutation" },
  { source: "c1", target: "w", operator: "ga_crossover_mutation" },
  { source: "p2", target: "w", operator: "ga_crossover_mutation" },
];

function inside(box: Box, width: number, height: number): boolean {
  return box.x - box.width / 2 >= 0 && box.y - box.height / 2 >= 0 &&
    box.x + box.width / 2 <= width && box.y + box.height / 2 <= height;
}

test("each label is as wide as its text and lies inside the drawing, under no node", () => {
  const layout = layoutTree(NODES, EDGES, measure);
  assert.equal(layout.labels.length, EDGES.length);
  for (const label of layout.labels) {
    assert.ok(label.width >= measure(label.text), `${label.text} is cut`);
    assert.ok(inside(label, layout.width, layout.height), `${label.text} sticks out: ${JSON.stringify(label)}`);
    for (const [id, box] of layout.nodes) {
      assert.ok(!overlaps(label, box), `${label.source}>${label.target} lies under ${id}`);
    }
  }
  for (const box of layout.nodes.values()) assert.ok(inside(box, layout.width, layout.height));
});

test("no two labels overlap, even on the edges into one child", () => {
  const { labels } = layoutTree(NODES, EDGES, measure);
  for (const [i, a] of labels.entries()) {
    for (const b of labels.slice(i + 1)) {
      assert.ok(!overlaps(a, b), `${a.source}>${a.target} overlaps ${b.source}>${b.target}`);
    }
  }
});

test("parents sit above their children, an edge's label between them", () => {
  const layout = layoutTree(NODES, EDGES, measure);
  for (const label of layout.labels) {
    const parent = layout.nodes.get(label.source)!;
    const child = layout.nodes.get(label.target)!;
    assert.ok(parent.y + parent.height / 2 < label.y - label.height / 2);
    assert.ok(label.y + label.height / 2 < child.y - child.height / 2);
    // the route's bends run from the parent, through the label, to the child
    for (const p of label.before) assert.ok(p.y > parent.y && p.y < label.y);
    for (const p of label.after) assert.ok(p.y > label.y && p.y < child.y);
  }
  // the edge that skips generation 1 bends around that layer rather than through it
  const skip = layout.labels.find((l) => l.source === "p2")!;
  assert.ok(skip.before.length + skip.after.length > 0);
});

test("a long operator name makes its own room; a repeated parent is one edge", () => {
  const long = "mutate_with_feedback_from_the_worst_examples";
  const layout = layoutTree(
    [node("a", 0), node("b", 1, long), node("c", 1, long)],
    [{ source: "a", target: "b", operator: long }, { source: "a", target: "b", operator: long },
      { source: "a", target: "c", operator: long }],
    measure);
  assert.equal(layout.labels.length, 2);
  const [one, two] = layout.labels;
  assert.ok(!overlaps(one, two));
  assert.ok(layout.width >= one.width + two.width);
});
