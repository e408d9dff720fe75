"""The optimizers a user would pick instead of Evo, run against an OpenAI-compatible server.

Both search the prompt of an Evo task (same template, labels, metric and splits) and both spend
at most the same number of LLM calls as an Evo job of the same budget:

- ``random_search``: sample meta-LLM paraphrases of the seed prompts, score each on one fixed dev
  sample, keep the best. The simplest search a research script runs.
- ``gepa_search``: GEPA (``pip install gepa``), reflective prompt evolution with a Pareto front,
  driven through its adapter interface; its task and reflection calls go to the same server.

Each returns a ``BaselineResult`` whose winner was chosen like Evo's: the search's best and the
best seed prompt re-scored on the full dev split, the better one kept. Calls go through
``ServerModel``, which sends Evo's own ``LLMRequest`` as a raw completion of the chat-formatted
prompt: label scoring reads the first token's top-20 log-probabilities, so the objective the
baselines search is the one Evo's local runtime scores (up to the top-20 cut).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from evo.llm import LLMRequest, LLMResponse, Message
from evo.operators import clean_proposal, normalize
from evo.task import Example, Task
from workers.llm_openai import labels_from_top_logprobs

TOP_LOGPROBS = 20

# Our wording; the paraphrase asked of the meta-LLM by the random-search baseline.
PARAPHRASE = (
    "Here is an instruction given to an assistant:\n\n{prompt}\n\n"
    "Say the same thing in other words, as a new instruction for the same job. "
    "Write only the new instruction between <prompt> and </prompt>."
)


class BudgetSpent(Exception):
    """The baseline asked for a call beyond its budget."""


class ServerModel:
    """Evo requests sent to a llama.cpp (or any OpenAI-compatible) completions endpoint."""

    def __init__(self, base_url: str, formatter: Callable[[LLMRequest], str], *,
                 timeout_s: float = 300.0) -> None:
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s)
        self.formatter = formatter
        self.calls = 0
        self.limit: int | None = None

    def close(self) -> None:
        self.http.close()

    def call(self, request: LLMRequest) -> LLMResponse:
        if self.limit is not None and self.calls >= self.limit:
            raise BudgetSpent(f"{self.limit} calls spent")
        self.calls += 1
        start = time.perf_counter()
        body: dict[str, Any] = {"prompt": self.formatter(request),
                                "temperature": request.temperature}
        if request.seed is not None:
            body["seed"] = request.seed
        if request.labels:
            body |= {"max_tokens": 1, "logprobs": TOP_LOGPROBS, "temperature": 0.0}
        else:
            body |= {"max_tokens": request.max_tokens, "stop": list(request.stop) or None}
        reply = self.http.post("/completions", json=body)
        reply.raise_for_status()
        out = reply.json()
        choice, usage = out["choices"][0], out.get("usage") or {}
        common = {"model": "server", "prompt_tokens": usage.get("prompt_tokens", 0),
                  "completion_tokens": usage.get("completion_tokens", 0),
                  "latency_s": time.perf_counter() - start}
        if not request.labels:
            return LLMResponse(text=choice["text"], **common)
        tops = (choice.get("logprobs") or {}).get("top_logprobs") or [{}]
        scores = labels_from_top_logprobs(request.labels, list((tops[0] or {}).items()))
        return LLMResponse(text=max(scores, key=scores.__getitem__), label_logprobs=scores,
                           **common)

    def chat(self, text: str, *, temperature: float, max_tokens: int, seed: int,
             prefill: str = "", stop: Sequence[str] = ()) -> str:
        request = LLMRequest(messages=(Message("user", text),), max_tokens=max_tokens,
                             temperature=temperature, prefill=prefill, stop=tuple(stop), seed=seed)
        return self.call(request).text


def dev_score(model: ServerModel, task: Task, prompt: str, examples: Sequence[Example]) -> float:
    total = 0.0
    for example in examples:
        request = task.request(prompt, example, label_scoring=bool(task.labels))
        total += task.score(example, model.call(request)).score
    return total / len(examples)


@dataclass
class BaselineResult:
    winner: str
    dev: float  # the winner's full-dev score, through the server
    search_calls: int  # calls the search spent (the final full-dev scoring not included)
    calls: int  # all calls
    candidates: int  # distinct prompts scored during the search
    wall_s: float
    notes: dict[str, Any] = field(default_factory=dict)


def _final_pick(model: ServerModel, task: Task, best: str) -> tuple[str, float]:
    """Evo's final phase for one finalist: it and every seed prompt on the full dev split; the
    best of them wins (the finalist on a tie)."""
    dev = task.split("dev")
    scores = {p: dev_score(model, task, p, dev) for p in dict.fromkeys([best, *task.seed_prompts])}
    winner = max(scores, key=lambda p: (scores[p], p == best))
    return winner, scores[winner]


def random_search(model: ServerModel, task: Task, *, search_calls: int, dev_sample: int,
                  seed: int) -> BaselineResult:
    """Score the seed prompts, then paraphrases of randomly chosen seeds, on one dev sample."""
    start, rng = time.perf_counter(), random.Random(seed)
    sample = _sample(task.split("dev"), dev_sample, rng)
    model.calls, model.limit = 0, search_calls
    scored: dict[str, float] = {}
    seen: set[str] = set()
    for prompt in task.seed_prompts:
        if model.calls + len(sample) > search_calls:
            break
        scored[prompt] = dev_score(model, task, prompt, sample)
        seen.add(normalize(prompt))
    rejected = 0
    while model.calls + 1 + len(sample) <= search_calls:
        source = rng.choice(task.seed_prompts)
        raw = model.chat(PARAPHRASE.format(prompt=source), temperature=1.0, max_tokens=120,
                         seed=rng.randrange(2**31), prefill="<prompt>", stop=("</prompt>",))
        text, _ = clean_proposal(raw, "prompt", 1500)
        if text is None or normalize(text) in seen:
            rejected += 1
            continue
        seen.add(normalize(text))
        scored[text] = dev_score(model, task, text, sample)
    spent = model.calls
    model.limit = None
    seeds = [p for p in task.seed_prompts if p in scored] or list(task.seed_prompts[:1])
    seed_best = max(seeds, key=lambda p: scored.get(p, 0.0))
    best = max(scored, key=scored.__getitem__) if scored else seed_best
    winner, dev = _final_pick(model, task, best)
    return BaselineResult(winner, dev, spent, model.calls, len(scored),
                          time.perf_counter() - start, {"rejected_proposals": rejected})


def gepa_search(model: ServerModel, task: Task, *, search_calls: int, dev_sample: int,
                seed: int, minibatch: int = 3) -> BaselineResult:
    """GEPA from the best seed prompt (seeds scored on GEPA's validation sample first)."""
    import gepa
    from gepa.core.adapter import EvaluationBatch

    start, rng = time.perf_counter(), random.Random(seed)
    valset = _sample(task.split("dev"), dev_sample, rng)
    model.calls, model.limit = 0, search_calls
    seed_scores = {p: dev_score(model, task, p, valset) for p in task.seed_prompts}
    seed_best = max(seed_scores, key=seed_scores.__getitem__)

    class Adapter:
        """GEPA's integration point: run a candidate instruction on a batch, explain errors."""

        propose_new_texts = None  # GEPA's own reflective proposal

        def evaluate(self, batch: list[Example], candidate: dict[str, str],
                     capture_traces: bool = False) -> EvaluationBatch:
            outputs, scores = [], []
            for example in batch:
                request = task.request(candidate["instruction"], example,
                                       label_scoring=bool(task.labels))
                result = task.score(example, model.call(request))
                outputs.append(result.prediction)
                scores.append(result.score)
            traces = ([{"input": e.input, "output": o, "target": e.target, "score": s}
                       for e, o, s in zip(batch, outputs, scores, strict=True)]
                      if capture_traces else None)
            return EvaluationBatch(outputs=outputs, scores=scores, trajectories=traces)

        def make_reflective_dataset(self, candidate: dict[str, str], eval_batch: EvaluationBatch,
                                    components_to_update: list[str]) -> dict[str, list[dict]]:
            records = [
                {"Inputs": t["input"], "Generated Outputs": t["output"],
                 "Feedback": "Correct." if t["score"] >= 1.0
                 else f"Wrong: the expected answer is {t['target']}."}
                for t in eval_batch.trajectories or []
            ]
            return {name: records for name in components_to_update}

    def reflect(prompt: str | list[dict[str, Any]]) -> str:
        text = prompt if isinstance(prompt, str) else "\n\n".join(
            str(m.get("content", "")) for m in prompt)
        return model.chat(text, temperature=1.0, max_tokens=300, seed=rng.randrange(2**31))

    # One GEPA iteration costs at most a minibatch on the parent and the child, one reflection
    # and a full pass over the validation sample: stop before one could overrun the budget.
    per_iteration = 2 * minibatch + 1 + len(valset)

    def out_of_budget(_state: Any) -> bool:
        return model.calls + per_iteration > search_calls

    result = gepa.optimize(
        seed_candidate={"instruction": seed_best},
        trainset=list(task.split("train")),
        valset=list(valset),
        adapter=Adapter(),
        reflection_lm=reflect,
        reflection_minibatch_size=minibatch,
        stop_callbacks=out_of_budget,
        seed=seed,
        raise_on_exception=False,
        display_progress_bar=False,
        logger=_QuietLogger(),
    )
    spent = model.calls
    model.limit = None
    best = result.best_candidate["instruction"]
    winner, dev = _final_pick(model, task, best)
    return BaselineResult(winner, dev, spent, model.calls, len(result.candidates),
                          time.perf_counter() - start)


class _QuietLogger:
    def log(self, message: str) -> None:
        pass


def _sample(examples: Sequence[Example], n: int, rng: random.Random) -> list[Example]:
    return list(examples) if n >= len(examples) else rng.sample(list(examples), n)
