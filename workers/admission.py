"""What can be known about a job before it runs, checked before it is queued or started.

A job that cannot run must be refused when it is submitted, naming the field, rather than fail
after money is spent or wait for ever: a budget that cannot pay for the final scoring, a sample
larger than the split it is drawn from, a context longer than the model was trained for, model
workers the cluster cannot hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evo.programs import ProgramTask
from evo.spec import JobSpec, ModelSpec
from evo.spec_io import FieldError, SpecError
from evo.strategies import MOST_CALLS, usable
from evo.task import Task
from workers import capacity as cap

if TYPE_CHECKING:
    from workers.final import Reserve


def check_job(
    spec: JobSpec, task: Task | ProgramTask, *, capacity: cap.Capacity | None = None
) -> None:
    """Raise ``SpecError`` naming every field that stops the job from running here (the
    cluster's fit is checked only when its ``capacity`` is known)."""
    errors = [*budget_problems(spec, task), *money_problems(spec, task),
              *sample_problems(spec, task), *judge_problems(spec, task),
              *context_problems(spec), *strategy_problems(spec, task)]
    if capacity is not None:
        errors += [FieldError(loc, why) for loc, why in cap.problems(spec, capacity)]
    if errors:
        raise SpecError(errors)


def strategy_problems(spec: JobSpec, task: Task | ProgramTask) -> list[FieldError]:
    """An evaluation strategy that cannot answer the task's examples: a program is run, not
    asked; a label-scored answer leaves no text to reason in (``evo.strategies.usable``)."""
    strategy = spec.evaluation.strategy
    if strategy == "direct":
        return []
    if isinstance(task, ProgramTask):
        return [FieldError(("evaluation", "strategy"), f"evaluation.strategy {strategy!r} "
                           "answers examples with chains of model calls, but this task scores "
                           "programs by running them; leave it at 'direct'")]
    why = usable(task, strategy, label_scoring=spec.evaluation.label_scoring)
    return [FieldError(("evaluation", "strategy"), why)] if why else []


def judge_problems(spec: JobSpec, task: Task | ProgramTask) -> list[FieldError]:
    """A judge that cannot grade: none configured for a judged task that needs one, or one
    configured for a task that has no use for it."""
    judged = isinstance(task, Task) and task.judged
    if spec.models.judge is not None and not judged:
        return [FieldError(("models", "judge"), "a judge model is configured, but the task's "
                           "metric is not 'judge'; remove models.judge or set task.metric")]
    if not judged:
        return []
    judge = spec.models.grader
    where = ("models", "judge") if spec.models.judge is not None else ("models", "task")
    if judge.mode != "chat":
        return [FieldError(("models", "judge"), "metric 'judge' needs a judge model in chat "
                           f"mode, and models.{where[1]} runs in {judge.mode!r} mode (a base "
                           "model does not follow a rubric): configure models.judge")]
    if judge.provider == "openai" and not judge.model:
        return [FieldError((*where, "model"), "the judge model is not configured: name the "
                           "model its OpenAI-compatible endpoint serves")]
    return []


def budget_problems(spec: JobSpec, task: Task | ProgramTask) -> list[FieldError]:
    """A call budget that cannot even pay for the final scoring, with its parts, the biggest
    first, and the setting that shrinks the biggest one."""
    from workers.final import reserve_of  # deferred, as the scoring it imports is heavy

    calls, reserve = spec.budget.calls, reserve_of(spec, task)
    if calls is None or calls > reserve.total or isinstance(task, ProgramTask):
        return []
    ev, dev = spec.evaluation, len(task.split("dev"))
    each = f"{dev} dev examples"
    if ev.strategy != "direct":  # each example a chain of calls (evo/strategies.py)
        each += f" x {MOST_CALLS[ev.strategy]} calls"
    parts = [
        (reserve.seeds, f"{reserve.seed_prompts} seed prompts x {each}: "
                        f"{reserve.seeds}"),
        (reserve.candidates, f"top_k={ev.top_k} candidates x {each}: "
                             f"{reserve.candidates}"),
    ]
    if reserve.test:
        parts.append((reserve.test, f"2 prompts on test: {reserve.test}"))
    parts.sort(key=lambda p: -p[0])  # stable: seeds first on a tie
    return [FieldError(
        ("budget", "calls"),
        f"{calls} calls cannot pay for the search: the final scoring alone reserves "
        f"{reserve.total} ({'; '.join(text for _, text in parts)}); raise budget.calls"
        + _cheaper_final(spec, task, calls, reserve),
    )]


def money_problems(spec: JobSpec, task: Task | ProgramTask) -> list[FieldError]:
    """A money budget that cannot be held: a model without a price, a chain of calls whose later
    prompts carry what the model writes (no bound before the search), or a budget smaller than
    the most the final scoring can cost."""
    from workers.final import call_bound, final_reserve, prompt_bound, usd_reserve

    usd = spec.budget.usd
    if usd is None:
        return []
    out = [FieldError(("models", role, "price"), f"budget.usd is set, but models.{role} has no "
                      "price: give its USD per million input and output tokens")
           for role, model in _priced_models(spec) if model.price is None]
    if out:
        return out
    if spec.evaluation.strategy != "direct" and not isinstance(task, ProgramTask):
        return [FieldError(("budget", "usd"), "a money budget needs evaluation.strategy 'direct': "
                           f"the later calls of {spec.evaluation.strategy!r} carry text the "
                           "model writes, so their cost has no bound before they are made")]
    if isinstance(task, Task) and task.judged:
        return [FieldError(("budget", "usd"), "a money budget cannot hold metric 'judge': the "
                           "judge's prompts carry the answers it grades, so their cost has no "
                           "bound before the answers are written; use budget.calls or "
                           "budget.tokens")]
    need = usd_reserve(spec, task)
    if need < usd:
        return []
    assert isinstance(task, Task)  # a program task reserves nothing
    calls = final_reserve(spec, task)
    return [FieldError(("budget", "usd"), f"{usd:g} USD cannot pay for the search: the final "
                       f"scoring alone reserves {need:.6g} USD ({calls} calls x at most "
                       f"{call_bound(spec, task):.6g} USD each, for prompts of up to "
                       f"{prompt_bound(spec, task)} tokens); raise budget.usd")]


def _priced_models(spec: JobSpec) -> list[tuple[str, ModelSpec]]:
    """The models a job pays for, by their role (the meta-LLM and the judge are the task model
    without one of their own)."""
    return spec.models.roles()


def _cheaper_final(spec: JobSpec, task: Task, calls: int, reserve: Reserve) -> str:
    """The setting that shrinks the reserve's biggest part: fewer seed prompts re-scored when
    they cost more than the candidates (the most that leave half the budget to the search, or
    one), else a smaller top_k."""
    if reserve.seeds > reserve.candidates and reserve.seed_prompts > 1:
        costs = {n: _reserve_with(spec, task, n) for n in range(1, reserve.seed_prompts)}
        n = max((n for n, cost in costs.items() if cost <= calls // 2), default=1)
        return (", or re-score only the seed prompts with the best search scores: "
                f"evaluation.final_seeds={n} reserves {costs[n]}")
    if spec.evaluation.top_k > 1:
        return " or lower evaluation.top_k"
    return ""


def _reserve_with(spec: JobSpec, task: Task, final_seeds: int) -> int:
    from workers.final import final_reserve

    evaluation = spec.evaluation.model_copy(update={"final_seeds": final_seeds})
    return final_reserve(spec.model_copy(update={"evaluation": evaluation}), task)


# a sample parameter of an algorithm, and the split it is drawn from (a parameter, or a name)
_SAMPLES = (("dev_subset", "dev"), ("train_subset", "split"))


def sample_problems(spec: JobSpec, task: Task | ProgramTask) -> list[FieldError]:
    """A fixed sample larger than the split it is drawn from."""
    if isinstance(task, ProgramTask):
        return []
    params: dict[str, Any] = spec.algorithm.params
    out = []
    for name, split_from in _SAMPLES:
        size = params.get(name)
        if not isinstance(size, int):
            continue
        split = params.get(split_from, "train") if split_from == "split" else split_from
        try:
            have = len(task.split(split))
        except (KeyError, ValueError):
            continue  # an unknown split is the algorithm's own error to report
        if size > have:
            out.append(FieldError(("algorithm", name), f"{size} is more than the {have} "
                                  f"examples of the task's {split} split"))
    return out


def context_problems(spec: JobSpec) -> list[FieldError]:
    """A local model asked for a longer context than it was trained with."""
    from workers.llm_local import training_context

    out = []
    for role, model in _local_models(spec):
        trained = training_context(model.model)
        if trained is not None and model.n_ctx > trained:
            out.append(FieldError(("models", role, "n_ctx"), f"{model.n_ctx} is more than the "
                                  f"{trained} tokens the model was trained with"))
    return out


def _local_models(spec: JobSpec) -> list[tuple[str, ModelSpec]]:
    return [(role, m) for role, m in spec.models.roles() if m.provider == "local"]
