"""The App Service principal header and the self-service pages, without Azure or the sandbox."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from shared import pages
from shared.services.selfservice import (
    BadPrincipal,
    Principal,
    ProductOutcome,
    SelfServiceResult,
    UnknownProduct,
    Verdict,
)

OID = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
TENANT = "11111111-2222-4333-8444-555555555555"


def encoded(document: Any) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def principal_document(**claims: str) -> dict[str, Any]:
    values = {
        "http://schemas.microsoft.com/identity/claims/objectidentifier": OID,
        "preferred_username": "Ada.Lovelace@Example.com",
        "name": "Ada Lovelace",
        "http://schemas.microsoft.com/identity/claims/tenantid": TENANT,
        **claims,
    }
    return {
        "auth_typ": "aad",
        "claims": [{"typ": k, "val": v} for k, v in values.items() if v is not None],
        "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
        "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
    }


def test_the_documented_principal_shape_gives_object_id_upn_name_and_tenant() -> None:
    principal = Principal.from_headers(
        {
            "X-MS-CLIENT-PRINCIPAL": encoded(principal_document()),
            "X-MS-CLIENT-PRINCIPAL-ID": OID.upper(),
            "X-MS-CLIENT-PRINCIPAL-IDP": "aad",
        }
    )
    assert principal == Principal(OID, "ada.lovelace@example.com", "Ada Lovelace", TENANT, "aad")
    assert principal.label == f"ada.lovelace@example.com (oid {OID})"


def test_header_names_are_matched_in_any_case_and_a_missing_header_is_no_principal() -> None:
    assert Principal.from_headers({"x-ms-client-principal": encoded(principal_document())}) is not None
    assert Principal.from_headers({}) is None
    assert Principal.from_headers({"X-MS-CLIENT-PRINCIPAL": "  "}) is None


def test_the_oid_claim_name_works_as_well_as_the_mapped_one() -> None:
    document = principal_document(**{"http://schemas.microsoft.com/identity/claims/objectidentifier": None})
    document["claims"].append({"typ": "oid", "val": OID})
    principal = Principal.from_headers({"X-MS-CLIENT-PRINCIPAL": encoded(document)})
    assert principal is not None and principal.object_id == OID


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-MS-CLIENT-PRINCIPAL": "%%% not base64 %%%"}, "Base64"),
        ({"X-MS-CLIENT-PRINCIPAL": base64.b64encode(b"not json").decode()}, "Base64-encoded JSON"),
        ({"X-MS-CLIENT-PRINCIPAL": base64.b64encode(b"\xff\xfe").decode()}, "Base64-encoded JSON"),
        ({"X-MS-CLIENT-PRINCIPAL": encoded(["a", "list"])}, "no claims list"),
        (
            {"X-MS-CLIENT-PRINCIPAL": encoded({"auth_typ": "aad", "claims": [{"typ": 1, "val": 2}]})},
            "{typ, val}",
        ),
        ({"X-MS-CLIENT-PRINCIPAL": encoded({"claims": []})}, "no identity provider"),
        ({"X-MS-CLIENT-PRINCIPAL": encoded({"auth_typ": "aad", "claims": []})}, "neither an object id"),
        (
            {
                "X-MS-CLIENT-PRINCIPAL": encoded(
                    principal_document(
                        **{"http://schemas.microsoft.com/identity/claims/objectidentifier": "x'--"}
                    )
                )
            },
            "not a GUID",
        ),
        (
            {
                "X-MS-CLIENT-PRINCIPAL": encoded(principal_document()),
                "X-MS-CLIENT-PRINCIPAL-ID": "00000000-0000-0000-0000-000000000000",
            },
            "disagree",
        ),
        (
            {"X-MS-CLIENT-PRINCIPAL": encoded(principal_document()), "X-MS-CLIENT-PRINCIPAL-IDP": "google"},
            "disagree",
        ),
        ({"X-MS-CLIENT-PRINCIPAL": "A" * 40_000}, "too long"),
        # Regression (fuzzing): nesting past the stack raised RecursionError, a 500.
        ({"X-MS-CLIENT-PRINCIPAL": base64.b64encode(b"[" * 12_000 + b"]" * 12_000).decode()}, "not Base64"),
        ({"X-MS-CLIENT-PRINCIPAL": "\u00e9t\u00e9"}, "not Base64"),
    ],
)
def test_a_garbled_or_inconsistent_principal_is_refused_with_the_reason(
    headers: dict[str, str], message: str
) -> None:
    with pytest.raises(BadPrincipal, match=message.replace("{", r"\{").replace("}", r"\}")):
        Principal.from_headers(headers)


def test_every_text_on_a_page_is_escaped() -> None:
    hostile = Principal(OID, "<script>alert(1)</script>@x", "<b>bold</b>", None, "aad")
    result = SelfServiceResult(hostile, "confluence", None, unknown="<img src=x onerror=alert(1)>")
    html = pages.result_page(result, '"><script>evil()</script>').render()
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;@x" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_contact_becomes_a_mail_link_only_when_it_is_an_address() -> None:
    assert (
        pages.contact_html("it-help@example.com")
        == '<a href="mailto:it-help@example.com">it-help@example.com</a>'
    )
    assert pages.contact_html("the IT service desk") == "the IT service desk"
    assert pages.contact_html(None) == pages.DEFAULT_CONTACT


def test_the_sign_in_link_comes_back_to_the_same_path_and_never_to_another_site() -> None:
    assert (
        pages.sign_in_url("/api/relicense?product=confluence")
        == "/.auth/login/aad?post_login_redirect_uri=%2Fapi%2Frelicense%3Fproduct%3Dconfluence"
    )
    assert (
        pages.sign_in_url("//evil.example/x") == "/.auth/login/aad?post_login_redirect_uri=%2Fapi%2Frelicense"
    )
    assert (
        pages.sign_in_url("https://evil.example/")
        == "/.auth/login/aad?post_login_redirect_uri=%2Fapi%2Frelicense"
    )


def test_each_verdict_has_a_status_and_a_page_naming_the_product() -> None:
    principal = Principal(OID, "ada@example.com", "Ada", None, "aad")
    for verdict in Verdict:
        outcome = ProductOutcome("confluence", "confluence", verdict)
        page = pages.result_page(SelfServiceResult(principal, "confluence", "acc", (outcome,)), None)
        assert page.status == pages.STATUS[verdict]
        assert "Confluence" in page.title, verdict


def test_an_unknown_product_page_lists_the_managed_products() -> None:
    page = pages.unknown_product(UnknownProduct("bamboo", ["confluence", "jira-software"]), None)
    assert page.status == 404
    assert "Confluence, Jira." in page.render()
