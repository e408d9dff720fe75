"""Local inference: examples scored per second on the bundled model, Evo's pool against a bare
llama-cpp-python loop over the same requests, in the same run.

    python -m bench.local_model [--task topic] [--examples 30] [--threads 1] [--samples 8]
                                [--skip-generate]

The requests are label-scoring requests of the task's seed prompts on its first dev examples, in
example-major order (each consecutive pair has a different prompt: the order in which requests of
many candidates arrive). Passes:

- bare: llama-cpp-python as a script would use it, every prompt evaluated from scratch
  (``reset`` + ``eval``), the label read from the last logits by Evo's rule;
- evo, 1 actor, no reuse: Evo's pool and one Ray actor whose client evaluates every prompt from
  scratch too: the cost of Evo's orchestration (target: at least 0.9 of bare);
- evo, 1 actor, one at a time: prompt-affinity scheduling (requests sharing a prompt go to one
  actor, back to back) and one request per decode, so llama.cpp reuses the cached instruction
  prefix;
- evo, 1 actor, shared-prefix batches: the default client: the prompt's prefix decoded once per
  batch and copied, the batch's examples decoded side by side in one ``llama_decode``;
- evo, 2 actors: one model per core, batched;
- generate-and-parse: the same requests answered by greedy decoding and the task's parser, against
  label scoring from the log-probabilities: speed and agreement.

Then sampling: ``--samples`` samples (temperature 0.8) of one meta-prompt, drawn one after
another by llama-cpp-python's own ``create_completion`` (its prompt cache on), one after another
by Evo's client, and in parallel by Evo's client (one request each, one batch).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from evo.llm import LABEL_TOP_K, LLMRequest, LLMResponse, label_scores
from evo.metrics import ParsingMetric
from evo.task import Task, load_task


@dataclass
class Pass:
    name: str
    seconds: float
    labels: list[str | None]

    def rate(self) -> float:
        return len(self.labels) / self.seconds


def label_requests(task: Task, examples: int) -> list[LLMRequest]:
    """Every seed prompt on each of the first ``examples`` dev examples, example-major."""
    dev = task.split("dev")[:examples]
    return [
        task.request(prompt, ex, label_scoring=True)
        for ex in dev
        for prompt in task.seed_prompts
    ]


class BareLoop:
    """The plain way: format, tokenize, evaluate from scratch, compare the labels' first tokens."""

    def __init__(self, model_path: str, threads: int) -> None:
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llama_cpp = llama_cpp
        self.llm = llama_cpp.Llama(model_path=model_path, n_ctx=2048, n_threads=threads,
                                   n_threads_batch=threads, verbose=False)
        meta = self.llm.metadata
        self.formatter = Jinja2ChatFormatter(
            template=meta["tokenizer.chat_template"],
            eos_token=self.llm.detokenize([self.llm.token_eos()], special=True).decode(),
            bos_token=self.llm.detokenize([self.llm.token_bos()], special=True).decode(),
        )

    def label(self, request: LLMRequest) -> str:
        messages: Any = [{"role": m.role, "content": m.content} for m in request.messages]
        text = self.formatter(messages=messages).prompt
        tokens = self.llm.tokenize(text.encode(), add_bos=False, special=True)
        self.llm.reset()
        self.llm.eval(tokens)
        # without logits_all, llama-cpp-python keeps no copy of the logits: read the context's
        logits = np.ctypeslib.as_array(
            self.llama_cpp.llama_get_logits_ith(self.llm.ctx, -1), shape=(self.llm.n_vocab(),)
        )
        # the label rule every runtime uses: the labels' summed probability among the top 20
        x = logits.astype(np.float64)
        logprobs = x - x.max() - np.log(np.exp(x - x.max()).sum())
        ids = np.argsort(-logprobs)[:LABEL_TOP_K]
        top = {self.llm.detokenize([int(i)]).decode("utf-8", errors="ignore"): float(logprobs[i])
               for i in ids}
        scores = label_scores(request.labels, list(top.items()))
        return max(scores, key=scores.__getitem__)

    def close(self) -> None:
        self.llm.close()


def run_bare(requests: Sequence[LLMRequest], model_path: str, threads: int) -> Pass:
    bare = BareLoop(model_path, threads)
    try:
        bare.label(requests[0])  # warm up, as the pool's actors are warm
        start = time.perf_counter()
        labels: list[str | None] = [bare.label(r) for r in requests]
        return Pass("bare llama-cpp-python loop", time.perf_counter() - start, labels)
    finally:
        bare.close()


def _actor_class() -> Any:
    import ray

    @ray.remote(num_cpus=1)
    class ScoringActor:
        """Evo's local client in a Ray actor: prefix reuse on or off, batches decoded together
        or one request at a time."""

        def __init__(self, threads: int, reuse: bool, batched: bool) -> None:
            from workers.llm_local import LocalLlamaClient

            self.client = LocalLlamaClient(threads=threads, reuse_prefix=reuse,
                                           parallel=8 if batched else 1)
            self.batched = batched

        def call_batch(self, requests: list[LLMRequest]) -> list[LLMResponse]:
            if self.batched:
                return self.client.call_batch_sync(requests)
            return [self.client.call_sync(r) for r in requests]

    return ScoringActor


def run_pool(
    requests: Sequence[LLMRequest], name: str, actors: int, threads: int, reuse: bool,
    batched: bool = True,
) -> Pass:
    import ray

    from workers.actors import ActorWorker
    from workers.pool import Pool

    cls = _actor_class()
    handles = [cls.remote(threads, reuse, batched) for _ in range(actors)]
    try:
        pool = Pool([ActorWorker(h) for h in handles], model="local", batch_size=16)
        # warm up every actor (model load) outside the timed part
        ray.get([h.call_batch.remote([requests[0]]) for h in handles])
        start = time.perf_counter()
        answers = asyncio.run(pool.call_many(list(requests)))
        return Pass(name, time.perf_counter() - start, [a.text for a in answers])
    finally:
        for h in handles:
            ray.kill(h)


def run_generate(task: Task, requests: Sequence[LLMRequest], threads: int) -> Pass:
    """Greedy decoding of the answer, parsed by the task's metric, through Evo's client."""
    from workers.llm_local import LocalLlamaClient

    client = LocalLlamaClient(threads=threads)
    metric = task.metric
    parse = metric.parse if isinstance(metric, ParsingMetric) else None
    gen = [replace(r, labels=(), max_tokens=task.max_answer_tokens, stop=task.stop_sequences)
           for r in requests]
    try:
        client.call_sync(gen[0])
        start = time.perf_counter()
        texts = [client.call_sync(r).text for r in gen]
        seconds = time.perf_counter() - start
    finally:
        client.close()
    # as verbalizer words, like the label-scoring passes' answers
    parsed = [parse(text) if parse else text.strip() for text in texts]
    labels = [task.verbalizers.get(lab) if lab else None for lab in parsed]
    return Pass("generate and parse", seconds, labels)


def sample_requests(n: int) -> list[LLMRequest]:
    """``n`` samples of one meta-prompt, as a method asks for them."""
    from evo.llm import Message

    ask = ("Here are instructions for sorting news items by topic, with their accuracy:\n"
           "- Which topic is this news item about? (0.55)\n"
           "- Read the item and name its subject: sports, business, science or politics. (0.61)\n"
           "Write a new instruction that scores higher, inside <prompt></prompt> tags.")
    return [LLMRequest(messages=(Message("user", ask),), max_tokens=64, temperature=0.8,
                       prefill="<prompt>", stop=("</prompt>",), sample=i) for i in range(n)]


@dataclass
class Sampling:
    name: str
    seconds: float
    texts: list[str]
    tokens: int  # sampled: each pass samples its own texts, of their own lengths

    def rate(self) -> float:
        return self.tokens / self.seconds


def run_sampling(n: int, threads: int) -> list[Sampling]:
    """``n`` samples of one meta-prompt: llama-cpp-python one after another, Evo's client one
    after another, Evo's client in parallel."""
    import llama_cpp

    from workers.llm_local import LocalLlamaClient, bundled_model_path

    requests = sample_requests(n)
    client = LocalLlamaClient(threads=threads, parallel=n)
    try:
        client.call_sync(requests[0])  # warm
        start = time.perf_counter()
        alone = [client.call_sync(r) for r in requests]
        t_alone = time.perf_counter() - start
        start = time.perf_counter()
        together = client.call_batch_sync(requests)
        t_together = time.perf_counter() - start
        prompt = client.format_prompt(requests[0])
    finally:
        client.close()
    llm = llama_cpp.Llama(model_path=bundled_model_path(), n_ctx=2048, n_threads=threads,
                          n_threads_batch=threads, verbose=False)
    try:
        llm.set_cache(llama_cpp.LlamaRAMCache())
        tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        llm.create_completion(tokens, max_tokens=4, temperature=0.8, seed=0)  # warm the cache
        start = time.perf_counter()
        plain = [llm.create_completion(tokens, max_tokens=64, temperature=0.8, seed=i,
                                       stop=["</prompt>"]) for i in range(n)]
        t_plain = time.perf_counter() - start
    finally:
        llm.close()
    return [
        Sampling(f"llama-cpp-python, {n} one after another", t_plain,
                 [p["choices"][0]["text"] for p in plain],
                 sum(p["usage"]["completion_tokens"] for p in plain)),
        Sampling(f"evo client, {n} one after another", t_alone, [r.text for r in alone],
                 sum(r.completion_tokens for r in alone)),
        Sampling(f"evo client, {n} in parallel", t_together, [r.text for r in together],
                 sum(r.completion_tokens for r in together)),
    ]


def agreement(a: Sequence[str | None], b: Sequence[str | None]) -> float:
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="topic", help="a built-in classification task")
    ap.add_argument("--examples", type=int, default=30, help="dev examples (× seed prompts)")
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads per model")
    ap.add_argument("--samples", type=int, default=8, help="samples of one meta-prompt")
    ap.add_argument("--skip-generate", action="store_true", help="no generate-and-parse pass")
    args = ap.parse_args(argv)

    import ray

    from workers.llm_local import bundled_model_path

    task = load_task(args.task)
    if not isinstance(task, Task) or not task.labels:
        raise SystemExit(f"{args.task} is not a classification task")
    requests = label_requests(task, args.examples)
    model = bundled_model_path()
    print(f"{len(requests)} label-scoring requests: {len(task.seed_prompts)} seed prompts × "
          f"{args.examples} {args.task} dev examples, example-major; {args.threads} thread(s) "
          f"per model, {os.cpu_count()} cores")

    # as Evo starts a local cluster: model actors at the same priority as this process
    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False,
             num_cpus=max(2, os.cpu_count() or 2), _system_config={"worker_niceness": 0})
    try:
        bare = run_bare(requests, model, args.threads)
        no_reuse = run_pool(requests, "evo pool, 1 actor, no prefix reuse", 1, args.threads,
                            False, batched=False)
        one = run_pool(requests, "evo pool, 1 actor, one at a time", 1, args.threads, True,
                       batched=False)
        batched = run_pool(requests, "evo pool, 1 actor, shared-prefix batches", 1,
                           args.threads, True)
        two = run_pool(requests, "evo pool, 2 actors, batches", 2, args.threads, True)
    finally:
        ray.shutdown()
    passes = [bare, no_reuse, one, batched, two]
    gen = None if args.skip_generate else run_generate(task, requests, args.threads)

    print(f"\n{'pass':<42} {'examples/s':>10} {'× bare':>8} {'same labels as bare':>20}")
    for p in passes + ([gen] if gen else []):
        print(f"{p.name:<42} {p.rate():>10.2f} {p.rate() / bare.rate():>8.2f} "
              f"{agreement(p.labels, bare.labels):>20.1%}")
    figures = {
        "bare_rate": bare.rate(),
        "overhead_ratio": no_reuse.rate() / bare.rate(),
        "one_actor_ratio": one.rate() / bare.rate(),
        "prefix_reuse_gain": one.rate() / no_reuse.rate(),
        "batched_ratio": batched.rate() / bare.rate(),
        "batch_gain": batched.rate() / one.rate(),
        "two_actor_ratio": two.rate() / bare.rate(),
    }
    print(f"\nEvo's orchestration, same work as bare (1 actor, no reuse): "
          f"{figures['overhead_ratio']:.2f} of bare (target ≥ 0.9)")
    print(f"prefix reuse through prompt-affinity scheduling: ×{figures['prefix_reuse_gain']:.2f}")
    print(f"1 actor with reuse, one at a time: {figures['one_actor_ratio']:.2f} of bare; "
          f"in shared-prefix batches: {figures['batched_ratio']:.2f} (target ≥ 3.5, "
          f"×{figures['batch_gain']:.2f} over one at a time); 2 actors: "
          f"{figures['two_actor_ratio']:.2f}")
    if gen:
        gold = [task.verbalizers[ex.target] for ex in task.split("dev")[: args.examples]
                for _ in task.seed_prompts]
        acc_label = agreement(one.labels, gold)
        acc_gen = agreement(gen.labels, gold)
        figures |= {"generate_speed_ratio": gen.rate() / one.rate(),
                    "generate_agreement": agreement(gen.labels, one.labels)}
        print(f"label scoring vs generate-and-parse: {one.rate() / gen.rate():.1f}× faster; "
              f"they agree on {figures['generate_agreement']:.0%} of examples; accuracy "
              f"{acc_label:.3f} (label scoring) vs {acc_gen:.3f} (generate and parse)")
    if args.samples > 1:
        plain, alone, together = run_sampling(args.samples, args.threads)
        print(f"\n{'sampling pass':<42} {'tokens/s':>10} {'× llama-cpp-python':>19}")
        for p in (plain, alone, together):
            print(f"{p.name:<42} {p.rate():>10.1f} {p.rate() / plain.rate():>19.2f}")
        figures |= {"parallel_vs_plain": together.rate() / plain.rate(),
                    "parallel_vs_alone": together.rate() / alone.rate(),
                    "parallel_same_as_alone": agreement(together.texts, alone.texts)}
        print(f"{args.samples} samples in parallel: ×{figures['parallel_vs_plain']:.2f} against "
              f"llama-cpp-python one after another (target ≥ 2.5), "
              f"×{figures['parallel_vs_alone']:.2f} against Evo's client one after another; "
              f"the same texts as one after another: {figures['parallel_same_as_alone']:.0%}")
    return figures


if __name__ == "__main__":
    main()
