"""``python -m tests.scripted_cli REPLY ARGS...``: the ``evo`` command line (``ARGS``) in a process
whose scripted model (``provider: scripted``) answers with the reply function named ``REPLY``.

The crash-safety tests kill such a process with SIGKILL and resume its job in another one; the
hash-based default reply only writes prose, which a program search cannot run and an
instruction or arithmetic job cannot use. Each reply here is a pure function of the request (its
text and its draw), so a job answered by it is the same job however often it is restarted.
"""

from __future__ import annotations

import hashlib
import random
import re
import sys
from collections.abc import Callable

from evo.llm import LLMRequest
from evo.strategies import REWRITE_PREFILL, SELECT_PREFILL
from tests.helpers import draw


def _rng(request: LLMRequest, *more: str) -> random.Random:
    """The same draws for the same request asked again, different ones for its other samples."""
    key = "\x00".join((request.messages[-1].content, request.prefill, draw(request), *more))
    return random.Random(hashlib.sha256(key.encode()).digest())


def funsearch(request: LLMRequest) -> str:
    """A bin-packing priority body, one in eight broken: the benchmark's proposer."""
    from bench.funsearch import propose

    return propose("binpacking", f"{request.messages[-1].content}\x00{draw(request)}")


# completions of EvoPrompting's prefill (a code block with the imports written)
PROGRAMS = (
    "\ndef priority(item, bins):\n    return -(bins - item) * {w}\n",
    "\ndef priority(item, bins):\n    left = bins - item\n"
    "    return -left + {w} * np.exp(-(left / {s}) ** 2) * (left > 0)\n",
    "\ndef priority(item, bins):\n    return bins - item * {w}\n",
    "\ndef priority(item, bins)\n    return bins\n",  # does not parse
)


def evoprompting(request: LLMRequest) -> str:
    rng = _rng(request)
    return rng.choice(PROGRAMS).format(w=rng.randint(2, 40), s=rng.randint(10, 60))


_PARENT = re.compile(r"<instruction>(.*?)</instruction>", re.S)


def evol_instruct(request: LLMRequest) -> str:
    """An evolution adds a requirement to its parent (one in six is empty); the task model's
    response restates the instruction (one in six refuses)."""
    rng = _rng(request)
    text = request.messages[-1].content
    if not request.prefill:  # the task model answering an instruction
        return "Sorry, I cannot." if rng.random() < 1 / 6 else f"Here is an answer to {text}"
    if rng.random() < 1 / 6:
        return "</instruction>"
    parent = _PARENT.search(text).group(1)  # type: ignore[union-attr]
    topic = rng.choice(("rivers", "prices", "weather", "engines", "poems", "tables"))
    return f"{parent} Mention {topic} and fact{rng.randint(1, 99)}.</instruction>"


_OPTIONS = re.compile(r"and (\d+) ways")


def zero_shot_eot(request: LLMRequest) -> str:
    """New reasoning instructions when breeding; a choice among the pool; a faithful restatement;
    the sum of the question's last two numbers, wrong for one (prompt, question) in three."""
    rng = _rng(request)
    text = request.messages[-1].content
    if request.prefill == SELECT_PREFILL:
        return f" {rng.randint(1, int(_OPTIONS.search(text).group(1)))}"  # type: ignore[union-attr]
    if request.prefill == REWRITE_PREFILL:
        return " " + text.rsplit("Problem: ", 1)[1]
    if "Question: " not in text:  # crossover or mutation of the CoT pool
        verb = rng.choice(("List", "Check", "Name", "Count", "Write"))
        thing = rng.choice(("each quantity", "the facts", "every step", "the units", "a plan"))
        return f"{verb} {thing} first, then reason to the answer.</prompt>"
    question = text.rsplit("Question: ", 1)[1]
    numbers = [int(n) for n in re.findall(r"(?<![\d.])\d+(?![.\d])", question)] or [0]
    answer = sum(numbers[-2:]) + (1 if rng.random() < 1 / 3 else 0)
    return f"The answer is {answer}."


REPLIES: dict[str, Callable[[LLMRequest], str | dict[str, float]] | None] = {
    "hashed": None,  # the default: prose, and label scores from a hash of the request
    "funsearch": funsearch,
    "evoprompting": evoprompting,
    "evol-instruct": evol_instruct,
    "zero-shot-eot": zero_shot_eot,
}


def main() -> None:
    import workers.scripted
    from evo.app.cli import main as evo

    name, *args = sys.argv[1:]
    reply = REPLIES[name]
    if reply is not None:
        hashed = workers.scripted.hashed_reply
        # label requests (a prompt scored by its answers' log-probabilities) keep the hash
        workers.scripted.hashed_reply = lambda r: hashed(r) if r.labels else reply(r)
    sys.argv = ["evo", *args]
    evo()


if __name__ == "__main__":
    main()
