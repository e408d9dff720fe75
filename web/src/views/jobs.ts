// The jobs page: the caller's jobs (an admin's: everyone's), live, with their controls; the
// new-job form; a selection to compare.

import { getJson, type Job, type Me, type Page } from "../api";
import { every, h, replace } from "../dom";
import * as fmt from "../format";
import { type Part, whoseJobs, whyNoJobs } from "../tenancy";
import { errorText, jobControls, statusBadge } from "../ui";
import { submitForm } from "./submit";

const PAGE = 25;
const STATUSES = ["", "queued", "running", "completed", "failed", "cancelled", "paused", "interrupted"];

/** Jobs picked for the compare view; kept while the tab moves between pages. */
export const selected = new Set<string>();

export function jobsView(root: HTMLElement, signal: AbortSignal): void {
  let offset = 0;
  let status = "";
  let firstLoad = true;
  let me: Me | null | undefined; // who the key acts for: undefined until asked, null if unknown

  const body = h("tbody");
  const summary = h("span", { class: "muted" });
  const prev = h("button", { type: "button", class: "small" }, "← Newer");
  const next = h("button", { type: "button", class: "small" }, "Older →");
  const compare = h("button", { type: "button", class: "small", id: "compare-selected" });
  const loadError = h("div", { class: "error", role: "alert" });
  const whose = h("p", { class: "muted", id: "whose-jobs" });
  const statusFilter = h("select", { id: "status-filter", "aria-label": "status" },
    STATUSES.map((s) => h("option", { value: s }, s || "any status")));
  const newJob = h("details", { class: "card", id: "new-job" },
    h("summary", null, h("h2", null, "New job")),
    submitForm((job) => {
      location.hash = `#/jobs/${job.id}`;
    }));

  // opened for someone with no jobs yet, unless they have opened or closed it themselves
  newJob.querySelector("summary")?.addEventListener("click", () => {
    firstLoad = false;
  });
  prev.addEventListener("click", () => {
    offset = Math.max(0, offset - PAGE);
    void load();
  });
  next.addEventListener("click", () => {
    offset += PAGE;
    void load();
  });
  statusFilter.addEventListener("change", () => {
    status = statusFilter.value;
    offset = 0;
    void load();
  });
  compare.addEventListener("click", () => {
    location.hash = `#/compare/${[...selected].join(",")}`;
  });

  function compareLabel(): void {
    compare.textContent = `Compare selected (${selected.size})`;
    compare.disabled = selected.size < 1;
  }

  replace(
    root,
    h("div", { class: "page-head" }, h("h1", null, "Jobs"), whose),
    newJob,
    h("section", { class: "card" },
      h("div", { class: "toolbar" }, statusFilter, summary, h("span", { class: "grow" }), compare, prev, next),
      loadError,
      h("div", { class: "table-wrap" },
        h("table", { class: "jobs", id: "jobs-table" },
          h("thead", null, h("tr", null,
            h("th", null, ""), h("th", null, "Job"), h("th", null, "Status"), h("th", null, "Task"),
            h("th", null, "Algorithm"), h("th", { class: "num" }, "Best"),
            h("th", null, "Spend (calls)"), h("th", null, "Started"), h("th", null, ""))),
          body))),
  );
  compareLabel();

  async function load(): Promise<void> {
    try {
      if (me === undefined) {
        // the key's name and rights, to say whose jobs these are (and why there may be none)
        me = await getJson<Me>("/me", undefined, signal).catch(() => null);
        whose.textContent = whoseJobs(me);
      }
      const page = await getJson<Page<Job>>("/jobs", { limit: PAGE, offset, status }, signal);
      render(page);
      replace(loadError);
      if (firstLoad) {
        firstLoad = false;
        newJob.open = page.total === 0 && !status;
      }
    } catch (err) {
      if (!signal.aborted) replace(loadError, `Could not load jobs: ${errorText(err)}`);
    }
  }

  function render(page: Page<Job>): void {
    const from = page.total ? page.offset + 1 : 0;
    summary.textContent = `${from}–${page.offset + page.items.length} of ${fmt.count(page.total)}`;
    prev.disabled = page.offset === 0;
    next.disabled = page.offset + page.items.length >= page.total;
    if (!page.items.length) {
      replace(body, h("tr", null, h("td", { colspan: 9, class: "muted empty", id: "no-jobs" },
        status
          ? `No ${status} jobs.`
          : h("div", { class: "empty-why" }, whyNoJobs(me ?? null).map((parts) => h("p", null, parts.map(part)))))));
      return;
    }
    replace(body, page.items.map((job) => row(job)));
  }

  function row(job: Job): HTMLElement {
    // a running job's stats carry its best search score so far; an ended one's its full-dev best
    const stats = job.stats as { best_dev?: number; best_search?: number | null; calls?: number };
    const best = stats.best_dev ?? stats.best_search ?? null;
    const calls = stats.calls ?? null;
    const budget = (job.spec.budget as { calls?: number | null } | undefined)?.calls ?? null;
    const pick = h("input", {
      type: "checkbox",
      "aria-label": `select ${job.name} to compare`,
      checked: selected.has(job.id),
    });
    pick.addEventListener("change", () => {
      if (pick.checked) selected.add(job.id);
      else selected.delete(job.id);
      compareLabel();
    });
    return h("tr", { "data-job": job.id },
      h("td", null, pick),
      h("td", null,
        h("a", { href: `#/jobs/${job.id}`, class: "job-link" }, job.name),
        h("div", { class: "muted mono" }, fmt.shortId(job.id), job.owner ? ` · ${job.owner}` : "")),
      h("td", null, statusBadge(job)),
      h("td", null, job.task),
      h("td", null, job.algorithm),
      h("td", { class: "num" }, fmt.score(best)),
      h("td", null, spend(calls, budget)),
      h("td", { title: job.started_at ?? "" }, fmt.when(job.started_at)),
      h("td", null, jobControls(job, () => void load())),
    );
  }

  void load();
  every(3000, signal, load);
}

function spend(calls: number | null, budget: number | null): HTMLElement {
  const share = calls !== null && budget ? Math.min(1, calls / budget) : 0;
  return h("div", { class: "spend" },
    h("span", null, fmt.count(calls), budget ? ` / ${fmt.count(budget)}` : ""),
    h("div", { class: "meter-track thin" },
      h("div", { class: "meter-fill", style: `width: ${share * 100}%` })));
}

function part(p: Part): Node | string {
  return typeof p === "string" ? p : h("code", null, p.code);
}
