"""Tasks: splits of examples, a template that applies a prompt to an example, and a metric.

A ``Task`` turns (prompt, example) into an ``LLMRequest`` and (example, response) into an
``ExampleResult``. ``load_task`` builds one from a built-in name or a ``TaskSpec`` (the ``task:``
part of a job spec): files in JSONL, CSV or Hugging Face ``save_to_disk`` form, a column mapping,
a template, labels with verbalizers, seed prompts and a metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evo.llm import LLMRequest, LLMResponse, Message
from evo.metrics import Metric, ParsingMetric, get_metric
from evo.programs import ProgramTask
from evo.soft_prompt import MARKER, SoftPrompt
from evo.task_spec import (
    SPLIT_NAMES,
    TaskError,
    TaskSpec,
    check_template,
    metric_parts_problem,
)

DEFAULT_TEMPLATE = "{prompt}\n\n{input}"
DEFAULT_FRACTIONS = {"train": 0.3, "dev": 0.3, "test": 0.4}
MAX_INFERRED_LABELS = 50


@dataclass(frozen=True)
class Example:
    id: str
    input: str
    target: str


CONTENT_FREE = Example("content-free", "N/A", "")  # the input contextual calibration asks about


@dataclass(frozen=True)
class ExampleResult:
    score: float
    prediction: str
    failure: str | None = None  # "unparsed", "call_error: ...", "metric_error: ..."


@dataclass(frozen=True)
class Task:
    """Examples, how a prompt is applied to one, and how the answer is scored.

    ``labels`` is empty for generative tasks. With labels, ``request(label_scoring=True)`` asks the
    model to rank the verbalizer words; otherwise the model writes an answer and the metric parses
    it. ``stop`` overrides the stop sequences of generation requests.
    """

    name: str
    description: str
    template: str
    splits: Mapping[str, tuple[Example, ...]]
    metric: Metric
    labels: tuple[str, ...]
    verbalizers: Mapping[str, str]
    seed_prompts: tuple[str, ...]
    max_answer_tokens: int
    system: str | None = None
    stop: tuple[str, ...] | None = None  # None: "\n" for label tasks, "\n\n" otherwise
    _word_to_label: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"task {self.name!r}"
        try:
            check_template(self.template)
        except TaskError as exc:
            raise TaskError(f"{where}: {exc}") from None
        # Plain dicts and tuples (not proxies) so that a task pickles for worker processes.
        object.__setattr__(self, "splits", {k: tuple(v) for k, v in self.splits.items()})
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "verbalizers", dict(self.verbalizers))
        object.__setattr__(self, "seed_prompts", tuple(self.seed_prompts))
        if not self.splits:
            raise TaskError(f"{where}: no splits")
        if not self.seed_prompts or not all(p.strip() for p in self.seed_prompts):
            raise TaskError(f"{where}: needs at least one non-empty seed prompt")
        if self.max_answer_tokens < 1:
            raise TaskError(f"{where}: max_answer_tokens must be >= 1")
        if len(set(self.labels)) != len(self.labels):
            raise TaskError(f"{where}: duplicate labels in {list(self.labels)}")
        if set(self.verbalizers) != set(self.labels):
            raise TaskError(f"{where}: verbalizers must name each label exactly once "
                            f"(labels {list(self.labels)}, verbalizers {list(self.verbalizers)})")
        words = [w.strip().lower() for w in self.verbalizers.values()]
        if not all(words) or len(set(words)) != len(words):
            raise TaskError(f"{where}: verbalizers must be distinct non-empty words: "
                            f"{self.verbalizers}")
        object.__setattr__(self, "_word_to_label",
                           {w.strip().lower(): lab for lab, w in self.verbalizers.items()})
        for split, examples in self.splits.items():
            seen: set[str] = set()
            for ex in examples:
                if ex.id in seen:
                    raise TaskError(f"{where}: split {split!r} has duplicate id {ex.id!r}")
                seen.add(ex.id)
                if self.labels and ex.target not in self.verbalizers:
                    raise TaskError(f"{where}: split {split!r}, example {ex.id!r}: target "
                                    f"{ex.target!r} is not one of the labels {list(self.labels)}")

    def __repr__(self) -> str:  # the default would print every example
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.splits.items())
        return (f"Task(name={self.name!r}, metric={self.metric.name!r}, labels={self.labels!r}, "
                f"splits=({sizes}))")

    @property
    def judged(self) -> bool:
        """Whether a judge model scores the answers (``metric: judge``)."""
        return bool(getattr(self.metric, "judged", False))

    def split(self, name: str) -> tuple[Example, ...]:
        try:
            return self.splits[name]
        except KeyError:
            raise TaskError(f"task {self.name!r} has no split {name!r} "
                            f"(splits: {', '.join(self.splits)})") from None

    @property
    def stop_sequences(self) -> tuple[str, ...]:
        if self.stop is not None:
            return self.stop
        # A label is one word on one line; free answers may span lines but end at a blank one.
        return ("\n",) if self.labels else ("\n\n",)

    def render(self, prompt: str, example: Example) -> str:
        """The user message: the template with the prompt and the example's input filled in."""
        return self.template.format(prompt=prompt, input=example.input)

    def request(
        self, prompt: str, example: Example, *, label_scoring: bool, soft: SoftPrompt | None = None
    ) -> LLMRequest:
        """The one definition of what is asked for an example: the system message (if the task
        has one) and the rendered template. Every runtime sends exactly these messages, adding
        no instruction of its own (docs/requests.md). A label request scores the verbalizer
        words as the first word of the answer; the prompt is what asks for one of them.
        With ``soft``, a soft prompt takes the prompt's place (a label request, always)."""
        if soft is not None:
            if not self.labels:
                raise TaskError(f"task {self.name!r}: a soft prompt needs a task with labels")
            prompt = MARKER
        messages = (Message("user", self.render(prompt, example)),)
        if self.system:
            messages = (Message("system", self.system), *messages)
        group = f"{self.system or ''}\x00{soft.key() if soft else prompt}"  # a shared prefix
        if (label_scoring or soft is not None) and self.labels:
            words = tuple(self.verbalizers[label] for label in self.labels)
            return LLMRequest(messages=messages, max_tokens=1, temperature=0.0, labels=words,
                              group=group, soft=soft)
        return LLMRequest(messages=messages, max_tokens=self.max_answer_tokens, temperature=0.0,
                          stop=self.stop_sequences, group=group)

    def content_free_request(self, prompt: str, soft: SoftPrompt | None = None) -> LLMRequest:
        """The label request for an input that says nothing ("N/A"): what the model answers
        under ``prompt`` whatever the input, for contextual calibration."""
        return self.request(prompt, CONTENT_FREE, label_scoring=True, soft=soft)

    def score(
        self,
        example: Example,
        response: LLMResponse,
        calibration: Mapping[str, float] | None = None,
    ) -> ExampleResult:
        """``calibration``: the label scores of the content-free input under the same prompt
        (contextual calibration, Zhao et al., ICML 2021): each label's probability is divided by
        the one the model gives it with no input, which removes the prompt's own label bias."""
        if response.error:
            return ExampleResult(0.0, response.text, f"call_error: {response.error}")
        if self.labels and response.label_logprobs is not None:
            label = self._best_label(response.label_logprobs)
            if label is None:
                return ExampleResult(0.0, response.text, "unparsed")
            if calibration:
                # log p(l | x) - log p(l | N/A); the normalizers are the same for every label
                label = self._best_label({w: lp - calibration.get(w, 0.0)
                                          for w, lp in response.label_logprobs.items()}) or label
            return ExampleResult(1.0 if label == example.target else 0.0, label)
        text = response.text.strip()
        if isinstance(self.metric, ParsingMetric) and self.metric.parse(text) is None:
            return ExampleResult(0.0, text, "unparsed")
        if self.judged:  # its score is the judge model's (workers/judging.py)
            return ExampleResult(0.0, text)
        try:
            value = float(self.metric(text, example))
        except Exception as exc:  # a user metric must not end the job; the failure is recorded
            return ExampleResult(0.0, text, f"metric_error: {type(exc).__name__}: {exc}")
        if not math.isfinite(value):
            return ExampleResult(0.0, text, f"metric_error: non-finite score {value}")
        return ExampleResult(value, text)

    def label_logprobs(
        self, response: LLMResponse, calibration: Mapping[str, float] | None = None
    ) -> dict[str, float] | None:
        """Each label's log-probability in ``response`` (by label, not by verbalizer word),
        calibrated like ``score`` does; None where the answer was not label-scored."""
        if response.error or not self.labels or response.label_logprobs is None:
            return None
        out = {}
        for label in self.labels:
            word = self.verbalizers[label]
            lp = response.label_logprobs.get(word)
            if lp is None or math.isnan(lp):
                return None
            out[label] = lp - (calibration or {}).get(word, 0.0)
        return out

    def _best_label(self, logprobs: Mapping[str, float]) -> str | None:
        best: tuple[float, str] | None = None
        seen: set[float] = set()
        for word, logprob in logprobs.items():
            label = self._word_to_label.get(word.strip().lower())
            if label is None or logprob is None or math.isnan(logprob):
                continue
            seen.add(logprob)
            # Strictly greater keeps the earlier label on ties, so results are reproducible.
            if best is None or logprob > best[0] or (
                logprob == best[0] and self.labels.index(label) < self.labels.index(best[1])
            ):
                best = (logprob, label)
        if len(self.labels) > 1 and len(seen) == 1 and len(logprobs) > 1:
            # every label equally likely: none was among the answers the model considered
            # (``evo.llm.label_scores`` gives them all the same floor), so it gave no label;
            # taking the first would credit a label bias of our own making
            return None
        return None if best is None else best[1]


# --- loading -----------------------------------------------------------------------------------


def builtin_tasks() -> dict[str, str]:
    """Name -> one-line description of each task the project ships (prompt tasks and program
    problems)."""
    from evo.problems import DESCRIPTIONS
    from evo.tasks import BUILTINS

    return {name: str(d["description"]) for name, d in BUILTINS.items()} | DESCRIPTIONS


def _builtin_spec(name: str) -> TaskSpec:
    from evo.tasks import BUILTINS, builtin_definition

    if name not in BUILTINS:
        raise TaskError(f"unknown built-in task {name!r} (built-in tasks: {', '.join(BUILTINS)})")
    return TaskSpec.model_validate(builtin_definition(name))


def load_task(spec: TaskSpec | str, *, base_dir: str | Path | None = None) -> Task | ProgramTask:
    """A task from a built-in name or a spec; relative data paths resolve against ``base_dir``
    (default: the working directory). A program problem's name gives its ``ProgramTask``."""
    from evo.problems import PROBLEMS

    if isinstance(spec, str) and spec in PROBLEMS:
        return PROBLEMS[spec]()
    if isinstance(spec, str):
        spec = _builtin_spec(spec)
    elif spec.builtin is not None:
        given = {k: getattr(spec, k) for k in spec.model_fields_set if k != "builtin"}
        builtin = _builtin_spec(spec.builtin)
        if given.get("metric", builtin.metric) != builtin.metric:
            # another metric: the built-in's rubric or schema goes with its own
            given = {"rubric": None, "json_schema": None, **given}
        spec = builtin.model_copy(update=given)
    return _build(spec, Path(base_dir) if base_dir is not None else Path.cwd())


def _default_seed_prompts(words: list[str], metric: str) -> list[str]:
    if words:
        options = ", ".join(words)
        return [f"Classify the input. Answer with one of: {options}.",
                f"Which of these fits the input best: {options}? Reply with that word only."]
    if metric == "numeric":
        return ["Work out the answer and give it as a number.",
                "Solve the problem. End your reply with the final number."]
    return ["Answer the input. Reply with the answer only.",
            "Read the input carefully and give a short, direct answer."]


def _build(spec: TaskSpec, base_dir: Path) -> Task:
    from evo import loaders  # deferred: evo.loaders imports this module

    assert spec.data is not None  # guaranteed by TaskSpec's validator
    problem = metric_parts_problem(spec)
    if problem:
        raise TaskError(problem)
    metric_name = spec.metric or ("label_accuracy" if spec.labels else "exact_match")
    labels = list(spec.labels or [])
    splits = loaders.load_splits(
        spec.data,
        fmt=spec.format,
        input_col=spec.columns.input,
        target_col=spec.columns.target,
        id_col=spec.columns.id,
        fractions=spec.split_fractions or DEFAULT_FRACTIONS,
        seed=spec.split_seed,
        base_dir=base_dir,
        labels=labels or None,
    )
    for split in SPLIT_NAMES:
        if not splits.get(split):
            raise TaskError(f"split {split!r} is empty (data: {spec.data})")
    if metric_name == "label_accuracy" and not labels:
        # Labels are inferred from the training targets when the spec does not list them.
        labels = sorted({ex.target for exs in splits.values() for ex in exs})
        if len(labels) > MAX_INFERRED_LABELS:
            raise TaskError(f"metric 'label_accuracy': {len(labels)} distinct targets; list the "
                            "labels in the spec or choose another metric")
    verbalizers = {label: label for label in labels}
    # Only labels the task has: a built-in's verbalizers may outlive labels a spec replaced.
    verbalizers.update({k: v for k, v in (spec.verbalizers or {}).items() if k in verbalizers})
    metric = get_metric(metric_name, verbalizers=verbalizers if labels else None,
                        rubric=spec.rubric, schema=spec.json_schema)
    if metric_name == "json_schema":
        from evo.metrics_json import check_json_targets

        check_json_targets(splits)
    label_task = bool(labels)
    data_name = spec.data if isinstance(spec.data, str) else spec.data["train"]
    return Task(
        name=spec.name or spec.builtin or Path(data_name).stem.split(".")[0] or "custom",
        description=spec.description or f"task from {data_name}",
        template=spec.template or DEFAULT_TEMPLATE,
        splits=splits,
        metric=metric,
        labels=tuple(labels),
        verbalizers=verbalizers,
        seed_prompts=tuple(spec.seed_prompts
                           or _default_seed_prompts(list(verbalizers.values()), metric_name)),
        max_answer_tokens=spec.max_answer_tokens or (16 if label_task else 64),
        system=spec.system,
        stop=tuple(spec.stop) if spec.stop is not None else None,
    )


def task_summary(task: Task) -> dict[str, Any]:
    """A JSON-friendly description of a task (for listings and exports)."""
    return {
        "name": task.name,
        "description": task.description,
        "metric": task.metric.name,
        "labels": list(task.labels),
        "verbalizers": dict(task.verbalizers),
        "splits": {k: len(v) for k, v in task.splits.items()},
        "seed_prompts": list(task.seed_prompts),
        "template": task.template,
    }
