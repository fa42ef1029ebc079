"""Reading documents that arrive from outside: webhook and request bodies, headers, policy files.

`json.loads` and PyYAML decode nesting by recursion, so a small body of ten thousand `[`
raises `RecursionError`, which is not a `ValueError`: a handler that catches only bad JSON
answers 500 instead of 400. `load_json` turns every way a document can be unreadable into
`NotJson` with a reason a sender can act on, and refuses nesting deeper than any vendor
payload or policy file has (`MAX_DEPTH`), so code that walks or re-serialises a decoded
document never recurses deeper than that.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_DEPTH", "NotJson", "TooDeep", "check_depth", "load_json"]

#: Atlassian's and Graph's deliveries nest about five levels, a policy file four.
MAX_DEPTH = 32


class NotJson(ValueError):
    """The document cannot be read; the message says why (for a 400 or a config problem)."""


class TooDeep(NotJson):
    """The document nests deeper than `MAX_DEPTH`."""

    def __init__(self, limit: int = MAX_DEPTH) -> None:
        super().__init__(f"nested more than {limit} levels deep")


def check_depth(value: Any, limit: int = MAX_DEPTH) -> Any:
    """`value` itself if its lists and mappings nest at most `limit` deep; else `TooDeep`.

    Iterative, so it cannot itself run out of stack.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth >= limit:
            raise TooDeep(limit)
        stack.extend((child, depth + 1) for child in children)
    return value


def load_json(data: bytes | str, *, limit: int = MAX_DEPTH) -> Any:
    """The decoded JSON document in UTF-8 `data`, or `NotJson` saying what is wrong with it."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text)
    except UnicodeDecodeError as exc:
        raise NotJson(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise TooDeep(limit) from None
    except ValueError as exc:  # json.JSONDecodeError, and int() refusing 4,300+ digits
        raise NotJson(f"not JSON: {exc}") from None
    return check_depth(value, limit)
