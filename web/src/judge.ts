// What the judge model said of a candidate's answers (metric judge), one split at a time: per
// example the answer, its score, the criterion scores (pointwise) or who won each of the two
// comparisons with the baseline (pairwise), the judge's reasoning, and a mark where the judge's
// answer could not be read, so that a judge that cannot follow the format shows.

import type { Job, JudgeVerdict, Outcome, OutcomeSplit, Task } from "./api";
import { h, replace } from "./dom";
import * as fmt from "./format";

export const SPLITS: readonly OutcomeSplit[] = ["search", "dev", "test"];
const SPLIT_NAMES: Record<OutcomeSplit, string> = { search: "search", dev: "full dev", test: "test" };
const UNPARSABLE = "judge_unparsable"; // the failure of an example whose verdict was unreadable

/** A split's outcomes, or why they could not be loaded. */
export type LoadOutcomes = (candidateId: string, split: OutcomeSplit) => Promise<Outcome[]>;

type TaskField = string | { metric?: unknown; builtin?: unknown } | undefined;

/** The built-in task a job's spec names, when it names no metric of its own: its metric is
 * the built-in's (GET /tasks says which). */
export function builtinTaskName(job: Pick<Job, "spec">): string | null {
  const task = job.spec.task as TaskField;
  if (typeof task === "string") return task;
  if (typeof task === "object" && task !== null && task.metric == null && typeof task.builtin === "string") {
    return task.builtin;
  }
  return null;
}

/** Whether a job's answers are scored by a judge model (metric judge): the spec's own task with
 * that metric, or a built-in task of it (``builtins``: GET /tasks, when the spec names one). */
export function isJudged(job: Pick<Job, "spec">, builtins: Pick<Task, "name" | "metric">[] = []): boolean {
  const task = job.spec.task as TaskField;
  if (typeof task === "object" && task !== null && task.metric != null) return task.metric === "judge";
  const name = builtinTaskName(job);
  return name !== null && builtins.some((t) => t.name === name && t.metric === "judge");
}

export type OrderResult = "won" | "lost" | "tie" | "unreadable";

/** Pairwise: the candidate's result in each comparison. Its answer was A in the first and B
 * in the second, so ["A", "B"] is two wins; null is a verdict that could not be read. */
export function orderResults(winners: JudgeVerdict["winners"]): OrderResult[] {
  return (winners ?? []).map((w, i) =>
    w === null ? "unreadable" : w === "tie" ? "tie" : w === (i === 0 ? "A" : "B") ? "won" : "lost");
}

type Criteria = { criteria?: { name?: unknown }[] } | null | undefined;

function names(rubric: Criteria): string[] {
  return (rubric?.criteria ?? []).map((c) => c.name).filter((n): n is string => typeof n === "string");
}

/** The criterion names of the job's rubric, in its order: the one its spec writes, else its
 * built-in task's (``builtins``: GET /tasks). */
export function rubricCriteria(
  job: Pick<Job, "spec">, builtins: Pick<Task, "name" | "rubric">[] = [],
): string[] {
  const task = job.spec.task as { rubric?: Criteria } | string | undefined;
  const own = typeof task === "object" && task !== null ? names(task.rubric) : [];
  if (own.length) return own;
  const name = builtinTaskName(job);
  return names(builtins.find((t) => t.name === name)?.rubric);
}

/** "faithfulness 4 · brevity 2"; in the rubric's order when known, with "?" for a criterion
 * whose score could not be read. */
export function criteriaText(scores: Record<string, number>, criteria: string[] = []): string {
  const names = criteria.length ? criteria : Object.keys(scores);
  return names.map((name) => `${name} ${scores[name] ?? "?"}`).join(" · ");
}

/** Whether the judge's verdict on this example, or one of its two (pairwise), was unreadable. */
export function isUnreadable(o: Outcome): boolean {
  return o.failure === UNPARSABLE || (o.judge?.unparsable ?? 0) > 0;
}

/** The job's judge counts (`stats.judge`) in one line; null for a job without a judge. */
export function judgeStatsLine(counts: unknown): string | null {
  if (typeof counts !== "object" || counts === null) return null;
  const c = counts as { judged?: number; unparsable?: number; errors?: number };
  const n = (v: number | undefined, one: string, many: string): string =>
    `${fmt.count(v ?? 0)} ${(v ?? 0) === 1 ? one : many}`;
  return `judge: ${n(c.judged, "answer", "answers")} scored, `
    + `${n(c.unparsable, "verdict", "verdicts")} unreadable, ${n(c.errors, "failed call", "failed calls")}`;
}

const ORDER_NAMES = ["answer as A", "answer as B"];

function verdictCell(o: Outcome, criteria: string[]): HTMLElement {
  const j = o.judge ?? null;
  const unreadable = isUnreadable(o);
  const mark = unreadable
    ? h("span", {
      class: "badge unreadable", "data-mark": "unreadable",
      title: o.failure === UNPARSABLE
        ? "the judge's answer could not be read: the example scores 0"
        : "one of the judge's answers could not be read: the score is the readable one's",
    }, "unreadable")
    : null;
  const failed = o.failure && o.failure !== UNPARSABLE
    ? h("div", { class: "muted small" }, o.failure.replaceAll("_", " "))
    : null;
  if (j?.winners?.length) {
    return h("td", { class: "verdict" }, mark,
      orderResults(j.winners).map((r, i) =>
        h("div", { class: `order order-${r}`, "data-order": i + 1 },
          h("span", { class: "muted" }, `${ORDER_NAMES[i] ?? `order ${i + 1}`}: `), r)),
      failed);
  }
  return h("td", { class: "verdict" }, mark,
    j?.scores ? h("div", { class: "criteria" }, criteriaText(j.scores, criteria)) : null,
    failed);
}

function reasoningCell(o: Outcome, criteria: string[]): HTMLElement {
  const reasons = o.judge?.reasoning ?? [];
  // one reason per comparison (pairwise) or per criterion, in the rubric's order (pointwise)
  const labels = (o.judge?.winners?.length ?? 0) > 0 ? ORDER_NAMES
    : reasons.length > 1 && reasons.length === criteria.length ? criteria : [];
  if (!reasons.some((r) => r.trim())) return h("td", { class: "muted" }, "—");
  return h("td", { class: "prompt-cell" }, reasons.map((r, i) => r.trim()
    ? h("div", { class: "prompt reasoning" },
      labels[i] ? h("span", { class: "muted" }, `${labels[i]}: `) : null, r)
    : null));
}

/** One row per example: its id, score, the answer, the verdict and the judge's reasoning.
 * ``criteria``: the rubric's criterion names, in its order (pointwise), to name each reason. */
export function verdictTable(items: Outcome[], criteria: string[] = []): HTMLElement {
  return h("div", { class: "table-wrap" }, h("table", { id: "judge-table" },
    h("thead", null, h("tr", null,
      h("th", null, "Example"), h("th", { class: "num" }, "Score"), h("th", null, "Answer"),
      h("th", null, "Verdict"), h("th", null, "Judge's reasoning"))),
    h("tbody", null, items.map((o) =>
      h("tr", { "data-example": o.example_id, "data-unreadable": isUnreadable(o) ? "yes" : "no" },
        h("td", { class: "mono" }, o.example_id),
        h("td", { class: "num" }, fmt.score(o.score)),
        h("td", { class: "prompt-cell" }, h("div", { class: "prompt" }, o.prediction || "(no answer)")),
        verdictCell(o, criteria),
        reasoningCell(o, criteria))))));
}

type Loaded = Outcome[] | Error;

/** The Judge card of the candidate view: a split picker over the verdict table. */
export class JudgeCard {
  readonly el = h("section", { class: "card", id: "judge" });
  private readonly picker = h("div", { class: "split-picker", role: "group", "aria-label": "split" });
  private readonly body = h("div", { class: "judge-body" });
  private readonly cache = new Map<string, Promise<Map<OutcomeSplit, Loaded>>>();
  private current = "";

  /** ``criteria``: the rubric's criterion names in its order, when known (pointwise). */
  constructor(private readonly load: LoadOutcomes, private readonly criteria: string[] = []) {
    replace(this.el,
      h("div", { class: "card-head" }, h("h2", null, "Judge"), h("span", { class: "grow" }), this.picker),
      h("p", { class: "muted small" },
        "What the judge model said of each answer. search: the candidate's last scoring in the search; ",
        "full dev and test: the final scoring (finalists and seed prompts). Pairwise, the answer is ",
        "compared with the baseline's twice, as A and then as B, so a judge that favours a position ",
        "shows as a win and a loss."),
      this.body);
  }

  /** Show a candidate's verdicts, on the first split that has any. */
  async show(candidateId: string): Promise<void> {
    this.current = candidateId;
    replace(this.picker);
    replace(this.body, h("p", { class: "muted" }, "Loading the judge's verdicts…"));
    let pending = this.cache.get(candidateId);
    if (!pending) {
      pending = Promise.all(SPLITS.map((s) => this.load(candidateId, s).then(
        (items): Loaded => items, (err: unknown): Loaded => (err instanceof Error ? err : new Error(String(err))))))
        .then((found) => new Map(SPLITS.map((s, i) => [s, found[i]])));
      this.cache.set(candidateId, pending);
    }
    const loaded = await pending;
    if (this.current !== candidateId) return; // another candidate was picked meanwhile
    if ([...loaded.values()].some((v) => v instanceof Error)) this.cache.delete(candidateId);
    const first = SPLITS.find((s) => { const v = loaded.get(s); return Array.isArray(v) && v.length > 0; })
      ?? SPLITS.find((s) => loaded.get(s) instanceof Error) ?? null;
    if (first === null) {
      replace(this.body, h("p", { class: "muted", id: "judge-empty" },
        "No verdicts stored for this candidate: it was not scored in the search or the final phase."));
      return;
    }
    this.pick(loaded, first);
  }

  private pick(loaded: Map<OutcomeSplit, Loaded>, split: OutcomeSplit): void {
    replace(this.picker, SPLITS.map((s) => {
      const v = loaded.get(s);
      const n = Array.isArray(v) ? v.length : null;
      return h("button", {
        type: "button", class: "small", "data-split": s, "aria-pressed": s === split ? "true" : "false",
        disabled: n === 0, title: n === 0 ? "no verdicts on this split" : null,
        onclick: () => this.pick(loaded, s),
      }, n === null ? SPLIT_NAMES[s] : `${SPLIT_NAMES[s]} (${n})`);
    }));
    const v = loaded.get(split);
    if (!Array.isArray(v)) {
      replace(this.body, h("p", { class: "error" }, v?.message ?? "not loaded"));
      return;
    }
    const unreadable = v.filter(isUnreadable).length;
    const scored = v.map((o) => o.score).filter((x): x is number => x !== null);
    const mean = scored.length ? scored.reduce((a, b) => a + b, 0) / scored.length : null;
    replace(this.body,
      h("p", { class: "small", id: "judge-summary", "data-split": split },
        `${v.length} example${v.length === 1 ? "" : "s"} on ${SPLIT_NAMES[split]}, mean score ${fmt.score(mean)}`,
        unreadable ? `, ${unreadable} with an unreadable verdict` : ""),
      verdictTable(v, this.criteria));
  }
}
