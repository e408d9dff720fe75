// The Judge card of the candidate view: pointwise criterion scores, pairwise winners said as the
// candidate's win, loss or tie in each order, the judge's reasoning, unreadable verdicts marked,
// and the split picker that starts on the first split with verdicts.

import assert from "node:assert/strict";
import { test } from "node:test";

import type { Outcome, OutcomeSplit } from "../src/api";
import { criteriaText, isJudged, JudgeCard, judgeStatsLine, orderResults, rubricCriteria } from "../src/judge";
import { fake, installFakeDom } from "./fake_dom";

installFakeDom();

// one reason per criterion, in the rubric's order; a criterion whose score was unreadable is
// missing from the scores
const POINTWISE: Outcome[] = [
  {
    example_id: "ex-1", score: 0.58, prediction: "Paris is the capital.", failure: null,
    judge: {
      value: 0.58, scores: { faithfulness: 4, brevity: 2 }, reasoning: ["All true.", "Wordy."], unparsable: 0,
    },
  },
  {
    example_id: "ex-2", score: 0, prediction: "Lyon", failure: "judge_unparsable",
    judge: { scores: { faithfulness: 1 }, reasoning: ["Wrong city.", "I think it is fine"], unparsable: 1 },
  },
];

const PAIRWISE: Outcome[] = [
  {
    example_id: "p-1", score: 1, prediction: "A short answer.", failure: null,
    judge: { value: 1, winners: ["A", "B"], reasoning: ["A is clearer.", "B is clearer."], unparsable: 0 },
  },
  {
    example_id: "p-2", score: 0.5, prediction: "Another.", failure: null,
    judge: { value: 0.5, winners: ["B", "tie"], reasoning: ["B says more.", "Equal."], unparsable: 0 },
  },
  {
    example_id: "p-3", score: 0, prediction: "Third.", failure: null,
    judge: { value: 0, winners: [null, "A"], reasoning: ["", "A wins."], unparsable: 1 },
  },
];

/** A loader over fixed outcomes per split, counting its calls. */
function loader(splits: Partial<Record<OutcomeSplit, Outcome[]>>) {
  const calls: string[] = [];
  const load = async (id: string, split: OutcomeSplit): Promise<Outcome[]> => {
    calls.push(`${id}:${split}`);
    return splits[split] ?? [];
  };
  return { load, calls };
}

const rowOf = (card: JudgeCard, example: string) => fake(card.el).one("data-example", example);

test("pointwise: the answer, score, criterion scores and reasoning; an unreadable verdict is marked", async () => {
  const { load } = loader({ search: POINTWISE });
  const card = new JudgeCard(load, ["faithfulness", "brevity"]);
  await card.show("cand-1");
  const root = fake(card.el);
  assert.equal(root.one("id", "judge-summary").getAttribute("data-split"), "search");
  assert.match(root.one("id", "judge-summary").textContent, /2 examples on search, mean score 0\.290, 1 with an unreadable verdict/);

  const good = rowOf(card, "ex-1");
  assert.equal(good.getAttribute("data-unreadable"), "no");
  assert.match(good.textContent, /Paris is the capital\./);
  assert.match(good.textContent, /0\.580/);
  assert.match(good.textContent, /faithfulness 4 · brevity 2/);
  assert.match(good.textContent, /faithfulness: All true\.brevity: Wordy\./);
  assert.equal(good.all("data-mark", "unreadable").length, 0);

  const bad = rowOf(card, "ex-2");
  assert.equal(bad.getAttribute("data-unreadable"), "yes");
  assert.equal(bad.one("data-mark", "unreadable").textContent, "unreadable");
  assert.match(bad.textContent, /faithfulness 1 · brevity \?/);
  assert.match(bad.textContent, /brevity: I think it is fine/); // what it said is kept
  assert.doesNotMatch(bad.textContent, /judge unparsable/); // the mark says it, once
});

test("pairwise: each order is the candidate's win, loss or tie; an unreadable order is marked", async () => {
  const { load } = loader({ dev: PAIRWISE });
  const card = new JudgeCard(load);
  await card.show("cand-2");
  const orders = (example: string) => rowOf(card, example).all("data-order").map((e) => e.textContent);

  assert.deepEqual(orders("p-1"), ["answer as A: won", "answer as B: won"]);
  assert.deepEqual(orders("p-2"), ["answer as A: lost", "answer as B: tie"]);
  assert.deepEqual(orders("p-3"), ["answer as A: unreadable", "answer as B: lost"]);
  assert.match(rowOf(card, "p-1").textContent, /answer as A: A is clearer\.answer as B: B is clearer\./);
  assert.equal(rowOf(card, "p-1").all("data-mark", "unreadable").length, 0);
  assert.equal(rowOf(card, "p-3").one("data-mark", "unreadable").textContent, "unreadable");
  assert.equal(rowOf(card, "p-3").getAttribute("data-unreadable"), "yes");
});

test("the picker starts on the first split with verdicts, and switches", async () => {
  const { load, calls } = loader({ dev: PAIRWISE, test: POINTWISE });
  const card = new JudgeCard(load);
  await card.show("c");
  const root = fake(card.el);
  const button = (s: string) => {
    const [found] = root.all("data-split", s).filter((e) => e.tagName === "button");
    assert.ok(found, `no ${s} button`);
    return found;
  };
  assert.equal(button("search").getAttribute("aria-pressed"), "false");
  assert.ok(button("search").attributes.has("disabled")); // no verdicts there
  assert.equal(button("dev").getAttribute("aria-pressed"), "true");
  assert.equal(button("dev").textContent, "full dev (3)");
  assert.equal(root.all("data-example").length, 3);

  button("test").click();
  assert.equal(button("test").getAttribute("aria-pressed"), "true");
  assert.deepEqual(root.all("data-example").map((e) => e.getAttribute("data-example")), ["ex-1", "ex-2"]);

  await card.show("c"); // shown again: not loaded again
  assert.deepEqual(calls, ["c:search", "c:dev", "c:test"]);
});

test("a candidate with no verdicts says so; a failed split shows its error", async () => {
  const card = new JudgeCard(loader({}).load);
  await card.show("none");
  assert.match(fake(card.el).one("id", "judge-empty").textContent, /No verdicts stored/);

  const failing = new JudgeCard(async () => {
    throw new Error("503 unavailable");
  });
  await failing.show("x");
  assert.match(fake(failing.el).textContent, /503 unavailable/);
});

test("orders, criteria, the job's counts in words, and which jobs are judged", () => {
  assert.deepEqual(orderResults(["A", "B"]), ["won", "won"]);
  assert.deepEqual(orderResults(["B", "A"]), ["lost", "lost"]);
  assert.deepEqual(orderResults(["tie", null]), ["tie", "unreadable"]);
  assert.equal(judgeStatsLine({ judged: 40, unparsable: 3, errors: 1 }),
    "judge: 40 answers scored, 3 verdicts unreadable, 1 failed call");
  assert.equal(judgeStatsLine({ judged: 1, unparsable: 0, errors: 0 }),
    "judge: 1 answer scored, 0 verdicts unreadable, 0 failed calls");
  assert.equal(judgeStatsLine(undefined), null);
  assert.equal(isJudged({ spec: { task: { metric: "judge", rubric: {} } } }), true);
  assert.equal(isJudged({ spec: { task: { metric: "f1" } } }), false);
  const builtins = [{ name: "summary", metric: "judge" }, { name: "sentiment", metric: "label_accuracy" }];
  assert.equal(isJudged({ spec: { task: "summary" } }, builtins), true);
  assert.equal(isJudged({ spec: { task: { builtin: "summary", seed_prompts: ["x"] } } }, builtins), true);
  assert.equal(isJudged({ spec: { task: { builtin: "summary", metric: "f1" } } }, builtins), false);
  assert.equal(isJudged({ spec: { task: "sentiment" } }, builtins), false);
  assert.equal(isJudged({ spec: { task: "summary" } }), false); // the task list not read
  assert.equal(criteriaText({ b: 2 }, ["a", "b"]), "a ? · b 2");
  assert.equal(criteriaText({ a: 1, b: 2 }), "a 1 · b 2");
});

test("the rubric's criteria come from the spec, else from the built-in task", () => {
  const summary = { name: "summary", rubric: { criteria: [
    { name: "faithfulness", description: "d", weight: 3, scale: 5 },
    { name: "brevity", description: "d", weight: 1, scale: 5 }] } };
  assert.deepEqual(rubricCriteria({ spec: { task: "summary" } }, [summary]), ["faithfulness", "brevity"]);
  const own = { task: { metric: "judge", rubric: { criteria: [{ name: "tone" }] } } };
  assert.deepEqual(rubricCriteria({ spec: own }, [summary]), ["tone"]);
  assert.deepEqual(rubricCriteria({ spec: { task: "sentiment" } }, [summary]), []);
});
