"""Runs one scenario: a script on a fresh org, through the function app, under chaos.

One sandbox and one Azurite serve every scenario: each run loads a fresh generated org into
the running sandbox (`Sandbox.load`) and uses a fresh table prefix, so nothing carries over.
Seatwarden runs as in Azure: the timer, queue and HTTP functions' own user code, with the
settings in the environment, the webhooks POSTed over loopback by the sandbox, and a small
model of the Functions host for the queues (`Host`): a failed message becomes visible again
at the next drain, the fifth failure moves it to the poison queue.

The chaos is the host's and the network's: sandbox faults while a step runs, the executor
dying at a chosen point (`crashing`), queue messages delivered twice or late, webhooks
delivered again later. A run returns everything the invariants need (`Outcome`).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest

from sandbox import Sandbox
from sandbox.actions import USER_LOGGED_IN
from shared.bootstrap import _STORAGE, App
from shared.config import parse_policy
from shared.demo import environment, product_policies
from shared.settings import Settings
from tests.campaign.invariants import Timeline, Use
from tests.campaign.scenarios import PRODUCTS, Chaos, Script, Step
from tests.crashes import CRASH_POINTS, Crash, crashing

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

#: The queue-triggered functions, by queue (function_app's bindings).
QUEUE_FUNCTIONS = {
    "actions": "execute_action",
    "returns": "handle_return",
    "graph": "handle_graph",
    "lookups": "look_up_activity",
}
POISON_FUNCTIONS = {"actions": "record_poisoned_action"}
#: host.json `extensions.queues.maxDequeueCount`
MAX_DEQUEUE = 5


def call_function(name: str, *args: Any) -> Any:
    """A registered function's user code, sync or async, called as the Python worker would."""
    import function_app
    from sandbox.funcserver import user_function

    result = user_function(function_app.app, name)(*args)
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    return result


@dataclass
class Outcome:
    """What a run left behind, for the invariants."""

    licenses: dict[str, set[str]]
    changes: list[Any]
    audit: list[Any]
    audit_problems: list[str]
    timeline: Timeline
    #: fault-free deliveries that still failed, and other things the final run must not see
    final_failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: how much chaos actually struck: crashes, failed deliveries, duplicates, reorderings
    struck: Counter[str] = field(default_factory=Counter)


class Host:
    """The Functions host's queue behaviour, on Azurite, for one run."""

    def __init__(self, storage: Any, chaos: Chaos, notes: list[str], struck: Counter[str]) -> None:
        self.storage = storage
        self.chaos = chaos
        self.notes = notes
        self.struck = struck
        self._retry: list[tuple[str, Any]] = []  # failed, invisible until the next drain
        self._later: list[tuple[str, dict[str, Any]]] = []  # held back, sent at the next drain

    def drain(self, final: bool = False) -> list[str]:
        """Work through every queue until all are empty; returns deliveries that failed for good."""
        poisoned: list[str] = []
        self._release()
        while True:
            batch = [
                (queue, message, body)
                for queue in QUEUE_FUNCTIONS
                for message, body in self.storage.queues.receive(queue, 32, timedelta(hours=1))
            ]
            if not batch:
                if not final or not (self._retry or self._later):
                    return poisoned
                self._release()  # fault-free: the retries go again at once, up to the poison queue
                continue
            self.chaos.rng.shuffle(batch)
            for queue, message, body in batch:
                failure = self._deliver(queue, message, body)
                if failure:
                    poisoned.append(failure)

    def _release(self) -> None:
        for queue, message in self._retry:
            self.storage.queues.client(queue).update_message(message, visibility_timeout=0)
        self._retry.clear()
        for queue, body in self._later:
            self.storage.queues.send(queue, body)
        self._later.clear()

    def _deliver(self, queue: str, message: Any, body: dict[str, Any]) -> str | None:
        chaos, rng = self.chaos, self.chaos.rng
        if rng.random() < chaos.defer:
            self._later.append((queue, body))  # out of order: after the next drain's start
            self.storage.queues.delete(queue, message)
            self.struck["deferred"] += 1
            return None
        crash = rng.choice(CRASH_POINTS) if rng.random() < chaos.crash else None
        request = QueueMessage(
            id=message.id, body=json.dumps(body).encode(), dequeue_count=message.dequeue_count
        )
        try:
            with crashing(crash):
                call_function(QUEUE_FUNCTIONS[queue], request)
        except (Exception, Crash) as exc:
            self.struck["crash" if isinstance(exc, Crash) else "failed delivery"] += 1
            self.notes.append(
                f"{queue} {message.id} try {message.dequeue_count}: {type(exc).__name__}: {exc}"
            )
            if message.dequeue_count < MAX_DEQUEUE:
                self._retry.append((queue, message))
                return None
            self.storage.queues.delete(queue, message)
            self.storage.queues.send(queue + "-poison", body)
            if queue in POISON_FUNCTIONS:
                call_function(POISON_FUNCTIONS[queue], request)
            self.struck["poisoned"] += 1
            return f"{queue} message poisoned after {message.dequeue_count} tries: {exc}"
        self.storage.queues.delete(queue, message)
        if rng.random() < chaos.duplicate:
            self._later.append((queue, body))  # at-least-once: the same message again, later
            self.struck["duplicated"] += 1
        return None


class Campaign:
    """The shared sandbox, Azurite and function server; `run` plays one script under chaos."""

    def __init__(self, sb: Sandbox, storage_connection: str, base_url: str, secrets: dict[str, str]) -> None:
        self.sb = sb
        self.storage_connection = storage_connection
        self.base_url = base_url
        self.secrets = secrets

    def run(self, script: Script, chaos: Chaos) -> Outcome:
        sb = self.sb
        sb.load(users=script.users, seed=script.seed, start=START)
        org = sb.org
        policies = product_policies([script.product], {"confluence": org.entra_group_id("confluence")})
        raw = policies.model_dump(mode="json")
        for policy in raw["policies"]:
            policy.update(
                mode="enforce",
                inactive_after_days=script.inactive_after_days,
                blast_radius={"max_revocations": 1_000_000, "max_revocation_percent": 100},
            )
        env = {
            **sb.env(),
            **self.secrets,
            "AzureWebJobsStorage": self.storage_connection,
            "SEATWARDEN_TABLE_PREFIX": "c" + uuid.uuid4().hex[:10],
            "SEATWARDEN_POLICY": json.dumps(parse_policy(raw, "campaign").model_dump(mode="json")),
            "SEATWARDEN_PUBLIC_URL": self.base_url,
            "ENTRA_CLIENT_CERT_PATH": "",
        }
        timeline = self._timeline(script)
        notes: list[str] = []
        struck: Counter[str] = Counter()
        with environment(env):
            storage = App(Settings.from_env(env), clock=sb.clock.now).storage
            host = Host(storage, chaos, notes, struck)
            play = _Play(self, chaos, host, timeline, notes, struck)
            for index, step in enumerate(script.steps):
                for rule in chaos.faults.get(index, ()):
                    sb.faults.inject(
                        rule.kind,
                        rule.path_contains,
                        count=rule.count,
                        probability=rule.probability,
                        retry_after=0,
                    )
                try:
                    play.step(step)
                finally:
                    sb.faults.clear()
            final = play.closing_run()
            verdict = storage.audit.verify()
            audit = storage.audit.query(limit=1_000_000)
        # The process keeps one Storage per prefix; hundreds of finished ones need not stay.
        _STORAGE.pop((self.storage_connection, env["SEATWARDEN_TABLE_PREFIX"]), None)
        return Outcome(
            licenses={p: org.members(f"{p}-users") for p in PRODUCTS},
            changes=list(sb.changes()),
            audit=audit,
            audit_problems=list(verdict.problems),
            timeline=timeline,
            final_failures=final,
            notes=notes,
            struck=struck,
        )

    def _timeline(self, script: Script) -> Timeline:
        org = self.sb.org
        entra_group = {p: org.entra_group_id(p) for p in PRODUCTS}
        by_oid = {u.entra_object_id: u.account_id for u in org.users}
        last_active = {}
        for user in org.users:
            for product in PRODUCTS:
                used = org.last_active(user.account_id, product)
                if used is not None:
                    last_active[(user.account_id, product)] = used
        return Timeline(
            entra_group=entra_group,
            entitled={p: {by_oid[o] for o in org.entra_members(g)} for p, g in entra_group.items()},
            last_active=last_active,
            access_groups={g.id: p for p in PRODUCTS for g in org.access_groups(p)},
            threshold_days={p: script.inactive_after_days for p in PRODUCTS},
        )


class _Play:
    """The steps of one run."""

    def __init__(
        self,
        campaign: Campaign,
        chaos: Chaos,
        host: Host,
        timeline: Timeline,
        notes: list[str],
        struck: Counter[str],
    ) -> None:
        self.sb = campaign.sb
        self.url = campaign.base_url
        self.secrets = campaign.secrets
        self.chaos = chaos
        self.host = host
        self.timeline = timeline
        self.notes = notes
        self.struck = struck
        self.deliveries: list[Any] = []

    def step(self, step: Step) -> None:
        handlers: dict[str, Callable[[Step], None]] = {
            "night": lambda _: self.night(),
            "drain": lambda _: self.host.drain(),
            "days": lambda s: self.sb.clock.advance(timedelta(days=s.days)),
            "use": self.use,
            "entra": self.entra,
        }
        handlers[step.kind](step)

    def night(self) -> None:
        try:
            call_function("nightly_reconcile", TimerRequest(past_due=False))
        except Exception as exc:  # the timer fires again tomorrow; the host only logs it
            self.struck["failed night"] += 1
            self.notes.append(f"nightly reconcile failed: {type(exc).__name__}: {exc}")

    def use(self, step: Step) -> None:
        org = self.sb.org
        user = org.users[step.person]
        if user.status != "active":
            return  # suspended or deactivated: cannot sign in
        now = org.clock.now()
        for product in PRODUCTS:
            if user.entra_object_id in org.entra_members(org.entra_group_id(product)):
                seq = len(org.changes())
                org.record_activity(user, org.product_index(product), int(now.timestamp()))
                self.timeline.uses.append(Use(seq, user.account_id, product, now))
        if step.jira:
            delivery = self.sb.send_jira_webhook(
                f"{self.url}/api/webhooks/atlassian",
                "user_updated",
                account_id=user.account_id,
                secret=self.secrets["JIRA_WEBHOOK_SECRET"],
            )
        else:
            delivery = self.sb.send_audit_webhook(
                f"{self.url}/api/webhooks/atlassian",
                USER_LOGGED_IN,
                account_id=user.account_id,
                authorization=self.secrets["ATLASSIAN_AUDIT_WEBHOOK_AUTHORIZATION"],
            )
        self._delivered(delivery)

    def entra(self, step: Step) -> None:
        org = self.sb.org
        user = org.users[step.person]
        group_id = org.entra_group_id(step.product)
        if user.entra_object_id in org.entra_members(group_id):
            self.sb.entra_remove_member(group_id, user.entra_object_id)
        else:
            self.sb.entra_add_member(group_id, user.entra_object_id)
        if step.product == "confluence":  # the policy entitled from Entra through Graph
            self._delivered(
                self.sb.send_graph_notification(
                    f"{self.url}/api/webhooks/graph",
                    group_id=group_id,
                    client_state=self.secrets["GRAPH_CLIENT_STATE"],
                )
            )

    def _delivered(self, delivery: Any) -> None:
        if delivery.status_code >= 300:
            self.notes.append(f"webhook answered {delivery.status_code}: {delivery.text}")
        self.deliveries.append(delivery)
        rng = self.chaos.rng
        if rng.random() < self.chaos.replay_webhook:
            # The vendor delivers again: this one, or one from earlier (out of order).
            rng.choice(self.deliveries).replay()
            self.struck["webhook replayed"] += 1

    def closing_run(self) -> list[str]:
        """The fault-free run after the scenario: the host catches up, a night, its actions."""
        self.chaos = self.host.chaos = _calm(self.chaos)
        failures = self.host.drain(final=True)
        before = len(self.notes)
        self.night()
        failures += self.notes[before:]
        failures += self.host.drain(final=True)
        return failures


def _calm(chaos: Chaos) -> Chaos:
    return Chaos(seed=chaos.seed, rng=chaos.rng)


def settings_secrets() -> dict[str, str]:
    import secrets

    return {
        "JIRA_WEBHOOK_SECRET": secrets.token_hex(16),
        "ATLASSIAN_AUDIT_WEBHOOK_AUTHORIZATION": "Bearer " + secrets.token_hex(16),
        "GRAPH_CLIENT_STATE": secrets.token_hex(16),
    }
