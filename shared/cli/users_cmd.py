"""`seatwarden users`: who has been idle, by product, idle days, group and domain; bulk actions.

A search is the rules asked a narrower question: the policy for the product, its threshold
replaced by `--idle-days`, planned over a fresh read of the org, and the people it would take
narrowed to `--group` and `--domain`. So everything that protects a license at night protects
it here: exclusions and admins are never listed for removal, unknown activity is left alone,
suspended and closed accounts are not touched. A bulk action applies exactly the listed INACTIVE actions, as a
`manual` run with its results and audit entries, after a dry run and a confirmation.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shared.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    actor,
    confirm,
    err,
    failures_as_exit_codes,
    open_app,
    output_format,
    print_json,
    progress_bar,
    render,
    run,
)
from shared.cli.runs_cmd import PolicyFileOption
from shared.config import Policy
from shared.model import Action, Plan, Reason, Snapshot, SnapshotError
from shared.rules import plan_product

COLUMNS = ["account_id", "email", "idle_days", "last_active", "threshold"]


def targeted(policy: Policy, idle_days: int | None, suspend: bool) -> Policy:
    """The policy with the search's threshold and action, and no seat cap."""
    update: dict[str, Any] = {"seat_cap": None, "on_inactive": "suspend" if suspend else "remove_access"}
    if idle_days is not None:
        # "idle for at least N days" means exactly that, for everyone: no grace, no other threshold
        update |= {"inactive_after_days": idle_days, "external_inactive_after_days": None, "grace_days": 0}
    return policy.model_copy(update=update)


def narrowed(
    snapshot: Snapshot, actions: tuple[Action, ...], groups: list[str], domains: list[str]
) -> tuple[Action, ...]:
    """Only the actions for people in every given group and, if domains are given, one of them."""
    keep: frozenset[str] | None = None
    for ref in groups:
        found = snapshot.find_group(ref)
        if found is None:
            raise SnapshotError(f"--group {ref!r} is not a group in the org")
        members = snapshot.members_of(found.id)
        keep = members if keep is None else keep & members
    if domains:
        in_domains = snapshot.in_domains(domains)
        keep = in_domains if keep is None else keep & in_domains
    return actions if keep is None else tuple(a for a in actions if a.account_id in keep)


def users(
    product: Annotated[str, typer.Option(help="the product key (or policy name) to search")],
    idle_days: Annotated[
        int | None, typer.Option(min=1, help="idle at least this many days; default: the policy's threshold")
    ] = None,
    group: Annotated[list[str] | None, typer.Option(help="only members of this group (repeatable)")] = None,
    domain: Annotated[list[str] | None, typer.Option(help="only this email domain (repeatable)")] = None,
    remove_access: Annotated[
        bool,
        typer.Option("--remove-access", help="take the license: out of the access group, into the marker"),
    ] = False,
    suspend: Annotated[bool, typer.Option("--suspend", help="suspend the accounts found")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what a bulk action would do")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask before a bulk action")] = False,
    policies_file: PolicyFileOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    as_csv: Annotated[bool, typer.Option("--csv")] = False,
) -> None:
    """Licensed people idle for at least N days, by group or domain; optionally act on them."""
    from shared.services.reconcile import LEASE_TTL, Reconciler
    from shared.services.snapshot import product_key

    fmt = output_format(as_json, as_csv)
    if remove_access and suspend:
        err.print("[red]error:[/red] give --remove-access or --suspend, not both")
        raise typer.Exit(EXIT_USAGE)
    acting = remove_access or suspend
    with failures_as_exit_codes():
        app = open_app(policies_file)
        base = next(
            (p for p in app.policies.policies if product in (p.name, p.product, product_key(p.product))), None
        )
        if base is None:
            err.print(f"[red]error:[/red] no policy for product {product!r}")
            raise typer.Exit(EXIT_FAILED)
        chosen = targeted(base, idle_days, suspend)
        now = app.clock()
        lease = None
        if acting and not dry_run:
            lease = app.storage.leases.acquire(
                f"product-{product_key(base.product)}", "cli-users", LEASE_TTL, now
            )
            if lease is None:
                err.print("[red]error:[/red] another run holds this product's lease; try again later")
                raise typer.Exit(EXIT_FAILED)
        try:
            found = run(
                lambda: _search_and_act(
                    app, chosen, group or [], domain or [], now, fmt, acting and not dry_run, yes, Reconciler
                )
            )
        finally:
            if lease is not None:
                app.storage.leases.release(lease)
    plan, outcomes = found
    rows = [
        {
            "account_id": a.account_id,
            "email": a.facts.email,
            "idle_days": a.facts.idle_days,
            "last_active": a.facts.last_active.isoformat() if a.facts.last_active else "never",
            "threshold": a.facts.threshold_days,
        }
        for a in plan.actions
    ]
    if fmt == "json":
        print_json({"product": chosen.product, "people": rows, "outcomes": outcomes})
    else:
        render(rows, COLUMNS, fmt, title=f"{chosen.product}: idle at least {chosen.inactive_after_days} days")
        if fmt == "table":
            err.print(
                f"{len(rows)} people (exclusions, admins and unknown activity are never listed)"
                + ("" if acting else "; --remove-access or --suspend to act, --dry-run first")
            )
            if outcomes:
                err.print(f"outcomes: {outcomes}", highlight=False)
    raise typer.Exit(EXIT_FAILED if outcomes.get("failed") or outcomes.get("error") else EXIT_OK)


async def _search_and_act(
    app: Any,
    policy: Policy,
    groups: list[str],
    domains: list[str],
    now: Any,
    fmt: str,
    act: bool,
    yes: bool,
    reconciler: Any,
) -> tuple[Plan, dict[str, int]]:
    from shared.safety import blast_radius
    from shared.services.admin import AdminService
    from shared.services.execute import Executor

    async with app.clients() as (atlassian, graph):
        reader, _ = reconciler(app.storage, atlassian, graph, app.clock).reader([policy])
        with progress_bar(quiet=fmt != "table") as bar:
            result = await reader.read([policy], now, progress=bar)
        full = plan_product(result.snapshot, policy, now)
        inactive = narrowed(
            result.snapshot, tuple(a for a in full.actions if a.reason is Reason.INACTIVE), groups, domains
        )
        plan = Plan(
            full.policy, full.product, full.planned_at, inactive, licensed_before=full.licensed_before
        )
        if not act or not inactive:
            return plan, {}
        verb = "suspend" if policy.on_inactive == "suspend" else "take the license from"
        verdict = blast_radius(plan, policy)
        if verdict.held:
            err.print(
                f"[yellow]note:[/yellow] {verdict.why}: this confirmation is the approval", highlight=False
            )
        confirm(f"{verb} {len(inactive)} people in {policy.product}", yes)
        created = app.storage.runs.create(policy.name, policy.product, "manual", now)
        app.storage.results.save_plan(created.run_id, plan)
        app.storage.runs.set_status(
            created.run_id,
            "report",
            counts=plan.counts(),
            verdict=verdict.to_dict(),
            licensed_before=plan.licensed_before,
            actions_total=len(inactive),
        )
        who = actor()
        executor = Executor(app.storage, atlassian, graph, app.clock, actor=who)
        with progress_bar(quiet=fmt != "table") as bar:
            outcomes = await AdminService(app.storage, app.clock).apply(
                created.run_id,
                executor,
                who,
                approve=True,
                progress=lambda done, total: bar("actions", done, total),
            )
        err.print(f"run {created.run_id}: see `seatwarden runs show {created.run_id}`")
        return plan, outcomes
