// A data-set job's result (Evol-Instruct): per round the items kept and the evolutions
// eliminated with their reasons, then the items (instruction and response) a page at a time,
// and the eliminated evolutions with what they wrote.

import { ApiError, type DataSet, getJson } from "../api";
import { h, replace } from "../dom";
import { reasonsText, roundsSummary } from "../dataset_format";
import { errorText } from "../ui";

const PAGE = 20;

export class DataSetCard {
  readonly el = h("section", { class: "card", id: "dataset", hidden: true });
  private offset = 0;

  constructor(private readonly jobId: string, private readonly signal: AbortSignal) {}

  /** Load and show the data set; false for a job whose result is a best prompt (409). */
  async refresh(): Promise<boolean> {
    let data: DataSet;
    try {
      data = await getJson<DataSet>(`/jobs/${this.jobId}/dataset`,
        { limit: PAGE, offset: this.offset }, this.signal);
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) return false;
      if (!this.signal.aborted) {
        replace(this.el, h("p", { class: "error", role: "alert" }, errorText(err)));
        this.el.hidden = false;
      }
      return true;
    }
    this.render(data);
    return true;
  }

  private page(delta: number): void {
    this.offset = Math.max(0, this.offset + delta);
    void this.refresh();
  }

  private render(data: DataSet): void {
    const last = Math.min(data.total, data.offset + data.items.length);
    const prev = h("button", { type: "button", class: "small", disabled: data.offset === 0 }, "← Prev");
    const next = h("button", { type: "button", class: "small", disabled: last >= data.total }, "Next →");
    prev.addEventListener("click", () => this.page(-PAGE));
    next.addEventListener("click", () => this.page(PAGE));
    const tree = (id: string) => h("a", { href: `#/jobs/${this.jobId}/lineage/${id}` }, "family tree");
    replace(this.el,
      h("div", { class: "card-head" }, h("h2", null, "Data set"),
        h("span", { class: "muted small", id: "dataset-summary" }, roundsSummary(data.rounds))),
      h("p", { class: "muted small" },
        "Each round evolves every instruction of the pool once; a failed evolution is eliminated "
        + "(and its parent stays in the pool), a kept one is answered by the task model and joins "
        + "the data set. Export it with evo export JOB --format jsonl or --format hf."),
      h("div", { class: "table-wrap" }, h("table", { id: "dataset-rounds" },
        h("thead", null, h("tr", null,
          h("th", { class: "num" }, "Round"), h("th", { class: "num" }, "Kept"),
          h("th", { class: "num" }, "Eliminated"), h("th", null, "Reasons"))),
        h("tbody", null, data.rounds.map((r) => h("tr", { "data-round": r.round },
          h("td", { class: "num" }, r.round === 0 ? "0 (seeds)" : r.round),
          h("td", { class: "num" }, r.kept),
          h("td", { class: "num" }, r.eliminated),
          h("td", null, reasonsText(r.reasons))))))),
      h("div", { class: "card-head" }, h("h2", null, "Items"),
        h("span", { class: "muted small", id: "dataset-page" },
          data.total ? `${data.offset + 1}–${last} of ${data.total}` : "none yet"),
        h("span", { class: "grow" }), prev, next),
      h("div", { class: "table-wrap" }, h("table", { id: "dataset-items" },
        h("thead", null, h("tr", null,
          h("th", { class: "num" }, "Round"), h("th", null, "Evolution"),
          h("th", null, "Instruction"), h("th", null, "Response"), h("th", null, ""))),
        h("tbody", null, data.items.map((item) => h("tr", { "data-candidate": item.id },
          h("td", { class: "num" }, item.round),
          h("td", null, item.evolution),
          h("td", { class: "prompt-cell" }, h("div", { class: "prompt" }, item.instruction)),
          h("td", { class: "prompt-cell" }, h("div", { class: "prompt" }, item.response)),
          h("td", null, tree(item.id))))))),
      data.eliminated.length
        ? h("details", { id: "dataset-eliminated" },
          h("summary", null, `Eliminated evolutions (${data.eliminated.length})`),
          h("div", { class: "table-wrap" }, h("table", null,
            h("thead", null, h("tr", null,
              h("th", { class: "num" }, "Round"), h("th", null, "Evolution"), h("th", null, "Reason"),
              h("th", null, "What it wrote"), h("th", null, ""))),
            h("tbody", null, data.eliminated.map((e) => h("tr", { "data-candidate": e.id },
              h("td", { class: "num" }, e.round),
              h("td", null, e.evolution),
              h("td", null, e.reason.replaceAll("_", " ")),
              h("td", { class: "prompt-cell" },
                h("div", { class: "prompt" }, e.instruction || "(nothing)")),
              h("td", null, tree(e.id))))))))
        : null,
    );
    this.el.hidden = false;
  }
}
