"""The `seatwarden` command: the administrator's door into the same services the functions use.

One sub-app per noun (`config`, `runs`, `audit`, `users`, `export`, `sandbox`), and the verbs
an administrator reaches for most at the top (`plan`, `approve`, `apply`, `report`, `demo`,
`diagnose`). Exit codes scripts can rely on: 0 done; 1 the command ran and found a failure;
2 bad usage; 3 a held run (revocations over the blast radius). Humans read stderr; scripts
read stdout (`--json`, `--csv`).
"""

from __future__ import annotations

import typer

from shared.cli._common import EXIT_FAILED, EXIT_HELD, EXIT_OK, EXIT_USAGE, render
from shared.cli.audit_cmd import app as audit_app
from shared.cli.config_cmd import app as config_app
from shared.cli.ops_cmd import demo, diagnose, report, sandbox_app
from shared.cli.runs_cmd import apply, approve, export_app, plan, runs_app
from shared.cli.users_cmd import users

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Seatwarden: Atlassian licenses in line with Entra ID and with real use. "
    "Exit codes: 0 done, 1 failed, 2 bad usage, 3 held over the blast radius.",
)
app.add_typer(config_app, name="config")
app.add_typer(audit_app, name="audit")
app.add_typer(runs_app, name="runs")
app.add_typer(export_app, name="export")
app.add_typer(sandbox_app, name="sandbox")
app.command("plan")(plan)
app.command("approve")(approve)
app.command("apply")(apply)
app.command("users")(users)
app.command("report")(report)
app.command("diagnose")(diagnose)
app.command("demo")(demo)

__all__ = ["EXIT_FAILED", "EXIT_HELD", "EXIT_OK", "EXIT_USAGE", "app", "main", "render"]


def main() -> None:
    app()


if __name__ == "__main__":
    main()
