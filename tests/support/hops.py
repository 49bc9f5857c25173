"""Counting worker-thread hops (``anyio.to_thread.run_sync`` calls) in a test."""

from __future__ import annotations

import anyio.to_thread
import pytest


def count_thread_hops(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count every ``anyio.to_thread.run_sync`` call from now on; ``[count]``, kept current."""
    hops = [0]
    real = anyio.to_thread.run_sync

    async def counted(*args: object, **kwargs: object) -> object:
        hops[0] += 1
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    return hops
