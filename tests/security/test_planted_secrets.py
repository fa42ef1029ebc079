"""Planted secrets never leave: not in a log line, an HTTP answer, an error, the request log,
`seatwarden diagnose`, a table row or a queued message.

Every credential Seatwarden holds is set to a distinctive value: the Atlassian API key and
the Entra client secret (the sandbox's own, so the flows work), the Jira webhook secret,
the audit-log webhook's Authorization and Graph's clientState; a wrong API key and a wrong
client secret are planted for the flows that must fail with them. Then real flows run,
failing ones too (401s, forged webhooks, 5xx and 429 from the sandbox's fault injection, a
refused token), with every logger at DEBUG, and everything they wrote is searched.
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from azure.data.tables import TableServiceClient
from typer.testing import CliRunner

from shared.cli import app as cli
from shared.services.webhooks import jira_signature
from shared.store.queues import POISON_SUFFIX, QUEUE_KINDS
from tests.functions.conftest import World, opened_world, queue_message, run_function, timer


def planted(name: str) -> str:
    return f"PLANTED-{name}-{uuid.uuid4().hex}"


JIRA_SECRET = planted("jira-webhook-secret")
AUDIT_AUTHORIZATION = "Bearer " + planted("audit-webhook-authorization")
CLIENT_STATE = planted("graph-client-state")
WRONG_API_KEY = "ATCTT3x" + planted("wrong-atlassian-api-key")
WRONG_CLIENT_SECRET = planted("wrong-entra-client-secret")


class Evidence:
    """Everything the flows wrote that a person or a log pipeline could read, by where it was."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, text: object) -> None:
        self.texts.append((where, text if isinstance(text, str) else repr(text)))

    def failure(self, where: str, work: Callable[[], Any]) -> None:
        """Run `work`, which may raise as the host would see it; keep the whole chained traceback."""
        try:
            work()
        except Exception as exc:
            self.add(where, "".join(traceback.format_exception(exc)))
            self.add(where + " (args)", [repr(e.args) for e in _chain(exc)])

    def answer(self, where: str, response: Any) -> None:
        self.add(where, f"{response.status_code} {dict(response.headers)} {response.text}")

    def leaks(self, secrets: dict[str, str]) -> list[str]:
        found = []
        for name, secret in secrets.items():
            for where, text in self.texts:
                if secret in text:
                    found.append(f"{name} in {where}: ...{_around(text, secret)}...")
        return found


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def _around(text: str, secret: str) -> str:
    at = text.index(secret)
    return text[max(0, at - 80) : at + len(secret) + 20]


@pytest.fixture
def secrets_world(azurite: str, table_prefix: str) -> Iterator[World]:
    with opened_world(
        azurite,
        table_prefix,
        JIRA_WEBHOOK_SECRET=JIRA_SECRET,
        ATLASSIAN_AUDIT_WEBHOOK_AUTHORIZATION=AUDIT_AUTHORIZATION,
        GRAPH_CLIENT_STATE=CLIENT_STATE,
    ) as world:
        yield world


def every_secret(world: World) -> dict[str, str]:
    return {
        "ATLASSIAN_API_KEY": world.env["ATLASSIAN_API_KEY"],
        "ENTRA_CLIENT_SECRET": world.env["ENTRA_CLIENT_SECRET"],
        "JIRA_WEBHOOK_SECRET": JIRA_SECRET,
        "ATLASSIAN_AUDIT_WEBHOOK_AUTHORIZATION": AUDIT_AUTHORIZATION,
        "the audit Authorization's token": AUDIT_AUTHORIZATION.removeprefix("Bearer "),
        "GRAPH_CLIENT_STATE": CLIENT_STATE,
        "a wrong ATLASSIAN_API_KEY": WRONG_API_KEY,
        "a wrong ENTRA_CLIENT_SECRET": WRONG_CLIENT_SECRET,
    }


def run_webhooks(world: World, evidence: Evidence) -> None:
    sb, url = world.sb, world.url("/api/webhooks/atlassian")
    person = sb.org.users[0].account_id
    group = sb.org.entra_group_id("confluence")
    for name, delivery in {
        "signed Jira webhook": sb.send_jira_webhook(
            url, "user_updated", account_id=person, secret=JIRA_SECRET
        ),
        "forged Jira webhook": sb.send_jira_webhook(
            url, "user_updated", account_id=person, secret=JIRA_SECRET[:-1]
        ),
        "audit webhook": sb.send_audit_webhook(
            url, "user_logged_in", account_id=person, authorization=AUDIT_AUTHORIZATION
        ),
        "audit webhook, wrong Authorization": sb.send_audit_webhook(
            url, "user_logged_in", account_id=person, authorization=AUDIT_AUTHORIZATION + "x"
        ),
        "Graph notification": sb.send_graph_notification(
            world.url("/api/webhooks/graph"), group_id=group, client_state=CLIENT_STATE
        ),
        "Graph notification, wrong clientState": sb.send_graph_notification(
            world.url("/api/webhooks/graph"), group_id=group, client_state=CLIENT_STATE.upper()
        ),
    }.items():
        evidence.add(name, f"{delivery.status_code} {delivery.text}")
    garbage = b'{"webhookEvent": "user_updated", "user": {"accountId": "' + JIRA_SECRET.encode() + b'"'
    evidence.answer(
        "signed garbage echoing the secret",
        httpx.post(url, content=garbage, headers={"X-Hub-Signature": jira_signature(JIRA_SECRET, garbage)}),
    )


def run_nights_and_queues(world: World, evidence: Evidence) -> None:
    sb = world.sb
    # A night through 5xx and 429 answers that the retries outlast.
    sb.faults.inject(kind="5xx", path_contains="/users/search", count=1, status=503)
    sb.faults.inject(kind="429", path_contains="/groups/search", count=1)
    evidence.failure("nightly reconcile", world.nightly)
    evidence.failure("subscription keeper", world.subscribe)
    # The executor and the Graph handler against a service that keeps failing (501: not
    # retried, so the failure comes at once, not after five backed-off tries).
    sb.faults.inject(kind="5xx", path_contains="/memberships", count=None, status=501)
    sb.faults.inject(kind="5xx", path_contains="/delta", count=None, status=501)
    for queue, function in (
        ("actions", "execute_action"),
        ("returns", "handle_return"),
        ("graph", "handle_graph"),
    ):
        for message, body in world.storage.queues.receive(queue, max_messages=1):
            evidence.failure(
                f"{function} while the vendor fails",
                lambda f=function, b=body: run_function(f, queue_message(b)),
            )
            world.storage.queues.delete(queue, message)
    sb.faults.clear()
    for message, body in world.storage.queues.receive("actions", max_messages=3):
        evidence.failure("execute_action", lambda b=body: run_function("execute_action", queue_message(b)))
        world.storage.queues.delete("actions", message)


def run_with_wrong_credentials(world: World, evidence: Evidence, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as wrong:
        wrong.setenv("ATLASSIAN_API_KEY", WRONG_API_KEY)
        evidence.failure(
            "nightly reconcile with a wrong API key (401)", lambda: run_function("nightly_reconcile", timer())
        )
        result = CliRunner().invoke(cli, ["plan", "--json"])
        evidence.add("seatwarden plan with a wrong API key", result.output + repr(result.exception))
    with monkeypatch.context() as wrong:
        wrong.setenv("ENTRA_CLIENT_SECRET", WRONG_CLIENT_SECRET)
        evidence.failure("subscription keeper with a wrong client secret", world.subscribe)
        result = CliRunner().invoke(cli, ["plan", "--json"])
        evidence.add("seatwarden plan with a wrong client secret", result.output + repr(result.exception))


def run_with_a_request_log(world: World, evidence: Evidence) -> None:
    """A report-mode reconcile in this process, so its request log can be read: once through
    injected 5xx, 429 and a dropped connection, once with a wrong API key."""
    from shared.bootstrap import App
    from shared.services.reconcile import Reconciler
    from shared.settings import Settings

    async def reconcile(app: App) -> None:
        async with app.clients() as (atlassian, graph):
            await Reconciler(app.storage, atlassian, graph, app.clock).run(app.policies, mode="report")

    world.sb.faults.inject(kind="5xx", path_contains="/users/search", count=2, status=500)
    world.sb.faults.inject(kind="429", path_contains="/groups/search", count=1)
    world.sb.faults.inject(kind="drop", path_contains="/transitiveMembers", count=1)
    evidence.failure("a reconcile through faults", lambda: asyncio.run(reconcile(world.app)))
    evidence.add("the request log", world.app.request_log.to_jsonl())
    wrong = App(
        Settings.from_env({**world.env, "ATLASSIAN_API_KEY": WRONG_API_KEY}), clock=world.sb.clock.now
    )
    evidence.failure("a reconcile with a wrong API key", lambda: asyncio.run(reconcile(wrong)))
    evidence.add("the request log with a wrong API key", wrong.request_log.to_jsonl())
    assert any(r.tries > 1 for r in world.app.request_log), world.app.request_log.to_jsonl()
    assert any(r.status == 401 for r in wrong.request_log)
    world.sb.faults.clear()


def stored(world: World) -> dict[str, str]:
    service = TableServiceClient.from_connection_string(world.env["AzureWebJobsStorage"])
    found = {}
    for name in world.storage.table_names.values():
        found[f"table {name}"] = json.dumps(list(service.get_table_client(name).list_entities()), default=str)
    for kind in QUEUE_KINDS:
        for queue in (kind, kind + POISON_SUFFIX):
            messages = world.storage.queues.client(queue).peek_messages(max_messages=32)
            found[f"queue {queue}"] = json.dumps([m.content for m in messages])
    return found


def test_planted_secrets_appear_in_no_log_answer_error_request_log_or_table(
    secrets_world: World,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world, evidence = secrets_world, Evidence()
    caplog.set_level(logging.DEBUG)
    run_webhooks(world, evidence)
    run_nights_and_queues(world, evidence)
    run_with_wrong_credentials(world, evidence, monkeypatch)
    run_with_a_request_log(world, evidence)
    diagnose = CliRunner().invoke(cli, ["diagnose", "--json"])
    assert diagnose.exit_code == 0, diagnose.output
    evidence.add("seatwarden diagnose --json", diagnose.output)
    evidence.add("seatwarden diagnose", CliRunner().invoke(cli, ["diagnose"]).output)

    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in caplog.records:
        evidence.add(f"log {record.name}", formatter.format(record))
    captured = capsys.readouterr()
    evidence.add("stdout", captured.out)
    evidence.add("stderr", captured.err)
    for where, text in stored(world).items():
        evidence.add(where, text)

    # The flows did what they are for: the failing ones failed, the others logged and stored.
    wheres = {where for where, _ in evidence.texts}
    assert "nightly reconcile with a wrong API key (401)" in wheres
    assert any(w.startswith("execute_action while the vendor fails") for w in wheres)
    assert len(caplog.records) > 20 and len(json.loads(diagnose.stdout)["calls"]) > 0
    assert evidence.leaks(every_secret(world)) == []


def test_the_search_finds_a_secret_wherever_it_was_written() -> None:
    """The search can fail: a secret in an error's cause, deep in a traceback, is found."""
    evidence = Evidence()

    def fails() -> None:
        try:
            raise ValueError(f"vendor said: bad key {WRONG_API_KEY}")
        except ValueError as exc:
            raise RuntimeError("the night failed") from exc

    evidence.failure("a chained error", fails)
    evidence.add("a log line", "nothing here")
    found = evidence.leaks({"key": WRONG_API_KEY})
    assert found and all(line.startswith("key in a chained error") for line in found)
