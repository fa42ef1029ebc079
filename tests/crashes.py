"""Crash injection: the worker process dies at a chosen point while the executor applies an
action. For the executor's own tests and the fault campaign; nothing in the product knows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Where the executor can die while applying an action: right after a remote change, just
#: before its audit entry is written, or right after.
CRASH_POINTS = ("after-change", "before-audit", "after-audit")


class Crash(BaseException):
    """The worker process died: nothing after it runs, no `except Exception` sees it."""


@contextmanager
def crashing(point: str | None) -> Iterator[None]:
    """The executor dies once at `point` (one of CRASH_POINTS) while the block runs."""
    if point is None:
        yield
        return
    from shared.services.execute import Executor
    from shared.store.audit import AuditLog

    armed = [True]

    def fire() -> None:
        if armed[0]:
            armed[0] = False
            raise Crash(point)

    original_op, original_append = Executor._apply_op, AuditLog.append

    async def apply_op(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = await original_op(self, *args, **kwargs)
        if point == "after-change":
            fire()
        return result

    def append(self: Any, *args: Any, **kwargs: Any) -> Any:
        if point == "before-audit":
            fire()
        result = original_append(self, *args, **kwargs)
        if point == "after-audit":
            fire()
        return result

    Executor._apply_op = apply_op  # type: ignore[method-assign]
    AuditLog.append = append  # type: ignore[method-assign]
    try:
        yield
    finally:
        Executor._apply_op = original_op  # type: ignore[method-assign]
        AuditLog.append = original_append  # type: ignore[method-assign]
