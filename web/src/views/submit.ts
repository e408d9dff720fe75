// The new-job form: a few common fields over a YAML (or JSON) spec editor, kept in step both
// ways. The server validates; its 422 messages go beside the field each one names.

import { type Document, isMap, isScalar, parseDocument } from "yaml";

import { type Algorithm, ApiError, type FieldProblem, getJson, type Job, postJson, type Task } from "../api";
import { h, replace } from "../dom";
import { errorText } from "../ui";

const DEFAULT_SPEC = `# A job spec: the fields of a YAML spec file (JSON works too). The fields above edit it.
# This is the quick-start: EvoPrompt-GA on the topic task with the bundled local model.
task: topic
algorithm:
  name: evoprompt-ga
  population: 6
  generations: 4
  dev_subset: 40
models:
  task:
    provider: local
budget:
  calls: 4000
evaluation:
  top_k: 3
seed: 7
`;

type Path = (string | number)[];

interface Field {
  path: Path;
  input: HTMLInputElement | HTMLSelectElement;
  error: HTMLElement;
  wrap: HTMLElement;
  numeric: boolean;
}

let catalog: Promise<[Task[], Algorithm[]]> | null = null;

function loadCatalog(): Promise<[Task[], Algorithm[]]> {
  catalog ??= Promise.all([getJson<Task[]>("/tasks"), getJson<Algorithm[]>("/algorithms")]);
  catalog.catch(() => {
    catalog = null; // try again next time
  });
  return catalog;
}

const key = (path: Path): string => path.join(".");

/** Numeric parameters of a method: the ones worth a field (lists and flags stay in the spec). */
function numericParams(algorithm: Algorithm | undefined): string[] {
  const props = algorithm?.parameters.properties ?? {};
  return Object.entries(props)
    .filter(([, p]) => {
      const types = [p.type, ...(p.anyOf ?? []).map((a) => a.type)];
      return types.includes("integer") || types.includes("number");
    })
    .map(([name]) => name);
}

export function submitForm(onSubmitted: (job: Job) => void): HTMLElement {
  const fields: Field[] = [];
  let doc: Document = parseDocument(DEFAULT_SPEC);
  let tasks: Task[] = [];
  let algorithms: Algorithm[] = [];

  const editor = h("textarea", {
    id: "spec-editor",
    class: "spec",
    rows: 16,
    spellcheck: "false",
    "aria-label": "job spec (YAML or JSON)",
  });
  editor.value = DEFAULT_SPEC;
  const specError = h("div", { class: "field-error", "data-for": "spec", role: "alert" });
  const formError = h("div", { class: "field-error", role: "alert" });
  const common = h("div", { class: "fields" });
  const params = h("div", { class: "fields" });
  const submit = h("button", { type: "submit", class: "primary" }, "Submit job");

  function field(path: Path, label: string, input: HTMLInputElement | HTMLSelectElement,
                 numeric = false): Field {
    input.id = `field-${key(path)}`;
    input.dataset.path = key(path);
    const error = h("div", { class: "field-error", "data-for": key(path), role: "alert" });
    const wrap = h("div", { class: "field" },
      h("label", { for: input.id }, label),
      input,
      error);
    const f = { path, input, error, wrap, numeric };
    input.addEventListener("change", () => fromField(f));
    if (input instanceof HTMLInputElement) input.addEventListener("input", () => fromField(f));
    fields.push(f);
    return f;
  }

  const text = (placeholder = ""): HTMLInputElement =>
    h("input", { type: "text", placeholder, autocomplete: "off" });
  const number = (placeholder = ""): HTMLInputElement =>
    h("input", { type: "text", inputmode: "decimal", placeholder, autocomplete: "off" });
  const select = (options: [string, string][]): HTMLSelectElement =>
    h("select", null, options.map(([value, label]) => h("option", { value }, label)));

  const taskSelect = select([]);
  const algorithmSelect = select([]);
  const commonFields = [
    field(["name"], "Name", text("default: <algorithm> on <task>")),
    field(["task"], "Task", taskSelect),
    field(["algorithm", "name"], "Algorithm", algorithmSelect),
    field(["models", "task", "provider"], "Model provider", select([
      ["local", "local (bundled SmolLM2, llama.cpp)"],
      ["openai", "openai (any OpenAI-compatible endpoint)"],
      ["scripted", "scripted (deterministic stand-in, for trying things out)"],
    ])),
    field(["models", "task", "model"], "Model", text("local: GGUF path; openai: model name")),
    field(["budget", "calls"], "Budget: calls", number("server maximum"), true),
    field(["budget", "seconds"], "Budget: seconds", number("server maximum"), true),
    field(["seed"], "Seed", number("0"), true),
  ];
  replace(common, commonFields.map((f) => f.wrap));

  /** The method's numeric parameters as fields; the old method's ones go. */
  function renderParams(): void {
    const name = String(doc.getIn(["algorithm", "name"]) ?? "evoprompt-ga");
    const algorithm = algorithms.find((a) => a.name === name);
    params.dataset.algorithm = name;
    for (let i = fields.length - 1; i >= 0; i--) {
      if (fields[i].path[0] === "algorithm" && fields[i].path[1] !== "name") fields.splice(i, 1);
    }
    const made = numericParams(algorithm).map((param) => {
      const input = number(String(algorithm?.defaults[param] ?? ""));
      input.title = algorithm?.parameters.properties?.[param]?.description ?? "";
      return field(["algorithm", param], param.replace(/_/g, " "), input, true);
    });
    replace(params, made.map((f) => f.wrap));
    toFields();
  }

  function toFields(): void {
    for (const f of fields) {
      if (f.input === document.activeElement) continue;
      const value = doc.getIn(f.path);
      if (f.input instanceof HTMLSelectElement) {
        const v = value === undefined || value === null ? "" : typeof value === "object" ? "(custom)" : String(value);
        if (v && ![...f.input.options].some((o) => o.value === v)) {
          f.input.append(h("option", { value: v }, v === "(custom)" ? "defined in the spec" : v));
        }
        f.input.value = v || (f.input.options[0]?.value ?? "");
      } else {
        f.input.value = value === undefined || value === null || typeof value === "object" ? "" : String(value);
      }
    }
  }

  function fromField(f: Field): void {
    if (doc.errors.length) return; // the editor holds text that is not a spec: leave it alone
    const raw = f.input.value.trim();
    if (f.input.value === "(custom)") return;
    if (raw === "") {
      doc.deleteIn(f.path);
    } else if (f.numeric && /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(raw)) {
      doc.setIn(f.path, Number(raw));
    } else {
      doc.setIn(f.path, raw); // not a number: the server will say so beside the field
    }
    if (key(f.path) === "algorithm.name") {
      // parameters of the old method would be refused by the new one
      const keep = new Set(["name", "templates",
        ...Object.keys(algorithms.find((a) => a.name === raw)?.defaults ?? {})]);
      const current: unknown = doc.getIn(["algorithm"]);
      const names = isMap(current)
        ? current.items.map((pair) => String(isScalar(pair.key) ? pair.key.value : pair.key))
        : [];
      for (const name of names) if (!keep.has(name)) doc.deleteIn(["algorithm", name]);
      editor.value = doc.toString();
      renderParams();
      return;
    }
    editor.value = doc.toString();
  }

  editor.addEventListener("input", () => {
    doc = parseDocument(editor.value);
    replace(specError);
    if (doc.errors.length) {
      replace(specError, doc.errors.map((e) => h("div", null, yamlProblem(e))));
      return;
    }
    if (params.dataset.algorithm !== String(doc.getIn(["algorithm", "name"]) ?? "evoprompt-ga")) {
      renderParams();
    } else {
      toFields();
    }
  });

  function clearErrors(): void {
    for (const f of fields) {
      replace(f.error);
      f.input.removeAttribute("aria-invalid");
    }
    replace(specError);
    replace(formError);
  }

  /** Each problem beside the field whose path is the longest prefix of its location; the
   * rest beside the editor, with their path. */
  function showProblems(problems: FieldProblem[]): void {
    for (const p of problems) {
      const path = p.loc[0] === "body" ? p.loc.slice(1) : p.loc;
      let best: Field | undefined;
      for (const f of fields) {
        const prefix = f.path.every((part, i) => String(path[i]) === String(part));
        if (prefix && (!best || f.path.length > best.path.length)) best = f;
      }
      if (best) {
        const rest = path.slice(best.path.length);
        best.error.append(h("div", null, rest.length ? `${rest.join(".")}: ${p.msg}` : p.msg));
        best.input.setAttribute("aria-invalid", "true");
      } else {
        specError.append(h("div", null,
          path.length ? h("code", null, path.join(".")) : "the spec", `: ${p.msg}`));
      }
    }
  }

  const form = h("form", { class: "submit-form", novalidate: true },
    common,
    h("h3", { class: "sub" }, "Method parameters"),
    params,
    h("div", { class: "field wide" },
      h("label", { for: "spec-editor" }, "Spec (YAML or JSON): everything else, e.g. evaluation, racing, a task of your own"),
      editor,
      specError),
    h("div", { class: "actions" }, submit, formError),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    doc = parseDocument(editor.value);
    if (doc.errors.length) {
      replace(specError, doc.errors.map((e) => h("div", null, yamlProblem(e))));
      return;
    }
    const spec = doc.toJS() as unknown;
    if (spec === null || typeof spec !== "object" || Array.isArray(spec)) {
      replace(specError, "The spec must be a mapping of fields (task, algorithm, ...).");
      return;
    }
    submit.disabled = true;
    try {
      onSubmitted(await postJson<Job>("/jobs", spec));
    } catch (err) {
      if (err instanceof ApiError && err.problems.length) showProblems(err.problems);
      else replace(formError, errorText(err));
    } finally {
      submit.disabled = false;
    }
  });

  void loadCatalog().then(([t, a]) => {
    tasks = t;
    algorithms = a;
    replace(taskSelect, tasks.map((task) =>
      h("option", { value: task.name, title: task.description }, `${task.name} (${task.kind})`)));
    replace(algorithmSelect, algorithms.map((alg) =>
      h("option", { value: alg.name, title: alg.summary }, `${alg.name} (${alg.result === "dataset" ? "makes a data set" : alg.kinds.join(", ")})`)));
    renderParams();
  }).catch((err: unknown) => replace(formError, `Could not load tasks and methods: ${errorText(err)}`));

  return form;
}

function yamlProblem(e: { message: string; linePos?: [{ line: number; col: number }, ...unknown[]] }): string {
  const at = e.linePos?.[0];
  const first = e.message.split("\n")[0];
  return at ? `line ${at.line}, column ${at.col}: ${first}` : first;
}
