"""Webhook intake: signatures in constant time, strict parsing, classification."""

from __future__ import annotations

import json

import pytest

from shared.services.webhooks import (
    BadRequest,
    Unauthorized,
    classify_audit,
    classify_jira,
    jira_signature,
    parse_graph,
    parse_json,
    verify_authorization,
    verify_jira,
)

SECRET = "s3cret-for-tests"
BODY = json.dumps({"webhookEvent": "user_updated", "user": {"accountId": "acc-1"}}).encode()


def test_a_jira_delivery_signed_over_the_raw_body_is_accepted() -> None:
    verify_jira({"x-hub-signature": jira_signature(SECRET, BODY)}, BODY, SECRET)


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-hub-signature": "sha1=abc"}, {"x-hub-signature": "sha256=" + "0" * 64}],
    ids=["missing", "wrong-algorithm", "wrong-digest"],
)
def test_a_jira_delivery_without_a_valid_signature_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(Unauthorized):
        verify_jira(headers, BODY, SECRET)


def test_a_re_serialised_body_does_not_verify() -> None:
    reserialised = json.dumps(json.loads(BODY), indent=1).encode()
    with pytest.raises(Unauthorized):
        verify_jira({"x-hub-signature": jira_signature(SECRET, BODY)}, reserialised, SECRET)


def test_the_audit_webhook_needs_the_exact_authorization_value() -> None:
    verify_authorization({"authorization": "Bearer abc"}, "Bearer abc")
    with pytest.raises(Unauthorized):
        verify_authorization({"authorization": "Bearer abd"}, "Bearer abc")
    with pytest.raises(Unauthorized):
        verify_authorization({}, "Bearer abc")


@pytest.mark.parametrize(
    "body",
    [b"{", b"\xff\xfe", b"[1,", b"x" * 300_000, b"[" * 50_000 + b"]" * 50_000, b"[" * 40 + b"]" * 40],
    ids=["truncated", "not-utf8", "unfinished", "too-large", "nested-past-the-stack", "nested-40-deep"],
)
def test_unreadable_bodies_are_bad_requests(body: bytes) -> None:
    # Regression (fuzzing): nesting past the interpreter's stack raised RecursionError, a 500.
    with pytest.raises(BadRequest):
        parse_json(body)


@pytest.mark.parametrize("context", [5, True, "users", {"id": "acc-9", "type": "users"}])
def test_an_audit_event_whose_context_has_another_shape_falls_back_to_the_actor(context: object) -> None:
    # Regression (fuzzing): an int or bool context raised TypeError, a 500.
    event = {
        "id": "e1",
        "attributes": {"action": "user_logged_in", "actor": {"id": "acc-1"}, "context": context},
    }
    assert [e.account_id for e in classify_audit(event)] == ["acc-1"]


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"webhookEvent": "user_updated", "user": {"accountId": "a" * 257}}, "user.accountId"),
        ({"webhookEvent": "x" * 70_000, "user": {"accountId": "a"}}, "webhookEvent"),
    ],
)
def test_a_field_no_vendor_sends_that_long_is_a_bad_request_naming_it(payload: object, field: str) -> None:
    # Regression (fuzzing): a 70 KB account id passed every check and overflowed the queue message.
    with pytest.raises(BadRequest, match=field):
        classify_jira({}, payload)


def test_a_jira_user_update_is_a_return_event_keyed_by_its_delivery_id() -> None:
    event = classify_jira({"x-atlassian-webhook-identifier": "d-1"}, json.loads(BODY))
    assert event is not None
    assert (event.source, event.delivery_id, event.account_id) == ("jira", "d-1", "acc-1")


def test_a_jira_event_that_is_not_about_returning_is_ignored() -> None:
    assert classify_jira({}, {"webhookEvent": "user_deleted", "user": {"accountId": "a"}}) is None


@pytest.mark.parametrize("payload", [[], {"webhookEvent": "user_updated"}, {"user": {}}])
def test_a_jira_payload_missing_what_it_needs_is_a_bad_request(payload: object) -> None:
    with pytest.raises(BadRequest):
        classify_jira({}, payload)


def test_an_audit_login_names_the_actor_and_a_group_join_names_the_user() -> None:
    login = {"id": "e1", "attributes": {"action": "user_logged_in", "actor": {"id": "acc-1"}}}
    join = {
        "id": "e2",
        "attributes": {
            "action": "user_added_to_group",
            "actor": {"id": "admin"},
            "context": [{"id": "acc-2", "type": "users"}],
        },
    }
    other = {"id": "e3", "attributes": {"action": "jira_issue_viewed", "actor": {"id": "acc-3"}}}
    events = classify_audit({"data": [login, join, other]})
    assert [(e.delivery_id, e.account_id) for e in events] == [("e1", "acc-1"), ("e2", "acc-2")]


def test_graph_notifications_with_a_wrong_client_state_are_dropped() -> None:
    payload = {
        "value": [
            {
                "subscriptionId": "s",
                "clientState": "right",
                "resource": "Groups/g1",
                "resourceData": {"id": "g1"},
            },
            {"subscriptionId": "s", "clientState": "wrong", "resource": "Groups/g1"},
        ]
    }
    good, dropped = parse_graph(payload, "right")
    assert [n.group_id for n in good] == ["g1"]
    assert dropped == 1
