"""Progress of transfers on the terminal, rendered from
[`TransferEvent`][aioras.progress.TransferEvent]s.

One line in library code::

    from aioras.cli.progress import show

    with show() as progress:
        await registry.push(ref, files=files, progress=progress)

On a terminal (and with the ``cli`` extra's rich installed) it draws a live display: a bar
per blob and one for the total, with bytes, speed and time left; blobs the destination had
are marked ``skipped``, those the registry mounted ``mounted``. Off a terminal, or with
``tty=False``, it writes plain lines instead (start, done, skipped, mounted, failed), with
no control characters (a title's are shown as escapes). It writes to stderr unless given
``file``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, ClassVar

from ..progress import ProgressCallback, TransferEvent
from .terminal import safe

__all__ = ["LiveProgress", "PlainProgress", "show"]


def _short(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}:{hexpart[:12]}"


def _label(event: TransferEvent) -> str:
    annotations = event.descriptor.get("annotations") or {}
    title = annotations.get("org.opencontainers.image.title")
    label = f"{title} ({_short(event.digest)})" if title else _short(event.digest)
    # Titles come from manifests: escaped like every registry string (rich draws it as
    # plain text too: its columns take no markup).
    return safe(str(label))


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


class PlainProgress:
    """Writes one plain line per blob milestone: for logs, pipes and ``--no-tty``."""

    _WORDS: ClassVar[dict[str, str]] = {
        "start": "started",
        "done": "done",
        "skipped": "skipped (exists)",
        "mounted": "mounted",
        "error": "failed",
    }

    def __init__(self, file: IO[str]) -> None:
        self.file = file

    def __call__(self, event: TransferEvent) -> None:
        word = self._WORDS.get(event.kind)
        if word is None:
            return
        line = f"{word:<16} {_label(event)} {_size(event.total)}"
        self.file.write(line + "\n")
        self.file.flush()


def _speed(per_second: float | None) -> str:
    """A speed in the units of `_size` (KiB/s, MiB/s: binary, as the sizes are)."""
    return "?" if per_second is None else f"{_size(int(per_second))}/s"


# Widths of the columns besides the label and the bar ("123.4/123.4 MiB", "123.4 MiB/s",
# "0:00:00", "skipped"), and the spaces between the six columns.
_FIXED_WIDTH = 15 + 11 + 7 + 7 + 5


class LiveProgress:
    """A rich live display: one bar per blob and a total, one line each at any width.

    Every column keeps to one line (``no_wrap``): the label is cut with an ellipsis and the
    bar shrinks, so that a row never wraps onto a second line, even at 80 columns.
    """

    def __init__(self, file: IO[str]) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            ProgressColumn,
            Task,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.table import Column
        from rich.text import Text

        class SpeedColumn(ProgressColumn):
            def render(self, task: Task) -> Text:
                return Text(_speed(task.finished_speed or task.speed), style="progress.data.speed")

        console = Console(file=file, force_terminal=True)
        room = max(console.width - _FIXED_WIDTH, 20)
        label_width = min(60, room * 3 // 5)

        def one_line(width: int | None = None) -> Column:
            return Column(no_wrap=True, overflow="ellipsis", max_width=width)

        self.progress = Progress(
            TextColumn("{task.description}", markup=False, table_column=one_line(label_width)),
            BarColumn(bar_width=max(room - label_width - 1, 5), table_column=one_line()),
            DownloadColumn(binary_units=True, table_column=one_line()),
            SpeedColumn(table_column=one_line()),
            TimeRemainingColumn(table_column=one_line()),
            TextColumn("{task.fields[status]}", markup=False, table_column=one_line()),
            console=console,
            transient=False,
            refresh_per_second=10,
        )
        self.total = self.progress.add_task("total", total=0, status="", start=True)
        self.tasks: dict[str, Any] = {}
        self.done: dict[str, int] = {}

    def __enter__(self) -> LiveProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def __call__(self, event: TransferEvent) -> None:
        if event.kind == "resolve":
            return
        task = self.tasks.get(event.digest)
        if task is None:
            label = _label(event)
            task = self.progress.add_task(label, total=event.total, status="")
            self.tasks[event.digest] = task
            grand = sum(t.total or 0 for t in self.progress.tasks if t.id != self.total)
            self.progress.update(self.total, total=grand)
        status = {"skipped": "skipped", "mounted": "mounted", "error": "failed", "done": "done"}
        self.progress.update(task, completed=event.done, status=status.get(event.kind, ""))
        self.done[event.digest] = event.done
        self.progress.update(self.total, completed=sum(self.done.values()))


@contextmanager
def show(*, tty: bool | None = None, file: IO[str] | None = None) -> Iterator[ProgressCallback]:
    """Yield a ``progress=`` callback that renders to ``file`` (default stderr).

    ``tty`` None draws the live display when ``file`` is a terminal and rich is installed,
    plain lines otherwise; False always plain lines; True the live display (ImportError
    without rich). The live
    display is stopped, its last state left on screen and the cursor restored, on exit.
    """
    stream = file or sys.stderr
    live = stream.isatty() if tty is None else tty
    if live and tty is None and importlib.util.find_spec("rich") is None:
        live = False  # on a terminal without the cli extra: plain lines rather than a failure
    if not live:
        yield PlainProgress(stream)
        return
    with LiveProgress(stream) as display:
        yield display
