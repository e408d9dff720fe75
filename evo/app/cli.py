"""The ``evo`` command line: run, resume, submit, cancel, pause, requeue, worker, serve, keys, db,
jobs, show, export, compare, tasks, algorithms.

The commands live in ``cli_run``, ``cli_queue``, ``cli_inspect`` and ``cli_service``; this module
puts them together and turns errors into exit statuses."""

from __future__ import annotations

import logging
import sys

import typer

from evo.app import cli_inspect, cli_queue, cli_run, cli_service
from evo.app.cli_common import UserError, err

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Evo: evolutionary prompt optimization on any OpenAI-compatible or local model.",
)

# Registered here, in the order `evo --help` lists them.
for command in (
    cli_run.run, cli_run.resume, cli_queue.submit, cli_queue.cancel, cli_queue.pause,
    cli_queue.requeue, cli_queue.worker, cli_queue.reap, cli_run.compare, cli_inspect.jobs,
    cli_inspect.show, cli_inspect.export,
):
    app.command()(command)
app.command(context_settings=cli_run.BENCH_CONTEXT)(cli_run.bench)
for command in (cli_inspect.tasks, cli_inspect.algorithms, cli_service.serve):
    app.command()(command)
app.add_typer(cli_service.db_app, name="db")
app.add_typer(cli_service.keys_app, name="keys")


def main() -> None:
    """Entry point: user errors become one clear message and exit status 2, never a traceback."""
    from evo.llm import LLMUnavailable
    from evo.spec_io import SpecError
    from evo.task import TaskError
    from workers.capacity import CannotSchedule
    from workers.pool import PoolExhausted

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app(standalone_mode=False)
    except (UserError, SpecError, TaskError, LLMUnavailable, CannotSchedule,
            PoolExhausted) as exc:
        err.print("[bold red]error:[/] ", end="")
        err.print(str(exc), highlight=False, markup=False)
        sys.exit(2)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: unknown option, missing argument
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        sys.exit(getattr(exc, "exit_code", 2))


if __name__ == "__main__":
    main()
