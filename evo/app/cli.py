"""The ``evo`` command line: run, resume, submit, cancel, pause, requeue, worker, serve, keys, db,
jobs, show, export, predict, compare, tasks, algorithms.

The commands live in ``cli_run``, ``cli_queue``, ``cli_inspect``, ``cli_predict`` and
``cli_service``; this module puts them together and turns errors into exit statuses."""

from __future__ import annotations

import logging
import sys

import typer

from evo.app import cli_inspect, cli_predict, cli_queue, cli_run, cli_service
from evo.app.cli_common import Command, Group, JobFailed, UserError, err, store_location

app = typer.Typer(
    cls=Group,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Evo: evolutionary prompt optimization on any OpenAI-compatible or local model.\n\n"
    f"Jobs are kept in the store at {store_location()} "
    "(EVO_DATABASE_URL or --db names another; EVO_HOME moves the default folder).",
)

# Registered here, in the order `evo --help` lists them.
for command in (
    cli_run.run, cli_run.resume, cli_queue.submit, cli_queue.cancel, cli_queue.pause,
    cli_queue.requeue, cli_queue.worker, cli_queue.reap, cli_run.compare, cli_inspect.jobs,
    cli_inspect.show, cli_inspect.export, cli_predict.predict,
):
    app.command(cls=Command)(command)
app.command(cls=Command, context_settings=cli_run.BENCH_CONTEXT)(cli_run.bench)
for command in (cli_inspect.tasks, cli_inspect.algorithms, cli_service.serve):
    app.command(cls=Command)(command)
app.add_typer(cli_service.db_app, name="db")
app.add_typer(cli_service.keys_app, name="keys")


class _FirstLine(logging.Formatter):
    """One line per warning: errors from Ray carry pages of detail that would bury the live
    progress line (an exception is named, not traced). Errors keep their traceback (a bug to
    report)."""

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno >= logging.ERROR:
            return super().format(record)
        line = _first_line(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            line += f" ({type(exc).__name__}: {_first_line(str(exc))})"
        short = logging.makeLogRecord({**record.__dict__, "msg": line, "args": None,
                                       "exc_info": None, "exc_text": None})
        return super().format(short)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _configure_logging() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_FirstLine("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    # a failed job's reason is printed once, at the end, with what to do next
    logging.getLogger("workers.reasons").setLevel(logging.ERROR)


def main() -> None:
    """Entry point: user errors become one clear message and exit status 2, never a traceback."""
    from evo.llm import LLMUnavailable
    from evo.spec_io import SpecError
    from evo.task import TaskError
    from workers.capacity import CannotSchedule
    from workers.pool import PoolExhausted

    _configure_logging()
    try:
        app(standalone_mode=False)
    except JobFailed as exc:
        err.print("[bold red]error:[/] ", end="")
        err.print(str(exc), highlight=False, markup=False, soft_wrap=True)
        err.print(f"continue it with: evo resume {exc.job_id[:8]}", highlight=False,
                  markup=False, soft_wrap=True)
        sys.exit(2)
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
