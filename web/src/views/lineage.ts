// A candidate's family tree: every ancestor, with the operator that made each child on the
// edges; a click on a node shows its prompt and a word-level diff against each parent (and,
// under metric judge, what the judge said of its answers).

import { diffWords } from "diff";

import { type Ancestry, type Candidate, type CandidateBrief, type CandidateDetail, getJson, type Job,
  type Lineage, type Outcomes, type Page, type Task } from "../api";
import { type Child, h, replace } from "../dom";
import * as fmt from "../format";
import { FamilyTree, type TreeEdge, type TreeNode } from "../graph";
import { builtinTaskName, isJudged, JudgeCard, rubricCriteria } from "../judge";
import { errorText } from "../ui";

// past this many ancestors the tree is cut at the nearest ones (a long run's winner can descend
// from most of the early population)
const MAX_NODES = 400;

export function lineageView(root: HTMLElement, signal: AbortSignal, jobId: string, candidateId?: string): void {
  replace(root, h("p", { class: "muted" }, "Loading the family tree…"));
  void show().catch((err: unknown) => {
    if (signal.aborted) return;
    replace(root, h("section", { class: "card" },
      h("h1", null, "Could not load the family tree"),
      h("p", { class: "error", id: "lineage-error" }, errorText(err)),
      h("p", null, h("a", { href: `#/jobs/${jobId}` }, "Back to the job"))));
  });

  async function show(): Promise<void> {
    const job = await getJson<Job>(`/jobs/${jobId}`, undefined, signal);
    let rootId = candidateId ?? job.best_candidate_id;
    if (!rootId) {
      // a job still running has no winner yet: its best-scored candidate so far
      const page = await getJson<Page<Candidate>>(`/jobs/${jobId}/candidates`, { sort: "-score", limit: 1 }, signal);
      rootId = page.items[0]?.id ?? null;
    }
    if (!rootId) {
      replace(root, h("section", { class: "card" }, h("h1", null, job.name),
        h("p", { class: "muted" }, "No candidates yet."), h("a", { href: `#/jobs/${jobId}` }, "Back to the job")));
      return;
    }
    const [ancestry, top, lineage, builtins] = await Promise.all([
      getJson<Ancestry>(`/candidates/${rootId}/ancestry`, undefined, signal),
      getJson<CandidateDetail>(`/candidates/${rootId}`, undefined, signal),
      getJson<Lineage>(`/jobs/${jobId}/lineage`, undefined, signal),
      // a built-in task's metric (judge or not) is the task list's to say
      builtinTaskName(job) !== null
        ? getJson<Task[]>("/tasks", undefined, signal).catch((): Task[] => [])
        : Promise.resolve([]),
    ]);
    const scores = new Map(lineage.nodes.map((n) => [n.id, n.score]));
    const cut = ancestry.ancestors.length > MAX_NODES - 1;
    const members: CandidateBrief[] = [top, ...ancestry.ancestors.slice(0, MAX_NODES - 1)];
    const byId = new Map(members.map((m) => [m.id, m]));
    const nodes: TreeNode[] = members.map((m) => ({
      id: m.id, generation: m.generation, operator: m.operator, score: scores.get(m.id) ?? null, root: m.id === top.id,
    }));
    const edges: TreeEdge[] = members.flatMap((m) =>
      m.parents.filter((p) => byId.has(p)).map((p) => ({ source: p, target: m.id, operator: m.operator })));

    const graphBox = h("div", { class: "graph", id: "lineage-graph", "data-nodes": nodes.length });
    const detail = h("div", { class: "detail", id: "candidate-detail" });
    const isWinner = top.id === job.best_candidate_id;
    const judge = isJudged(job, builtins)
      ? new JudgeCard((id, split) =>
        getJson<Outcomes>(`/candidates/${id}/outcomes`, { split }, signal).then((o) => o.items),
      rubricCriteria(job, builtins))
      : null;
    replace(root,
      h("div", { class: "page-head" },
        h("div", { class: "title-row" },
          h("h1", null, "Family tree"),
          h("span", { class: "grow" }),
          h("a", { href: `#/jobs/${jobId}`, class: "button" }, `← ${job.name}`)),
        h("p", { class: "muted" },
          isWinner ? "Of the job's winner" : "Of candidate ",
          isWinner ? "" : h("span", { class: "mono" }, fmt.shortId(top.id)),
          `: ${ancestry.ancestors.length} ancestor${ancestry.ancestors.length === 1 ? "" : "s"}`,
          cut ? ` (the nearest ${MAX_NODES - 1} are drawn)` : "",
          ". Parents above their children, the operator that made each child on its edges; darker nodes scored better. ",
          "Click a node to see its prompt and what changed from each parent.")),
      h("div", { class: "lineage" },
        h("section", { class: "card graph-card" }, graphBox,
          h("div", { class: "legend muted small" }, "node: generation · dev score, operator · edge: operator")),
        h("section", { class: "card detail-card" }, detail)),
      judge?.el,
      h("section", { class: "card" }, h("h2", null, "Members"),
        h("div", { class: "table-wrap" }, h("table", { id: "members-table" },
          h("thead", null, h("tr", null, h("th", { class: "num" }, "Gen."), h("th", null, "Operator"),
            h("th", { class: "num" }, "Score"), h("th", null, "Prompt"))),
          h("tbody", null, members
            .slice()
            .sort((a, b) => b.generation - a.generation)
            .map((m) => h("tr", { class: "clickable", "data-candidate": m.id, onclick: () => select(m.id) },
              h("td", { class: "num" }, m.generation), h("td", null, m.operator),
              h("td", { class: "num" }, fmt.score(scores.get(m.id) ?? null)),
              h("td", { class: "prompt-cell" }, fmt.truncate(m.text, 160)))))))),
    );

    const tree = new FamilyTree(graphBox, nodes, edges, (id) => select(id));
    signal.addEventListener("abort", () => tree.destroy());
    const details = new Map<string, Promise<CandidateDetail>>([[top.id, Promise.resolve(top)]]);

    function select(id: string): void {
      tree.select(id);
      for (const row of root.querySelectorAll("#members-table tr[data-candidate]")) {
        row.classList.toggle("selected", row.getAttribute("data-candidate") === id);
      }
      let pending = details.get(id);
      if (!pending) {
        pending = getJson<CandidateDetail>(`/candidates/${id}`, undefined, signal);
        details.set(id, pending);
      }
      pending.then((c) => {
        if (!signal.aborted) replace(detail, ...describe(c, byId, scores, jobId, top.id));
      }).catch((err: unknown) => {
        details.delete(id);
        if (!signal.aborted) replace(detail, h("p", { class: "error" }, errorText(err)));
      });
      void judge?.show(id);
    }
    select(top.id);
  }
}

function describe(c: CandidateDetail, known: Map<string, CandidateBrief>, scores: Map<string, number | null>,
                  jobId: string, rootId: string): (Child | Child[])[] {
  const full = (split: string): string => {
    const s = c.scores[split];
    return s ? `${fmt.score(s.value)} (${s.subset ? "sample of " : ""}${s.n} examples${s.failures ? `, ${s.failures} failed` : ""})` : "—";
  };
  const parents = c.parents.map((p) => known.get(p)).filter((p): p is CandidateBrief => p !== undefined);
  return [
    h("div", { class: "card-head" },
      h("h2", null, `${c.operator}, generation ${c.generation}`),
      c.id !== rootId ? h("a", { href: `#/jobs/${jobId}/lineage/${c.id}`, class: "button small" }, "Its own family tree") : null),
    h("div", { class: "facts" },
      h("span", { class: "fact" }, h("span", { class: "muted" }, "id "), h("span", { class: "mono" }, fmt.shortId(c.id))),
      h("span", { class: "fact" }, h("span", { class: "muted" }, "dev "), full("dev")),
      c.scores.test ? h("span", { class: "fact" }, h("span", { class: "muted" }, "test "), full("test")) : null,
      h("span", { class: "fact" }, h("span", { class: "muted" }, "children "), c.children.length)),
    h("h3", null, "Prompt"),
    h("div", { class: "prompt", id: "detail-prompt" }, c.text),
    parents.length
      ? parents.map((p, i) => h("div", { class: "diff-block" },
        h("h3", null, `Changes from parent ${i + 1} `,
          h("span", { class: "muted small" }, `(${p.operator}, generation ${p.generation}, score ${fmt.score(scores.get(p.id) ?? null)})`)),
        wordDiff(p.text, c.text)))
      : h("p", { class: "muted" }, "A seed: it has no parents."),
    c.made_by
      ? h("details", { class: "made-by" },
        h("summary", null, `How it was written (the call to ${c.made_by.model ?? "the meta model"})`),
        c.made_by.messages.map((m) => h("div", { class: "message" },
          h("div", { class: "muted small" }, m.role), h("pre", null, m.content))),
        h("div", { class: "message" }, h("div", { class: "muted small" }, "answer"), h("pre", null, c.made_by.text ?? "")))
      : null,
  ];
}

function wordDiff(before: string, after: string): HTMLElement {
  const parts = diffWords(before, after);
  let added = 0;
  let removed = 0;
  const words = (s: string): number => s.split(/\s+/).filter(Boolean).length;
  const out = h("div", { class: "diff" });
  for (const part of parts) {
    if (part.added) {
      added += words(part.value);
      out.append(h("ins", null, part.value));
    } else if (part.removed) {
      removed += words(part.value);
      out.append(h("del", null, part.value));
    } else {
      out.append(part.value);
    }
  }
  out.dataset.added = String(added);
  out.dataset.removed = String(removed);
  return h("div", null, h("div", { class: "muted small" }, `+${added} words, −${removed} words`), out);
}
