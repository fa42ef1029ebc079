"""`GET /api/relicense` through the function, against Azurite and the sandbox.

A person signs in (App Service authentication's X-MS-CLIENT-PRINCIPAL, built here as the
platform builds it) and asks for a license back; the sandbox shows what changed in Atlassian,
the audit trail what Seatwarden wrote down.
"""

from __future__ import annotations

import base64
import json
import uuid

import azure.functions as func
import pytest

from tests.functions.conftest import World, policies_with, run_function

PRODUCT = "confluence"
CONTACT = "it-help@example.com"
OBJECT_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"


@pytest.fixture
def night(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """After a night in enforce mode, its actions applied; App Service authentication on."""
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
    monkeypatch.setenv("SEATWARDEN_HELP_CONTACT", CONTACT)
    world.nightly()
    world.drain("actions")
    return world


def principal_headers(world: World, object_id: str, upn: str, name: str = "Signed In") -> dict[str, str]:
    """The headers App Service authentication adds for a person signed in with Entra ID."""
    document = {
        "auth_typ": "aad",
        "claims": [
            {"typ": OBJECT_ID_CLAIM, "val": object_id},
            {"typ": "preferred_username", "val": upn},
            {"typ": "name", "val": name},
            {"typ": "http://schemas.microsoft.com/identity/claims/tenantid", "val": world.sb.tenant_id},
        ],
        "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
        "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
    }
    return {
        "X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(document).encode()).decode(),
        "X-MS-CLIENT-PRINCIPAL-ID": object_id,
        "X-MS-CLIENT-PRINCIPAL-NAME": upn,
        "X-MS-CLIENT-PRINCIPAL-IDP": "aad",
    }


def signed_in(world: World, account_id: str) -> dict[str, str]:
    user = world.sb.org.user(account_id)
    return principal_headers(world, user.entra_object_id, user.email.lower(), user.name)


def get(headers: dict[str, str], product: str | None = PRODUCT) -> func.HttpResponse:
    params = {"product": product} if product is not None else {}
    query = f"?product={product}" if product is not None else ""
    request = func.HttpRequest(
        method="GET",
        url=f"http://127.0.0.1/api/relicense{query}",
        headers=headers,
        params=params,
        body=b"",
    )
    return run_function("relicense", request)


def page(response: func.HttpResponse) -> str:
    assert response.mimetype == "text/html"
    return response.get_body().decode("utf-8")


def entitled(world: World, product: str) -> set[str]:
    sb = world.sb
    if product == PRODUCT:
        oids = sb.org.entra_members(sb.org.entra_group_id(product))
        return {u.account_id for u in sb.org.users if u.entra_object_id in oids}
    return sb.org.members(f"{product}-user-role")


def marked_and_entitled(world: World, product: str = PRODUCT) -> list[str]:
    active = {u.account_id for u in world.sb.org.users if u.status == "active"}
    people = sorted(world.sb.org.members(f"{product}-unlicensed-users") & entitled(world, product) & active)
    assert people, f"the seeded org should have marked, entitled people for {product} after a night"
    return people


def unentitled(world: World) -> str:
    sb = world.sb
    for user in sb.org.users:
        if (
            user.status == "active"
            and user.account_id not in entitled(world, PRODUCT)
            and not sb.org.is_licensed(user.account_id, PRODUCT)
        ):
            return user.account_id
    raise AssertionError("the seeded org should have an active person not entitled to Confluence")


def nothing_changed_since(world: World, changes: int, account_id: str, audit: int) -> None:
    assert len(world.sb.changes()) == changes
    assert len(world.audit_for(account_id)) == audit
    assert world.queued() == {"actions": 0, "returns": 0, "graph": 0}


def test_an_entitled_marked_person_gets_the_license_back_at_once_with_one_audit_entry(night: World) -> None:
    person = marked_and_entitled(night)[0]
    user = night.sb.org.user(person)
    audit = len(night.audit_for(person))

    answer = get(signed_in(night, person))

    assert answer.status_code == 200, page(answer)
    assert "Your Confluence license is back" in page(answer)
    assert answer.headers["Cache-Control"] == "no-store"
    assert night.sb.org.is_licensed(person, PRODUCT)
    assert person not in night.sb.org.members(f"{PRODUCT}-unlicensed-users")
    entries = night.audit_for(person)
    assert len(entries) == audit + 1
    assert entries[0].action == "RELICENSE"
    assert entries[0].product == PRODUCT
    assert (
        entries[0].actor == f"self-service /api/relicense: {user.email.lower()} (oid {user.entra_object_id})"
    )
    assert night.queued() == {"actions": 0, "returns": 0, "graph": 0}

    changes = len(night.sb.changes())
    again = get(signed_in(night, person))
    assert again.status_code == 200
    assert "You already have a Confluence license" in page(again)
    nothing_changed_since(night, changes, person, audit + 1)


def test_a_person_the_night_never_matched_is_found_through_graph_by_email(night: World) -> None:
    product = "jira-software"
    unmatched = [
        a
        for a in marked_and_entitled(night, product)
        if night.storage.identities.account_for(night.sb.org.user(a).entra_object_id) is None
    ]
    assert unmatched, "some people marked for Jira should be outside every Entra entitlement group"
    person = unmatched[0]

    answer = get(signed_in(night, person), product)

    assert answer.status_code == 200, page(answer)
    assert "Your Jira license is back" in page(answer)
    assert night.sb.org.is_licensed(person, product)
    assert night.storage.identities.account_for(night.sb.org.user(person).entra_object_id) == person


def test_an_unentitled_person_gets_the_why_not_page_with_whom_to_ask(night: World) -> None:
    person = unentitled(night)
    changes, audit = len(night.sb.changes()), len(night.audit_for(person))

    answer = get(signed_in(night, person))

    assert answer.status_code == 403
    text = page(answer)
    assert "You are not entitled to Confluence" in text
    assert f'<a href="mailto:{CONTACT}">{CONTACT}</a>' in text
    assert not night.sb.org.is_licensed(person, PRODUCT)
    nothing_changed_since(night, changes, person, audit)


def test_an_unknown_principal_gets_a_page_saying_whom_to_ask_and_nothing_is_escaped_wrongly(
    night: World,
) -> None:
    changes = len(night.sb.changes())
    headers = principal_headers(night, str(uuid.uuid4()), "<script>x</script>@example.com", "<b>Mallory</b>")

    answer = get(headers)

    assert answer.status_code == 403
    text = page(answer)
    assert "Seatwarden could not find you" in text
    assert f"mailto:{CONTACT}" in text
    assert "<script>" not in text and "&lt;script&gt;x&lt;/script&gt;@example.com" in text
    assert len(night.sb.changes()) == changes
    assert night.queued() == {"actions": 0, "returns": 0, "graph": 0}


def test_no_principal_is_401_a_garbled_one_400_and_neither_changes_anything(night: World) -> None:
    person = marked_and_entitled(night)[0]
    changes, audit = len(night.sb.changes()), len(night.audit_for(person))
    valid = signed_in(night, person)

    missing = get({})
    assert missing.status_code == 401
    assert (
        'href="/.auth/login/aad?post_login_redirect_uri=%2Fapi%2Frelicense%3Fproduct%3Dconfluence"'
        in page(missing)
    )

    garbled: dict[str, dict[str, str]] = {
        "not base64": {**valid, "X-MS-CLIENT-PRINCIPAL": "!!not-base64!!"},
        "not json": {**valid, "X-MS-CLIENT-PRINCIPAL": base64.b64encode(b"{claims").decode()},
        "no claims": {**valid, "X-MS-CLIENT-PRINCIPAL": base64.b64encode(b'{"auth_typ": "aad"}').decode()},
        "forged id": {**valid, "X-MS-CLIENT-PRINCIPAL-ID": str(uuid.uuid4())},
    }
    for name, headers in garbled.items():
        answer = get(headers)
        assert answer.status_code == 400, name
        assert "Your sign-in could not be read" in page(answer), name
    assert person in night.sb.org.members(f"{PRODUCT}-unlicensed-users")
    nothing_changed_since(night, changes, person, audit)


def test_without_app_service_authentication_even_a_valid_principal_changes_nothing(
    night: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEBSITE_AUTH_ENABLED")
    person = marked_and_entitled(night)[0]
    changes, audit = len(night.sb.changes()), len(night.audit_for(person))

    answer = get(signed_in(night, person))

    assert answer.status_code == 503
    assert "Self-service is not set up" in page(answer)
    nothing_changed_since(night, changes, person, audit)


def test_a_policy_that_does_not_cover_the_person_or_only_reports_gives_nothing_back(night: World) -> None:
    person = next(
        a for a in marked_and_entitled(night) if night.sb.org.user(a).email.endswith("@example.com")
    )
    changes, audit = len(night.sb.changes()), len(night.audit_for(person))

    night.set_policies(policies_with(night.sb, mode="enforce", targeting={"domains": ["eu.example.com"]}))
    outside = get(signed_in(night, person))
    night.set_policies(policies_with(night.sb, mode="report"))
    reporting = get(signed_in(night, person))

    assert outside.status_code == 403
    assert "Seatwarden does not manage your Confluence license" in page(outside)
    assert reporting.status_code == 403
    assert "Seatwarden only reports on Confluence for now" in page(reporting)
    assert not night.sb.org.is_licensed(person, PRODUCT)
    nothing_changed_since(night, changes, person, audit)


def test_with_no_free_seat_by_the_policys_cap_or_atlassians_limit_it_says_so_and_the_marker_stays(
    night: World,
) -> None:
    person = marked_and_entitled(night)[0]
    seats = night.sb.org.seats_used(PRODUCT)
    changes, audit = len(night.sb.changes()), len(night.audit_for(person))

    night.set_policies(policies_with(night.sb, mode="enforce", seat_cap=seats))
    capped = get(signed_in(night, person))
    night.set_policies(policies_with(night.sb, mode="enforce"))
    night.sb.org.set_seat_limit(PRODUCT, seats)
    limited = get(signed_in(night, person))

    for answer in (capped, limited):
        assert answer.status_code == 200
        assert "No Confluence license is free right now" in page(answer)
    assert person in night.sb.org.members(f"{PRODUCT}-unlicensed-users")
    nothing_changed_since(night, changes, person, audit)


def test_without_a_product_the_page_offers_what_can_be_given_back_and_an_unknown_one_is_404(
    night: World,
) -> None:
    person = marked_and_entitled(night)[0]
    changes, audit = len(night.sb.changes()), len(night.audit_for(person))

    offer = get(signed_in(night, person), product=None)
    unknown = get(signed_in(night, person), product="bamboo")

    assert offer.status_code == 200
    assert '<a href="/api/relicense?product=confluence">Get Confluence back</a>' in page(offer)
    assert unknown.status_code == 404
    assert "Seatwarden does not manage that product" in page(unknown)
    nothing_changed_since(night, changes, person, audit)


def test_when_atlassian_fails_midway_the_actions_queue_finishes_it_with_the_same_actor(night: World) -> None:
    person = marked_and_entitled(night)[0]
    audit = len(night.audit_for(person))
    night.sb.faults.inject(kind="5xx", path_contains="/memberships", count=5)

    answer = get(signed_in(night, person))

    assert answer.status_code == 202, page(answer)
    assert "Your Confluence license is on its way" in page(answer)
    assert night.queued()["actions"] == 1
    assert night.drain("actions") == 1
    assert night.sb.org.is_licensed(person, PRODUCT)
    entries = night.audit_for(person)
    assert len(entries) == audit + 1
    assert entries[0].action == "RELICENSE"
    assert entries[0].actor.startswith("self-service /api/relicense: ")
