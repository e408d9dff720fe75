// Several jobs side by side (for example the runs of `evo compare`): the best score found so
// far per generation on one chart, and one table of what each reached and spent.

import { type Generation, getJson, type Job, LIVE, type Page, plannedGenerations } from "../api";
import { LineChart, PALETTE } from "../chart";
import { every, h, replace } from "../dom";
import * as fmt from "../format";
import { errorText, statusBadge } from "../ui";
import { selected } from "./jobs";

interface Run {
  job: Job;
  gens: Generation[];
}

const MAX_JOBS = 10;

export function compareView(root: HTMLElement, signal: AbortSignal, ids: string[]): void {
  ids = [...new Set(ids)].slice(0, MAX_JOBS);
  for (const id of ids) selected.add(id);
  const chartBox = h("div", { class: "chart", id: "compare-chart" });
  const body = h("tbody");
  const error = h("div", { class: "error", role: "alert" });
  const picker = h("div", { class: "picker" });
  let chart: LineChart | null = null;

  replace(root,
    h("div", { class: "page-head" }, h("div", { class: "title-row" }, h("h1", null, "Compare jobs"),
      h("span", { class: "grow" }), h("a", { href: "#/jobs", class: "button" }, "← Jobs"))),
    error,
    h("section", { class: "card" },
      h("h2", null, "Best score so far per generation"),
      h("p", { class: "muted small" }, "The best search score (dev, or its sample) found up to each generation."),
      chartBox),
    h("section", { class: "card" },
      h("div", { class: "table-wrap" }, h("table", { id: "compare-table" },
        h("thead", null, h("tr", null,
          h("th", null, ""), h("th", null, "Job"), h("th", null, "Status"), h("th", null, "Algorithm"),
          h("th", null, "Task"), h("th", { class: "num" }, "Gens"),
          h("th", { class: "num" }, "Best dev"), h("th", { class: "num" }, "Test"),
          h("th", { class: "num" }, "Seed dev"), h("th", { class: "num" }, "Seed test"),
          h("th", { class: "num" }, "Calls"), h("th", { class: "num" }, "Tokens"), h("th", { class: "num" }, "USD"),
          h("th", { class: "num" }, "Time"),
          h("th", null, ""))),
        body))),
    h("section", { class: "card" }, h("h2", null, "Add jobs"), picker),
  );
  signal.addEventListener("abort", () => chart?.destroy());

  // Generations already read, per job: a running job's are followed page by page (only its
  // newest rows change), an ended one's read once in full (its final phase may have re-scored
  // earlier generations).
  const known = new Map<string, Generation[]>();
  const settled = new Set<string>();

  async function generationsOf(job: Job): Promise<Generation[]> {
    const live = LIVE.has(job.status);
    const had = known.get(job.id);
    if (had && settled.has(job.id)) return had;
    const keep = had && live ? had.slice(0, -2) : [];
    const after = keep.at(-1)?.generation ?? -1;
    const gens = [...keep, ...await getJson<Generation[]>(`/jobs/${job.id}/generations`, { after }, signal)];
    known.set(job.id, gens);
    if (!live) settled.add(job.id);
    return gens;
  }

  async function load(): Promise<Run[]> {
    return Promise.all(ids.map(async (id) => {
      const job = await getJson<Job>(`/jobs/${id}`, undefined, signal);
      return { job, gens: await generationsOf(job) };
    }));
  }

  function draw(runs: Run[]): void {
    if (!chart) {
      chart = new LineChart(chartBox, runs.map((r, i) => ({
        label: `${r.job.name} (${fmt.shortId(r.job.id)})`, color: PALETTE[i % PALETTE.length],
      })));
    }
    const last = Math.max(-1, ...runs.flatMap((r) => r.gens.map((g) => g.generation)));
    const x = Array.from({ length: last + 1 }, (_, i) => i);
    chart.setData(x, runs.map((r) => {
      const best = new Map<number, number | null>();
      let so = -Infinity;
      for (const g of [...r.gens].sort((a, b) => a.generation - b.generation)) {
        if (g.best !== null) so = Math.max(so, g.best);
        best.set(g.generation, Number.isFinite(so) ? so : null);
      }
      return x.map((g) => best.get(g) ?? null);
    }), longestPlan(runs));
    replace(body, runs.map((r, i) => {
      const s = r.job.stats as Record<string, number | undefined>;
      const searchBest = r.gens.reduce<number | null>((m, g) => (g.best !== null && (m === null || g.best > m) ? g.best : m), null);
      return h("tr", { "data-job": r.job.id },
        h("td", null, h("span", { class: "swatch", style: `background: ${PALETTE[i % PALETTE.length]}` })),
        h("td", null, h("a", { href: `#/jobs/${r.job.id}` }, r.job.name),
          h("div", { class: "muted mono" }, fmt.shortId(r.job.id))),
        h("td", null, statusBadge(r.job)),
        h("td", null, r.job.algorithm),
        h("td", null, r.job.task),
        h("td", { class: "num" }, r.gens.length),
        h("td", { class: "num", title: s.best_dev === undefined ? "search score so far" : "full dev split" },
          fmt.score(s.best_dev ?? searchBest)),
        h("td", { class: "num" }, fmt.score(s.best_test ?? null)),
        h("td", { class: "num" }, fmt.score(s.seed_dev ?? null)),
        h("td", { class: "num" }, fmt.score(s.seed_test ?? null)),
        h("td", { class: "num" }, fmt.count(s.calls ?? r.gens.at(-1)?.calls_total ?? null)),
        h("td", { class: "num" }, fmt.count(s.tokens ?? r.gens.at(-1)?.tokens_total ?? null)),
        h("td", { class: "num" }, fmt.usd(s.usd ?? null)),
        h("td", { class: "num" }, fmt.seconds(s.elapsed_s ?? fmt.elapsed(r.job.started_at, r.job.ended_at))),
        h("td", null, h("button", {
          type: "button", class: "small link", onclick: () => {
            selected.delete(r.job.id);
            location.hash = `#/compare/${ids.filter((id) => id !== r.job.id).join(",")}`;
          },
        }, "remove")));
    }));
  }

  /** The most generations any of the jobs plans: the chart's x-axis runs to it. */
  function longestPlan(runs: Run[]): number | null {
    const plans = runs.map((r) => plannedGenerations(r.job)).filter((n): n is number => n !== null);
    return plans.length ? Math.max(...plans) : null;
  }

  async function refresh(): Promise<boolean> {
    try {
      const runs = await load();
      draw(runs);
      replace(error);
      return runs.some((r) => LIVE.has(r.job.status));
    } catch (err) {
      if (!signal.aborted) replace(error, errorText(err));
      return false;
    }
  }

  async function fillPicker(): Promise<void> {
    try {
      const page = await getJson<Page<Job>>("/jobs", { limit: 50 }, signal);
      const others = page.items.filter((j) => !ids.includes(j.id));
      replace(picker, others.length
        ? h("ul", { class: "pick-list" }, others.map((j) =>
          h("li", null, h("a", { href: `#/compare/${[...ids, j.id].join(",")}` },
            `+ ${j.name}`), h("span", { class: "muted" }, ` ${j.algorithm} on ${j.task} · ${j.status} · ${fmt.shortId(j.id)}`))))
        : h("p", { class: "muted" }, "No other jobs."));
    } catch (err) {
      if (!signal.aborted) replace(picker, h("p", { class: "error" }, errorText(err)));
    }
  }

  void fillPicker();
  if (!ids.length) {
    replace(chartBox, h("p", { class: "muted" }, "Pick jobs below, or tick them on the Jobs page."));
    return;
  }
  void refresh().then((live) => {
    if (!live) return;
    // running jobs: follow them until all have stopped
    const stop = new AbortController();
    signal.addEventListener("abort", () => stop.abort());
    every(3000, stop.signal, async () => {
      if (!(await refresh())) stop.abort();
    });
  });
}
