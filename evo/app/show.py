"""What ``evo show`` prints of a job, and the leaderboard ``evo run`` prints at its end."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from evo.app.dataset import DataSet, dataset_of, is_dataset_algorithm
from evo.app.export import best_on_dev
from evo.app.tables import BoardRow, ByWidth, board, fmt, table_width


def versus_seed(stats: dict[str, Any]) -> str | None:
    """The paired test of the winner against the best seed on test, as a sentence, and any
    warning of a label bias."""
    found = stats.get("vs_seed")
    lines = [f"Winner on test: {found['sentence']}."] if found else []
    lines += [f"Warning: {w}." for w in (stats.get("label_bias") or {}).get("warnings", [])]
    return "\n".join(lines) or None


def label_scoring(stats: dict[str, Any]) -> str | None:
    """How the answers' labels were read, e.g. "labels read from log-probabilities for 1,990 of
    1,990 answers"; None where the job did not count them (program tasks, older jobs)."""
    counts = stats.get("label_scoring")
    if not counts:
        return None
    logprobs, parsed = int(counts.get("logprobs", 0)), int(counts.get("parsed", 0))
    total = logprobs + parsed
    if total == 0:
        return None
    if parsed == 0:
        return f"labels read from log-probabilities for {logprobs:,} of {total:,} answers"
    if logprobs == 0:
        return f"labels parsed from the generated text for {parsed:,} of {total:,} answers"
    return (f"labels read from log-probabilities for {logprobs:,} of {total:,} answers, parsed "
            f"from the generated text for {parsed:,}")


def judged(stats: dict[str, Any]) -> str | None:
    """What the judge made of the answers (metric judge), e.g. "judge: 1,200 answers scored,
    3 verdicts unreadable, 0 failed calls"; None for other metrics."""
    counts = stats.get("judge")
    if not counts:
        return None
    return (f"judge: {counts.get('judged', 0):,} answers scored, "
            f"{counts.get('unparsable', 0):,} verdicts unreadable, "
            f"{counts.get('errors', 0):,} failed calls")


def leaderboard_table(result: Any) -> ByWidth:
    """The final leaderboard of a finished run, with the best seed below it (dimmed)."""
    rows = [BoardRow(str(i), e.dev, e.dev_n, e.candidate.generation, e.candidate.operator,
                     e.candidate.text, e.test)
            for i, e in enumerate(result.leaderboard, 1)]
    if result.seed is not None:
        e = result.seed
        rows.append(BoardRow("seed", e.dev, e.dev_n, e.candidate.generation, "seed",
                             e.candidate.text, e.test, style="dim"))
    return board(rows, title=f"Leaderboard — job {result.job_id[:8]}",
                 caption=versus_seed(result.stats))


def spend(stats: dict[str, Any]) -> str:
    """What the job's calls cost, by the models' prices (nothing when none was given)."""
    usd = stats.get("usd")
    return f" · ${usd:,.4f}" if usd else ""


def show_job(console: Console, store: Any, job: Any) -> None:
    stats = job.stats or {}
    # the status in brackets is text, not rich markup
    console.print(f"[bold]{escape(job.name)}[/]  {job.id}  " + escape(f"[{job.status}]")
                  + (f"  — {escape(job.reason)}" if job.reason else ""), highlight=False)
    console.print(f"task {job.task} · algorithm {job.algorithm} · seed {job.seed} · calls "
                  f"{stats.get('calls', 0):,} (+{stats.get('cached', 0):,} cached) · tokens "
                  f"{stats.get('tokens', 0):,}{spend(stats)} · {stats.get('elapsed_s', 0)} s",
                  highlight=False, markup=False)
    for line in (label_scoring(stats), judged(stats)):
        if line:
            console.print(line, highlight=False, markup=False)
    for _, warning in store.events(job.id, kind="SearchWarning"):
        console.print(f"warning: {warning.get('message', warning.get('code', ''))}",
                      style="yellow", highlight=False, markup=False)
    if is_dataset_algorithm(job.algorithm):  # its result is a data set, not a best prompt
        data = dataset_of(store.candidates(job.id))
        console.print(rounds_table(data))
        console.print(f"{len(data.items)} items; export them with evo export {job.id[:8]} "
                      "--format jsonl (or --format hf -o FOLDER)", highlight=False, markup=False)
        return
    console.print(generations_table(store, job))
    rows = [BoardRow(str(i), ev.value, ev.n, cand.generation, cand.operator, cand.text)
            for i, (cand, ev) in enumerate(best_on_dev(store, job, 5), 1)]
    if rows:
        console.print(board(rows, title="Best on full dev", with_test=False))
    else:
        console.print("no prompt scored on the full dev split yet (the final scoring does that)",
                      highlight=False)
    if stats.get("best_test") is not None:
        console.print(f"winner test score {stats['best_test']:.3f}"
                      + (f" · seed test score {stats['seed_test']:.3f}"
                         if stats.get("seed_test") is not None else ""), highlight=False)
    if line := versus_seed(stats):
        console.print(line, highlight=False, markup=False)
    if stats.get("pareto"):
        console.print(pareto_table(stats["pareto"]))


def pareto_table(front: list[dict[str, Any]]) -> Table:
    """The finalists no other beats on both the score and the cost per use."""
    name = "prompt_tokens" if "prompt_tokens" in front[0] else "cost_per_call"
    table = Table("dev", name.replace("_", " "), "candidate", "prompt",
                  title="Pareto front (score against cost per use)")
    for p in front:
        cost = p[name]
        table.add_row(f"{p['score']:.3f}", f"{cost:.3g}" if isinstance(cost, float) else str(cost),
                      p["candidate_id"][:8], " ".join(p["text"].split())[:60])
    return table


def rounds_table(data: DataSet) -> Table:
    """A data-set job per round: the items kept, the evolutions eliminated and why."""
    table = Table("round", "kept", "eliminated", "reasons", title="Data set per round")
    for column in table.columns:
        column.overflow = "fold"
    for r in data.rounds:
        reasons = ", ".join(f"{reason} {n}" for reason, n in r.reasons.items()) or "-"
        table.add_row("0 (seeds)" if r.round == 0 else str(r.round), str(r.kept),
                      str(r.eliminated), reasons)
    return table


# each header whole on one line, or, where that is too wide, a word or two a line
GENERATION_HEADERS = ("generation", "population best", "population mean", "size", "new children",
                      "best new child", "calls so far")
NARROW_HEADERS = ("generation", "population\nbest", "population\nmean", "size", "new\nchildren",
                  "best new\nchild", "calls\nso far")


def generations_table(store: Any, job: Any) -> ByWidth:
    """Per generation: the population after it, and the children it made (the best of them may
    be worse than the population's best, which is kept from before)."""
    made = {g.generation: g for g in store.generations(job.id)}
    rows = []
    for _, e in store.events(job.id, kind="GenerationDone"):
        g = made.get(e["generation"])
        rows.append([str(e["generation"]), f"{e['best']:.3f}", f"{e['mean']:.3f}",
                     str(e["size"]), str(g.size if g else 0), fmt(g.best if g else None),
                     f"{e['calls']:,}"])

    def build(width: int) -> Table:
        wide = table_width(rows, GENERATION_HEADERS) <= width
        table = Table(title="Population per generation (search scores)")
        for header in GENERATION_HEADERS if wide else NARROW_HEADERS:
            table.add_column(header, overflow="fold")
        for row in rows:
            table.add_row(*row)
        return table

    return ByWidth(build)
