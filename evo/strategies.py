"""How a prompt answers one example: the evaluation strategy, a short chain of model calls.

    direct         answer ← LLM(template(prompt, x))                                  1 call
    zero_shot_cot  steps  ← LLM(template(prompt, x), answer starts with a reasoning cue)
                   answer ← LLM(same, answer = cue + steps + "so the final answer is")  2 calls
    eot            (zero-shot EoT, Jin, Liu, Tan, NLPCC 2024; the candidate is a pool of
                   chain-of-thought prompts, see ``evo/algorithms/zero_shot_eot.py``)
                   k      ← LLM(which prompt of the pool suits x?)        (skipped for a pool of 1)
                   x'     ← LLM(restate x as a list of its facts, guided by pool[k])
                   answer ← LLM(template(pool[k], x'))                                 3 calls

Each strategy is plain async code over ``ask(request, purpose)``: whoever runs it decides how
the calls are paid for and batched (``workers/scoring.py`` sends every chain's calls through the
job's cache, budget and ledger, a round at a time). The last call's response is what the task
scores. A step whose answer cannot be used falls back to a stated default and says so in
``Answer.notes``: an unparsable choice takes the pool's first prompt, an empty restatement or
one that drops a number of the problem gives way to the problem as written. Steps of reasoning
are not cut at a blank line (a small model separates its steps by them) but by their length.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

from evo.engine import Rejection
from evo.llm import LLMRequest, LLMResponse, Message
from evo.task import Example, Task

Strategy = Literal["direct", "zero_shot_cot", "eot"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
Ask = Callable[[LLMRequest, str], Awaitable[LLMResponse]]

# the most calls one example costs under each strategy (what the final phase holds back)
MOST_CALLS: Mapping[str, int] = {"direct": 1, "zero_shot_cot": 2, "eot": 3}

# The purposes the ledger records for the steps before the answer (the answer is "evaluate").
REASON, SELECT, REWRITE = "cot_reason", "eot_select", "eot_rewrite"

REASONING_CUE = "Let me work through this one step at a time."
ANSWER_CUE = "So the final answer is"
# reasoning needs more room than a bare answer; never less than the task allows an answer
REASONING_TOKENS = 128

SELECT_PROMPT = """Here is a problem and {n} ways to approach it.

Problem: {problem}

Approaches:
{options}

Which approach fits this problem best? Reply with its number only."""
SELECT_PREFILL = "Best approach: number"

REWRITE_PROMPT = """Rewrite the problem below as a numbered list: one fact per line, each with \
its number, and a last line that asks the question. Do not solve it. It will be solved this way: \
{approach}

Problem: {problem}"""
# a list is what a small model restates most faithfully; the answer keeps the "1."
REWRITE_PREFILL = "Facts:\n1."
REWRITE_TOKENS = 120

_INT = re.compile(r"\d+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WS = re.compile(r"\s+")
_QUESTION = re.compile(r"[^.!?\n]*\?\s*$")  # the closing question of a problem


@dataclass(frozen=True)
class Answer:
    """The response the task scores, which prompt of the pool answered, and the steps whose
    answer could not be used (operator, reason), each of which took its stated default."""

    response: LLMResponse
    chosen: int = 0
    notes: tuple[tuple[str, Rejection], ...] = ()


def calls_per_example(strategy: str, pool_size: int = 1) -> int:
    """Calls one example costs (before the cache): eot asks no choice of a pool of one."""
    if strategy == "eot" and pool_size < 2:
        return 2
    return MOST_CALLS[strategy]


def pool_of(text: str, meta: Mapping[str, Any] | None) -> list[str]:
    """The prompts an eot candidate chooses from: its ``pool`` (made by zero-shot-eot), else
    the candidate's own text alone."""
    pool = (meta or {}).get("pool")
    if isinstance(pool, list) and pool and all(isinstance(p, str) and p for p in pool):
        return list(pool)
    return [text]


def usable(task: Task, strategy: str, *, label_scoring: bool) -> str | None:
    """Why ``strategy`` cannot answer ``task`` (None: it can). A label-scored answer is one
    choice among the label words, read from the first answer token's log-probabilities: there
    is no answer text for reasoning to precede, and no room for a restated input."""
    if strategy != "direct" and task.labels and label_scoring:
        return (f"evaluation.strategy {strategy!r} needs written answers, but task {task.name!r} "
                "is label-scored (one first-token choice, nothing to reason before); set "
                "evaluation.label_scoring: false to have the model write its answer")
    return None


def first_request(strategy: str, task: Task, pool: Sequence[str], example: Example) -> LLMRequest:
    """The first call of an example's chain (whether it is cached tells whether the chain,
    deterministic at temperature 0, will be)."""
    if strategy == "direct":
        return task.request(pool[0], example, label_scoring=False)
    if strategy == "zero_shot_cot":
        return reasoning_request(task, pool[0], example)
    if len(pool) > 1:
        return select_request(pool, example)
    return rewrite_request(pool[0], example)


async def answer(
    strategy: str, task: Task, pool: Sequence[str], example: Example, ask: Ask
) -> Answer:
    """``example`` answered by ``strategy``; ``pool`` holds one prompt unless the strategy is
    eot."""
    if strategy == "direct":
        return Answer(await ask(task.request(pool[0], example, label_scoring=False), "evaluate"))
    if strategy == "zero_shot_cot":
        return await zero_shot_cot(task, pool[0], example, ask)
    if strategy == "eot":
        return await eot(task, pool, example, ask)
    raise ValueError(f"unknown evaluation strategy {strategy!r}; known: {', '.join(STRATEGIES)}")


# --- zero-shot chain of thought ------------------------------------------------------------------


def reasoning_request(task: Task, prompt: str, example: Example) -> LLMRequest:
    base = task.request(prompt, example, label_scoring=False)
    # no stop: the steps of a small model's reasoning are often set apart by blank lines
    return replace(base, prefill=REASONING_CUE, stop=(),
                   max_tokens=max(REASONING_TOKENS, task.max_answer_tokens))


async def zero_shot_cot(task: Task, prompt: str, example: Example, ask: Ask) -> Answer:
    """Reason first, then read the answer off the end of the reasoning (two calls)."""
    first = reasoning_request(task, prompt, example)
    steps = await ask(first, REASON)
    if steps.error:
        return Answer(steps)  # scored as the failed call it is
    said = f"{REASONING_CUE} {steps.text.strip()}".rstrip()
    final = replace(first, prefill=f"{said}\n{ANSWER_CUE}", max_tokens=task.max_answer_tokens,
                    stop=task.stop_sequences)
    return Answer(await ask(final, "evaluate"))


# --- zero-shot EoT ------------------------------------------------------------------------------


def select_request(pool: Sequence[str], example: Example) -> LLMRequest:
    options = "\n".join(f"{i}. {p}" for i, p in enumerate(pool, 1))
    text = SELECT_PROMPT.format(n=len(pool), problem=example.input, options=options)
    return LLMRequest((Message("user", text),), max_tokens=6, temperature=0.0, stop=("\n",),
                      prefill=SELECT_PREFILL)


def parse_choice(text: str, pool: Sequence[str]) -> int | None:
    """The 0-based prompt an answer names: its first whole number when it is one of the pool's,
    else the one prompt whose text it quotes; None when it names none (or several)."""
    found = _INT.search(text)
    if found:
        k = int(found.group(0))
        return k - 1 if 1 <= k <= len(pool) else None
    said = _norm(text)
    quoted = [i for i, p in enumerate(pool) if said and _norm(p) and _norm(p) in said]
    return quoted[0] if len(quoted) == 1 else None


def rewrite_request(approach: str, example: Example) -> LLMRequest:
    text = REWRITE_PROMPT.format(approach=approach, problem=example.input)
    return LLMRequest((Message("user", text),), max_tokens=REWRITE_TOKENS, temperature=0.0,
                      stop=("\n\n",), prefill=REWRITE_PREFILL)


def restated(original: str, rewrite: str) -> tuple[str | None, Rejection | None]:
    """The restatement to answer (the list the model wrote, its "1." put back, and the
    original's closing question when the list leaves it out), or (None, why) when it cannot
    replace the original: empty, or missing a number the original gives (the answer would be
    computed from other facts)."""
    lines = [line.strip() for line in rewrite.strip().splitlines() if line.strip()]
    if not lines:
        return None, "empty"
    text = "\n".join(["1. " + lines[0], *lines[1:]])
    if set(_NUMBER.findall(original)) - set(_NUMBER.findall(text)):
        return None, "lost_detail"
    question = _QUESTION.search(original)
    if question and "?" not in text:
        text += "\n" + question.group(0).strip()
    return text, None


async def eot(task: Task, pool: Sequence[str], example: Example, ask: Ask) -> Answer:
    """Select the prompt of the pool that suits the example, restate the example guided by it,
    answer the restatement with it (three calls; two for a pool of one)."""
    notes: list[tuple[str, Rejection]] = []
    chosen = 0
    if len(pool) > 1:
        reply = await ask(select_request(pool, example), SELECT)
        pick = None if reply.error else parse_choice(reply.text, pool)
        if pick is None:  # the stated default: the pool's first prompt (the first seed)
            notes.append((SELECT, "call_failed" if reply.error else "no_choice"))
        else:
            chosen = pick
    prompt = pool[chosen]
    reply = await ask(rewrite_request(prompt, example), REWRITE)
    text, why = (None, "call_failed") if reply.error else restated(example.input, reply.text)
    if text is None:  # the stated default: the problem as it was written
        notes.append((REWRITE, why or "empty"))
        text = example.input
    final = task.request(prompt, replace(example, input=text), label_scoring=False)
    # the chain-of-thought prompt asks for steps: room for them, and no stop between them
    final = replace(final, max_tokens=max(REASONING_TOKENS, task.max_answer_tokens), stop=())
    return Answer(await ask(final, "evaluate"), chosen, tuple(notes))


def _norm(text: str) -> str:
    return _WS.sub(" ", re.sub(r"[^a-z0-9 ]", " ", text.lower())).strip()
