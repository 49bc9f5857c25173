"""Bounded, structured concurrency for transfers: never an unbounded gather.

Every fan-out in aioras goes through `map_bounded`: an anyio task group whose tasks
wait on a `anyio.CapacityLimiter`, so at most ``limit`` run at once, all are awaited
or cancelled together, and the first failure cancels the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import anyio

__all__ = ["first_error", "map_bounded"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


async def map_bounded(
    fn: Callable[[T], Awaitable[R]], items: Sequence[T], *, limit: int
) -> list[R]:
    """Run ``fn`` over ``items``, at most ``limit`` at once; return results in input order.

    When a call fails the others are cancelled and that call's own exception is raised
    (not an ``ExceptionGroup``), so callers catch the typed aioras errors they expect.
    When several fail at the same moment the first is raised and the rest are logged.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    results: list[R | None] = [None] * len(items)
    limiter = anyio.CapacityLimiter(limit)

    async def run(index: int, item: T) -> None:
        async with limiter:
            results[index] = await fn(item)

    try:
        async with anyio.create_task_group() as tg:
            for index, item in enumerate(items):
                tg.start_soon(run, index, item)
    except BaseExceptionGroup as group:
        raise first_error(group) from None
    return results  # type: ignore[return-value]  # every slot was filled: no task failed


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first failure in a task group's exception group; the others are logged."""
    errors = _leaves(group)
    for extra in errors[1:]:
        logger.debug("concurrent task also failed: %r", extra)
    return errors[0]


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            out.extend(_leaves(error))
        else:
            out.append(error)
    return out
