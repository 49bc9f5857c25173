"""The worker threads that write, hash and place downloaded files: a few per event loop.

anyio's default pool lets 40 threads run at once. A pull of many small artifacts keeps
that many busy with short calls (write a batch, rename, place a file), and each one
running Python takes the GIL from the event loop, which then waits to get it back after
every socket call. `run_file_work` runs such calls on at most `defaults.file_threads`
threads instead (see there for the figures). Only short calls that never wait on another
thread call belong here: with few threads, one waiting on another could wait forever.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, TypeVarTuple, Unpack

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

from .. import defaults

__all__ = ["run_file_work"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

_LIMITER: RunVar[anyio.CapacityLimiter] = RunVar("aioras_file_threads")


def _limiter() -> anyio.CapacityLimiter:
    """This event loop's limiter (made on first use: limiters belong to one loop)."""
    try:
        return _LIMITER.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(defaults.file_threads)
        _LIMITER.set(limiter)
        return limiter


async def run_file_work(func: Callable[[Unpack[Ts]], T], *args: *Ts) -> T:
    """Run ``func(*args)`` in a file-work thread; cancellation waits for it to return."""
    return await anyio.to_thread.run_sync(func, *args, limiter=_limiter())
