"""Applying a job's prompt to new inputs: ``evo predict``, ``POST /jobs/{id}/predict`` and
``result.best.predict`` from Python.

Each input is asked exactly as the job asked its examples: ``Task.request`` with the job's
template, system message and label scoring (a soft prompt as a soft prompt), and the answer is
read by the rule that scored it (``Task.score``), so a label task answers the label the job would
have counted and a generative task the model's text. The task model's client is built from the
job's spec by the factory its workers use (``workers.llm.make_client``): the local model in this
process, or the OpenAI-compatible endpoint the spec names, its key read from the environment
variable the spec names (a key given inline was never stored, so it cannot be used again).

    predictor = Predictor.of_job(job)                  # the job's task and model
    candidate = pick_candidate(store, job, ref)        # the best on full dev, or ``ref``
    for each batch of inputs:
        requests = [task.request(candidate, input) for input in batch]
        answers  = client.call_batch(requests)
        outputs += [read(answer) for answer in answers]  # label / text, or why there is none

These calls are not the job's: they are neither recorded with it nor counted in its budget, and
no cache answers them.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from evo.app.export import NoBestPrompt, best_on_dev
from evo.app.settings import Settings
from evo.candidate import Candidate
from evo.llm import LLMClient, LLMRequest, LLMResponse
from evo.programs import ProgramTask
from evo.spec import JobSpec
from evo.task import Example, Task, TaskError, load_task
from storage.jobs import MIN_PREFIX
from workers.pool import LocalWorker
from workers.scoring import soft_prompt_of

__all__ = ["AmbiguousCandidate", "CandidateNotFound", "CannotPredict", "NoBestPrompt",
           "Prediction", "PredictionError", "Predictor", "pick_candidate"]

APPLICABLE = ("prompt", "soft_prompt")  # the kinds of candidate a task's template takes


class CannotPredict(ValueError):
    """The job or candidate cannot be applied to inputs (a program, a task that will not load);
    the message says why."""


class CandidateNotFound(LookupError):
    """No candidate of the job has this id (or unique prefix of one)."""


class AmbiguousCandidate(CannotPredict):
    """A prefix that more than one of the job's candidate ids starts with."""


class PredictionError(RuntimeError):
    """Some inputs got no output (from Python); ``predictions`` holds every row, failed or not."""

    def __init__(self, predictions: Sequence[Prediction]) -> None:
        self.predictions = list(predictions)
        failed = [(i, p) for i, p in enumerate(self.predictions) if p.error is not None]
        i, first = failed[0]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        super().__init__(f"no output for input {i + 1}: {first.error}{more}")


@dataclass(frozen=True)
class Prediction:
    """One input's result: the output (a label for a label task, else the model's text), or
    None with the reason in ``error``."""

    input: str
    output: str | None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {"input": self.input, "output": self.output}
        if self.error is not None:
            row["error"] = self.error
        return row


def pick_candidate(store: Any, job: Any, ref: str | None = None) -> Candidate:
    """The job's best candidate on the full dev split (its winner, as ``evo export`` picks it),
    or the one whose id is ``ref`` or starts with it (at least ``MIN_PREFIX`` characters). Raises
    ``NoBestPrompt`` (no best yet), ``CandidateNotFound`` or ``CannotPredict`` (ambiguous)."""
    if ref is None:
        board = best_on_dev(store, job, 1)
        if not board:
            raise NoBestPrompt(job.id, job.status)
        return board[0][0]
    ref = ref.strip()
    candidates = store.candidates(job.id)
    found = [c for c in candidates if c.id == ref]
    if not found and len(ref) >= MIN_PREFIX:
        found = [c for c in candidates if c.id.startswith(ref)]
    if not found:
        short = (f" (an id may be shortened to a prefix of at least {MIN_PREFIX} characters)"
                 if len(ref) < MIN_PREFIX else "")
        raise CandidateNotFound(f"job {job.id[:8]} has no candidate {ref!r}{short}")
    if len(found) > 1:
        shown = ", ".join(c.id for c in found[:5]) + (", ..." if len(found) > 5 else "")
        raise AmbiguousCandidate(f"candidate id prefix {ref!r} is ambiguous: it matches "
                                 f"{len(found)} candidates ({shown})")
    return found[0]


class Predictor:
    """A job's task and task model, ready to apply any of its candidates to new inputs.

    ``client`` is a ready client (it stays the caller's); without one the spec's task model is
    built on first use and closed by ``close``."""

    def __init__(
        self,
        spec: JobSpec,
        task: Task | ProgramTask,
        *,
        client: LLMClient | None = None,
        settings: Settings | None = None,
        job_id: str | None = None,
    ) -> None:
        self.spec, self.task, self.settings = spec, task, settings
        self.job_id = job_id
        self._client = client
        self._own = client is None
        self._calibrations: dict[str, dict[str, float]] = {}
        # one event loop for every blocking call: an endpoint client's connections and its
        # limit on calls in flight belong to the loop they were first used in
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def of_job(cls, job: Any, settings: Settings | None = None) -> Predictor:
        """From a stored job: its spec as stored, and its task loaded from that spec."""
        from evo.spec_io import SpecError, parse_spec

        where = f"job {job.id[:8]}"
        try:
            spec = parse_spec(job.spec or {})
        except SpecError as exc:
            raise CannotPredict(f"{where}: its stored spec no longer reads: {exc}") from None
        try:
            task = load_task(spec.task, base_dir=spec._base_dir)
        except (TaskError, OSError) as exc:
            raise CannotPredict(f"{where}: its task does not load, so its template and labels "
                                f"are unknown: {exc}") from None
        return cls(spec, task, settings=settings, job_id=job.id)

    # -- the model ---------------------------------------------------------------------------

    @property
    def client(self) -> LLMClient:
        if self._client is None:
            model = self.spec.models.task
            if model.provider == "scripted":  # as the job's pools make it, without importing
                from workers.scripted import ScriptedClient  # the endpoint clients

                self._client = ScriptedClient()
            else:
                from workers.llm import make_client

                self._client = make_client(model, self.settings)
        return self._client

    def close(self) -> None:
        client, self._client = self._client, None
        loop, self._loop = self._loop, None
        if self._own and client is not None:
            aclose = getattr(client, "aclose", None)
            if loop is not None and aclose is not None:
                loop.run_until_complete(aclose())  # its connections, in their own loop
            else:
                client.close()
        if loop is not None:
            loop.close()

    def __del__(self) -> None:
        # one bound to a result (``result.best.predict``) is seldom closed by hand
        loop = self.__dict__.get("_loop")
        try:
            self.close()
        except Exception:  # collected while another loop runs here: free what can be freed
            if loop is not None and not loop.is_running():
                loop.close()

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- predicting --------------------------------------------------------------------------

    def check(self, candidate: Candidate) -> Task:
        """The task, when ``candidate`` can be applied to inputs; else ``CannotPredict``."""
        task = self.task
        if isinstance(task, ProgramTask) or candidate.kind == "program":
            raise CannotPredict(
                f"candidate {candidate.id[:8]} is a program, not a prompt: it is run on problem "
                "instances, not applied to inputs (`evo export` gives its code)")
        if candidate.kind not in APPLICABLE:
            raise CannotPredict(f"candidate {candidate.id[:8]} is of kind {candidate.kind!r}, "
                                "not a prompt the task's template takes")
        if candidate.kind == "soft_prompt" and self.spec.models.task.provider == "openai":
            raise CannotPredict(f"candidate {candidate.id[:8]} is a soft prompt: it needs the "
                                "local runtime, not an OpenAI-compatible endpoint")
        return task

    def predict(
        self,
        candidate: Candidate,
        inputs: Sequence[str],
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Prediction]:
        """Blocking ``apredict`` (not from inside a running event loop)."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(self.apredict(candidate, inputs, progress))

    async def apredict(
        self,
        candidate: Candidate,
        inputs: Sequence[str],
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Prediction]:
        """One ``Prediction`` per input, in order; ``progress(done, total)`` after each batch."""
        task = self.check(candidate)
        soft = soft_prompt_of(candidate)
        label = self.spec.evaluation.label_scoring and bool(task.labels)
        calibration = await self._calibration(task, candidate) if (
            label and self.spec.evaluation.calibrate) else None
        worker = LocalWorker(self.client)
        # a local model decodes a batch side by side; an endpoint takes as many in flight as
        # the spec allows
        size = max(self.spec.evaluation.batch_size, self.spec.models.task.concurrency)
        out: list[Prediction] = []
        for start in range(0, len(inputs), size):
            chunk = inputs[start : start + size]
            examples = [Example(f"input-{start + i}", text, "") for i, text in enumerate(chunk)]
            requests = [self._moded(task.request(candidate.text, ex, label_scoring=label,
                                                 soft=soft)) for ex in examples]
            answers = await worker.call_batch(requests)
            out += [read(task, ex, a, calibration) for ex, a in zip(examples, answers, strict=True)]
            if progress is not None:
                progress(len(out), len(inputs))
        return out

    def outputs(self, candidate: Candidate, inputs: str | Sequence[str]) -> str | list[str]:
        """From Python: one input gives its output, a list of inputs the list of outputs.
        Raises ``PredictionError`` (with every row) when an input got none."""
        one = isinstance(inputs, str)
        found = self.predict(candidate, [inputs] if one else list(inputs))
        if any(p.output is None for p in found):
            raise PredictionError(found)
        texts = [p.output or "" for p in found]
        return texts[0] if one else texts

    def _moded(self, request: LLMRequest) -> LLMRequest:
        """In the task model's mode (``models.task.mode``), as ``Scorer._moded`` asks it."""
        mode = self.spec.models.task.mode
        return request if mode == "chat" else dataclasses.replace(request, mode=mode)

    async def _calibration(self, task: Task, candidate: Candidate) -> dict[str, float] | None:
        """The content-free label scores the job divided by when it calibrated (docs/algorithms.md);
        asked once per candidate. A failed call: none, as in scoring."""
        if candidate.id not in self._calibrations:
            request = self._moded(task.content_free_request(candidate.text,
                                                            soft_prompt_of(candidate)))
            (answer,) = await LocalWorker(self.client).call_batch([request])
            if answer.error is not None or not answer.label_logprobs:
                return None
            self._calibrations[candidate.id] = dict(answer.label_logprobs)
        return self._calibrations[candidate.id]


def bind(result: Any, predictor: Predictor) -> Any:
    """A ``JobResult`` whose leaderboard entries (and the result itself) predict with
    ``predictor``: ``result.best.predict(x)``, ``result.predict(x, candidate=...)``."""
    result.predictor = predictor
    result.leaderboard = [replace(e, predictor=predictor) for e in result.leaderboard]
    if result.seed is not None:
        result.seed = replace(result.seed, predictor=predictor)
    return result


def read(
    task: Task, example: Example, response: LLMResponse,
    calibration: dict[str, float] | None = None,
) -> Prediction:
    """The answer as the job read it: for a label task the label ``Task.score`` picks (from
    label scores, or parsed from generated text), for a generative task the model's text."""
    if response.error:
        return Prediction(example.input, None, f"call failed: {response.error}")
    if not task.labels:
        return Prediction(example.input, response.text.strip())
    result = task.score(example, response, calibration)
    if result.failure == "unparsed":
        return Prediction(example.input, None,
                          f"unparsed: the answer names none of the labels ({result.prediction!r})")
    if response.label_logprobs is not None:
        return Prediction(example.input, result.prediction)
    parse = getattr(task.metric, "parse", None)  # generated text: the label it names
    label = parse(result.prediction) if parse is not None else result.prediction
    return Prediction(example.input, label)
