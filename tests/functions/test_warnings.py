"""Warnings before a revocation and the administrators' summary, through the functions.

The nightly reconcile function plans and queues the warnings; `send_warnings` sends them
through the sandbox's Graph `sendMail`, which records every mail. The functions run on the
sandbox's clock here, so "the next night" is the sandbox a day later.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from datetime import date, timedelta
from typing import Any

import pytest

from shared.bootstrap import App
from shared.config import parse_policy
from shared.demo import drain
from shared.errors import GraphThrottled
from shared.forecast import Due
from shared.services.warnings import product_name
from shared.settings import Settings
from tests.functions.conftest import World, policies_with, queue_message, run_function

ADMINS = "it-admins@example.com,licenses@example.com"


@pytest.fixture
def mail(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """The world with a sender mailbox, administrators, and the functions on sandbox time."""
    sb = world.sb
    sender = next(u for u in sb.org.users if u.account_status == "active" and not u.suspended)
    monkeypatch.setenv("SEATWARDEN_MAIL_SENDER", sender.upn)
    monkeypatch.setenv("SEATWARDEN_ADMIN_MAIL", ADMINS)
    # Exchange Online's 30 a minute would make every test wait; the pacing is tested on its own.
    monkeypatch.setenv("SEATWARDEN_MAIL_PER_MINUTE", "60000")
    monkeypatch.setattr(
        App, "from_env", classmethod(lambda cls: cls(Settings.from_env(), clock=sb.clock.now))
    )
    world.set_policies(policies_with(sb, mode="enforce", warn_before_days=7))
    make_due(world, "confluence", people=3, in_days=3)
    make_due(world, "jira-software", people=2, in_days=6)
    return world


def make_due(world: World, product: str, people: int, in_days: int) -> list[str]:
    """Make ``people`` ordinary licensed, entitled people last active so that INACTIVE (90 days,
    plus a day of Atlassian's lag) takes their license ``in_days`` from now; they stop using it."""
    org = world.sb.org
    excluded = org.members("service-accounts") | org.members("executives")
    candidates = (
        (org.members(f"{product}-users") & org.members(f"{product}-user-role"))
        - org.members(f"{product}-unlicensed-users")
        - excluded
    )
    last_use = world.sb.clock.now() - timedelta(days=90 + 1 - in_days)
    chosen = []
    with org.lock:
        for account_id in sorted(candidates):
            user = org.user(account_id)
            if user.status != "active" or set(user.platform_roles) != {"atlassian/user"}:
                continue
            user.last_active[org.product_index(product)] = int(last_use.timestamp())
            user.daily_use_probability = 0.0
            chosen.append(account_id)
            if len(chosen) == people:
                return chosen
    raise AssertionError(f"not {people} ordinary people licensed for {product}")


def drain_warnings(world: World) -> int:
    return drain(world.app, "warnings", "send_warnings")


def take_messages(world: World, queue: str = "warnings") -> list[dict[str, Any]]:
    """Everything on a queue, taken off it as the host would before calling the function."""
    bodies = []
    while batch := world.storage.queues.receive(queue, max_messages=32):
        for message, body in batch:
            world.storage.queues.delete(queue, message)
            bodies.append(body)
    return bodies


def send_all(messages: list[dict[str, Any]], tag: str, dequeue_count: int = 1) -> None:
    for body in messages:
        run_function("send_warnings", queue_message(body, tag, dequeue_count=dequeue_count))


def assert_everyone_due_was_warned_once(world: World) -> None:
    sent = Counter((m.to, m.subject) for m in warning_mails(world))
    assert set(sent.values()) == {1}
    assert len(sent) == len(due_tonight(world))


def warning_mails(world: World) -> list[Any]:
    return [m for m in world.sb.mails() if "license will be removed" in m.subject]


def summaries(world: World) -> list[Any]:
    return [m for m in world.sb.mails() if m.subject.startswith("Seatwarden:")]


def due_tonight(world: World) -> list[tuple[str, Due]]:
    """(product, due) for every person the latest enforcing runs forecast within 7 days."""
    today = world.sb.clock.now().date()
    found = []
    for policy in world.policies.policies:
        (run,) = world.storage.runs.list(policy=policy.name, limit=1)
        for raw in world.storage.dues.load(run.run_id):
            due = Due.from_dict(raw)
            if due.due_on <= today + timedelta(days=7):
                found.append((policy.product, due))
    return found


def mail_for(world: World, product: str, due: Due) -> list[Any]:
    return [
        m
        for m in warning_mails(world)
        if m.to == (due.email,) and product_name(product) in m.subject and _day(due.due_on) in m.subject
    ]


def _day(value: date) -> str:
    return f"{value:%A} {value.day} {value:%B %Y}"


def test_a_person_due_within_the_warning_period_gets_one_mail_with_product_date_and_relicense_link(
    mail: World,
) -> None:
    mail.nightly()
    due = due_tonight(mail)
    assert due, "the sandbox org has people due within a week"

    drain_warnings(mail)

    assert len(warning_mails(mail)) == len(due)
    for product, person in due:
        (sent,) = mail_for(mail, product, person)
        assert sent.sender == os.environ["SEATWARDEN_MAIL_SENDER"]
        assert f"{mail.base_url}/api/relicense?product={product}" in sent.content
        assert f"open {product_name(product)}" in sent.content
        if person.last_active is None:
            assert "since you were given access" in sent.content
        else:
            assert _day(person.last_active) in sent.content
        state, _ = mail.storage.users.get(product, person.account_id)
        assert state.warned_for == person.due_on
        (entry,) = [e for e in mail.audit_for(person.account_id, "WARN") if e.product == product]
        assert entry.after["warned_for"] == person.due_on.isoformat()
        assert entry.after["mail"] == "sent"
        assert entry.after["to"] == person.email


def test_the_next_night_a_person_still_due_on_the_same_day_gets_no_second_mail(mail: World) -> None:
    mail.nightly()
    drain_warnings(mail)
    first = {(product, d.account_id, d.due_on) for product, d in due_tonight(mail)}
    mailed_first = len(warning_mails(mail))

    mail.sb.advance(days=1)
    mail.nightly()
    still = {(product, d.account_id, d.due_on) for product, d in due_tonight(mail)}
    drain_warnings(mail)

    assert first & still, "someone warned last night is still due on the same day"
    sent = [(m.to, m.subject) for m in warning_mails(mail)]
    assert len(sent) == len(set(sent)), "nobody was warned twice for one revocation"
    assert len(sent) == mailed_first + len(still - first)


def test_a_redelivered_warnings_message_sends_nothing_more(mail: World) -> None:
    mail.nightly()
    messages = take_messages(mail)
    assert messages
    send_all(messages, "first")
    sent = len(mail.sb.mails())
    audited = len(mail.storage.audit.query(action="WARN", limit=1000))
    assert sent == len(due_tonight(mail)) + 1  # and the summary

    send_all(messages, "again", dequeue_count=2)

    assert len(mail.sb.mails()) == sent
    assert len(mail.storage.audit.query(action="WARN", limit=1000)) == audited


def test_two_workers_given_the_same_batch_at_once_send_each_warning_once(mail: World) -> None:
    mail.nightly()
    messages = take_messages(mail)
    go = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(tag: str) -> None:
        try:
            go.wait()
            send_all(messages, tag)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    sent = Counter((m.to, m.subject) for m in mail.sb.mails())
    assert sent and set(sent.values()) == {1}
    assert len(warning_mails(mail)) == len(due_tonight(mail))
    assert len(summaries(mail)) == 1


def test_a_throttled_send_gives_its_claim_back_and_the_retry_sends_it_once(mail: World) -> None:
    mail.nightly()
    messages = take_messages(mail)
    assert len(due_tonight(mail)) >= 2
    # Every try of the first send is throttled: after the retries Graph has queued nothing.
    mail.sb.faults.inject(kind="429", path_contains="sendMail", count=5, retry_after=0)

    with pytest.raises(GraphThrottled):
        run_function("send_warnings", queue_message(messages[0], "first"))
    assert warning_mails(mail) == []

    send_all(messages, "retry", dequeue_count=2)
    assert_everyone_due_was_warned_once(mail)


def test_a_send_that_may_have_gone_out_is_never_repeated_and_is_audited_as_unconfirmed(mail: World) -> None:
    mail.nightly()
    messages = take_messages(mail)
    # A 500 says nothing certain about a POST: the mail may be queued. Tonight's first send.
    mail.sb.faults.inject(kind="5xx", path_contains="sendMail", count=1, status=500)

    send_all(messages, "first")
    send_all(messages, "again", dequeue_count=2)

    due = due_tonight(mail)
    assert len(warning_mails(mail)) == len(due) - 1, "the one in doubt is not sent again"
    unconfirmed = [
        e for e in mail.storage.audit.query(action="WARN", limit=1000) if e.after["mail"] != "sent"
    ]
    (entry,) = unconfirmed
    assert entry.after["mail"] == "unconfirmed"
    assert "500" in entry.after["error"]


def test_a_worker_that_stops_after_sending_does_not_send_again_when_its_message_returns(
    mail: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    mail.nightly()
    messages = take_messages(mail)
    audit = mail.storage.audit
    real_append = audit.append

    def crash_once(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(audit, "append", real_append)
        raise RuntimeError("the worker stopped here")

    monkeypatch.setattr(audit, "append", crash_once)
    with pytest.raises(RuntimeError, match="stopped"):
        run_function("send_warnings", queue_message(messages[0], "first"))
    assert len(warning_mails(mail)) == 1

    send_all(messages, "redelivered", dequeue_count=2)
    assert_everyone_due_was_warned_once(mail)


def test_a_policy_in_report_mode_warns_nobody(mail: World) -> None:
    mail.set_policies(policies_with(mail.sb, mode="report", warn_before_days=7))
    mail.nightly()
    assert any(mail.storage.dues.load(r.run_id) for r in mail.storage.runs.list(limit=10)), (
        "people are due; report mode just does not tell them"
    )

    drain_warnings(mail)

    assert warning_mails(mail) == []
    assert mail.storage.audit.query(action="WARN", limit=10) == []
    (summary,) = summaries(mail)
    assert "Report mode" in summary.content


def test_without_a_sender_mailbox_nothing_is_sent_nothing_fails_and_the_log_says_so_once(
    mail: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("SEATWARDEN_MAIL_SENDER")
    with caplog.at_level(logging.INFO, logger="seatwarden"):
        mail.nightly()

    assert due_tonight(mail), "people are due; there is just no mailbox to tell them from"
    assert {r.status for r in mail.storage.runs.list(limit=10)} <= {"applying", "done"}
    assert mail.storage.queues.peek_count("warnings") == 0
    assert mail.sb.mails() == []
    said = [r for r in caplog.records if "mail is not configured" in r.getMessage()]
    assert len(said) == 1
    assert "SEATWARDEN_MAIL_SENDER" in said[0].getMessage()


def test_the_administrators_get_one_summary_with_the_held_run_first_and_how_to_approve_it(
    mail: World,
) -> None:
    raw = policies_with(mail.sb, mode="enforce", warn_before_days=7).model_dump(mode="json")
    for policy in raw["policies"]:
        if policy["product"] == "confluence":
            policy["blast_radius"] = {"max_revocations": 0, "max_revocation_percent": 60}
    mail.set_policies(parse_policy(raw, "one held policy"))

    mail.nightly()
    messages = take_messages(mail)
    send_all(messages, "first")
    send_all(messages[-1:], "again", dequeue_count=2)

    (summary,) = summaries(mail)
    assert set(summary.to) == set(ADMINS.split(","))
    assert "1 held for approval" in summary.subject
    runs = {r.policy: r for r in mail.storage.runs.list(limit=10)}
    held = runs["confluence"]
    assert held.status == "held"
    body = summary.content
    positions = {name: body.index(f": {name} (") for name in runs}
    assert positions["confluence"] == min(positions.values()), "the held run comes first"
    assert f"seatwarden approve {held.run_id}" in body
    assert f"POST {mail.base_url}/api/admin/runs/{held.run_id}/approve" in body
    assert held.verdict["why"] in body
    assert f"{mail.base_url}/api/admin/report" in body
    warned = Counter(e.run_id for e in mail.storage.audit.query(action="WARN", limit=1000))
    assert warned[held.run_id] == 0, "a held run's people are not warned while it waits"
    for name, run in runs.items():
        section = body[positions[name] :].split("\n\n", 1)[0]
        assert f"Warned tonight: {warned[run.run_id]}" in section
        assert f"Licensed: {run.licensed_before} before, {run.licensed_after} after" in section
