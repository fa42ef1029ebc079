"""A few weeks of nights on the sandbox, through the same doors as in Azure, for the report's tests.

Five nights a week apart, ending now (the report's functions read the real clock): three in
report mode, then enforce nights whose actions the executor *function* applies. Confluence's
first and last enforce nights are over their blast radius and stay held, so the report shows one
held run superseded by a newer plan and one still waiting for approval; Jira Service Management
stays in report mode throughout, so its plan is "a decision away".
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox import Sandbox, SandboxConfig
from shared.bootstrap import App
from shared.config import PolicyFile, parse_policy
from shared.demo import demo_policies, drain, environment
from shared.services.reconcile import Reconciler
from shared.settings import Settings

NIGHTS = 5
DAYS_APART = 7
HELD_POLICY = "confluence"
REPORT_ONLY_POLICY = "jira-servicedesk"
INACTIVE_AFTER_DAYS = 45
WARN_BEFORE_DAYS = 21


@dataclass
class History:
    sb: Any
    app: App
    policies: PolicyFile
    base_url: str
    held_run: str  # the latest run of HELD_POLICY: held and approvable
    superseded_run: str  # an older held run of HELD_POLICY: a newer one has planned since
    runs: dict[str, list[str]]  # policy -> run ids, oldest first


def _policies(sb: Any, night: int) -> PolicyFile:
    raw = demo_policies(sb).model_dump(mode="json")
    for policy in raw["policies"]:
        # A shorter threshold and a three-week warning: a small org then has people due soon.
        policy.update(inactive_after_days=INACTIVE_AFTER_DAYS, warn_before_days=WARN_BEFORE_DAYS)
        enforce = night >= 3 and policy["name"] != REPORT_ONLY_POLICY
        policy["mode"] = "enforce" if enforce else "report"
        if night in (3, NIGHTS - 1) and policy["name"] == HELD_POLICY:
            policy["blast_radius"] = {"max_revocations": 0, "max_revocation_percent": 60}
    return parse_policy(raw, "report history")


@contextmanager
def report_history(azurite: str, prefix: str, users: int = 300, seed: int = 23) -> Iterator[History]:
    """The history in Azurite under `prefix`, the app's HTTP functions served at `base_url`."""
    import function_app
    from sandbox.funcserver import serving

    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=DAYS_APART * (NIGHTS - 1))
    config = SandboxConfig(users=users, seed=seed, frozen_clock=True, start=start)
    with Sandbox.start(config) as sb:
        env = {
            **sb.env(),
            "AzureWebJobsStorage": azurite,
            "SEATWARDEN_TABLE_PREFIX": prefix,
            "SEATWARDEN_POLICY": json.dumps(_policies(sb, NIGHTS - 1).model_dump(mode="json")),
            "ENTRA_CLIENT_CERT_PATH": "",
        }
        with environment(env), serving(function_app.app) as base_url:
            app = App(Settings.from_env(env), clock=sb.clock.now)
            runs: dict[str, list[str]] = {}
            held: list[str] = []
            for night in range(NIGHTS):
                if night:
                    sb.advance(days=DAYS_APART)
                report = asyncio.run(_reconcile(app, _policies(sb, night)))
                for outcome in report.outcomes:
                    assert outcome.run_id, outcome.why
                    runs.setdefault(outcome.policy, []).append(outcome.run_id)
                    if outcome.status == "held":
                        held.append(outcome.run_id)
                drain(app, "actions", "execute_action")
            assert len(held) == 2 and runs[HELD_POLICY][-1] == held[-1], (held, runs)
            yield History(sb, app, _policies(sb, NIGHTS - 1), base_url, held[-1], held[0], runs)


async def _reconcile(app: App, policies: PolicyFile) -> Any:
    atlassian, graph = app.atlassian(), app.graph()
    try:
        return await Reconciler(app.storage, atlassian, graph, app.clock, holder="history").run(policies)
    finally:
        await atlassian.aclose()
        if graph is not None:
            await graph.aclose()
