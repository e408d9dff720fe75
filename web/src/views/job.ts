// One job, live: best and mean score per generation as the GenerationDone events arrive, what
// the job warns about, spend against the budget, its candidates, and once it ends the
// leaderboard with test scores.

import { ApiError, type ExportData, getJson, type Job, LIVE, plannedGenerations, request } from "../api";
import { LineChart } from "../chart";
import { paretoChart } from "../pareto";
import { debounce, every, h, replace } from "../dom";
import * as fmt from "../format";
import { judgeStatsLine } from "../judge";
import { follow, type StreamState } from "../sse";
import { errorText, exportButtons, jobControls, meter, statusBadge } from "../ui";
import { searchWarning, Warnings } from "../warnings";
import { CandidateTable } from "./candidates";
import { DataSetCard } from "./dataset";

interface Point {
  best: number;
  mean: number;
}

const STREAM_TEXT: Record<StreamState, string> = {
  connecting: "connecting…",
  open: "live",
  reconnecting: "reconnecting…",
  closed: "not live",
};

export function jobView(root: HTMLElement, signal: AbortSignal, id: string): void {
  let job: Job | null = null;
  const points = new Map<number, Point>();
  let calls: number | null = null;
  let tokens: number | null = null;
  let reserved: number | null = null;
  let lastEventId = "";
  let following = false;
  let board: string | null = null; // the job state the leaderboard was read at
  const warnings = new Warnings();
  // a data-set job has no scores per generation, no best prompt and no leaderboard: its items
  // take their place (null: not known yet)
  let isDataSet: boolean | null = null;

  const head = h("div", { class: "page-head" });
  const meters = h("div", { class: "meters" });
  const judgeLine = h("p", { class: "muted small", id: "judge-stats", hidden: true });
  const stream = h("span", { class: "stream", id: "stream-state" });
  const generationText = h("span", { class: "muted", id: "generation-text" });
  const chartBox = h("div", { class: "chart", id: "score-chart" });
  const chartNote = h("p", { class: "muted small" },
    "Best and mean search score (dev, or its sample) of the population after each generation.");
  const warningBox = h("section", { class: "warnings", id: "job-warnings", role: "alert", hidden: true });
  const leaderboard = h("section", { class: "card", id: "leaderboard", hidden: true });
  const preview = h("div", { class: "preview", id: "export-preview" });
  const table = new CandidateTable(id, signal);
  const dataset = new DataSetCard(id, signal); // shown for a job whose result is a data set
  const scoreCard = h("section", { class: "card" },
    h("div", { class: "card-head" },
      h("h2", null, "Score per generation"), generationText),
    chartNote,
    chartBox);

  replace(
    root,
    head,
    warningBox,
    preview,
    h("section", { class: "card" },
      h("div", { class: "card-head" }, h("h2", null, "Spend against the budget"), stream),
      meters, judgeLine),
    scoreCard,
    dataset.el,
    leaderboard,
    h("section", { class: "card" },
      h("div", { class: "card-head" }, h("h2", null, "Candidates"),
        h("span", { class: "muted small" }, "click one to see its family tree")),
      table.el),
  );

  const chart = new LineChart(chartBox, [
    { label: "best", color: "#2563eb" },
    { label: "mean", color: "#94a3b8", dash: [6, 4] },
  ]);
  signal.addEventListener("abort", () => chart.destroy());

  function redrawChart(): void {
    const x = [...points.keys()].sort((a, b) => a - b);
    const total = job ? plannedGenerations(job) : null;
    chart.setData(x, [x.map((g) => points.get(g)?.best ?? null), x.map((g) => points.get(g)?.mean ?? null)], total);
    generationText.textContent = x.length
      ? `generation ${x.at(-1)}${total !== null ? ` of ${total}` : ""}`
      : "no generation finished yet";
  }

  function renderWarnings(): void {
    replace(warningBox, warnings.items.map((w) =>
      h("div", { class: "warning", "data-code": w.code },
        h("strong", null, "Warning "), h("span", { class: "mono muted" }, `(${w.code})`),
        h("p", { class: "warning-text" }, w.message))));
    warningBox.hidden = warnings.items.length === 0;
  }

  function renderHead(): void {
    if (!job) return;
    const j = job;
    const sample = searchSample(j);
    chartNote.textContent = "Best and mean search score of the population after each generation, " +
      (sample !== null ? `on the search's sample of ${sample} dev examples.` : "on the dev split.");
    replace(head,
      h("div", { class: "title-row" },
        h("h1", null, j.name), statusBadge(j),
        h("span", { class: "grow" }),
        jobControls(j, (updated) => {
          job = updated;
          renderHead();
          if (LIVE.has(updated.status) && !following) startFollowing();
        })),
      h("div", { class: "facts" },
        fact("job", h("span", { class: "mono" }, j.id)),
        fact("task", j.task), fact("algorithm", j.algorithm), fact("seed", j.seed),
        j.owner ? fact("owner", j.owner) : null,
        fact("started", j.started_at ? fmt.when(j.started_at) : "not yet"),
        j.ended_at ? fact("ended", fmt.when(j.ended_at)) : null),
      j.reason ? h("p", { class: `reason status-${j.status}` }, j.reason) : null,
      h("div", { class: "title-row" },
        // a data set has no best prompt: its items have family trees of their own
        isDataSet ? null : h("a", { href: `#/jobs/${j.id}/lineage`, class: "button", id: "winner-lineage" },
          "Family tree of the best"),
        h("a", { href: `#/compare/${j.id}`, class: "button" }, "Compare…"),
        h("span", { class: "grow" }),
        isDataSet ? null : exportButtons(j, topK(j), preview)),
    );
  }

  function renderMeters(): void {
    if (!job) return;
    const stats = job.stats as Record<string, number | undefined>;
    const budget = (job.spec.budget ?? {}) as Record<string, number | null | undefined>;
    const ended = !LIVE.has(job.status) && stats.calls !== undefined;
    const usedCalls = ended ? stats.calls ?? null : calls;
    const usedTokens = ended ? stats.tokens ?? null : tokens;
    const seconds = ended && stats.elapsed_s !== undefined
      ? stats.elapsed_s
      : fmt.elapsed(job.started_at, job.ended_at);
    replace(meters,
      meter("Calls", usedCalls, budget.calls ?? null, fmt.count,
        [reserved ? `${fmt.count(reserved)} kept for the final scoring` : "",
          stats.cached ? `${fmt.count(stats.cached)} answered from the cache (free)` : ""]
          .filter(Boolean).join(" · ") || undefined),
      meter("Tokens", usedTokens, budget.tokens ?? null, fmt.count),
      // spend by the models' prices, as of the last stored generation while the job runs
      stats.usd || budget.usd
        ? meter("Spend", stats.usd ?? null, budget.usd ?? null, fmt.usd)
        : null,
      meter("Time", seconds, budget.seconds ?? null, fmt.seconds,
        ended ? "search and final scoring" : undefined),
    );
    // metric judge: what the judge scored and what of it could not be read
    const judged = judgeStatsLine(job.stats.judge);
    judgeLine.textContent = judged ?? "";
    judgeLine.hidden = judged === null;
  }

  async function loadJob(): Promise<void> {
    job = await getJson<Job>(`/jobs/${id}`, undefined, signal);
    renderHead();
    renderMeters();
    if (!LIVE.has(job.status) && board !== job.status + (job.ended_at ?? "")) {
      board = job.status + (job.ended_at ?? "");
      await loadLeaderboard(job);
    }
  }
  async function refreshDataSet(): Promise<void> {
    if (isDataSet === false) return;
    const was = isDataSet;
    isDataSet = await dataset.refresh();
    scoreCard.hidden = isDataSet;
    if (was !== isDataSet) renderHead();
  }
  const refreshSoon = debounce(400, () => {
    void loadJob().catch(() => undefined);
    void table.refresh();
    void refreshDataSet();
  });

  async function loadLeaderboard(j: Job): Promise<void> {
    try {
      const response = await request(`/jobs/${j.id}/export`, { query: { format: "json", top: topK(j) }, signal });
      const top = (await response.json()) as ExportData;
      if (!top.prompts.length) {
        leaderboard.hidden = true;
        return;
      }
      const seed = top.seed_prompt_scores;
      const win = top.prompts[0];
      const n = win.dev_examples ?? null;
      const sample = searchSample(j);
      replace(leaderboard,
        h("div", { class: "card-head" }, h("h2", null, "Leaderboard"),
          h("span", { class: "muted small", id: "leaderboard-basis" },
            "ranked by full-dev score: the search's best and the seed prompts re-scored on ",
            n !== null ? `all ${fmt.count(n)} dev examples` : "the whole dev split",
            "; the winner and the best seed once on test")),
        sample !== null
          ? h("p", { class: "muted small" },
            `The search scored each candidate on a sample of ${sample} dev examples (the candidates `
            + "below): one that did well on the sample may rank lower here, or not be here at all.")
          : null,
        h("p", { class: "why" }, whyItWon(win, seed)),
        top.versus_seed ? h("p", { id: "versus-seed", class: "why" }, versusSeed(top.versus_seed)) : null,
        (top.label_bias?.warnings ?? []).map((w) =>
          h("p", { class: "why label-bias" }, `Warning: ${w}.`)),
        j.pareto?.length
          ? h("div", { id: "pareto-front" },
            h("h3", null, "Pareto front"),
            h("p", { class: "muted small" },
              "The finalists no other beats on both the full-dev score and the cost per use "
              + "(evaluation.objectives); the winner above is the best by score."),
            paretoChart(j.pareto))
          : null,
        h("div", { class: "table-wrap" }, h("table", { id: "leaderboard-table" },
          h("thead", null, h("tr", null,
            h("th", { class: "num" }, "#"),
            h("th", { class: "num", title: "score on the whole dev split" }, n !== null ? `Full dev (n=${n})` : "Full dev"),
            h("th", { class: "num" }, "Test"),
            h("th", { class: "num" }, "Gen."), h("th", null, "Operator"), h("th", null, "Prompt"), h("th", null, ""))),
          h("tbody", null,
            top.prompts.map((p, i) => h("tr", { "data-candidate": p.candidate_id },
              h("td", { class: "num" }, i + 1),
              h("td", { class: "num" }, fmt.score(p.dev_score)),
              h("td", { class: "num" }, fmt.score(p.test_score)),
              h("td", { class: "num" }, p.generation),
              h("td", null, p.operator),
              h("td", { class: "prompt-cell" }, h("div", { class: "prompt" }, p.prompt)),
              h("td", null, h("a", { href: `#/jobs/${j.id}/lineage/${p.candidate_id}` }, "family tree")))),
            h("tr", { class: "baseline" },
              h("td", { class: "num" }, "seed"),
              h("td", { class: "num" }, fmt.score(seed.dev)),
              h("td", { class: "num" }, fmt.score(seed.test)),
              h("td", { colspan: 4, class: "muted" }, "the best seed prompt, for comparison"))))),
      );
      leaderboard.hidden = false;
    } catch (err) {
      if (!signal.aborted) replace(leaderboard, h("p", { class: "error" }, errorText(err)));
    }
  }

  function onEvent(kind: string, data: Record<string, unknown>): void {
    if (kind === "JobStarted") {
      reserved = Number(data.reserved_calls ?? 0);
    } else if (kind === "GenerationDone") {
      points.set(Number(data.generation), { best: Number(data.best), mean: Number(data.mean) });
      calls = Number(data.calls);
      tokens = Number(data.tokens);
      redrawChart();
      renderMeters();
      refreshSoon();
    } else if (kind === "SearchWarning") {
      const warning = searchWarning(data);
      if (warning && warnings.add(warning)) renderWarnings();
    } else if (kind === "JobEnded") {
      refreshSoon();
    }
  }

  function startFollowing(): void {
    following = true;
    void follow(`/jobs/${id}/events`, {
      signal,
      lastEventId,
      onMessage: (message) => {
        lastEventId = message.id;
        try {
          onEvent(message.event, JSON.parse(message.data) as Record<string, unknown>);
        } catch (err) {
          console.warn("bad event", message, err);
        }
      },
      onState: (state, detail) => {
        stream.textContent = STREAM_TEXT[state];
        stream.dataset.state = state;
        stream.title = detail ?? "";
      },
      more: async () => {
        // the server ended the stream: connect again only if the job may still write events
        await loadJob();
        return job !== null && LIVE.has(job.status);
      },
    }).catch(() => undefined).finally(() => {
      following = false;
    });
  }

  void (async () => {
    try {
      await loadJob();
    } catch (err) {
      if (signal.aborted) return;
      replace(root, h("section", { class: "card" },
        h("h1", null, err instanceof ApiError && err.status === 404 ? "No such job" : "Could not load the job"),
        h("p", { class: "error", id: "job-error" }, errorText(err)),
        h("p", null, h("a", { href: "#/jobs" }, "Back to the jobs"))));
      return;
    }
    redrawChart();
    void table.refresh();
    void refreshDataSet();
    startFollowing();
    // state changes that write no event (a pause asked, a heartbeat) show up within seconds
    every(5000, signal, async () => {
      if (job && LIVE.has(job.status)) await loadJob();
    });
  })();
}

function fact(label: string, value: string | number | Node): HTMLElement {
  return h("span", { class: "fact" }, h("span", { class: "muted" }, `${label} `), value);
}

function topK(job: Job): number {
  const evaluation = job.spec.evaluation as { top_k?: number } | undefined;
  return Math.max(1, Math.min(100, evaluation?.top_k ?? 3));
}

/** How many dev examples the search scores each candidate on, when it takes a sample. */
function searchSample(job: Job): number | null {
  const algorithm = job.spec.algorithm as { dev_subset?: unknown } | undefined;
  return typeof algorithm?.dev_subset === "number" ? algorithm.dev_subset : null;
}

function versusSeed(v: NonNullable<ExportData["versus_seed"]>): string {
  const text = v.same ? v.sentence : `on test, the winner is ${v.sentence}`;
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;
}

function whyItWon(win: ExportData["prompts"][number], seed: ExportData["seed_prompt_scores"]): string {
  const gain = win.dev_score !== null && seed.dev !== null ? win.dev_score - seed.dev : null;
  const parts = [
    `The winner scores ${fmt.score(win.dev_score)} on the full dev split`,
    gain !== null ? ` (${gain >= 0 ? "+" : ""}${gain.toFixed(3)} over the best seed prompt)` : "",
    win.test_score !== null ? ` and ${fmt.score(win.test_score)} on test (seed: ${fmt.score(seed.test)})` : "",
    `. It was made in generation ${win.generation} by ${win.operator}; its family tree has `,
    `${win.lineage.ancestors} ancestor${win.lineage.ancestors === 1 ? "" : "s"}`,
    win.lineage.operators.length ? ` (operators: ${win.lineage.operators.join(", ")}).` : ".",
  ];
  return parts.join("");
}
