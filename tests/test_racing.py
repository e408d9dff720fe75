"""Racing on synthetic candidates whose true accuracies are known."""

from __future__ import annotations

import hashlib
import re

from evo.llm import LLMRequest
from evo.metrics import get_metric
from evo.spec import JobSpec
from evo.task import Example, Task
from storage import Store
from workers.cache import MemoryCache
from workers.driver import Driver
from workers.pool import LocalWorker, Pool
from workers.racing import behind, sign_test_p, survivors
from workers.scripted import ScriptedClient

ACCURACIES = [0.35, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9]


def task(n: int = 200) -> Task:
    examples = tuple(Example(f"e{i}", f"case {i}", "yes" if i % 2 else "no") for i in range(n))
    return Task(name="race", description="yes or no", template="{prompt}\n{input}",
                splits={"train": examples[:10], "dev": examples, "test": examples[:10]},
                metric=get_metric("label_accuracy", verbalizers={"yes": "yes", "no": "no"}),
                labels=("yes", "no"), verbalizers={"yes": "yes", "no": "no"},
                seed_prompts=("p=0.5",), max_answer_tokens=1)


def reply(request: LLMRequest) -> dict[str, float]:
    """Right with the probability written in the prompt, decided by a hash of prompt and case."""
    text = request.messages[-1].content
    p = float(re.search(r"p=([0-9.]+)", text).group(1))
    i = int(re.search(r"case (\d+)", text).group(1))
    u = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 2**32
    gold = "yes" if i % 2 else "no"
    answer = gold if u < p else ("no" if gold == "yes" else "yes")
    return {w: 0.0 if w == answer else -2.0 for w in request.labels}


def driver(store: Store, racing: bool) -> Driver:
    client = ScriptedClient(reply)
    pool = Pool([LocalWorker(client)], model="scripted")
    spec = JobSpec.model_validate({
        "task": "sentiment", "budget": {"calls": None},
        "evaluation": {"racing": {"enabled": racing, "block": 10, "min_examples": 20}}})
    job_id = ("r" if racing else "f") * 32
    store.create_job(job_id=job_id, name="race", task="race", algorithm="none", spec={}, seed=0)
    return Driver(spec, task(), store=store, task_pool=pool, meta_pool=pool, cache=MemoryCache(),
                  job_id=job_id)


async def test_racing_keeps_the_best_and_saves_calls(store: Store) -> None:
    results = {}
    for racing in (False, True):
        d = driver(store, racing)
        engine = d.search
        cands = [engine.candidate(f"Guess. p={p}", operator="seed", generation=0)
                 for p in ACCURACIES]
        scores = await engine.evaluate(cands, "dev")
        results[racing] = (engine.budget.calls, engine.racing_saved, scores)
    full_calls, _, full = results[False]
    race_calls, saved, raced = results[True]
    assert full_calls == 8 * 200
    assert race_calls + saved == full_calls  # every call not made is counted as saved
    assert saved > 0.4 * full_calls
    best_full = max(full, key=lambda s: s.value)
    best_raced = max(raced, key=lambda s: s.value if s.n == 200 else -1)
    assert full.index(best_full) == raced.index(best_raced) == len(ACCURACIES) - 1  # same winner
    assert best_raced.n == 200 and best_raced.subset is None  # the winner ran the whole race
    dropped = [s for s in raced if s.n < 200]
    assert dropped and all(s.subset.startswith("all:raced@") for s in dropped)
    weakest = raced[0]
    assert weakest.n < 200  # p=0.35 is dropped early


def test_sign_test() -> None:
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(10, 0) == 1 / 1024
    assert abs(sign_test_p(5, 5) - 0.623) < 0.001
    assert behind({"a": 1, "b": 1, "c": 1, "d": 1, "e": 1, "f": 1},
                  {"a": 0, "b": 0, "c": 0, "d": 0, "e": 0, "f": 0}, 0.95)
    assert not behind({"a": 1, "b": 0}, {"a": 0, "b": 1}, 0.95)


def test_incumbent_can_drop_everyone_new() -> None:
    incumbent = {f"e{i}": 1.0 for i in range(20)}
    weak = {"x": {f"e{i}": float(i % 4 == 0) for i in range(20)}}
    assert survivors(weak, ["x"], 0.95, incumbent) == []
    assert survivors(weak, ["x"], 0.95, None) == ["x"]  # alone, it leads
