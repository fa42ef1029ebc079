"""Reading documents that arrive from outside: webhook and request bodies, headers, policy files.

`json.loads` and PyYAML decode nesting by recursion, so a small body of ten thousand `[`
raises `RecursionError`, which is not a `ValueError`: a handler that catches only bad JSON
answers 500 instead of 400. And a YAML alias names a value once and uses it many times, so
ten lines of aliases decode (quickly, shared) into a billion values that validation then
walks for hours. `load_json` turns every way a JSON document can be unreadable into
`Unreadable` with a reason a sender can act on; `check_shape` refuses, in time proportional
to its limits, a decoded document nested deeper than any vendor payload or policy file is
(`MAX_DEPTH`) or holding more values than one plausibly does (`MAX_VALUES`).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_VALUES", "TooDeep", "TooLarge", "Unreadable", "check_shape", "load_json"]

#: Atlassian's and Graph's deliveries nest about five levels, a policy file four.
MAX_DEPTH = 32
#: A policy file of a hundred policies, each excluding thousands of accounts, holds fewer.
MAX_VALUES = 200_000


class Unreadable(ValueError):
    """The document cannot be read; the message says why (for a 400 or a config problem)."""


class TooDeep(Unreadable):
    def __init__(self, limit: int) -> None:
        super().__init__(f"nested more than {limit} levels deep")


class TooLarge(Unreadable):
    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit:,} values (YAML aliases count each time they are used)")


def check_shape(value: Any, depth: int = MAX_DEPTH, values: int = MAX_VALUES) -> Any:
    """`value` itself if it nests at most `depth` deep and holds at most `values` values, counting
    a shared (aliased) value at every place it appears; else `TooDeep` or `TooLarge`.

    Iterative and stopping at the first limit passed, so it can neither run out of stack nor
    walk a billion aliased values.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    seen = 0
    while stack:
        item, level = stack.pop()
        seen += 1
        if seen > values:
            raise TooLarge(values)
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if level >= depth:
            raise TooDeep(depth)
        stack.extend((child, level + 1) for child in children)
    return value


def load_json(data: bytes | str) -> Any:
    """The decoded JSON document in UTF-8 `data`, or `Unreadable` saying what is wrong with it."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text)
    except UnicodeDecodeError as exc:
        raise Unreadable(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise TooDeep(MAX_DEPTH) from None
    except ValueError as exc:  # json.JSONDecodeError, and int() refusing 4,300+ digits
        raise Unreadable(f"not JSON: {exc}") from None
    return check_shape(value)
