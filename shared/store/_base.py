"""Helpers every repository shares: safe keys, table names, JSON and date columns, batches.

Table Storage rules these follow (https://learn.microsoft.com/rest/api/storageservices/
understanding-the-table-service-data-model):

- PartitionKey and RowKey may not contain ``/ \\ # ?`` or control characters and are at most
  1 KiB; `key()` replaces such a value by a hash, and every entity keeps the original value in
  a property of its own, so nothing is lost.
- A string property holds at most 64 KiB (UTF-16, so 32 K characters), an entity at most
  1 MiB: JSON columns are checked by `json_column()` before they are sent, so an oversized
  value fails here with a clear message instead of a 400 from the service.
- A transaction (entity group transaction) holds at most 100 operations, all on one
  partition: `submit_in_batches()` cuts the operations that way.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.data.tables import TableClient

from shared.store.errors import EntityTooLarge, StorageError, mapped

#: A clock: every repository that stamps a time takes one, so tests can pin it.
Clock = Callable[[], datetime]

#: One operation of a table transaction, as `TableClient.submit_transaction` takes it.
Operation = tuple[Any, ...]

#: The most operations Table Storage accepts in one transaction.
BATCH_LIMIT = 100

#: 64 KiB per string property, stored as UTF-16: 32,768 characters, less some headroom.
MAX_PROPERTY_CHARS = 32_000

_FORBIDDEN_IN_KEY = re.compile(r"[/\\#?%\x00-\x1f\x7f-\x9f]")
#: Prefix of a hashed key. A raw value that starts with it is hashed too, so the two can never meet.
HASHED_KEY_PREFIX = "~h~"
_MAX_KEY_BYTES = 1024


def utc_now() -> datetime:
    return datetime.now(UTC)


def key(value: str) -> str:
    """``value`` as a PartitionKey or RowKey: itself when Table Storage allows it, else a hash.

    ``%`` is hashed as well although the service allows it: URL-encoded keys in point reads
    have tripped emulators and proxies before, and a hash costs nothing here.
    """
    if (
        _FORBIDDEN_IN_KEY.search(value)
        or value.startswith(HASHED_KEY_PREFIX)
        or len(value.encode("utf-16-le")) > _MAX_KEY_BYTES
    ):
        return HASHED_KEY_PREFIX + hashlib.sha256(value.encode("utf-8")).hexdigest()
    return value


def table_name(prefix: str, base: str) -> str:
    """A table name: the prefix's lowercase letters and digits, then ``base``.

    Table names are 3-63 alphanumerics starting with a letter, so dashes and the like are dropped.
    """
    name = re.sub(r"[^a-z0-9]", "", prefix.lower()) + base
    if not re.fullmatch(r"[a-z][a-z0-9]{2,62}", name):
        raise ValueError(f"table name {name!r} (prefix {prefix!r}) is not a valid Azure table name")
    return name


def canonical_json(value: object) -> str:
    """Compact JSON with sorted keys: the same value always gives the same text (and hash)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_default(value: object) -> object:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    enum_value = getattr(value, "value", None)
    if enum_value is not None:
        return enum_value
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def json_column(name: str, value: object) -> str:
    """``value`` as a JSON string column, refused here if Table Storage would refuse it."""
    text = canonical_json(value)
    if len(text) > MAX_PROPERTY_CHARS:
        raise EntityTooLarge(
            f"{name} is {len(text)} characters of JSON; a Table Storage property holds at most "
            f"{MAX_PROPERTY_CHARS}: keep what is recorded per row small"
        )
    return text


def from_json(text: object, default: Any = None) -> Any:
    if text is None or text == "":
        return default
    return json.loads(str(text))


def day_column(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def day_from(value: object) -> date | None:
    return date.fromisoformat(str(value)) if value else None


def time_column(value: datetime | None) -> str | None:
    """A UTC ISO 8601 string with microseconds: exact round trips, sortable, readable in the portal."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: Seatwarden stores UTC times only")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def time_from(value: object) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def inverted_ms(value: datetime) -> str:
    """13 digits that sort newest first: Table Storage returns rows in ascending key order."""
    return f"{10**13 - epoch_ms(value):013d}"


def without_none(entity: dict[str, Any]) -> dict[str, Any]:
    """Table Storage has no nulls: an absent property is a null, and REPLACE drops stale ones."""
    return {k: v for k, v in entity.items() if v is not None}


def chunks(items: Sequence[Any], size: int = BATCH_LIMIT) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def submit_in_batches(table: TableClient, operations: Iterable[Operation], what: str) -> int:
    """Submit operations as transactions of at most 100, each on one partition.

    Returns the number of transactions sent. Operations keep their order within a partition.
    The transactions go one after another: the emulator resets connections under parallel
    batches, and the nightly bulk writes are small once the first night is over.
    """
    by_partition: dict[str, list[Operation]] = {}
    for operation in operations:
        by_partition.setdefault(str(operation[1]["PartitionKey"]), []).append(operation)
    sent = 0
    with mapped(what):
        for partition_ops in by_partition.values():
            for batch in chunks(partition_ops):
                table.submit_transaction(list(batch))
                sent += 1
    return sent


def odata_string(value: str) -> str:
    """A string literal for an OData filter: single quotes doubled, as the protocol wants."""
    return "'" + value.replace("'", "''") + "'"


#: Read query pages as plain JSON (see `query_json`). Tests turn it off to prove the fallback.
RAW_QUERIES = True


def query_json(
    table: TableClient, query_filter: str, what: str, page_size: int = 1000
) -> Iterator[dict[str, Any]]:
    """Every row matching ``query_filter`` as a plain dict (its ETag under ``"odata.etag"``).

    Why not `TableClient.query_entities`: the SDK deserializes each row twice (into its
    generated model, then into a `TableEntity`), which costs about four times the CPU of
    `json.loads`: a 100,000-person product took ~6 s instead of ~1.5 s against Azurite. This
    sends the same documented Query Entities request
    (https://learn.microsoft.com/rest/api/storageservices/query-entities) through the SDK's own
    pipeline (authentication, retries, hooks) and follows the continuation headers itself. It
    reaches the pipeline through the SDK's private ``_client``; if a future SDK drops that, it
    falls back to `query_entities`: slower, same rows. Only string, boolean and Int32 columns
    come back typed like the SDK's; use it for tables that store nothing else.
    """
    send = getattr(getattr(table, "_client", None), "send_request", None)
    if not RAW_QUERIES or send is None:
        with mapped(what):
            for entity in table.query_entities(query_filter, results_per_page=page_size):
                yield {**entity, "odata.etag": entity.metadata["etag"]}
        return
    base = urlsplit(table.url)
    path = f"{base.path.rstrip('/')}/{quote(table.table_name)}()"
    continuation: list[tuple[str, str]] = []
    while True:
        params = [*parse_qsl(base.query), ("$filter", query_filter), ("$top", str(page_size)), *continuation]
        url = urlunsplit((base.scheme, base.netloc, path, urlencode(params, quote_via=quote), ""))
        request = HttpRequest(
            "GET",
            url,
            headers={
                "Accept": "application/json;odata=minimalmetadata",
                "DataServiceVersion": "3.0",
                "x-ms-version": table.api_version,
            },
        )
        with mapped(what):
            response = send(request)
            if response.status_code >= 400:
                raise _http_error(response)
            body = response.json()
        yield from body.get("value", [])
        next_pk = response.headers.get("x-ms-continuation-NextPartitionKey")
        next_rk = response.headers.get("x-ms-continuation-NextRowKey")
        if not next_pk and not next_rk:
            return
        continuation = [("NextPartitionKey", next_pk or ""), ("NextRowKey", next_rk or "")]


def _http_error(response: Any) -> HttpResponseError:
    """The azure-core error the SDK would have raised, with the service's error code."""
    try:
        error = response.json().get("odata.error", {})
    except ValueError:
        error = {}
    code = error.get("code")
    message = (error.get("message") or {}).get("value") or f"HTTP {response.status_code}"
    cls = ResourceNotFoundError if response.status_code == 404 else HttpResponseError
    exc = cls(message=message, response=response)
    exc.error_code = code  # type: ignore[attr-defined]
    return exc


def etag_of(meta: Mapping[str, Any]) -> str:
    """The ETag from an entity's ``.metadata`` or from a write's response metadata."""
    found = meta.get("etag")
    if not found:
        raise StorageError("the storage service returned no ETag")
    return str(found)


def backoff(attempt: int) -> None:
    """A short random pause before retrying a lost race, so racers stop colliding in step."""
    time.sleep(random.uniform(0, 0.004 * min(2**attempt, 32)))  # noqa: S311 - jitter, not a secret


#: Settings through which requests (the Azure SDK's HTTP library) would route or verify a call.
_ENVIRONMENT_HTTP_SETTINGS = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


def sdk_client_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options for one Azure SDK client: `options`, with a transport that does not read
    the environment on every call where the environment configures nothing for it.

    requests looks for proxy settings in the whole environment on each request (urllib's
    `getproxies_environment`, about 1.7 ms here, on every table and queue call of every
    action). Where one of `_ENVIRONMENT_HTTP_SETTINGS` is set, or the caller gives its own
    transport, the SDK's default stays, and the environment is honoured as before.
    """
    if "transport" in options or any(
        os.environ.get(name) or os.environ.get(name.lower()) for name in _ENVIRONMENT_HTTP_SETTINGS
    ):
        return options
    from azure.core.pipeline.transport import RequestsTransport

    return {**options, "transport": RequestsTransport(use_env_settings=False)}
