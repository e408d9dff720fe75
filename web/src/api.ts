// The REST API under /api/v1, called with the key the person signed in with.

import type { ParetoPoint } from "./pareto";

export const PREFIX = "/api/v1";
const KEY = "evo.apiKey";

export type JobStatus =
  | "queued" | "running" | "completed" | "failed" | "cancelled" | "paused" | "interrupted";
export const LIVE: ReadonlySet<string> = new Set(["queued", "running"]);

export interface Job {
  id: string;
  name: string;
  task: string;
  algorithm: string;
  status: JobStatus;
  reason: string | null;
  owner: string | null;
  seed: number;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
  heartbeat_at: string | null;
  best_candidate_id: string | null;
  pending_control: string | null;
  stats: Record<string, unknown>;
  spec: Record<string, unknown>;
  pareto?: ParetoPoint[] | null; // two evaluation.objectives: the finalists' front
}

export interface Page<T> {
  total: number;
  limit: number;
  offset: number;
  items: T[];
}

export interface Generation {
  generation: number;
  size: number;
  best: number | null;
  mean: number | null;
  best_candidate_id: string | null;
  distinct: number;
  diversity: number;
  calls: number | null;
  tokens: number | null;
  calls_total: number | null;
  tokens_total: number | null;
}

export interface CandidateBrief {
  id: string;
  generation: number;
  operator: string;
  kind: string;
  text: string;
  parents: string[];
}

export interface Score {
  split: string;
  /** null: the whole split; else the sample scored ("20", or "20:raced@8" when cut short) */
  subset: string | null;
  value: number | null;
  n: number;
  failures: number;
  generation: number | null;
}

export interface Candidate extends CandidateBrief {
  job_id: string;
  island: number;
  /** The latest dev score: on the search's sample, or (finalists) on the whole split. */
  score: number | null;
  /** The evaluation ``score`` comes from: which split, sample and how many examples. */
  score_on?: Score | null;
  /** The latest dev score on a sample of the split (the search's). */
  search_score?: Score | null;
  meta: Record<string, unknown>;
}

/** Who the signed-in key acts for (GET /me). */
export interface Me {
  name: string;
  admin: boolean;
}

export interface MetaCall {
  model: string | null;
  messages: { role: string; content: string }[];
  text: string | null;
}

export interface CandidateDetail extends Candidate {
  scores: Record<string, Score>;
  evaluations: Score[];
  children: string[];
  made_by: MetaCall | null;
}

/** What a judge model said of one answer (metric judge): its criterion scores (pointwise) or
 * the winner in each order (pairwise: the answer was A, then B; null: that verdict was
 * unreadable), its reasoning, and how many of its answers could not be read. */
export interface JudgeVerdict {
  value?: number;
  scores?: Record<string, number>;
  winners?: ("A" | "B" | "tie" | null)[];
  reasoning: string[];
  unparsable: number;
}

export type OutcomeSplit = "search" | "dev" | "test";

/** One example's result: `GET /candidates/{id}/outcomes?split=...`. */
export interface Outcome {
  example_id: string;
  score: number | null;
  prediction: string;
  failure: string | null;
  judge?: JudgeVerdict | null;
}

export interface Outcomes {
  candidate_id: string;
  split: OutcomeSplit;
  items: Outcome[];
}

export interface Ancestry {
  candidate_id: string;
  ancestors: CandidateBrief[];
}

export interface Lineage {
  job_id: string;
  nodes: { id: string; generation: number; operator: string; score: number | null; label: string }[];
  edges: { source: string; target: string; operator: string; position: number }[];
}

export interface Task {
  name: string;
  description: string;
  kind: "prompt" | "program";
  metric: string;
  /** metric judge: the criteria the judge scores */
  rubric?: { criteria: { name: string; description: string; weight: number; scale: number }[] } | null;
}

export interface Algorithm {
  name: string;
  summary: string;
  kinds: string[];
  /** What a job of it hands back: its best prompts, or a data set (`/jobs/{id}/dataset`). */
  result?: "best" | "dataset";
  parameters: {
    properties?: Record<string, { type?: string; anyOf?: { type?: string }[]; description?: string }>;
  };
  defaults: Record<string, unknown>;
}

/** The generations a job's spec plans, where its method names them. */
export function plannedGenerations(job: Job): number | null {
  const algorithm = job.spec.algorithm as Record<string, unknown> | undefined;
  const n = algorithm?.generations ?? algorithm?.steps ?? algorithm?.iterations ?? algorithm?.rounds;
  return typeof n === "number" && Number.isFinite(n) ? n : null;
}

/** A data-set job's result (Evol-Instruct): `GET /jobs/{id}/dataset`. */
export interface DataSetItem {
  id: string;
  instruction: string;
  response: string;
  round: number;
  evolution: string;
  parent_id: string | null;
  seed_id: string;
}

export interface EliminatedItem {
  id: string;
  instruction: string;
  round: number;
  evolution: string;
  parent_id: string | null;
  reason: string;
  response: string | null;
}

export interface DataSetRound {
  round: number;
  kept: number;
  eliminated: number;
  reasons: Record<string, number>;
}

export interface DataSet extends Page<DataSetItem> {
  job_id: string;
  eliminated: EliminatedItem[];
  rounds: DataSetRound[];
}

export interface ExportData {
  seed_prompt_scores: { dev: number | null; test: number | null };
  /** The paired test of the winner against the best seed on test; null without test scores. */
  versus_seed: { same: boolean; sentence: string; shown?: boolean; p?: number | null } | null;
  /** Answers per label of the winner and the best seed on test, and warnings of a label bias. */
  label_bias: {
    true: Record<string, number>;
    predicted: Record<string, Record<string, number>>;
    warnings: string[];
  } | null;
  cost: Record<string, number | null>;
  prompts: {
    prompt: string;
    candidate_id: string;
    dev_score: number | null;
    dev_examples?: number;
    test_score: number | null;
    generation: number;
    operator: string;
    lineage: { ancestors: number; operators: string[]; depth: number };
  }[];
}

export interface FieldProblem {
  loc: (string | number)[];
  msg: string;
  type: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly problems: FieldProblem[] = [],
  ) {
    super(message);
  }
}

export const session = {
  key(): string | null {
    return sessionStorage.getItem(KEY);
  },
  signIn(key: string): void {
    sessionStorage.setItem(KEY, key);
  },
  signOut(): void {
    sessionStorage.removeItem(KEY);
  },
};

export type Query = Record<string, string | number | boolean | null | undefined>;

export function apiUrl(path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== null && v !== undefined && v !== "") params.set(k, String(v));
  }
  const qs = params.toString();
  return `${PREFIX}${path}${qs ? `?${qs}` : ""}`;
}

export interface RequestOptions {
  method?: string;
  query?: Query;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  key?: string;  // another key than the session's (to check one before keeping it)
}

export async function request(path: string, opts: RequestOptions = {}): Promise<Response> {
  const headers = new Headers(opts.headers);
  const key = opts.key ?? session.key();
  if (key) headers.set("Authorization", `Bearer ${key}`);
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers.set("Content-Type", "application/json");
    body = JSON.stringify(opts.body);
  }
  const response = await fetch(apiUrl(path, opts.query), {
    method: opts.method ?? "GET",
    headers,
    body,
    signal: opts.signal,
    cache: "no-store",
  });
  if (!response.ok) throw await problem(response, opts.key === undefined);
  return response;
}

async function problem(response: Response, announce: boolean): Promise<ApiError> {
  let message = `${response.status} ${response.statusText}`;
  let problems: FieldProblem[] = [];
  try {
    const body = (await response.json()) as { detail?: unknown };
    if (Array.isArray(body.detail)) {
      problems = body.detail as FieldProblem[];
      message = problems.map((p) => `${p.loc.join(".")}: ${p.msg}`).join("; ");
    } else if (typeof body.detail === "string") {
      message = body.detail;
    }
  } catch {
    // not JSON: keep the status line
  }
  if (response.status === 401 && announce) {
    // the key was revoked (or the session's storage cleared): back to the sign-in page
    window.dispatchEvent(new CustomEvent("evo:unauthorized", { detail: message }));
  }
  return new ApiError(response.status, message, problems);
}

export async function getJson<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
  return (await (await request(path, { query, signal })).json()) as T;
}

export async function postJson<T>(path: string, body?: unknown): Promise<T> {
  return (await (await request(path, { method: "POST", body })).json()) as T;
}

/** The job's export in ``format``: its text and the file name the server suggests. */
export async function exportJob(
  id: string, format: string, top: number,
): Promise<{ text: string; filename: string; type: string }> {
  const response = await request(`/jobs/${id}/export`, { query: { format, top } });
  const disposition = response.headers.get("Content-Disposition") ?? "";
  const filename = /filename="([^"]+)"/.exec(disposition)?.[1] ?? `evo-${id.slice(0, 8)}.${format}`;
  const type = response.headers.get("Content-Type") ?? "text/plain";
  return { text: await response.text(), filename, type };
}
