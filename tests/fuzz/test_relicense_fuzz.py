"""Bad sign-in headers against the self-service page: never a 5xx, never a license given.

App Service authentication writes X-MS-CLIENT-PRINCIPAL; where it is not enforced (README,
"Self-service return"), anyone can write it, so the page must read any header safely.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import azure.functions as func
from hypothesis import given
from hypothesis import strategies as st

from shared.services.selfservice import NAME_CLAIMS, OBJECT_ID_CLAIMS, TENANT_CLAIMS, UPN_CLAIMS
from tests.fuzz import strategies as s
from tests.fuzz.conftest import Fuzzed, fuzz_settings, tried

GUID = st.uuids().map(str)
CLAIM_TYPES = st.sampled_from(OBJECT_ID_CLAIMS + UPN_CLAIMS + NAME_CLAIMS + TENANT_CLAIMS)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def principal_documents() -> st.SearchStrategy[Any]:
    """App Service's principal document (auth_typ, claims of typ and val), near it and off it."""
    claim = s.often(st.fixed_dictionaries({"typ": s.often(CLAIM_TYPES), "val": s.often(GUID | s.ids())}))
    return s.often(
        st.fixed_dictionaries(
            {"auth_typ": s.often(st.just("aad")), "claims": s.often(st.lists(claim, max_size=4))},
            optional={"name_typ": s.json_values, "role_typ": s.json_values},
        )
    )


def principal_headers() -> st.SearchStrategy[dict[str, str]]:
    encoded = st.one_of(
        st.builds(lambda doc: b64(json.dumps(doc).encode()), principal_documents()),
        st.builds(b64, s.bodies(principal_documents())),
        st.text(max_size=100),
        st.sampled_from(["=", "!!!!", "e30", b64(s.nested(12_000)), b64(b"{}") * 4000]),
    )
    return st.fixed_dictionaries(
        {"X-MS-CLIENT-PRINCIPAL": encoded},
        optional={
            "X-MS-CLIENT-PRINCIPAL-ID": GUID | st.text(max_size=40),
            "X-MS-CLIENT-PRINCIPAL-IDP": st.text(max_size=10),
        },
    )


@fuzz_settings(200)
@given(
    headers=principal_headers() | st.just({}),
    product=st.none()
    | st.sampled_from(["confluence", "jira-software", "Confluence", "../x", ""])
    | st.text(max_size=20),
)
def test_any_principal_header_gets_a_page_and_no_license(
    fuzzed: Fuzzed, headers: dict[str, str], product: str | None
) -> None:
    changes = len(fuzzed.world.sb.changes())
    request = func.HttpRequest(
        method="GET",
        url="http://127.0.0.1/api/relicense",
        headers=headers,
        params={} if product is None else {"product": product},
        body=b"",
    )
    response = fuzzed.call("relicense", request)
    tried("self-service page: principal headers", response.status_code)
    assert response.mimetype == "text/html"
    page = response.get_body().decode("utf-8")
    assert "Traceback" not in page and 'File "' not in page
    assert len(fuzzed.world.sb.changes()) == changes, "a made-up principal changed the org"
    if response.status_code in (400, 401):
        assert fuzzed.writes.requests == []
