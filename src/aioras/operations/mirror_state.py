"""The resume file of a mirror: which artifacts are known done, written atomically.

A JSON document ``{"version": 1, "complete": false, "done": {"<source> -> <destination>":
"<digest>"}}``. Each finished artifact is recorded, the whole file rewritten to a temporary
name beside it, flushed to disk and renamed over the old one, so a crash at any moment
leaves either the old file or the new one, never half of one. A mirror started again with
the file skips what it lists; when a mirror completes, the file is marked ``complete`` and
the next run with it checks everything afresh (a re-sync).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import anyio

__all__ = ["MirrorState"]

_VERSION = 1


class MirrorState:
    """The artifacts a mirror finished, kept in a file (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.done: dict[str, str] = {}
        self._lock = anyio.Lock()

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MirrorState:
        """The state in ``path``: empty when the file is absent or marks a completed run.

        Raises ValueError for a file that is not a mirror state (it is left untouched).
        """
        state = cls(path)
        try:
            raw = state.path.read_bytes()
        except FileNotFoundError:
            return state
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("version") != _VERSION:
                raise ValueError("not a mirror state document")
            done = doc.get("done", {})
            if not isinstance(done, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in done.items()
            ):
                raise ValueError("its done entries are not strings")
        except ValueError as error:
            raise ValueError(f"state file {state.path} is unreadable: {error}") from None
        if not doc.get("complete"):
            state.done = dict(done)
        return state

    def known(self, key: str) -> str | None:
        """The digest recorded for job ``key``, or None."""
        return self.done.get(key)

    async def record(self, key: str, digest: str) -> None:
        """Record one finished artifact and rewrite the file."""
        async with self._lock:
            self.done[key] = digest
            await anyio.to_thread.run_sync(self._write, False)

    async def finish(self) -> None:
        """Mark the run complete: the next run checks every artifact again."""
        async with self._lock:
            await anyio.to_thread.run_sync(self._write, True)

    def _write(self, complete: bool) -> None:
        data = json.dumps(
            {"version": _VERSION, "complete": complete, "done": self.done}, indent=1
        ).encode()
        directory = self.path.parent
        fd, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
