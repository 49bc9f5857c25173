"""The resume file of a mirror: which artifacts are known done, written atomically.

A JSON document ``{"version": 1, "complete": false, "done": {"<source> -> <destination>":
"<digest>"}}``. Each finished artifact is recorded, the whole file rewritten to a temporary
name beside it, flushed to disk and renamed over the old one, so a crash at any moment
leaves either the old file or the new one, never half of one. A mirror started again with
the file skips what it lists; when a mirror completes, the file is marked ``complete`` and
the next run with it checks everything afresh (a re-sync).

Several mirrors may share one file, in tasks, threads or processes: each save holds an
exclusive lock (``flock`` on ``<file>.lock`` beside it), reads the file again and merges
the entries found there (unless that file marks a completed run) with its own before
writing, so no mirror drops another's entries. The file is parsed with the library's JSON
loader: one nested too deeply is refused as unreadable (ValueError), never a
``RecursionError``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio

from ..._files.atomic import file_lock, replace_file
from ..._jsondoc import load_json

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
        done, complete = _read(state.path)
        if not complete:
            state.done = done
        return state

    def known(self, key: str) -> str | None:
        """The digest recorded for job ``key``, or None."""
        return self.done.get(key)

    async def record(self, key: str, digest: str) -> None:
        """Record one finished artifact and save the file (merged, see the module doc)."""
        async with self._lock:
            self.done[key] = digest
            await self._save(complete=False)

    async def finish(self) -> None:
        """Mark the run complete: the next run checks every artifact again."""
        async with self._lock:
            await self._save(complete=True)

    async def _save(self, *, complete: bool) -> None:
        # The lock is the one login uses for config.json: a sidecar file, polled flock.
        async with file_lock(self.path):
            await anyio.to_thread.run_sync(self._merge_and_write, complete)

    def _merge_and_write(self, complete: bool) -> None:
        on_disk, finished = _read(self.path)
        if not finished:
            # Another mirror's entries; ours win for a job both did (the newer digest).
            self.done = {**on_disk, **self.done}
        data = json.dumps(
            {"version": _VERSION, "complete": complete, "done": self.done}, indent=1
        ).encode()
        replace_file(self.path, data, mode=0o600)


def _read(path: Path) -> tuple[dict[str, str], bool]:
    """The entries of the state file at ``path`` and whether it marks a completed run.

    An absent file has none. Raises ValueError for a file that is not a mirror state.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}, False
    try:
        doc = load_json(raw)
        if not isinstance(doc, dict) or doc.get("version") != _VERSION:
            raise ValueError("not a mirror state document")
        done = doc.get("done", {})
        if not isinstance(done, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in done.items()
        ):
            raise ValueError("its done entries are not strings")
    except ValueError as error:
        raise ValueError(f"state file {path} is unreadable: {error}") from None
    return dict(done), bool(doc.get("complete"))
