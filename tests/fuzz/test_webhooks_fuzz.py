"""Bad input against the webhooks: never a 5xx, never a state change, always a clear error.

Signed and authorized garbage matters most: a fuzzer that only meets the signature check
proves little, so most inputs here carry the right `X-Hub-Signature`, `Authorization` or
`clientState` and reach the parsers behind them.
"""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func
from hypothesis import given
from hypothesis import strategies as st

from shared.services.webhooks import jira_signature
from tests.fuzz import strategies as s
from tests.fuzz.conftest import Fuzzed, fuzz_settings, tried

ATLASSIAN = "/api/webhooks/atlassian"


def post(
    path: str, body: bytes, headers: dict[str, str], params: dict[str, str] | None = None
) -> func.HttpRequest:
    return func.HttpRequest(
        method="POST", url=f"http://127.0.0.1{path}", headers=headers, params=params or {}, body=body
    )


def accepted_as_reported(fuzzed: Fuzzed, response: func.HttpResponse) -> dict[str, Any]:
    """A 2xx answer owns up to every write: a delivery row per event, a message per queued one."""
    answer = json.loads(response.get_body())
    assert set(answer) == {"accepted", "queued"}, answer
    assert response.status_code == (202 if answer["queued"] else 200)
    assert fuzzed.writes.queue_sends == answer["queued"]
    assert fuzzed.writes.table_writes == answer["accepted"]
    return answer


def atlassian_answer(fuzzed: Fuzzed, name: str, headers: dict[str, str], body: bytes) -> None:
    response = fuzzed.call("atlassian_webhook", post(ATLASSIAN, body, headers))
    tried(name, response.status_code)
    if response.status_code >= 400:
        fuzzed.refused_clearly(response)
    else:
        accepted_as_reported(fuzzed, response)


@fuzz_settings(300)
@given(body=s.bodies(s.jira_payloads()), headers=s.headers(), delivery=st.none() | s.ids().map(str))
def test_signed_jira_garbage_is_refused_clearly_or_accepted_as_reported(
    fuzzed: Fuzzed, body: bytes, headers: dict[str, str], delivery: str | None
) -> None:
    headers = {**headers, "X-Hub-Signature": jira_signature(fuzzed.world.env["JIRA_WEBHOOK_SECRET"], body)}
    if delivery is not None:
        headers["X-Atlassian-Webhook-Identifier"] = delivery[:4096]
    atlassian_answer(fuzzed, "atlassian webhook: Jira, signed", headers, body)


@fuzz_settings(300)
@given(body=s.bodies(s.audit_payloads()), headers=s.headers())
def test_authorized_audit_log_garbage_is_refused_clearly_or_accepted_as_reported(
    fuzzed: Fuzzed, body: bytes, headers: dict[str, str]
) -> None:
    headers = {**headers, "Authorization": fuzzed.world.env["ATLASSIAN_AUDIT_WEBHOOK_AUTHORIZATION"]}
    atlassian_answer(fuzzed, "atlassian webhook: audit log, authorized", headers, body)


def forged_headers(secret: str, authorization: str) -> st.SearchStrategy[dict[str, str]]:
    """Credentials that are close to right and wrong: other secrets, case, whitespace, truncation."""
    near_secret = st.sampled_from([secret.upper(), secret[:-1], secret + " ", " " + secret, ""])
    near_auth = st.sampled_from(
        [
            authorization.lower(),
            authorization[:-1],
            authorization + " ",
            authorization.split(" ")[-1],
            "Bearer",
        ]
    )
    signature = st.one_of(
        st.builds(lambda sec: jira_signature(sec, b"another body"), st.just(secret)),
        st.text(max_size=80),
        st.from_regex(r"\Asha256=[0-9a-f]{64}\Z"),
        st.builds(lambda sec: "sha256=" + sec, near_secret),
    )
    jira = st.fixed_dictionaries(
        {"X-Hub-Signature": signature}, optional={"X-Atlassian-Webhook-Identifier": st.text(max_size=20)}
    )
    audit = st.fixed_dictionaries({"Authorization": near_auth | st.text(max_size=80)})
    return s.headers(jira | audit | st.just({}))


@fuzz_settings(200)
@given(data=st.data())
def test_forged_or_missing_credentials_are_401_and_change_nothing(
    fuzzed: Fuzzed, data: st.DataObject
) -> None:
    env = fuzzed.world.env
    headers = data.draw(
        forged_headers(env["JIRA_WEBHOOK_SECRET"], env["ATLASSIAN_AUDIT_WEBHOOK_AUTHORIZATION"])
    )
    body = data.draw(s.bodies(s.jira_payloads() | s.audit_payloads()))
    response = fuzzed.call("atlassian_webhook", post(ATLASSIAN, body, headers))
    tried("atlassian webhook: forged or no credentials", response.status_code)
    assert response.status_code == 401, (headers, response.get_body())
    assert fuzzed.refused_clearly(response) == "unauthorized"


@fuzz_settings(300)
@given(body=s.bodies(s.graph_payloads("PLACEHOLDER")), headers=s.headers(), lifecycle=st.booleans())
def test_graph_notification_garbage_is_refused_clearly_or_queued_as_reported(
    fuzzed: Fuzzed, body: bytes, headers: dict[str, str], lifecycle: bool
) -> None:
    # The strategy is built before the world exists: put the real clientState in afterwards.
    body = body.replace(b"PLACEHOLDER", fuzzed.world.env["GRAPH_CLIENT_STATE"].encode())
    name, path = ("graph_lifecycle_webhook", "/graph/lifecycle") if lifecycle else ("graph_webhook", "/graph")
    response = fuzzed.call(name, post("/api/webhooks" + path, body, headers))
    tried("graph webhooks: notifications", response.status_code)
    if response.status_code >= 400:
        fuzzed.refused_clearly(response)
        return
    answer = json.loads(response.get_body())
    assert response.status_code == 202 and set(answer) == {"queued", "dropped"}, answer
    assert fuzzed.writes.queue_sends == answer["queued"] and fuzzed.writes.table_writes == 0


@fuzz_settings(150)
@given(token=st.text(max_size=300), body=st.binary(max_size=100), headers=s.headers())
def test_the_validation_handshake_echoes_any_token_as_plain_text_and_writes_nothing(
    fuzzed: Fuzzed, token: str, body: bytes, headers: dict[str, str]
) -> None:
    request = post("/api/webhooks/graph", body, headers, params={"validationToken": token})
    response = fuzzed.call("graph_webhook", request)
    tried("graph webhooks: validation handshake", response.status_code)
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert response.get_body() == token.encode("utf-8")
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert fuzzed.writes.requests == []


def test_webhook_fuzzing_left_no_state_behind_for_refused_inputs(fuzzed: Fuzzed) -> None:
    """The module-wide check, for input that is refused: rows, messages and sandbox unchanged."""
    env = fuzzed.world.env
    with fuzzed.unchanged():
        for body in s.HOSTILE_BODIES:
            for headers in (
                {"X-Hub-Signature": jira_signature(env["JIRA_WEBHOOK_SECRET"], body)},
                {"Authorization": env["ATLASSIAN_AUDIT_WEBHOOK_AUTHORIZATION"]},
                {"X-Hub-Signature": "sha256=" + "0" * 64},
                {},
            ):
                response = fuzzed.call("atlassian_webhook", post(ATLASSIAN, body, headers))
                tried("atlassian webhook: hostile bodies", response.status_code)
                assert response.status_code in (400, 401), (body[:80], headers, response.get_body())
                fuzzed.refused_clearly(response)
            response = fuzzed.call("graph_webhook", post("/api/webhooks/graph", body, {}))
            tried("graph webhooks: hostile bodies", response.status_code)
            fuzzed.refused_clearly(response)


def test_the_write_recorder_sees_an_accepted_delivery(fuzzed: Fuzzed) -> None:
    """The harness can fail: a valid signed return event is a delivery row and a queued message."""
    body = json.dumps({"webhookEvent": "user_updated", "user": {"accountId": "recorder-check"}}).encode()
    headers = {"X-Hub-Signature": jira_signature(fuzzed.world.env["JIRA_WEBHOOK_SECRET"], body)}
    response = fuzzed.call("atlassian_webhook", post(ATLASSIAN, body, headers))
    assert json.loads(response.get_body()) == {"accepted": 1, "queued": 1}
    assert (fuzzed.writes.table_writes, fuzzed.writes.queue_sends) == (1, 1)
