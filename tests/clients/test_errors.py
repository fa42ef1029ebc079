"""The exception tree (shared.errors): its shape, its messages, and redaction."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import shared.errors as errors
from shared.errors import (
    AtlassianError,
    AuthenticationFailed,
    DeltaResyncRequired,
    GraphAuthError,
    GraphError,
    GraphNotFound,
    GraphThrottled,
    GroupIsSynced,
    IncompleteRead,
    NotCentralizedUserManagement,
    NotFound,
    RateLimited,
    RemoteError,
    ScopeMissing,
    SeatLimitReached,
    SeatwardenError,
    TransportFailed,
    redact_text,
    redact_url,
)


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        (RemoteError, SeatwardenError),
        (AtlassianError, RemoteError),
        (RateLimited, AtlassianError),
        (SeatLimitReached, AtlassianError),
        (ScopeMissing, AtlassianError),
        (AuthenticationFailed, AtlassianError),
        (NotCentralizedUserManagement, AtlassianError),
        (NotFound, AtlassianError),
        (GroupIsSynced, AtlassianError),
        (GraphError, RemoteError),
        (GraphThrottled, GraphError),
        (GraphAuthError, GraphError),
        (GraphNotFound, GraphError),
        (DeltaResyncRequired, GraphError),
        (TransportFailed, RemoteError),
        (IncompleteRead, SeatwardenError),
    ],
)
def test_the_tree_is_drawn_as_in_the_docstring(child: type[Exception], parent: type[Exception]) -> None:
    assert issubclass(child, parent)
    assert child.__name__ in (errors.__doc__ or "")


def test_incomplete_read_is_not_a_remote_error() -> None:
    # A verdict about a whole read, so `except RemoteError` never swallows it.
    assert not issubclass(IncompleteRead, RemoteError)


def test_public_names_are_pinned() -> None:
    assert set(errors.__all__) >= {
        "SeatwardenError",
        "RemoteError",
        "AtlassianError",
        "RateLimited",
        "SeatLimitReached",
        "ScopeMissing",
        "AuthenticationFailed",
        "NotCentralizedUserManagement",
        "NotFound",
        "GroupIsSynced",
        "GraphError",
        "GraphThrottled",
        "GraphAuthError",
        "GraphNotFound",
        "DeltaResyncRequired",
        "TransportFailed",
        "IncompleteRead",
        "redact_url",
        "redact_text",
    }
    for name in errors.__all__:
        assert hasattr(errors, name)


def test_remote_error_carries_the_facts_and_names_them_in_its_message() -> None:
    err = NotFound(
        "Not found",
        method="DELETE",
        url="https://api.test/v2/orgs/o/groups/g",
        status=404,
        code="ADMIN-404-10",
    )
    assert (err.method, err.status, err.code) == ("DELETE", 404, "ADMIN-404-10")
    assert str(err) == "Not found [DELETE https://api.test/v2/orgs/o/groups/g] (HTTP 404, ADMIN-404-10)"


def test_remote_error_redacts_its_url_and_known_secrets() -> None:
    err = RemoteError(
        "the vendor echoed key-0123456789abcdef",
        method="GET",
        url="https://user:pw@api.test/x?api_key=key-0123456789abcdef&cursor=abc",
        secrets=["key-0123456789abcdef"],
    )
    assert "key-0123456789abcdef" not in str(err)
    assert "pw@" not in err.url and "cursor=abc" in err.url


def test_incomplete_read_count_mismatch_says_what_did_not_add_up() -> None:
    err = IncompleteRead.count_mismatch("members of confluence-users", expected=12, seen=11, pages_read=1)
    assert "12" in str(err) and "11" in str(err) and "members of confluence-users" in str(err)


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345",
        "token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl",
        "form client_secret=Zx8~qQ.verysecretvalue&grant_type=client_credentials",
        '{"client_secret": "Zx8~qQ.verysecretvalue"}',
        "api_key=Zx8~qQ.verysecretvalue",
        "apikey=hunter2hunter2",
    ],
)
def test_redact_text_removes_credentials_in_free_text(text: str) -> None:
    out = redact_text(text)
    assert "REDACTED" in out
    for secret in ("abcdefghijklmnopqrstuvwxyz012345", "Zx8~qQ.verysecretvalue", "c2lnbmF0dXJl", "hunter2"):
        assert secret not in out


def _redact_every_pattern(text: str) -> str:
    """What redact_text did before it learned to skip patterns whose words are absent."""
    out = errors._AUTH_VALUE.sub(lambda m: f"{m.group(1)} REDACTED", text)
    out = errors._JWT.sub("REDACTED", out)
    return errors._INLINE_PAIR.sub(
        lambda m: f"{m.group(1)}{m.group(2)}{m.group(1)}{m.group(3)}{m.group(4)}REDACTED", out
    )


_FRAGMENTS = st.sampled_from(
    [
        "/admin/v1/orgs/",
        "712020:029a5a34-1015",
        "/last-active-dates",
        "Bearer ",
        "BASIC ",
        "abcdefghijk0123",
        "eyJhbGciOi",
        ".eyJzdWIiOi",
        ".c2lnbmF0",
        "client_secret=",
        "Api-Key: ",
        "apikey=",
        '"x_token": "',
        "Signature=",
        "assertion=",
        "Password=",
        "=",
        ": ",
        '"',
        "'",
        "&",
        " ",
        "value123",
    ]
)


@given(st.lists(_FRAGMENTS, max_size=12).map("".join))
def test_redact_text_skips_no_credential_that_a_full_pass_would_remove(text: str) -> None:
    assert redact_text(text) == _redact_every_pattern(text)


def test_redact_url_keeps_harmless_query_values() -> None:
    url = redact_url(
        "https://graph.test/v1.0/groups/g/transitiveMembers?$select=id,mail&$top=999&$skiptoken=X1"
    )
    assert "$select=id,mail" in url and "$top=999" in url and "X1" not in url


def test_delta_resync_keeps_the_location_redacted() -> None:
    err = DeltaResyncRequired("gone", status=410, location="https://graph.test/groups/delta?$deltatoken=abc")
    assert err.location is not None and "abc" not in err.location
