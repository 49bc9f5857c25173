"""Progress of transfers: one event type for push, pull and copy, and the hook that sends it.

Pass ``progress=`` a callable taking a [`TransferEvent`][aioras.progress.TransferEvent]; it may be a
plain function or a coroutine function (awaited in the transferring task, so keep it quick). Events,
per descriptor:

- ``"resolve"``: a reference was resolved to the descriptor (the root of a copy, a pull);
- ``"start"``: its bytes begin to move (``total`` is the size);
- ``"bytes"``: ``done`` of ``total`` bytes moved, at most about ten a second per blob;
- ``"skipped"``: the destination has it already, nothing was sent;
- ``"mounted"``: the registry mounted it from another repository, nothing was sent;
- ``"done"``: it arrived whole (``done == total``);
- ``"error"``: its transfer failed (``error`` holds the exception, which is raised too).

A callback that raises stops the transfer with its exception.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

from .descriptor import Descriptor

__all__ = [
    "EventKind",
    "ProgressCallback",
    "ProgressReporter",
    "TransferEvent",
    "position_reporter",
]

EventKind = Literal["resolve", "start", "bytes", "skipped", "mounted", "done", "error"]

# Seconds between two "bytes" events of one blob: about ten a second.
_INTERVAL = 0.1


@dataclass(frozen=True)
class TransferEvent:
    """Something happened to one descriptor's transfer."""

    kind: EventKind
    descriptor: Descriptor
    done: int = 0
    """Bytes moved so far."""
    total: int = 0
    """Bytes to move: the descriptor's size."""
    error: BaseException | None = None
    """The failure, for ``"error"`` events."""

    @property
    def digest(self) -> str:
        """The descriptor's digest."""
        return self.descriptor["digest"]


ProgressCallback = Callable[[TransferEvent], Awaitable[None] | None]
"""What ``progress=`` takes: a function or coroutine function of a
[`TransferEvent`][aioras.progress.TransferEvent]."""


PositionCallback = Callable[[int], Awaitable[None]]

# The byte position of the blob the current task is uploading goes here, when a push asked
# for progress: the file reader deep in the upload reports to it without every endpoint
# method (public, and overridden by oras-py style subclasses) growing a parameter.
_position: ContextVar[PositionCallback | None] = ContextVar("aioras_position", default=None)


def position_reporter() -> PositionCallback | None:
    """Where the current task's upload reports how far into the blob it has read, if anywhere."""
    return _position.get()


class ProgressReporter:
    """Delivers events to a callback (or nowhere), throttling ``"bytes"`` events per blob."""

    def __init__(self, callback: ProgressCallback | None, *, interval: float = _INTERVAL) -> None:
        self.callback = callback
        self.interval = interval

    def __bool__(self) -> bool:
        return self.callback is not None

    async def emit(
        self,
        kind: EventKind,
        descriptor: Descriptor,
        *,
        done: int | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Send one event; ``done`` defaults to the size for done/skipped/mounted, else 0."""
        if self.callback is None:
            return
        total = int(descriptor.get("size", 0))
        if done is None:
            done = total if kind in ("done", "skipped", "mounted") else 0
        result = self.callback(
            TransferEvent(kind=kind, descriptor=descriptor, done=done, total=total, error=error)
        )
        if inspect.isawaitable(result):
            await result

    async def counted(
        self, descriptor: Descriptor, chunks: AsyncIterator[bytes]
    ) -> AsyncGenerator[bytes, None]:
        """Pass ``chunks`` through, sending throttled ``"bytes"`` events as they go by."""
        done = 0
        last = time.monotonic()
        async for chunk in chunks:
            done += len(chunk)
            now = time.monotonic()
            if self.callback is not None and now - last >= self.interval:
                last = now
                await self.emit("bytes", descriptor, done=done)
            yield chunk

    @contextmanager
    def positions(self, descriptor: Descriptor) -> Iterator[None]:
        """Within the block, file reads of this task send throttled ``"bytes"`` events.

        The position is where the reader stands in the blob, so an upload that restarts
        goes back to its start rather than counting its bytes twice.
        """
        if self.callback is None:
            yield
            return
        last = 0.0

        async def at(position: int) -> None:
            nonlocal last
            now = time.monotonic()
            # A blob hashed while it uploads reports once its digest is known.
            if now - last >= self.interval and descriptor["digest"]:
                last = now
                await self.emit("bytes", descriptor, done=position)

        token = _position.set(at)
        try:
            yield
        finally:
            _position.reset(token)
