"""What every `seatwarden` command shares: the renderer, exit codes, confirmation, progress.

Exit codes scripts can rely on: 0 done; 1 the command ran and found a failure (a policy with
errors, an audit trail that does not verify, a run that failed, a vendor that refused); 2 bad
usage (a missing setting, a destructive command without a terminal and without `--yes`);
3 a held run (planned revocations over the blast radius) where that matters. Humans read
stderr; scripts read stdout (`--json`, `--csv`).
"""

from __future__ import annotations

import asyncio
import csv
import getpass
import io
import json
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shared.bootstrap import App
from shared.config import PolicyError, load_policy_file
from shared.errors import IncompleteRead, RemoteError
from shared.model import SnapshotError
from shared.settings import MissingSetting
from shared.store import RunNotFound, StorageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_HELD = 0, 1, 2, 3

T = TypeVar("T")

err = Console(stderr=True)
out = Console()


def render(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str, title: str = "") -> None:
    """The one renderer: a table for people, the same rows as JSON or CSV for scripts."""
    if fmt == "json":
        sys.stdout.write(json.dumps(list(rows), default=str, indent=2) + "\n")
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        sys.stdout.write(buffer.getvalue())
    else:
        table = Table(title=title or None)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
        out.print(table)


def output_format(as_json: bool, as_csv: bool = False) -> str:
    if as_json and as_csv:
        err.print("[red]error:[/red] give --json or --csv, not both")
        raise typer.Exit(EXIT_USAGE)
    return "json" if as_json else "csv" if as_csv else "table"


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, default=str, indent=2) + "\n")


@contextmanager
def failures_as_exit_codes() -> Iterator[None]:
    """Known failures become one clear line and an exit code, never a traceback."""
    try:
        yield
    except MissingSetting as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    except (PolicyError, RunNotFound, SnapshotError, IncompleteRead, RemoteError, StorageError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_FAILED) from None


def open_app(policy_file: Path | None = None) -> App:
    """The same wiring the functions use; a policy file given on the command line wins."""
    app = App.from_env()
    if policy_file is not None:
        app._policies = load_policy_file(policy_file)
    return app


def run(work: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(work())  # type: ignore[arg-type]


def actor() -> str:
    """Who is acting, for the audit trail: the CLI and the operating-system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def confirm(question: str, yes: bool) -> None:
    """Ask before a change; without a terminal, demand `--yes` rather than hang."""
    if yes:
        return
    if not sys.stdin.isatty():
        err.print(f"{question}: refusing without a terminal; pass --yes to go ahead")
        raise typer.Exit(EXIT_USAGE)
    if not typer.confirm(question, default=False, err=True):
        err.print("nothing changed")
        raise typer.Exit(EXIT_FAILED)


@contextmanager
def progress_bar(quiet: bool = False) -> Iterator[Callable[..., None]]:
    """A progress bar per stage (`users`, `lookups`, `actions` …); it vanishes when done.

    The callback takes the stage, the count done so far and, when known, the total.
    """
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=quiet,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int | None = None) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(f"{stage:<10}", total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update
