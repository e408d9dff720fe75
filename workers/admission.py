"""What can be known about a job before it runs, checked before it is queued or started.

A job that cannot run must be refused when it is submitted, naming the field, rather than fail
after money is spent or wait for ever: a budget that cannot pay for the final scoring, a sample
larger than the split it is drawn from, a context longer than the model was trained for, model
workers the cluster cannot hold.
"""

from __future__ import annotations

from typing import Any

from evo.programs import ProgramTask
from evo.spec import JobSpec, ModelSpec
from evo.spec_io import FieldError, SpecError
from evo.task import Task
from workers import capacity as cap


def check_job(
    spec: JobSpec, task: Task | ProgramTask, *, capacity: cap.Capacity | None = None
) -> None:
    """Raise ``SpecError`` naming every field that stops the job from running here (the
    cluster's fit is checked only when its ``capacity`` is known)."""
    errors = [*budget_problems(spec, task), *sample_problems(spec, task),
              *context_problems(spec)]
    if capacity is not None:
        errors += [FieldError(loc, why) for loc, why in cap.problems(spec, capacity)]
    if errors:
        raise SpecError(errors)


def budget_problems(spec: JobSpec, task: Task | ProgramTask) -> list[FieldError]:
    """A call budget that cannot even pay for the final scoring."""
    from workers.final import final_reserve, seed_count

    calls, reserve = spec.budget.calls, final_reserve(spec, task)
    if calls is None or calls > reserve or isinstance(task, ProgramTask):
        return []
    return [
        FieldError(
            ("budget", "calls"),
            f"{calls} calls cannot pay for the search: the final scoring alone reserves "
            f"{reserve} (top_k={spec.evaluation.top_k} candidates and "
            f"{seed_count(task)} seed prompts on "
            f"{len(task.split('dev'))} dev examples"
            f"{', 2 prompts on test' if spec.evaluation.test else ''}); raise "
            "budget.calls or lower evaluation.top_k",
        )
    ]


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
    roles = [("task", spec.models.task)]
    if spec.models.meta is not None:
        roles.append(("meta", spec.models.meta))
    return [(role, m) for role, m in roles if m.provider == "local"]
