"""``aioras mirror`` as a user meets it: the dry run lists what it would copy; --help words."""

from __future__ import annotations

from pathlib import Path

import anyio

from aioras import AsyncRegistry
from aioras.testing import LocalRegistry
from support.clitools import aioras
from support.mirrortools import populate, unique


def test_dry_run_text_lists_each_artifact_it_would_copy(
    registry: LocalRegistry, fresh_registry: LocalRegistry, tmp_path: Path
) -> None:
    name = unique("clidry/app")

    async def fill() -> None:
        async with AsyncRegistry(insecure=True) as reg:
            await populate(reg, f"{registry.host}/{name}", ["a", "b"])

    anyio.run(fill)
    plan = tmp_path / "plan.toml"
    src, dst = f"{registry.host}/{name}", f"{fresh_registry.host}/{name}"
    plan.write_text(f'[[mirror]]\nsource = "{src}"\ndestination = "{dst}"\n')
    done = aioras("mirror", "--plain-http", "--dry-run", "--no-tty", str(plan))
    assert done.status == 0, done.stderr
    lines = done.stdout.splitlines()
    for tag in "ab":
        assert (
            f"Would copy {registry.host}/{name}:{tag} -> {fresh_registry.host}/{name}:{tag}"
            in lines
        )
    assert lines[-1].startswith("0 copied, 0 skipped, 2 planned, 0 failed")


def test_mirror_help_says_concurrency_counts_artifacts() -> None:
    done = aioras("mirror", "--help")
    text = " ".join(done.stdout.split())
    assert "--concurrency N artifacts mirrored at once" in text
