"""Run the real ``aioras`` command (``python -m aioras``) as a subprocess, for the CLI tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
