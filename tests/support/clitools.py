"""Run the real ``aioras`` command (``python -m aioras``) as a subprocess, for the CLI tests."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SRC = str(Path(__file__).resolve().parents[2] / "src")


@dataclass
class Result:
    """What one run of the command did."""

    status: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a run: this checkout's package first, credentials of no one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORAS_", "DOCKER_"))}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def aioras(
    *args: str, cwd: Path | None = None, stdin: str | None = None, timeout: float = 120, **env: str
) -> Result:
    """Run ``python -m aioras ARGS`` and return its status and output."""
    done = subprocess.run(
        [sys.executable, "-m", "aioras", *args],
        cwd=cwd,
        env=cli_env(**env),
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def aioras_bytes(*args: str, timeout: float = 120, **env: str) -> tuple[int, bytes, bytes]:
    """Run ``python -m aioras ARGS``; its status and the exact bytes of stdout and stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "aioras", *args],
        env=cli_env(**env),
        input=b"",
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def aioras_pty(
    *args: str,
    cwd: Path | None = None,
    replies: Sequence[tuple[str, str]] = (),
    columns: int = 120,
    timeout: float = 120,
    **env: str,
) -> Result:
    """Run ``python -m aioras ARGS`` on a pseudo-terminal of ``columns`` columns.

    The terminal is the process's controlling one (stdin, stdout and stderr on it, so
    ``getpass`` reads it). Each ``(prompt, reply)`` of ``replies`` is typed, in order, once
    ``prompt`` has appeared. ``stdout`` is everything the terminal showed; ``stderr`` is empty.
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    environment = cli_env(TERM="xterm-256color", COLUMNS=str(columns), **env)
    for name in ("NO_COLOR", "LINES", "TERM_PROGRAM", "FORCE_COLOR"):
        environment.pop(name, None)

    def own_terminal() -> None:  # a new session whose controlling terminal is the pty
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [sys.executable, "-m", "aioras", *args],
        cwd=cwd,
        env=environment,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        preexec_fn=own_terminal,  # no threads run in the tests that use it
    )
    os.close(slave)
    seen = bytearray()
    pending = list(replies)
    searched = 0
    try:
        while True:
            ready, _, _ = select.select([master], [], [], timeout)
            if not ready:
                proc.kill()
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer of the terminal has gone
                break
            if not chunk:
                break
            seen += chunk
            text = seen.decode(errors="replace")
            while pending and pending[0][0] in text[searched:]:
                searched = text.index(pending[0][0], searched) + len(pending[0][0])
                os.write(master, pending.pop(0)[1].encode())
    finally:
        os.close(master)
    status = proc.wait(timeout=30)
    return Result(status, seen.decode(errors="replace"), "")
