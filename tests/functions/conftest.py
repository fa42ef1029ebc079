"""The function app end to end: Azurite, the sandbox, and the functions' own user code.

Each test gets a fresh small sandbox org, a unique table prefix (so its tables and queues are
its own), the app settings in the environment as in Azure, and the HTTP functions served on
loopback (`sandbox.funcserver.serving`) so the sandbox can POST webhooks to them.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import pytest

from sandbox import Sandbox, SandboxConfig
from shared.bootstrap import App
from shared.config import PolicyFile, parse_policy
from shared.demo import demo_policies, drain, environment
from shared.settings import Settings

USERS = 120
SEED = 11


def policy_env(policies: PolicyFile) -> str:
    return json.dumps(policies.model_dump(mode="json"))


def run_function(name: str, *args: Any) -> Any:
    """Call a registered function's user code, sync or async, as the Python worker would."""
    import function_app
    from sandbox.funcserver import user_function

    result = user_function(function_app.app, name)(*args)
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    return result


def has_function(name: str) -> bool:
    import function_app
    from sandbox.funcserver import registered

    return any(f.get_function_name() == name for f in registered(function_app.app))


def timer(past_due: bool = False) -> func.TimerRequest:
    from azure.functions.timer import TimerRequest

    return TimerRequest(past_due=past_due)


def queue_message(body: Any, message_id: str = "m1", dequeue_count: int = 1) -> func.QueueMessage:
    """A queue message as the Python worker builds it (`func.QueueMessage` has no dequeue count)."""
    from azure.functions.queue import QueueMessage

    return QueueMessage(id=message_id, body=json.dumps(body).encode(), dequeue_count=dequeue_count)


@dataclass
class World:
    sb: Any
    env: dict[str, str]
    base_url: str
    app: App
    policies: PolicyFile

    # ---- the host's part ----------------------------------------------------------------

    def nightly(self) -> None:
        """The nightly reconcile timer, through the function, and any lookups it queued."""
        run_function("nightly_reconcile", timer())
        if has_function("look_up_activity"):
            drain(self.app, "lookups", "look_up_activity")

    def subscribe(self) -> None:
        """The subscription keeper timer: Graph subscriptions and a baseline delta link."""
        run_function("keep_subscriptions", timer())

    def drain(self, queue: str) -> int:
        function_name = {
            "actions": "execute_action",
            "returns": "handle_return",
            "graph": "handle_graph",
            "lookups": "look_up_activity",
        }
        return drain(self.app, queue, function_name[queue])

    def set_policies(self, policies: PolicyFile) -> None:
        self.policies = policies
        self.env["SEATWARDEN_POLICY"] = policy_env(policies)
        os.environ["SEATWARDEN_POLICY"] = self.env["SEATWARDEN_POLICY"]

    # ---- what happened ------------------------------------------------------------------

    @property
    def storage(self) -> Any:
        return self.app.storage

    def queued(self) -> dict[str, int]:
        return {q: self.storage.queues.peek_count(q) for q in ("actions", "returns", "graph")}

    def audit_for(self, account_id: str, action: str | None = None) -> list[Any]:
        return self.storage.audit.query(account_id=account_id, action=action, limit=500)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def entitled(self, product: str) -> set[str]:
        """Account ids of the members of the product's Entra entitlement group."""
        members = self.sb.org.entra_members(self.sb.org.entra_group_id(product))
        return {u.account_id for u in self.sb.org.users if u.entra_object_id in members}


def policies_with(sb: Any, **changes: Any) -> PolicyFile:
    """The demo policies with fields changed on every policy (e.g. mode, blast_radius)."""
    raw = demo_policies(sb).model_dump(mode="json")
    for policy in raw["policies"]:
        policy.update(changes)
    return parse_policy(raw, "test policy")


@pytest.fixture
def world(azurite: str, table_prefix: str) -> Iterator[World]:
    with opened_world(azurite, table_prefix) as opened:
        yield opened


@contextmanager
def opened_world(azurite: str, table_prefix: str, **settings: str) -> Iterator[World]:
    """A sandbox org, the functions served on loopback and the app settings in the environment,
    for as long as the block lasts; `settings` add to or replace the app settings."""
    import function_app
    from sandbox.funcserver import serving

    start = datetime.now(UTC).replace(microsecond=0)
    with Sandbox.start(SandboxConfig(users=USERS, seed=SEED, frozen_clock=True, start=start)) as sb:
        policies = policies_with(sb, mode="enforce")
        env = {
            **sb.env(),
            "AzureWebJobsStorage": azurite,
            "SEATWARDEN_TABLE_PREFIX": table_prefix,
            "SEATWARDEN_POLICY": policy_env(policies),
            "JIRA_WEBHOOK_SECRET": secrets.token_hex(16),
            "ATLASSIAN_AUDIT_WEBHOOK_AUTHORIZATION": "Bearer " + secrets.token_hex(16),
            "GRAPH_CLIENT_STATE": secrets.token_hex(16),
            "ENTRA_CLIENT_CERT_PATH": "",  # sign in with the client secret, as the demo does
            **settings,
        }
        env["SEATWARDEN_PUBLIC_URL"] = ""
        with environment(env), serving(function_app.app) as base_url:
            env["SEATWARDEN_PUBLIC_URL"] = base_url
            os.environ["SEATWARDEN_PUBLIC_URL"] = base_url  # environment() restores it
            app = App(Settings.from_env(env), clock=sb.clock.now)
            yield World(sb, env, base_url, app, policies)
