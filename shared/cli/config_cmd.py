"""`seatwarden config check`: every problem of a policy file at once."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from shared.cli._common import EXIT_FAILED, EXIT_OK, err
from shared.config import PolicyError, load_policy_file, policy_warnings

app = typer.Typer(no_args_is_help=True, help="Check policy files and the live setup.")


@app.command("check")
def check(
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
