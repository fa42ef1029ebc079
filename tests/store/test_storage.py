"""The entry point, the error edge, safe keys, and the package's public face."""

from __future__ import annotations

import re
import socket
from datetime import date

import pytest
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from hypothesis import given
from hypothesis import strategies as st

import shared.store
from shared.store import (
    EntityTooLarge,
    StaleWrite,
    Storage,
    StorageError,
    StorageUnavailable,
    UserState,
    storage_error,
)
from shared.store._base import HASHED_KEY_PREFIX, key, table_name
from shared.store.users import _from_entity, _to_entity
from tests.store import open_storage


def test_ensure_creates_every_table_and_queue_and_may_run_again(azurite: str, table_prefix: str) -> None:
    storage = open_storage(azurite, table_prefix)
    storage.ensure()
    assert storage.table_names["audit"] == f"{table_prefix}audit"
    assert storage.queues.peek_count("actions") == 0
    assert storage.queues.peek_count("graph-poison") == 0


def test_table_names_keep_only_the_prefixs_letters_and_digits() -> None:
    assert table_name("Seat-Warden_1", "users") == "seatwarden1users"
    assert table_name("", "users") == "users"
    with pytest.raises(ValueError, match="not a valid Azure table name"):
        table_name("1abc", "users")


def test_using_storage_before_ensure_says_so(azurite: str, table_prefix: str) -> None:
    storage = Storage.from_connection_string(azurite, table_prefix)
    with pytest.raises(StorageError, match=r"ensure\(\)"):
        storage.users.all("confluence")


def test_an_unreachable_account_raises_storage_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conn = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )
    storage = Storage.from_connection_string(conn, "x", retry_total=0, connection_timeout=2)
    with pytest.raises(StorageUnavailable) as caught:
        storage.deliveries.first_time("jira", "d1")
    assert isinstance(caught.value.__cause__, AzureError)


def _http_error(cls: type[HttpResponseError], status: int, code: str) -> HttpResponseError:
    exc = cls(message=f"{code}\nRequestId:1")
    exc.status_code = status
    exc.error_code = code  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ServiceRequestError("connection refused"), StorageUnavailable),
        (ServiceResponseError("connection reset"), StorageUnavailable),
        (_http_error(ResourceModifiedError, 412, "UpdateConditionNotSatisfied"), StaleWrite),
        (_http_error(ClientAuthenticationError, 403, "AuthenticationFailed"), StorageError),
        (_http_error(HttpResponseError, 413, "RequestBodyTooLarge"), EntityTooLarge),
        (_http_error(HttpResponseError, 400, "PropertyValueTooLarge"), EntityTooLarge),
        (_http_error(ResourceNotFoundError, 404, "TableNotFound"), StorageError),
        (_http_error(ResourceExistsError, 409, "EntityAlreadyExists"), StorageError),
        (_http_error(HttpResponseError, 503, "ServerBusy"), StorageUnavailable),
        (_http_error(HttpResponseError, 400, "InvalidInput"), StorageError),
        (AzureError("something else"), StorageError),
    ],
)
def test_every_azure_core_error_maps_to_a_storage_error(
    exc: AzureError, expected: type[StorageError]
) -> None:
    mapped = storage_error(exc, "do a thing")
    assert type(mapped) is expected
    assert "do a thing" in str(mapped)


def test_mapped_errors_keep_the_services_code_and_redact_signatures() -> None:
    exc = _http_error(HttpResponseError, 403, "AuthenticationFailed")
    exc.message = "refused https://acct.table.core.windows.net/users?sig=SECRETSIGNATURE123&se=2026"
    mapped = storage_error(exc, "read")
    assert mapped.code == "AuthenticationFailed" and mapped.status == 403
    assert "SECRETSIGNATURE123" not in str(mapped)


_FORBIDDEN = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


@given(st.text(max_size=600))
def test_a_key_is_always_allowed_and_two_values_never_share_one(value: str) -> None:
    made = key(value)
    assert not _FORBIDDEN.search(made)
    assert len(made.encode("utf-16-le")) <= 1024
    if made == value:
        assert not value.startswith(HASHED_KEY_PREFIX)
    else:
        assert made.startswith(HASHED_KEY_PREFIX)


dates = st.one_of(st.none(), st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)))


@given(
    st.builds(
        UserState,
        account_id=st.text(min_size=1, max_size=40),
        product=st.sampled_from(["confluence", "jira-software"]),
        email=st.emails(),
        entitled=st.booleans(),
        licensed=st.booleans(),
        marked=st.booleans(),
        last_active=dates,
        licensed_since=dates,
        marked_at=dates,
        warned_for=dates,
        last_seen=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
        last_lookup=dates,
    )
)
def test_a_user_state_survives_its_entity_form(state: UserState) -> None:
    assert _from_entity(_to_entity(state)) == state


def test_the_public_names_are_pinned() -> None:
    assert sorted(shared.store.__all__) == sorted(
        [
            "GENESIS_HASH",
            "IdentityRepo",
            "OUTCOMES",
            "POISON_SUFFIX",
            "QUEUE_KINDS",
            "RUN_STATUSES",
            "TABLES",
            "AuditEntry",
            "AuditLog",
            "CursorRepo",
            "DeliveryRepo",
            "EntityTooLarge",
            "Lease",
            "LeaseHeld",
            "LeaseRepo",
            "Queues",
            "ResultRepo",
            "Run",
            "RunNotFound",
            "RunRepo",
            "StaleWrite",
            "Storage",
            "StorageError",
            "StorageUnavailable",
            "Subscription",
            "SubscriptionRepo",
            "UserState",
            "UserStateRepo",
            "VerifyReport",
            "queue_name",
            "storage_error",
        ]
    )
    for name in shared.store.__all__:
        assert getattr(shared.store, name) is not None
