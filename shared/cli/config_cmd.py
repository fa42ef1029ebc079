"""`seatwarden config check`: every problem of a policy file at once."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from shared.cli._common import EXIT_FAILED, EXIT_OK, err, failures_as_exit_codes, open_app, run
from shared.config import PolicyError, load_policy_file, policy_warnings, printable

app = typer.Typer(no_args_is_help=True, help="Check policy files and the live setup.")


@app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="policy file, YAML or JSON")],
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="also ask the configured services: groups, member counts, sync, key scopes, "
            "Graph permissions, subscriptions",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the problems as JSON")] = False,
) -> None:
    """Print every problem of a policy file at once; exit 1 if any is an error.

    With `--live`, a file without errors is then checked against the configured Atlassian org
    and Entra tenant (read-only calls), and each finding says what to fix, by name.
    """
    try:
        policies = load_policy_file(file)
        problems = policy_warnings(policies)
    except PolicyError as exc:
        problems = exc.problems
        policies = None
    errors = [p for p in problems if p.severity == "error"]
    report = None
    if live and policies is not None and not errors:
        from shared.services.live_check import run_live_check

        with failures_as_exit_codes():
            report = run(lambda: run_live_check(open_app(), policies))
    ok = not errors and (report is None or report.ok)
    if as_json:
        rows = [
            {"severity": p.severity, "field": p.field, "allowed": p.allowed}
            | ({} if p.missing else {"given": p.given})
            for p in problems
        ]
        document: dict[str, Any] = {"ok": ok, "problems": rows}
        if report is not None:
            document["live"] = report.to_dict()
        sys.stdout.write(json.dumps(document, default=str, indent=2) + "\n")
    else:
        for problem in problems:
            colour = "red" if problem.severity == "error" else "yellow"
            err.print(
                f"[{colour}]{problem.severity}[/{colour}] "
                + escape(f"{problem.field_text}: given {problem.given_text}: {printable(problem.allowed)}"),
                highlight=False,
            )
        if policies is not None and not errors:
            names = ", ".join(f"{p.name} ({p.product}, {p.mode})" for p in policies.policies)
            err.print(f"[green]ok[/green] {file}: {len(policies.policies)} policies: {names}")
        elif errors:
            err.print(f"{file}: {len(errors)} error(s)")
        if live and errors:
            err.print("the live check needs a policy file without errors first")
        if report is not None:
            _print_live(report)
    raise typer.Exit(EXIT_OK if ok else EXIT_FAILED)


def _print_live(report: Any) -> None:
    """One line a finding: what was checked, what was found, and for anything not ok, the fix."""
    colours = {"ok": "green", "warning": "yellow", "error": "red"}
    for check in report.checks:
        found = ", ".join(f"{k}={v}" for k, v in (check.found or {}).items() if v not in (None, "", [], {}))
        line = f"[{colours[check.status]}]{check.status:<7}[/{colours[check.status]}] {check.subject}"
        if check.policy:
            line += f" ({check.policy}{'.' + check.field.split('.')[-1] if check.field else ''})"
        if found:
            line += f": {found}"
        err.print(line, highlight=False)
        if check.fix:
            err.print(f"        fix: {check.fix}", highlight=False)
        elif check.note:
            err.print(f"        note: {check.note}", highlight=False)
    err.print(
        f"live check: {len(report.errors)} error(s), {len(report.warnings)} warning(s), "
        f"{len(report.checks)} checks",
        highlight=False,
    )
