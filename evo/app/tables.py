"""Tables that fit the terminal they are printed to: the layout is chosen when printed, from the
width rich offers, so the same renderable reads well at 80 columns and at 140.

Nothing is ever cut to an ellipsis: columns fold, and where the prompts would be squeezed the
leaderboard turns into one block per prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType
from rich.table import Table
from rich.text import Text

# The narrowest prompt column worth a side-by-side table; below it, a block per prompt.
MIN_PROMPT_WIDTH = 50


class ByWidth:
    """A renderable built, when printed, for the width it gets."""

    def __init__(self, build: Callable[[int], RenderableType]) -> None:
        self.build = build

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Any]:
        yield self.build(options.max_width)


def table_width(cells: Sequence[Sequence[str]], headers: Sequence[str]) -> int:
    """Width of a boxed table (rich's default box, padding 1) with these columns kept whole."""
    widths = [max([cell_len(h), *(cell_len(row[i]) for row in cells)])
              for i, h in enumerate(headers)]
    return sum(widths) + 3 * len(widths) + 1


@dataclass(frozen=True)
class BoardRow:
    """One prompt on a leaderboard."""

    rank: str
    dev: float
    dev_n: int
    generation: int
    operator: str
    text: str
    test: float | None = None
    style: str = ""


def board(rows: Sequence[BoardRow], *, title: str, caption: str | None = None,
          with_test: bool = True) -> ByWidth:
    """The prompts with their scores: one row each where the prompt column can have at least
    ``MIN_PROMPT_WIDTH`` columns (or the longest prompt), else a block per prompt."""

    def build(width: int) -> Table:
        headers = ["#", "dev", "n", *(["test"] if with_test else []), "generation", "operator"]
        cells = [_board_cells(r, with_test) for r in rows]
        room = width - table_width(cells, headers) - 3
        longest = max((cell_len(r.text) for r in rows), default=0)
        if room >= min(MIN_PROMPT_WIDTH, max(longest, 10)):
            return _board_wide(rows, cells, headers, title, caption)
        return _board_blocks(rows, title, caption, with_test)

    return ByWidth(build)


def _board_cells(r: BoardRow, with_test: bool) -> list[str]:
    test = [fmt(r.test)] if with_test else []
    return [r.rank, f"{r.dev:.3f}", str(r.dev_n), *test, str(r.generation), r.operator]


def _board_wide(rows: Sequence[BoardRow], cells: list[list[str]], headers: list[str],
                title: str, caption: str | None) -> Table:
    table = Table(title=title, caption=caption, caption_justify="left")
    for h in headers:  # kept whole: the width was measured so that they fit
        table.add_column(h, no_wrap=True)
    table.add_column("prompt", overflow="fold", ratio=1)
    for r, row in zip(rows, cells, strict=True):
        table.add_row(*row, r.text, style=r.style or None)
    return table


def _board_blocks(rows: Sequence[BoardRow], title: str, caption: str | None,
                  with_test: bool) -> Table:
    """Narrow terminals: the rank beside a line of scores, the whole prompt under it."""
    table = Table(title=title, caption=caption, caption_justify="left", show_header=False,
                  box=box.SIMPLE, show_lines=True, pad_edge=False)
    table.add_column("#", no_wrap=True)
    table.add_column("prompt", overflow="fold", ratio=1)
    for r in rows:
        facts = [f"dev {r.dev:.3f} (n={r.dev_n})"]
        if with_test:
            facts.append(f"test {fmt(r.test)}")
        facts += [f"generation {r.generation}", r.operator]
        block = Text(" · ".join(facts), style="dim")
        block.append("\n")
        block.append(r.text)
        table.add_row(r.rank, block, style=r.style or None)
    return table


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def jobs_table(rows: Sequence[Any], today: date) -> ByWidth:
    """The job listing: every column at full length where it fits; narrower, without the call
    count and with short dates (no year for this year's jobs), the name and task folding; narrower
    still, a block per job."""
    headers = ["id", "name", "task", "algorithm", "status", "best dev", "calls", "created"]

    def build(width: int) -> Table:
        full = [_job_cells(j, today, short=False) for j in rows]
        if table_width(full, headers) <= width:
            table = Table(*headers)
            for row in full:
                table.add_row(*row)
            return table
        short = [_job_cells(j, today, short=True) for j in rows]
        kept = ["id", "name", "task", "algorithm", "status", "best", "created"]
        # the columns kept whole, two spaces apart, and room for a short name and task
        whole = [max([cell_len(h), *(cell_len(r[i]) for r in short)])
                 for i, h in enumerate(kept) if h not in ("name", "task")]
        if sum(whole) + 2 * len(kept) + 10 + 8 > width:
            return _job_blocks(short)
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))
        for h in kept:
            if h in ("name", "task"):  # folded, never cut
                table.add_column(h, overflow="fold")
            else:
                table.add_column(h, no_wrap=True)
        for row in short:
            table.add_row(*row)
        return table

    return ByWidth(build)


def _job_cells(j: Any, today: date, *, short: bool) -> list[str]:
    stats = j.stats or {}
    best = stats.get("best_dev")
    created = j.created_at
    if not short:
        when = f"{created:%Y-%m-%d %H:%M}"
    else:
        when = f"{created:%m-%d %H:%M}" if created.year == today.year else f"{created:%Y-%m-%d}"
    row = [j.id[:8], j.name, j.task, j.algorithm, j.status,
           "" if best is None else f"{best:.3f}"]
    return [*row, when] if short else [*row, str(stats.get("calls", "")), when]


def _job_blocks(short: list[list[str]]) -> Table:
    """Very narrow terminals: the id beside the name, the rest under the name."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("id", no_wrap=True, style="bold")
    table.add_column("job", overflow="fold")
    for ident, name, task, algorithm, status, best, when in short:
        facts = [task, algorithm, status, *([f"best dev {best}"] if best else []), when]
        table.add_row(ident, f"{name}\n" + " · ".join(facts))
    return table
