"""EoH on the real driver and the real sandbox, with a scripted optimizer model."""

from __future__ import annotations

import random
from collections import Counter

from evo.llm import LLMRequest
from evo.problems.binpacking import bin_packing
from evo.programs import extract_program, signature_arity
from evo.selection import rank_based
from evo.spec import JobSpec
from storage import Store
from workers.cache import MemoryCache
from workers.driver import Driver
from workers.pool import LocalWorker, Pool
from workers.scripted import ScriptedClient

GOOD = "import numpy as np\n\ndef priority(item, bins):\n    return -(bins - item) ** {p}\n"
BROKEN = "def priority(item, bins)\n    return bins\n"
HOSTILE = "def priority(item, bins):\n    while True:\n        pass\n"


def meta(request: LLMRequest) -> str:
    """E2 answers do not parse, M3 answers never return, the rest are valid programs."""
    text = request.messages[-1].content
    if "Find the idea they share" in text:
        return f"Tight fit.</thought>\n<code>\n{BROKEN}"
    if "Remove the parts" in text:
        return f"Wait for a better bin.</thought>\n<code>\n{HOSTILE}"
    p = len(text) % 5 + request.sample + 1
    return f"Tightest bin, power {p}.</thought>\n<code>\n```python\n{GOOD.format(p=p)}```\n"


def test_extract_program() -> None:
    assert extract_program(f"Idea.</thought>\n<code>\n{GOOD.format(p=1)}", "priority") == (
        "Idea.", GOOD.format(p=1).strip("\n"))
    assert extract_program("x</thought><code>```python\ndef f(): pass\n```", "priority") == (
        None, "missing_function")
    assert extract_program(f"x</thought><code>{BROKEN}", "priority") == (None, "syntax_error")
    assert extract_program("x</thought><code>   ", "priority") == (None, "empty")


def test_extract_program_forgives_what_small_models_write() -> None:
    prose = ("A tight fit.</thought>\nHere is the code:\ndef score(x, options):\n"
             "    return -(options - x)\n\nThis returns the tightest bin first.")
    assert extract_program(prose, "priority", 2) == (
        "A tight fit.", "def priority(x, options):\n    return -(options - x)")
    # the wrong number of arguments is not the function asked for
    assert extract_program(prose, "priority", 3) == (None, "missing_function")
    # helpers stay; the last function of the right shape becomes the entry
    two = "x</thought><code>def helper(a, b):\n    return a\n\ndef main(a, b):\n    return b\n"
    assert extract_program(two, "priority", 2)[1].endswith("def priority(a, b):\n    return b")
    assert extract_program("x</thought>no code at all, sorry", "priority", 2) == (
        None, "syntax_error")
    assert signature_arity(bin_packing().signature, "priority") == 2


def test_rank_based_prefers_the_fittest_gently() -> None:
    rng = random.Random(1)
    counts = Counter(rank_based(rng, ["a", "b", "c"], [0.1, 0.9, 0.5], 1)[0] for _ in range(30000))
    # weights 1/(rank+3): b 1/3, c 1/4, a 1/5
    total = 1 / 3 + 1 / 4 + 1 / 5
    assert abs(counts["b"] / 30000 - (1 / 3) / total) < 0.02
    assert abs(counts["a"] / 30000 - (1 / 5) / total) < 0.02


async def test_eoh_job_with_failing_children(store: Store) -> None:
    client = ScriptedClient(meta)
    pool = Pool([LocalWorker(client)], model="scripted")
    spec = JobSpec.model_validate({
        "task": "binpacking",
        "algorithm": {"name": "eoh", "population": 3, "generations": 2, "per_strategy": 1},
        "evaluation": {"top_k": 2}, "budget": {"calls": 200}})
    task = bin_packing(items=60)
    task = type(task)(**{**task.__dict__, "cpu_s": 2.0, "wall_s": 4.0})
    driver = Driver(spec, task, store=store, task_pool=pool, meta_pool=pool, cache=MemoryCache(),
                    job_id="e" * 32)
    result = await driver.run()
    assert result.status == "completed"

    cands = store.candidates(driver.job_id)
    ops = Counter(c.operator for c in cands)
    assert ops["seed"] == 2 and ops["i1"] >= 1  # topped up to N with fresh ideas
    assert {"e1", "e2", "m1", "m2", "m3"} & set(ops)
    for c in cands:
        if c.operator in ("e1", "e2"):
            assert len(c.parents) == 2
        elif c.operator.startswith("m"):
            assert len(c.parents) == 1
        assert c.meta.get("thought")
    # programs are stored as programs, each child linked to the paid call that wrote it
    assert {c.kind for c in cands} == {"program"}
    for c in cands:
        if c.operator != "seed":
            answer = store.paid_response(driver.job_id, c.meta["made_by"])
            assert answer is not None and c.text.strip().splitlines()[-1].strip() in answer["text"]
    # programs that do not parse never reach the sandbox; the reason is recorded
    assert any(k.endswith(":syntax_error") for k in result.stats["rejected"])
    evals = store.evaluations(driver.job_id)
    failed = [e for e in evals if e.n == 0]
    scored = [e for e in evals if e.n > 0]
    assert scored and all(e.value < 0 for e in scored)  # negated excess: higher is better
    assert failed and all(e.failures > 0 for e in failed)  # the endless program was stopped
    stopped = [k for k in result.stats["rejected"] if k.startswith("m3:run_failed")]
    assert stopped and all(("cpu_limit" in k) or ("timeout" in k) for k in stopped)
    best = result.best
    assert best is not None and best.test is not None and best.dev <= 0
    best_fit_excess = -next(e.value for e in scored if store.candidate(e.candidate_id).text ==
                            task.seeds[0].code and e.split == "dev")
    assert -best.dev <= best_fit_excess + 1e-9  # never worse than the best-fit seed
