// A job's candidates as a table, filtered, sorted and paged by the server, so a job of any
// size stays responsive. Each score says which examples it is on: the search's sample of the
// dev split, or (finalists) the whole split, which the leaderboard ranks by.

import { type Candidate, getJson, type Page } from "../api";
import { h, replace } from "../dom";
import * as fmt from "../format";
import { errorText } from "../ui";

const PAGE = 20;
const COLUMNS = [
  { sort: "score", label: "Dev score", num: true },
  { sort: "generation", label: "Gen.", num: true },
  { sort: "operator", label: "Operator", num: false },
  { sort: "length", label: "Length", num: true },
] as const;

export class CandidateTable {
  readonly el: HTMLElement;
  private sort = "-score";
  private offset = 0;
  private generation = "";
  private operator = "";
  private readonly body = h("tbody");
  private readonly head = h("tr");
  private readonly summary = h("span", { class: "muted" });
  private readonly prev = h("button", { type: "button", class: "small" }, "← Prev");
  private readonly next = h("button", { type: "button", class: "small" }, "Next →");
  private readonly error = h("div", { class: "error", role: "alert" });
  private readonly operators = h("datalist", { id: "operators-seen" });
  private readonly seen = new Set<string>();
  private loading: Promise<void> | null = null;
  private again = false;

  constructor(private readonly jobId: string, private readonly signal: AbortSignal) {
    const generation = h("input", {
      type: "text", inputmode: "numeric", placeholder: "all", class: "narrow",
      "aria-label": "generation", id: "filter-generation",
    });
    const operator = h("input", {
      type: "text", placeholder: "any", list: "operators-seen", class: "narrow",
      "aria-label": "operator", id: "filter-operator",
    });
    generation.addEventListener("change", () => {
      this.generation = /^\d+$/.test(generation.value.trim()) ? generation.value.trim() : "";
      generation.value = this.generation;
      this.offset = 0;
      void this.refresh();
    });
    operator.addEventListener("change", () => {
      this.operator = operator.value.trim();
      this.offset = 0;
      void this.refresh();
    });
    this.prev.addEventListener("click", () => {
      this.offset = Math.max(0, this.offset - PAGE);
      void this.refresh();
    });
    this.next.addEventListener("click", () => {
      this.offset += PAGE;
      void this.refresh();
    });
    this.renderHead();
    this.el = h("div", { class: "candidates" },
      h("div", { class: "toolbar" },
        h("label", null, "Generation ", generation),
        h("label", null, "Operator ", operator, this.operators),
        h("span", { class: "grow" }), this.summary, this.prev, this.next),
      h("p", { class: "muted small" },
        "Dev score: each candidate's latest, with the examples it is on. The search scores on its ",
        "sample of the dev split; when it ends, its finalists are re-scored on the full dev split ",
        "(their search score below it), and the leaderboard ranks by that."),
      this.error,
      h("div", { class: "table-wrap" },
        h("table", { id: "candidates-table" },
          h("thead", null, this.head),
          this.body)));
  }

  private renderHead(): void {
    replace(this.head,
      COLUMNS.map((c) => {
        const active = this.sort.replace(/^-/, "") === c.sort;
        const arrow = active ? (this.sort.startsWith("-") ? " ▼" : " ▲") : "";
        const button = h("button", { type: "button", class: "sort", "data-sort": c.sort }, c.label + arrow);
        button.addEventListener("click", () => {
          // first click: best, newest, longest first (operators A to Z); again: reversed
          const first = c.sort === "operator" ? c.sort : `-${c.sort}`;
          this.sort = !active ? first : this.sort.startsWith("-") ? c.sort : `-${c.sort}`;
          this.offset = 0;
          this.renderHead();
          void this.refresh();
        });
        return h("th", {
          class: c.num ? "num" : "",
          "aria-sort": active ? (this.sort.startsWith("-") ? "descending" : "ascending") : "none",
        }, button);
      }),
      h("th", null, "Prompt"),
    );
  }

  /** Load the current page again (calls during a load coalesce into one more). */
  refresh(): Promise<void> {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = (async () => {
      do {
        this.again = false;
        await this.load();
      } while (this.again && !this.signal.aborted);
      this.loading = null;
    })();
    return this.loading;
  }

  private async load(): Promise<void> {
    try {
      const page = await getJson<Page<Candidate>>(`/jobs/${this.jobId}/candidates`, {
        sort: this.sort,
        limit: PAGE,
        offset: this.offset,
        generation: this.generation,
        operator: this.operator,
      }, this.signal);
      replace(this.error);
      this.render(page);
    } catch (err) {
      if (!this.signal.aborted) replace(this.error, errorText(err));
    }
  }

  private render(page: Page<Candidate>): void {
    const from = page.total ? page.offset + 1 : 0;
    this.summary.textContent = `${from}–${page.offset + page.items.length} of ${fmt.count(page.total)}`;
    this.el.dataset.total = String(page.total);
    this.prev.disabled = page.offset === 0;
    this.next.disabled = page.offset + page.items.length >= page.total;
    for (const c of page.items) {
      if (!this.seen.has(c.operator)) {
        this.seen.add(c.operator);
        this.operators.append(h("option", { value: c.operator }));
      }
    }
    if (!page.items.length) {
      replace(this.body, h("tr", null, h("td", { colspan: 5, class: "muted empty" }, "No candidates yet.")));
      return;
    }
    replace(this.body, page.items.map((c) =>
      h("tr", { "data-candidate": c.id, class: "clickable", title: "open its family tree",
        onclick: () => { location.hash = `#/jobs/${this.jobId}/lineage/${c.id}`; } },
        scoreCell(c),
        h("td", { class: "num" }, c.generation),
        h("td", null, c.operator),
        h("td", { class: "num" }, c.text.length),
        h("td", { class: "prompt-cell" },
          h("a", { href: `#/jobs/${this.jobId}/lineage/${c.id}` }, fmt.truncate(c.text, 160))))));
  }
}

/** The latest dev score and the examples it is on; for a finalist, its search score too. */
function scoreCell(c: Candidate): HTMLElement {
  const on = c.score_on ?? null;
  const search = c.search_score ?? null;
  const full = on !== null && on.subset === null;
  return h("td", { class: "num score-cell", "data-basis": on === null ? "" : full ? "full" : "sample" },
    h("div", null, fmt.score(c.score)),
    on ? h("div", { class: "basis" }, fmt.scoreBasis(on)) : null,
    full && search
      ? h("div", { class: "basis search" }, `search ${fmt.score(search.value)} · ${fmt.scoreBasis(search)}`)
      : null);
}
