"""The warning a search earns when its first candidates all score the same: with no spread
between them, selection is a coin toss and the job would spend its budget to no end.

The driver checks once, after generation 1 (the seeds and their first children), and says which
causes it can see in what it scored; the rest are named as possibilities.
"""

from __future__ import annotations

from collections.abc import Iterable

from evo.candidate import Score
from evo.programs import ProgramTask
from evo.spec import JobSpec
from evo.task import Task
from workers.answers import Answers

CODE = "no_spread"
SMALL = 30  # examples (or instances) per score below which one answer moves it by over 3%
MOST = 0.5  # a cause is named when it holds for more than this share of the answers
SAME_LABEL = 0.9  # ... and one label is "what every answer was" above this share


def no_spread(
    spec: JobSpec,
    task: Task | ProgramTask,
    scores: Iterable[Score],
    answers: Answers,
    failed_runs: int = 0,
) -> str | None:
    """The warning's message if at least two candidates are scored and all have the same search
    score; None when they differ. ``failed_runs``: programs that could not be scored at all."""
    scores = list(scores)
    values = {round(s.value, 9) for s in scores}
    if len(scores) < 2 or len(values) > 1:
        return None
    value = scores[0].value
    n = max(s.n for s in scores)
    if isinstance(task, ProgramTask):
        head = (f"All {len(scores)} programs scored so far (the seeds and generation 1) have "
                f"the same fitness, {value:.6g} on {n} instances: the search cannot tell them "
                "apart.")
        causes = _program_causes(n, failed_runs)
    else:
        split = scores[0].split
        head = (f"All {len(scores)} prompts scored so far (the seeds and generation 1) have "
                f"the same score, {value:.3g} on {n} {split} examples: the search cannot tell "
                "them apart.")
        # a subset's tag is its size; "all..." is the whole split, raced
        subset = any(s.subset is not None and not s.subset.startswith("all") for s in scores)
        causes = _answer_causes(spec, task, n, split if not subset else None, answers)
    return f"{head} Likely causes: {'; '.join(causes)}."


def _answer_causes(
    spec: JobSpec, task: Task, n: int, whole: str | None, answers: Answers
) -> list[str]:
    """``whole``: the split, when the prompts were scored on all of it (not a subset)."""
    causes = []
    total = answers.total
    if total and answers.errors > MOST * total:
        causes.append(f"{answers.errors} of {total} task calls failed (see the job's calls)")
    answered = total - answers.errors
    if task.labels:
        words = ", ".join(repr(task.verbalizers[label]) for label in task.labels)
        if answered and answers.unparsed > MOST * answered:
            causes.append(f"{answers.unparsed} of {answered} answers named no label: the model "
                          f"never produced the verbalizers ({words})")
        read = sum(answers.labels.values())
        if read:
            label, count = answers.labels.most_common(1)[0]
            if count > SAME_LABEL * read:
                causes.append(f"{count} of {read} answers were the label {label!r} whatever the "
                              f"prompt: the model may not take the verbalizers ({words}) for "
                              "answers to this task")
        if not spec.evaluation.label_scoring:
            causes.append("label scoring is off (evaluation.label_scoring: false): labels are "
                          "parsed from generated text, which a small model rarely words as asked")
    elif answered and answers.unparsed > MOST * answered:
        causes.append(f"{answers.unparsed} of {answered} answers could not be parsed by the "
                      f"metric ({task.metric.name})")
    if n < SMALL and whole:
        causes.append(f"the {whole} split holds only {n} examples, too few for prompts to "
                      "differ: add examples")
    elif n < SMALL:
        causes.append(f"each prompt was scored on a subset of only {n} examples, too few for "
                      "prompts to differ: raise the algorithm's subset size")
    if not causes:
        causes.append("the prompts may be too alike, or the task too hard or too easy for "
                      "the task model")
    return causes


def _program_causes(n: int, failed_runs: int) -> list[str]:
    causes = []
    if failed_runs:
        causes.append(f"{failed_runs} programs failed to run and were left out")
    if n < SMALL:
        causes.append(f"only {n} instances, too few for programs to differ")
    causes.append("the programs may compute the same thing (children copying their parents), "
                  "or the fitness may not reward what they change")
    return causes
