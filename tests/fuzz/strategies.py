"""Inputs for the fuzz tests: JSON of any shape, near-valid vendor payloads, and hostile bodies."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

#: Keys the code looks for, so random documents often reach the code behind them.
KNOWN_KEYS = (
    "webhookEvent",
    "user",
    "accountId",
    "data",
    "attributes",
    "id",
    "action",
    "context",
    "actor",
    "type",
    "value",
    "clientState",
    "resourceData",
    "resource",
    "subscriptionId",
    "lifecycleEvent",
    "policies",
    "claims",
    "typ",
    "val",
    "auth_typ",
)

keys = st.sampled_from(KNOWN_KEYS) | st.text(max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=16,
)


class Named(bytes):
    """Bytes that print as their name and size, so a failing example's report stays readable."""

    name: str

    def __new__(cls, name: str, value: bytes) -> Named:
        named = super().__new__(cls, value)
        named.name = name
        return named

    def __repr__(self) -> str:
        return f"<{self.name}: {len(self)} bytes>"


def nested(depth: int) -> bytes:
    """A JSON array `depth` deep: small, but too deep for a recursive decoder."""
    return b"[" * depth + b"]" * depth


#: Bodies no vendor sends, each a known way to break a naive handler.
HOSTILE_BODIES = tuple(
    Named(name, value)
    for name, value in {
        "empty": b"",
        "whitespace": b" \r\n\t",
        "null": b"null",
        "NaN": b"NaN",
        "truncated array": b"[1, 2",
        "truncated object": b'{"webhookEvent": "user_updated", ',
        "not UTF-8": b"\xff\xfe\x00\x01",
        "UTF-8 with a byte-order mark": b"\xef\xbb\xbf{}",
        "UTF-16": '{"webhookEvent": "user_updated"}'.encode("utf-16"),
        "UTF-32": '{"value": []}'.encode("utf-32"),
        "Latin-1": '{"\u00e9": "\u00e9"}'.encode("latin-1"),
        "gzip, not undone": b"\x1f\x8b\x08\x00\x00\x00\x00\x00",
        "a form post": b"webhookEvent=user_updated&user=x",
        "multipart": b"--boundary\r\nContent-Disposition: form-data\r\n\r\n{}\r\n--boundary--",
        "duplicate keys": b'{"a": 1, "a": 2}',
        "huge exponent": b"1e999999",
        "5,000-digit integer": b"9" * 5000,
        "nested 50,000 deep": nested(50_000),
        "value nested 5,000 deep": b'{"value": ' + nested(5_000) + b"}",
        "events over 256 KiB": b'{"data": [' + b"{}," * 70_000 + b"{}]}",
        "300 KB of spaces": b" " * 300_000,
    }.items()
)

CONTENT_TYPES = (
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=utf-16",
    "text/plain",
    "text/html",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=boundary",
    "application/octet-stream",
    "",
)

ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-32", "latin-1")


def encoded(document: Any, encoding: str) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode(encoding, errors="replace")


def bodies(documents: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """`documents` as UTF-8 JSON most of the time, so they reach the code behind the parser; else
    in another of ENCODINGS, random bytes, or one of HOSTILE_BODIES."""
    return weighted(
        (6, st.builds(encoded, documents, st.just("utf-8"))),
        (1, st.builds(encoded, documents, st.sampled_from(ENCODINGS))),
        (1, st.binary(max_size=200)),
        (1, st.sampled_from(HOSTILE_BODIES)),
    )


def ids() -> st.SearchStrategy[Any]:
    """An id field: a plausible id, a huge or empty string, or any JSON value."""
    plausible = st.from_regex(r"\A[0-9a-f]{6,24}\Z")
    odd = st.sampled_from(["", " ", "a/b#c?d", "x" * 70_000, "%00", "\u0000", "..", "\u00e9" * 300])
    return weighted((4, plausible), (1, odd), (1, json_values))


def often(likely: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`likely` five times in six, else any JSON value: near-valid input, a field or two off."""
    return weighted((5, likely), (1, json_values))


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each as often as its weight (`st.one_of` draws them evenly)."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(pool) - 1).flatmap(lambda i: pool[i])


def jira_payloads() -> st.SearchStrategy[Any]:
    """Jira admin webhook bodies, near the real shape (WIRE.md §9) and off it."""
    user = often(st.fixed_dictionaries({"accountId": ids()}, optional={"displayName": json_values}))
    return often(
        st.fixed_dictionaries(
            {"webhookEvent": often(st.sampled_from(["user_created", "user_updated", "user_deleted"]))},
            optional={"user": user, "timestamp": json_values, "matchedWebhookIds": json_values},
        )
    )


def audit_payloads() -> st.SearchStrategy[Any]:
    """Org audit-log webhook bodies (WIRE.md §7): one event, a list, `{"data": ...}`, or junk."""
    context_item = often(st.fixed_dictionaries({"type": often(st.just("users")), "id": ids()}))
    attributes = often(
        st.fixed_dictionaries(
            {"action": often(st.sampled_from(["user_logged_in", "group_member_added", "user_deleted"]))},
            optional={
                "context": often(st.lists(context_item, max_size=3)),
                "actor": often(st.fixed_dictionaries({"id": ids()})),
            },
        )
    )
    event = often(st.fixed_dictionaries({"id": ids(), "attributes": attributes}))
    return st.one_of(
        event,
        st.lists(event, max_size=3),
        st.fixed_dictionaries({"data": often(st.lists(event, max_size=3)) | event}),
    )


def graph_payloads(client_state: str) -> st.SearchStrategy[Any]:
    """Graph change and lifecycle notifications, with the right clientState or not."""
    notification = often(
        st.fixed_dictionaries(
            {
                "clientState": often(
                    st.sampled_from([client_state, client_state, client_state.upper(), client_state + " "])
                )
            },
            optional={
                "subscriptionId": ids(),
                "resource": often(st.sampled_from(["groups/", "Groups/abc", "users/1"])) | ids(),
                "resourceData": often(st.fixed_dictionaries({"id": ids()})),
                "lifecycleEvent": often(st.sampled_from(["reauthorizationRequired", "missed"])),
                "changeType": json_values,
            },
        )
    )
    return often(st.fixed_dictionaries({"value": st.lists(notification, max_size=3)}))


def headers(extra: st.SearchStrategy[dict[str, str]] | None = None) -> st.SearchStrategy[dict[str, str]]:
    """Random headers with a random Content-Type, merged with `extra`."""
    base = st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=60), max_size=3)
    content_type = st.sampled_from(CONTENT_TYPES)
    return st.builds(
        lambda random, ct, more: {**random, "Content-Type": ct, **(more or {})},
        base,
        content_type,
        extra if extra is not None else st.none(),
    )
