"""docs/index.md's "registry to try it on" works as written, and the quick start against it."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import httpx

from support.clitools import aioras as run_cli
from support.clitools import cli_env

INDEX = Path(__file__).resolve().parents[2] / "docs" / "index.md"


def _try_it_on_command() -> list[str]:
    section = INDEX.read_text().split("## A registry to try it on", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)\n```", section, re.S)
    assert block is not None, "the section shows a shell command"
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(lines) == 1, "one command"
    words = shlex.split(lines[0])
    assert words[0] == "python", "the command runs where aioras is installed"
    return [sys.executable, *words[1:]]


def test_the_getting_started_registry_command_starts_a_registry_that_takes_a_push(
    registry_binary: str, tmp_path: Path
) -> None:
    command = _try_it_on_command()
    with subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=cli_env(),
    ) as process:
        assert process.stdout is not None
        assert process.stdin is not None
        host = process.stdout.readline().strip()
        try:
            assert re.fullmatch(r"127\.0\.0\.1:\d+", host), host
            (tmp_path / "artifact.txt").write_text("hello\n")
            pushed = run_cli(
                "push", "--plain-http", f"{host}/demo/hello:v1", "artifact.txt", cwd=tmp_path
            )
            assert pushed.status == 0, pushed.stderr
            tags = run_cli("repo", "tags", "--plain-http", f"{host}/demo/hello", cwd=tmp_path)
            assert tags.stdout.split() == ["v1"]
        finally:
            process.stdin.write("\n")  # Enter stops it, as the page says
            process.stdin.flush()
            assert process.wait(30) == 0
    try:
        httpx.get(f"http://{host}/v2/", timeout=5)
    except httpx.ConnectError:
        return
    raise AssertionError(f"the registry at {host} still answers after Enter")
