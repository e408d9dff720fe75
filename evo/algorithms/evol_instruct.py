"""Evol-Instruct (Xu et al., WizardLM, ICLR 2024): evolve a data set of instructions, not a prompt.

pool ← seed instructions (the task's train inputs, or a file), each answered by the task model
for t = 1..M:
    for each instruction x in pool:
        op ← in-breadth with probability b (a new instruction in x's domain), else one of the
             in-depth operators at random (add constraints, deepen, concretize, more reasoning
             steps, complicate the input)
        x' ← meta-LLM(op's meta-prompt on x)
        eliminate x' if the call failed, nothing usable came back, it is too long, it copies the
             evolving prompt's wording, it is too short, it asks for nothing x did not (no
             information gain), or it is already in the data set
        else r ← task model(x'); eliminate x' if the model could not answer it
    every kept x' joins the data set with r, its parent x and op; it takes x's place in the pool
    (x stays where its evolution failed)
data set ← the seeds and every kept x' with their responses

Every attempt is recorded as a candidate of kind ``instruction`` (an eliminated one with its
reason in ``meta["eliminated"]``), so the per-round counts and the lineage come from the store.
The job's result is the data set (``result = "dataset"``): nothing is scored as a prompt.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

from pydantic import Field, ValidationInfo, field_validator

from evo.algorithms.base import Algorithm, Params, Resume
from evo.candidate import Candidate
from evo.engine import SEED, Engine, Sample
from evo.gather import gather
from evo.llm import Message
from evo.meta_prompt import MetaPrompt, words
from evo.operators import normalize
from evo.task import TaskError

DepthOperator = Literal[
    "add_constraints", "deepen", "concretize", "reasoning_steps", "complicate_input"
]
DEPTH_OPERATORS: tuple[str, ...] = get_args(DepthOperator)
BREADTH = "breadth"

# Why an evolution is dropped: a closed subset of ``evo.engine.Rejection``, counted like it.
Elimination = Literal[
    "call_failed",  # the evolving call, or the call for its response, failed
    "empty",  # nothing between the tags
    "too_long",  # longer than ``max_chars``
    "echoed_meta_prompt",  # copies the evolving prompt's own wording
    "too_short",  # fewer than ``min_words`` words
    "no_gain",  # asks for nothing its parent did not
    "duplicate",  # an instruction the data set has already
    "unanswerable",  # the task model refused it, or answered with no content word
]
ELIMINATIONS: tuple[str, ...] = get_args(Elimination)

DEPTH = """You make instructions harder, so that answering them well takes a more capable \
assistant. {method} The harder instruction must still make sense and be answerable by a person. \
Keep everything the original gives (tables, code, numbers), add at most {added_words} words, \
and do not speak of the original or of rewriting it.

Original: <instruction>{instruction}</instruction>

Reply with the harder instruction only, between <instruction> and </instruction>."""

ADD_CONSTRAINTS = "Add one more requirement or limit that the answer has to meet."
DEEPEN = "Ask about its subject in more depth: why and how, not only what."
CONCRETIZE = "Replace a general idea in it with a more specific one."
REASONING_STEPS = ("If a single step of thought answers it, ask explicitly for an answer that "
                   "needs several steps of reasoning.")
COMPLICATE_INPUT = ("Give it an input the answer has to work with, written out in full: a small "
                    "table, a short piece of code, a formula or some data.")

BREADTH_PROMPT = """You write new instructions for a collection that an assistant learns from. \
One instruction of the collection:

<instruction>{instruction}</instruction>

Write one new instruction in the same field but on a different, less common topic, about as long \
and as hard as this one. Do not speak of the instruction above. Reply with the new instruction \
only, between <instruction> and </instruction>."""

# The paper's own check of information gain asks a model whether two instructions are equal;
# here it is optional (``judge``), as a small model's verdict is little better than chance.
JUDGE = """Two instructions follow. Decide whether the second asks for anything that the first \
does not: a further requirement, more depth, a more specific subject, more steps of reasoning or \
an input to work with.

First: <instruction>{parent}</instruction>
Second: <instruction>{child}</instruction>

Does the second ask for the same as the first and nothing more? Answer yes or no."""

TAG = "instruction"
# The evolving prompts' own wording: an evolved instruction that uses it was not rewritten, it
# was copied from the request (whatever a user's templates say, these are never an instruction's).
MARKERS = ("original instruction", "harder instruction", "new instruction", "rewritten",
           "instruction above", "the original", "<instruction", "instruction>")
# Words that carry no request: an evolution made only of them (beyond its parent's words) has
# no information gain, and a response made only of them answers nothing.
_STOP = """
    a about above after again all also am an and any are as at be been before being below
    between both but by can could did do does doing down during each few for from further had
    has have having he her here hers him his how i if in into is it its itself just me more most
    my no nor not now of off on once only or other our ours out over own same she should so some
    such than that the their them then there these they this those through to too under until
    up very was we were what when where which while who whom why will with would you your
    yours please also make sure
"""
STOP_WORDS = frozenset(_STOP.split())
REFUSALS = ("sorry", "i cannot", "i can't", "i can not", "i am unable", "i'm unable",
            "as an ai", "i apologize", "i do not know", "i don't know")


class EvolInstructParams(Params):
    rounds: int = Field(4, ge=1, le=100, description="M, evolution rounds (the paper runs 4)")
    seeds: int | None = Field(
        None, ge=1, le=1_000_000,
        description="seed instructions drawn at random from the source (None: all of them)",
    )
    seed_column: str = Field("instruction", min_length=1, max_length=200,
                             description="the seed file's column of instructions")
    seed_file: str | None = Field(
        None, min_length=1, max_length=4096,
        description="seed instructions from a file: JSONL or CSV with the column `seed_column`, "
        "or text with one instruction a line (None: the task's train inputs)",
    )
    depth_operators: list[DepthOperator] = Field(
        default_factory=lambda: list(DEPTH_OPERATORS), min_length=1,
        description="in-depth evolutions to draw from",
    )
    breadth: float = Field(
        0.15, ge=0.0, lt=0.5,
        description="chance of evolving an instruction in breadth rather than in depth (rarer)",
    )
    added_words: int = Field(20, ge=1, le=200,
                             description="at most this many words added by an in-depth step")
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="meta-LLM sampling temperature")
    max_tokens: int = Field(200, ge=8, le=4096, description="room for an evolved instruction")
    max_chars: int = Field(4000, ge=20, le=100_000,
                           description="an evolved instruction longer than this is dropped")
    min_words: int = Field(3, ge=1, le=200,
                           description="an evolved instruction shorter than this is dropped")
    response_tokens: int = Field(256, ge=1, le=8192, description="room for a response")
    response_temperature: float = Field(0.0, ge=0.0, le=2.0,
                                        description="the task model's temperature")
    judge: bool = Field(
        False, description="also ask the meta-LLM whether an evolution asks for anything its "
        "parent did not (the paper's check; one more call an evolution); 'yes, the same' "
        "eliminates it as no_gain",
    )
    refusal_words: int = Field(
        80, ge=1, le=10_000,
        description="a response shorter than this that apologises or refuses is no answer",
    )

    @field_validator("seed_file")
    @classmethod
    def _readable(cls, path: str | None, info: ValidationInfo) -> str | None:
        if path is not None:
            column = info.data.get("seed_column", "instruction")
            read_instructions(Path(path), column)  # its errors name the file, line and column
        return path


class EvolInstruct(Algorithm):
    name = "evol-instruct"
    summary = ("Evol-Instruct: evolve a data set of instructions in depth and breadth, drop "
               "failed evolutions, answer the rest with the task model")
    params_model = EvolInstructParams
    result = "dataset"
    file_params = ("seed_file",)
    templates: ClassVar[Mapping[str, str]] = {
        "depth": DEPTH,
        "add_constraints": ADD_CONSTRAINTS,
        "deepen": DEEPEN,
        "concretize": CONCRETIZE,
        "reasoning_steps": REASONING_STEPS,
        "complicate_input": COMPLICATE_INPUT,
        "breadth": BREADTH_PROMPT,
        "judge": JUDGE,
    }
    params: EvolInstructParams

    async def run(self, engine: Engine, resume: Resume | None = None) -> None:
        if resume:
            start, state = resume[0] + 1, resume[1]
            pool, kept = engine.lookup(state["pool"]), engine.lookup(state["kept"])
            rounds: list[dict[str, Any]] = state["rounds"]
        else:
            start, rounds = 1, []
            texts = self.seed_texts(engine)
            answered = await gather(*(self.respond(engine, x) for x in texts))
            pool = [engine.candidate(x, operator=SEED, generation=0, kind="instruction",
                                     meta=self.outcome(engine, SEED, None, r))
                    for x, r in zip(texts, answered, strict=True)]
            engine.record(pool)
            kept = [c for c in pool if "eliminated" not in c.meta]
            rounds.append(self.summary_of(0, pool))
            await engine.generation_done(0, pool, self.state(pool, kept, rounds))

        for t in range(start, self.params.rounds + 1):
            ops = [self.draw(engine) for _ in pool]
            answers = await gather(*(self.evolve(engine, x, op)
                                     for x, op in zip(pool, ops, strict=True)))
            seen = {normalize(c.text) for c in kept}
            checked = [self.check(x, a, seen) for x, a in zip(pool, answers, strict=True)]
            if self.params.judge:
                checked = await self.judged(engine, pool, checked)
            texts = [text for text, reason in checked if reason is None]
            responses = iter(await gather(*(self.respond(engine, text) for text in texts)))
            made = [
                engine.candidate(
                    text, operator=op, generation=t, parents=[x], kind="instruction",
                    source=answer[1],
                    meta=self.outcome(engine, op, reason,
                                      next(responses) if reason is None else None),
                )
                for x, op, answer, (text, reason) in zip(pool, ops, answers, checked, strict=True)
            ]
            engine.record(made)
            kept += [c for c in made if "eliminated" not in c.meta]
            pool = [x if "eliminated" in c.meta else c for x, c in zip(pool, made, strict=True)]
            rounds.append(self.summary_of(t, made))
            await engine.generation_done(t, pool, self.state(pool, kept, rounds))

    # ---- the seeds ---------------------------------------------------------------------------

    def seed_texts(self, engine: Engine) -> list[str]:
        """The seed instructions, distinct, in source order; ``seeds`` of them drawn at random."""
        p = self.params
        if p.seed_file is not None:
            source = read_instructions(Path(p.seed_file), p.seed_column)
        else:
            source = [ex.input for ex in engine.task.split("train")]
        texts = list(dict.fromkeys(t.strip() for t in source if t.strip()))
        if p.seeds is not None and p.seeds < len(texts):
            picked = set(engine.rng.sample(range(len(texts)), p.seeds))
            texts = [t for i, t in enumerate(texts) if i in picked]
        if not texts:
            raise TaskError("evol-instruct found no seed instructions (the train split or the "
                            "seed file is empty)")
        return texts

    # ---- one evolution -----------------------------------------------------------------------

    def draw(self, engine: Engine) -> str:
        """In breadth with probability ``breadth``, else one in-depth operator at random."""
        if engine.rng.random() < self.params.breadth:
            return BREADTH
        return engine.rng.choice(self.params.depth_operators)

    def meta_prompt(self, op: str, instruction: str) -> MetaPrompt:
        if op == BREADTH:
            return self.meta("breadth", instruction=instruction)
        # the method's sentence is the template's own text (what an echo is told by), not a field
        depth = self.prompts["depth"].replace("{method}", self.prompts[op])
        return MetaPrompt(depth, {"instruction": instruction,
                                  "added_words": self.params.added_words})

    async def evolve(
        self, engine: Engine, x: Candidate, op: str
    ) -> tuple[MetaPrompt, Sample | None]:
        meta = self.meta_prompt(op, x.text)
        (answer,) = await engine.generate(
            meta.messages, temperature=self.params.temperature, max_tokens=self.params.max_tokens,
            prefill=f"<{TAG}>", stop=(f"</{TAG}>",), purpose=op,
        )
        return meta, answer

    def check(
        self, parent: Candidate, answer: tuple[MetaPrompt, Sample | None], seen: set[str]
    ) -> tuple[str, Elimination | None]:
        """(the evolved instruction, why it is eliminated or None); a kept one joins ``seen``."""
        meta, sample = answer
        if sample is None:
            return "", "call_failed"
        text = clean(sample.text)
        reason = eliminate_instruction(text, parent.text, meta, seen, self.params)
        if reason is None:
            seen.add(normalize(text))
        return text, reason

    async def judged(
        self, engine: Engine, pool: list[Candidate], checked: list[tuple[str, Elimination | None]]
    ) -> list[tuple[str, Elimination | None]]:
        """``checked`` with each evolution that passed so far judged against its parent."""
        asked = [(x, text) for x, (text, reason) in zip(pool, checked, strict=True)
                 if reason is None]
        verdicts = iter(await gather(*(self.judge(engine, x.text, text) for x, text in asked)))
        return [(text, reason or next(verdicts)) for text, reason in checked]

    async def judge(self, engine: Engine, parent: str, child: str) -> Elimination | None:
        """"no_gain" when the meta-LLM says ``child`` asks for the same as ``parent``; an
        answer that is neither yes nor no is no evidence of that."""
        (answer,) = await engine.generate(
            self.meta("judge", parent=parent, child=child).messages, temperature=0.0,
            max_tokens=3, purpose="judge",
        )
        if answer is None:
            return "call_failed"
        return "no_gain" if words(answer.text)[:1] == ["yes"] else None

    async def respond(self, engine: Engine, instruction: str) -> Sample | None:
        (answer,) = await engine.generate(
            [Message("user", instruction)], temperature=self.params.response_temperature,
            max_tokens=self.params.response_tokens, purpose="respond", model="task",
        )
        return answer

    def outcome(
        self, engine: Engine, op: str, reason: Elimination | None, response: Sample | None
    ) -> dict[str, Any]:
        """An attempt's meta: its response, or why it is eliminated (counted as a rejection):
        ``reason`` found before it was answered, or else the answer's own."""
        extra: dict[str, Any] = {}
        if reason is None:
            if response is None:
                reason = "call_failed"
            elif unanswerable(text := response.text.strip(), self.params.refusal_words):
                reason, extra = "unanswerable", {"response": text}
            else:
                return {"response": text}
        engine.reject(op, reason)
        return {"eliminated": reason, **extra}

    # ---- the record --------------------------------------------------------------------------

    @staticmethod
    def summary_of(t: int, made: list[Candidate]) -> dict[str, Any]:
        """Round ``t``: items kept, and eliminated by reason."""
        reasons = Counter(c.meta["eliminated"] for c in made if "eliminated" in c.meta)
        return {"round": t, "kept": len(made) - sum(reasons.values()),
                "eliminated": dict(sorted(reasons.items()))}

    @staticmethod
    def state(pool: list[Candidate], kept: list[Candidate], rounds: list[dict]) -> dict[str, Any]:
        return {"pool": [c.id for c in pool], "kept": [c.id for c in kept], "rounds": rounds}


_TAGS = re.compile(r"</?\s*instruction\s*>", re.I)


def clean(raw: str) -> str:
    """What the model wrote before the closing tag, without tags or quotes around it. Line
    breaks inside are kept: an instruction may hold a table or code."""
    text = _TAGS.sub("\n", raw.split(f"</{TAG}>", 1)[0]).strip()
    return text.strip("\"'`").strip()


def content_words(text: str) -> set[str]:
    return {w for w in words(text) if w not in STOP_WORDS}


def eliminate_instruction(
    text: str, parent: str, meta: MetaPrompt, seen: set[str], p: EvolInstructParams
) -> Elimination | None:
    """Why an evolved instruction is dropped before it is answered (None: it is not)."""
    if not text:
        return "empty"
    if len(text) > p.max_chars:
        return "too_long"
    lowered = normalize(text)
    if any(marker in lowered for marker in MARKERS) or meta.echo(text):
        return "echoed_meta_prompt"
    if len(words(text)) < p.min_words:
        return "too_short"
    if not content_words(text) - content_words(parent):
        return "no_gain"
    if lowered in seen:
        return "duplicate"
    return None


def unanswerable(response: str, refusal_words: int) -> bool:
    """The model could not answer: a short apology or refusal, or no content word at all."""
    if not content_words(response):
        return True
    lowered = normalize(response).replace("’", "'")
    return len(words(response)) < refusal_words and any(r in lowered for r in REFUSALS)


def read_instructions(path: Path, column: str) -> list[str]:
    """Seed instructions from a JSONL or CSV file (the ``column`` of each row) or a text file
    (one a line); ``TaskError`` names the file, the line and the column when one is wrong."""
    from evo.loaders import read_csv, read_jsonl

    if not path.is_file():
        raise TaskError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".txt", ".text", ""):
        try:
            return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
                    if line.strip()]
        except UnicodeDecodeError as exc:
            raise TaskError(f"{path}: not UTF-8 text (byte {exc.start + 1})") from None
    if suffix in (".jsonl", ".ndjson"):
        rows = read_jsonl(path)
    elif suffix in (".csv", ".tsv"):
        rows = read_csv(path, [column])
    else:
        raise TaskError(f"{path}: a seed file is .jsonl, .csv, .tsv or .txt, not {suffix!r}")
    out = []
    for row in rows:
        value = row.values.get(column)
        if not isinstance(value, str):
            found = ", ".join(sorted(row.values)) or "none"
            raise TaskError(f"{row.where}: no text in column {column!r} (columns: {found})")
        out.append(value)
    if not any(t.strip() for t in out):
        raise TaskError(f"{path}: no instructions in it")
    return out
