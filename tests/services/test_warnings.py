"""Warnings and the run summary, below the functions: pacing, batches, the mails' words, settings."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from shared.config import parse_policy
from shared.forecast import Due
from shared.http import Pacer
from shared.services import warnings as notices
from shared.services.reconcile import PolicyOutcome
from shared.services.warnings import BATCH_SIZE, MailSetup, PendingWarning, enqueue_notices, warning_mail
from shared.settings import InvalidSetting, Settings
from shared.store import Storage
from tests.clients.conftest import FakeClock
from tests.store import open_storage

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
MAIL = MailSetup(
    sender="seatwarden@example.com", admins=("admins@example.com",), public_url="https://sw.example"
)


def policy(warn_before_days: int = 7):  # type: ignore[no-untyped-def]
    return parse_policy(
        {
            "policies": [
                {
                    "name": "confluence",
                    "product": "confluence",
                    "entitlement": {"atlassian_group": "confluence-user-role"},
                    "access_group": "confluence-users",
                    "marker_group": "confluence-unlicensed-users",
                    "warn_before_days": warn_before_days,
                    "mode": "enforce",
                }
            ]
        },
        "test",
    ).policies[0]


def dues(count: int, first_in_days: int = 1) -> list[dict]:  # type: ignore[type-arg]
    return [
        Due(
            f"712020:{i:04d}",
            f"p{i}@example.com",
            NOW.date() + timedelta(days=first_in_days + i % 7),
            date(2025, 12, 1),
            85,
            90,
        ).to_dict()
        for i in range(count)
    ]


@pytest.fixture
def storage(azurite: str, table_prefix: str) -> Storage:
    return open_storage(azurite, table_prefix)


def queued(storage: Storage, run_id: str, due: list[dict], mail: MailSetup = MAIL, warn: int = 7) -> dict:  # type: ignore[type-arg]
    storage.dues.save(run_id, due)
    outcome = PolicyOutcome("confluence", "confluence", run_id, "applying")
    return enqueue_notices(storage, mail, object(), [policy(warn)], [outcome], {}, NOW)


def test_the_one_pacing_policy_lets_the_mailbox_send_thirty_mails_a_minute() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock.monotonic, sleep=clock.sleep)
    start = clock.now

    async def send(n: int) -> None:
        for _ in range(n):
            async with pacer.slot("graph.mail"):
                pass

    asyncio.run(send(31))
    assert clock.now - start >= 60.0
    assert clock.now - start < 61.0


def test_warnings_are_queued_in_batches_of_a_minute_that_become_visible_one_after_another(
    storage: Storage,
) -> None:
    done = queued(storage, "confluence.0000000000001", dues(2 * BATCH_SIZE + 5))

    assert done["warnings"] == 2 * BATCH_SIZE + 5
    assert done["batches"] == 3
    assert storage.queues.peek_count("warnings") == 3
    visible = storage.queues.receive("warnings", max_messages=32)
    (first,) = [body for _message, body in visible]
    assert first["batch"] == 0 and len(first["warnings"]) == BATCH_SIZE
    assert MAIL.batch_spacing() > timedelta(minutes=1), "batches never overlap at 30 a minute"
    soonest = [w["due_on"] for w in first["warnings"]]
    assert soonest == sorted(soonest), "the soonest revocations are warned first"


def test_no_more_warnings_are_queued_a_night_than_the_mailbox_may_send_the_rest_wait(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notices, "MAX_WARNINGS_PER_NIGHT", 4)
    fast = replace(MAIL, per_minute=60_000)
    done = queued(storage, "confluence.0000000000002", dues(10), fast)

    assert done == {**done, "warnings": 4, "deferred": 6}
    (body,) = [b for _m, b in storage.queues.receive("warnings")]
    assert sorted(w["due_on"] for w in body["warnings"]) == sorted(d["due_on"] for d in dues(10))[:4]


def test_people_due_after_the_warning_period_are_not_warned_yet(storage: Storage) -> None:
    due = dues(7)  # due in 1 to 7 days
    done = queued(storage, "confluence.0000000000003", due, replace(MAIL, admins=()), warn=3)
    assert done["warnings"] == 3
    (body,) = [b for _m, b in storage.queues.receive("warnings")]
    assert all(date.fromisoformat(w["due_on"]) <= NOW.date() + timedelta(days=3) for w in body["warnings"])


def test_a_policy_without_a_warning_period_and_no_administrators_queues_nothing(storage: Storage) -> None:
    done = queued(storage, "confluence.0000000000004", dues(5), replace(MAIL, admins=()), warn=0)
    assert done == {"warnings": 0, "deferred": 0}
    assert storage.queues.peek_count("warnings") == 0


def warning(last_active: date | None) -> PendingWarning:
    due = Due("712020:1", "ada@example.com", date(2026, 3, 9), last_active, 98, 104)
    return PendingWarning("confluence", "confluence", "confluence.1", due)


def test_the_warning_to_someone_who_never_used_the_product_says_so_and_when_it_goes() -> None:
    subject, body = warning_mail(warning(None), MAIL)
    assert subject == "Your Confluence license will be removed on Monday 9 March 2026 unless you use it"
    assert "You have not used Confluence since you were given access to it." in body
    assert "after 104 days without use" in body
    assert "please do it by Sunday 8 March 2026" in body
    assert "https://sw.example/api/relicense?product=confluence" in body


def test_without_a_public_url_the_warning_sends_people_to_their_administrators() -> None:
    _subject, body = warning_mail(warning(date(2025, 11, 25)), replace(MAIL, public_url=None))
    assert "since Tuesday 25 November 2025" in body
    assert "/api/relicense" not in body
    assert "ask your Atlassian administrators" in body


def test_mail_settings_that_cannot_work_are_refused_by_name() -> None:
    with pytest.raises(InvalidSetting, match="SEATWARDEN_MAIL_PER_MINUTE"):
        MailSetup.from_settings(Settings.from_env({"SEATWARDEN_MAIL_PER_MINUTE": "fast"}))
    with pytest.raises(InvalidSetting, match="SEATWARDEN_MAIL_PER_MINUTE"):
        MailSetup.from_settings(Settings.from_env({"SEATWARDEN_MAIL_PER_MINUTE": "0"}))
    with pytest.raises(InvalidSetting, match="SEATWARDEN_ADMIN_MAIL"):
        MailSetup.from_settings(Settings.from_env({"SEATWARDEN_ADMIN_MAIL": "a@example.com, bob"}))
    setup = MailSetup.from_settings(
        Settings.from_env(
            {
                "SEATWARDEN_MAIL_SENDER": "sw@example.com",
                "SEATWARDEN_ADMIN_MAIL": " a@example.com ,b@example.com,",
                "SEATWARDEN_PUBLIC_URL": "https://sw.example/",
            }
        )
    )
    assert setup.admins == ("a@example.com", "b@example.com")
    assert setup.per_minute == 30.0
    assert setup.relicense_link("jira-software") == "https://sw.example/api/relicense?product=jira-software"
    assert setup.unavailable(object()) is None
    assert "SEATWARDEN_MAIL_SENDER" in (replace(setup, sender=None).unavailable(object()) or "")
    assert "Graph" in (setup.unavailable(None) or "")


def test_a_reconcile_given_no_mail_setup_queues_nothing_and_says_so_once(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    storage.dues.save("confluence.0000000000005", dues(3))
    outcome = PolicyOutcome("confluence", "confluence", "confluence.0000000000005", "done")
    with caplog.at_level("INFO", logger="seatwarden.warnings"):
        done = enqueue_notices(storage, None, object(), [policy()], [outcome], {}, NOW)

    assert done["warnings"] == 0 and "not configured" in done["not_sent"]
    assert storage.queues.peek_count("warnings") == 0
    assert [r.getMessage() for r in caplog.records if "not sent" in r.getMessage()] == [
        "warnings and run summary not sent: mail is not configured for this reconcile (3 people due)"
    ]
