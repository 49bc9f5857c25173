"""The live progress display under a pseudo-terminal, and the plain renderer in library code."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import anyio
import pytest

import aioras
from aioras.cli.progress import show
from aioras.testing import LocalRegistry
from support.clitools import cli_env

pytestmark = pytest.mark.integration


def run_on_pty(args: list[str], cwd: Path) -> tuple[int, bytes, str]:
    """Run ``python -m aioras ARGS`` with stderr on a pseudo-terminal; status, tty bytes, stdout."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
    env = cli_env(TERM="xterm-256color")
    for name in ("NO_COLOR", "COLUMNS", "LINES", "TERM_PROGRAM", "FORCE_COLOR"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "aioras", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    seen = bytearray()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer of the terminal has gone
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    proc.stdout.close()
    return proc.wait(timeout=30), bytes(seen), out


def test_live_display_updates_and_ends_cleanly_on_a_terminal(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(24 << 20))
    ref = f"{registry.host}/cli/pty:v1"
    status, tty, out = run_on_pty(["push", "--plain-http", ref, "big.bin"], tmp_path)
    assert status == 0, tty.decode(errors="replace")
    text = tty.decode(errors="replace")
    assert "\x1b[?25l" in text  # the cursor hidden while the display is live...
    assert text.rstrip("\r\n").endswith("\x1b[?25h")  # ...and shown again when it ends
    frames = text.count("total")
    assert frames >= 2, text
    first = text.index("total")
    assert "24.0/24.0 MiB" not in text[first : first + 200]  # it started from nothing
    assert "24.0/24.0 MiB" in text[text.rindex("total") :]  # and ends complete
    assert "big.bin" in text
    assert "done" in text[text.rindex("big.bin") :]
    assert out.startswith(f"Pushed {ref}")  # results stay on stdout, off the display


def test_second_push_marks_blobs_skipped_on_the_terminal(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    (tmp_path / "f.bin").write_bytes(os.urandom(1 << 20))
    ref = f"{registry.host}/cli/pty-skip:v1"
    assert run_on_pty(["push", "--plain-http", "--no-tty", ref, "f.bin"], tmp_path)[0] == 0
    status, tty, _ = run_on_pty(["push", "--plain-http", ref, "f.bin"], tmp_path)
    assert status == 0
    text = tty.decode(errors="replace")
    assert "skipped" in text[text.rindex("f.bin") :]


def test_no_tty_on_a_terminal_writes_plain_lines(registry: LocalRegistry, tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(b"z" * 4096)
    status, tty, _ = run_on_pty(
        ["push", "--plain-http", "--no-tty", f"{registry.host}/cli/pty-plain:v1", "f.bin"],
        tmp_path,
    )
    assert status == 0
    text = tty.decode()
    assert "\x1b" not in text
    assert all(ch.isprintable() or ch in "\r\n" for ch in text)
    assert "started" in text
    assert "done" in text


def test_show_in_library_code_writes_plain_lines_off_a_terminal(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    (tmp_path / "lib.txt").write_text("library")
    sink = io.StringIO()

    async def main() -> None:
        async with aioras.AsyncRegistry(insecure=True) as reg:
            with show(file=sink) as progress:
                await reg.push(
                    f"{registry.host}/cli/lib:v1",
                    files=[str(tmp_path / "lib.txt")],
                    disable_path_validation=True,
                    progress=progress,
                )

    anyio.run(main)
    lines = sink.getvalue().splitlines()
    assert any(line.startswith("started") and "lib.txt" in line for line in lines)
    assert any(line.startswith("done") and "lib.txt" in line for line in lines)
    assert "\x1b" not in sink.getvalue()


def test_push_reports_bytes_as_the_file_goes_out(registry: LocalRegistry, tmp_path: Path) -> None:
    size = 8 << 20
    (tmp_path / "big.bin").write_bytes(os.urandom(size))
    events: list[aioras.TransferEvent] = []

    async def main() -> None:
        async with aioras.AsyncRegistry(insecure=True) as reg:
            await reg.push(
                f"{registry.host}/cli/bytes:v1",
                files=[str(tmp_path / "big.bin")],
                disable_path_validation=True,
                progress=events.append,
            )

    anyio.run(main)
    done = [e.done for e in events if e.kind == "bytes" and e.total == size]
    assert done, [e.kind for e in events]
    assert all(0 < d <= size for d in done)
    assert done == sorted(done)
    kinds = [e.kind for e in events if e.total == size]
    assert kinds[0] == "start"
    assert kinds[-1] == "done"


def test_pull_reports_bytes_as_the_layer_arrives(registry: LocalRegistry, tmp_path: Path) -> None:
    size = 8 << 20
    (tmp_path / "big.bin").write_bytes(os.urandom(size))
    ref = f"{registry.host}/cli/pull-bytes:v1"
    events: list[aioras.TransferEvent] = []

    async def main() -> None:
        async with aioras.AsyncRegistry(insecure=True) as reg:
            await reg.push(ref, files=[str(tmp_path / "big.bin")], disable_path_validation=True)
            await reg.pull(ref, outdir=tmp_path / "out", progress=events.append)

    anyio.run(main)
    done = [e.done for e in events if e.kind == "bytes" and e.total == size]
    assert done, [e.kind for e in events]
    assert all(0 < d <= size for d in done)
    assert done == sorted(done)
    assert [e.kind for e in events if e.total == size][-1] == "done"
