"""The `seatwarden` command: the administrator's door into the same services the functions use.

Exit codes scripts can rely on: 0 done; 1 the command ran and found a failure (a policy with
errors, an audit trail that does not verify, a run that failed); 2 bad usage; 3 a held run
(planned revocations over the blast radius) where that matters. Humans read stderr; scripts
read stdout (`--json`).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from shared.config import PolicyError, load_policy_file, policy_warnings
from shared.settings import MissingSetting, Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_HELD = 0, 1, 2, 3

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
config_app = typer.Typer(no_args_is_help=True, help="Check policy files and the live setup.")
audit_app = typer.Typer(no_args_is_help=True, help="Read and verify the audit trail.")
sandbox_app = typer.Typer(no_args_is_help=True, help="The local stand-ins for Atlassian and Microsoft.")
app.add_typer(config_app, name="config")
app.add_typer(audit_app, name="audit")
app.add_typer(sandbox_app, name="sandbox")

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


@contextmanager
def failures_as_exit_codes() -> Iterator[None]:
    """Known failures become one clear line and an exit code, never a traceback."""
    try:
        yield
    except MissingSetting as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    except PolicyError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_FAILED) from None


def storage_from_settings(settings: Settings) -> Any:
    from shared.store import Storage

    conn = settings.require("storage_connection", "the CLI reads state and the audit trail from it")
    storage = Storage.from_connection_string(conn, prefix=settings.table_prefix)
    storage.ensure()
    return storage


# -- config -----------------------------------------------------------------------------------


@config_app.command("check")
def config_check(
    file: Annotated[Path, typer.Argument(help="policy file, YAML or JSON")],
    as_json: Annotated[bool, typer.Option("--json", help="print the problems as JSON")] = False,
) -> None:
    """Print every problem of a policy file at once; exit 1 if any is an error."""
    try:
        policies = load_policy_file(file)
        problems = policy_warnings(policies)
    except PolicyError as exc:
        problems = exc.problems
        policies = None
    errors = [p for p in problems if p.severity == "error"]
    if as_json:
        rows = [
            {"severity": p.severity, "field": p.field, "given": p.given, "allowed": p.allowed}
            for p in problems
        ]
        sys.stdout.write(json.dumps({"ok": not errors, "problems": rows}, default=str, indent=2) + "\n")
    else:
        for problem in problems:
            colour = "red" if problem.severity == "error" else "yellow"
            err.print(
                f"[{colour}]{problem.severity}[/{colour}] {problem.field}: given "
                f"{json.dumps(problem.given, default=str)}: {problem.allowed}",
                highlight=False,
            )
        if policies is not None and not errors:
            names = ", ".join(f"{p.name} ({p.product}, {p.mode})" for p in policies.policies)
            err.print(f"[green]ok[/green] {file}: {len(policies.policies)} policies: {names}")
        elif errors:
            err.print(f"{file}: {len(errors)} error(s)")
    raise typer.Exit(EXIT_FAILED if errors else EXIT_OK)


# -- audit ------------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify(
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Walk the hash chain; an edited, missing or reordered entry fails the check (exit 1)."""
    with failures_as_exit_codes():
        storage = storage_from_settings(Settings.from_env())
        report = storage.audit.verify()
    if as_json:
        sys.stdout.write(
            json.dumps({"ok": report.ok, "entries": report.entries, "problems": report.problems}) + "\n"
        )
    else:
        for problem in report.problems:
            err.print(f"[red]broken[/red] {problem}", highlight=False)
        verdict = "[green]intact[/green]" if report.ok else "[red]NOT intact[/red]"
        err.print(f"audit trail {verdict}: {report.entries} entries checked")
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)


# -- diagnose ---------------------------------------------------------------------------------


@app.command("diagnose")
def diagnose(
    run: Annotated[str | None, typer.Option(help="a run id; default: the newest run")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The calls a run made to Atlassian and Microsoft (secrets redacted), and its errors."""
    with failures_as_exit_codes():
        storage = storage_from_settings(Settings.from_env())
        chosen = storage.runs.get(run) if run else next(iter(storage.runs.list(limit=1)), None)
        if chosen is None:
            err.print("no runs yet" if not run else f"no run {run}")
            raise typer.Exit(EXIT_FAILED)
        calls = storage.calls.load(chosen.run_id)
    summary: dict[tuple[str, str, str], dict[str, Any]] = {}
    for call in calls:
        row = summary.setdefault(
            (call["vendor"], call["endpoint_class"], str(call["status"])),
            {
                "vendor": call["vendor"],
                "endpoint": call["endpoint_class"],
                "status": call["status"],
                "calls": 0,
                "retries": 0,
                "max_ms": 0.0,
            },
        )
        row["calls"] += 1
        row["retries"] += max(0, int(call["tries"]) - 1)
        row["max_ms"] = max(row["max_ms"], round(float(call["duration_ms"]), 1))
    errors = [c for c in calls if c.get("error_code") or c.get("status") is None or c["status"] >= 400]
    if as_json:
        report = {"run": chosen.to_dict(), "calls": calls, "errors": errors}
        sys.stdout.write(json.dumps(report, default=str) + "\n")
    else:
        err.print(f"run {chosen.run_id}: {chosen.status}; {len(calls)} calls, {len(errors)} with errors")
        render(
            list(summary.values()), ["vendor", "endpoint", "status", "calls", "retries", "max_ms"], "table"
        )
        if errors:
            render(
                errors[-20:],
                ["at", "method", "path", "status", "tries", "error_code"],
                "table",
                "last errors",
            )
    raise typer.Exit(EXIT_FAILED if chosen.status == "failed" else EXIT_OK)


# -- demo -------------------------------------------------------------------------------------


@app.command("demo")
def demo(
    users: Annotated[int, typer.Option(help="people in the generated org")] = 500,
    seed: Annotated[int, typer.Option(help="the same seed gives the same org")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON summary on stdout")] = False,
) -> None:
    """Azurite and the sandbox, a report run, an enforce run, a return and an Entra change."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from shared.demo import run_demo

    def say(line: str) -> None:
        if not as_json:
            err.print(line, highlight=False)

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
        disable=as_json,
    ) as bar:
        task = bar.add_task("applying actions", total=None)
        summary = run_demo(users, seed, say, lambda done: bar.update(task, completed=done))
    if as_json:
        sys.stdout.write(json.dumps(summary, default=str) + "\n")
    else:
        rows = [
            {"what": k, "value": json.dumps(v, default=str) if isinstance(v, (dict, list)) else v}
            for k, v in summary.items()
        ]
        render(rows, ["what", "value"], "table", title="Seatwarden demo")
    raise typer.Exit(EXIT_OK if summary.get("audit_intact") else EXIT_FAILED)


# -- sandbox ----------------------------------------------------------------------------------


@sandbox_app.command("serve", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def sandbox_serve(ctx: typer.Context) -> None:
    """Serve the sandbox (Atlassian Admin API, Entra token endpoint, Graph) on loopback."""
    from sandbox.__main__ import main as sandbox_main

    raise typer.Exit(sandbox_main(["serve", *ctx.args]))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
