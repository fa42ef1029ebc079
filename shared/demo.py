"""`seatwarden demo`: the whole product on one machine, through the same doors as in Azure.

It starts Azurite and the sandbox with a generated org, reconciles in report mode and then in
enforce mode, drains the actions queue through the executor *function* (real
`func.QueueMessage` objects), sends one return event and one Entra change through the
webhook *functions* over HTTP (the sandbox plays Atlassian and Graph), and reports what
happened. Everything listens on 127.0.0.1 and stops when the demo ends.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import azure.functions as func

from shared.bootstrap import App
from shared.config import PolicyFile, parse_policy
from shared.settings import Settings

DEMO_PREFIX = "demo"


def demo_policies(sb: Any) -> PolicyFile:
    """One policy per sandbox product: Confluence entitled from Entra, the others from mirrors."""
    keys = [product.key for product in sb.org.products]
    entra = {"confluence": sb.org.entra_group_id("confluence")} if "confluence" in keys else {}
    return product_policies(keys, entra)


def product_policies(keys: Iterable[str], entra_group_ids: Mapping[str, str] | None = None) -> PolicyFile:
    """One policy per product key over the sandbox's groups, entitled from the Entra group
    given for the product, else from its Atlassian mirror group ``{key}-user-role``."""
    policies = []
    for key in keys:
        entra_group_id = (entra_group_ids or {}).get(key)
        entitlement = (
            {"entra_group_id": entra_group_id}
            if entra_group_id is not None
            else {"atlassian_group": f"{key}-user-role"}
        )
        policies.append(
            {
                "name": key,
                "product": key,
                "entitlement": entitlement,
                "access_group": f"{key}-users",
                "marker_group": f"{key}-unlicensed-users",
                "inactive_after_days": 90,
                "grace_days": 14,
                "warn_before_days": 7,
                "exclusions": {"groups": ["service-accounts", "executives"]},
                "blast_radius": {"max_revocations": 1_000_000, "max_revocation_percent": 60},
                "seat_price": 6.05,
            }
        )
    return parse_policy({"policies": policies}, "demo policy")


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """The functions read their settings from the environment, as in Azure."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def function(name: str) -> Callable[..., Any]:
    import function_app
    from sandbox.funcserver import user_function

    return user_function(function_app.app, name)


def drain(app: App, queue: str, function_name: str, progress: Callable[[int], None] | None = None) -> int:
    """Feed every message on `queue` to a queue-triggered function, as the host would."""
    handler = function(function_name)
    done = 0
    while True:
        batch = app.storage.queues.receive(queue, max_messages=32)
        if not batch:
            return done
        for message, body in batch:
            request = func.QueueMessage(
                id=message.id, body=json.dumps(body).encode(), pop_receipt=message.pop_receipt
            )
            result = handler(request)
            if inspect.iscoroutine(result):
                asyncio.run(result)
            app.storage.queues.delete(queue, message)
            done += 1
            if progress:
                progress(done)


def licensed_count(sb: Any) -> int:
    return sum(sb.org.seats_used(p.key) for p in sb.org.products)


def run_demo(
    users: int,
    seed: int,
    say: Callable[[str], None],
    progress: Any = None,
    report_file: Path = Path("out/seatwarden-demo-report.html"),
) -> dict[str, Any]:
    from sandbox import Sandbox, SandboxConfig
    from sandbox.azurite import running_azurite
    from sandbox.funcserver import serving
    from shared.services.reconcile import Reconciler
    from shared.services.warnings import MailSetup

    with (
        running_azurite() as storage,
        Sandbox.start(SandboxConfig(users=users, seed=seed, frozen_clock=True)) as sb,
    ):
        # The administrator's path: a dry run first, then the policy switched to enforce. The
        # functions read the enforcing policy, so the return and the Entra change are applied.
        policies = demo_policies(sb)
        enforcing = parse_policy(
            {"policies": [{**p.model_dump(mode="json"), "mode": "enforce"} for p in policies.policies]},
            "demo policy",
        )
        env = {
            **sb.env(),
            "AzureWebJobsStorage": storage,
            "SEATWARDEN_TABLE_PREFIX": DEMO_PREFIX,
            "SEATWARDEN_POLICY": json.dumps(enforcing.model_dump(mode="json")),
            "JIRA_WEBHOOK_SECRET": secrets.token_hex(16),
            "ATLASSIAN_AUDIT_WEBHOOK_AUTHORIZATION": "Bearer " + secrets.token_hex(16),
            "GRAPH_CLIENT_STATE": secrets.token_hex(16),
            # Warnings and the run summary go out from an org mailbox; the sandbox records them.
            "SEATWARDEN_MAIL_SENDER": sb.org.users[0].upn,
            "SEATWARDEN_ADMIN_MAIL": "atlassian-admins@example.com",
            "SEATWARDEN_MAIL_PER_MINUTE": "100000",  # Exchange's 30 a minute would take the demo hours
        }
        env.pop("ENTRA_CLIENT_CERT_PATH", None)  # the demo signs in with the client secret
        with environment(env), serving(__import__("function_app").app) as base_url:
            app = App(Settings.from_env(env), clock=sb.clock.now)
            licensed_before = licensed_count(sb)
            say(f"sandbox org: {users} people, {len(policies.policies)} products, {licensed_before} licenses")

            async def reconcile(mode: str) -> Any:
                async with app.clients() as (atlassian, graph):
                    reconciler = Reconciler(
                        app.storage, atlassian, graph, app.clock, holder="demo", mail=mail
                    )
                    return await reconciler.run(policies, mode=mode)

            mail = MailSetup.from_settings(app.settings)

            report = asyncio.run(reconcile("report"))  # the dry run: nothing changes
            for o in report.outcomes:
                say(f"report  {o.policy:<18} {o.status:<8} {o.counts}")
            enforce = asyncio.run(reconcile("enforce"))
            for o in enforce.outcomes:
                say(f"enforce {o.policy:<18} {o.status:<8} {o.enqueued} actions queued; {o.why}")
            applied = drain(app, "actions", "execute_action", progress)
            licensed_after = licensed_count(sb)
            say(f"executor applied {applied} queued actions: {licensed_before} -> {licensed_after} licenses")
            drain(app, "warnings", "send_warnings")
            warned = len(app.storage.audit.query(action="WARN", limit=100_000))
            summaries = sum(1 for m in sb.mails() if "atlassian-admins@example.com" in m.to)
            say(
                f"warned {warned} people due to lose a license within 7 days (one mail each); "
                f"run summaries mailed to the administrators: {summaries} (the dry run's and tonight's)"
            )

            # A person the night took a Confluence license from comes back: a Jira webhook.
            confluence = next(p for p in policies.policies if p.product == "confluence")
            marked = sorted(
                sb.org.members(confluence.marker_group) & sb.org.members(f"{'confluence'}-user-role")
            )
            relicense_seconds, back, granted = None, False, False
            if marked:
                person = marked[0]
                started = time.monotonic()
                delivery = sb.send_jira_webhook(
                    f"{base_url}/api/webhooks/atlassian",
                    "user_updated",
                    account_id=person,
                    secret=env["JIRA_WEBHOOK_SECRET"],
                )
                drain(app, "returns", "handle_return")
                relicense_seconds = round(time.monotonic() - started, 3)
                back = sb.org.is_licensed(person, "confluence")
                say(
                    f"return event for {person}: webhook {delivery.status_code}, licensed again: {back} "
                    f"in {relicense_seconds} s"
                )

            # Entra: an admin adds someone to the Confluence entitlement group.
            gid = sb.org.entra_group_id("confluence")
            outsider = next(
                (
                    u
                    for u in sb.org.users
                    if u.entra_object_id not in sb.org.entra_members(gid)
                    and not u.suspended
                    and u.account_status == "active"
                ),
                None,
            )
            if outsider is not None:
                sb.entra_add_member(gid, outsider.entra_object_id)
                delivery = sb.send_graph_notification(
                    f"{base_url}/api/webhooks/graph", group_id=gid, client_state=env["GRAPH_CLIENT_STATE"]
                )
                drain(app, "graph", "handle_graph")
                granted = sb.org.is_licensed(outsider.account_id, "confluence")
                say(
                    f"Entra added {outsider.account_id} to the Confluence entitlement group: notification "
                    f"{delivery.status_code}, licensed: {granted}"
                )

            from shared.report import render_report
            from shared.services.report import build_report

            report_file.parent.mkdir(parents=True, exist_ok=True)
            report_file.write_text(
                render_report(build_report(app.storage, enforcing, app.clock())), encoding="utf-8"
            )

            counts: dict[str, int] = {}
            for o in enforce.outcomes:
                for reason, n in o.counts.items():
                    counts[reason] = counts.get(reason, 0) + n
            verify = app.storage.audit.verify()
            return {
                "run_id": [o.run_id for o in enforce.outcomes],
                "users": users,
                "licensed_before": licensed_before,
                "licensed_after": licensed_count(sb),
                "actions": counts,
                "api_calls": sb.request_counts().get("total", 0),
                "warnings_sent": warned,
                "audit_entries": verify.entries,
                "audit_intact": verify.ok,
                "relicensed": back,
                "relicense_seconds": relicense_seconds,
                "entra_granted": granted,
                "report": str(report_file.resolve()),
            }
