"""Concurrent pulls into one output directory: typed errors only, nobody's files removed.

Pulls of a directory artifact (250 files in nested directories) run at once into the same
``outdir``, several rounds, against the real registry. Whatever the interleaving, each either
succeeds or fails with an :class:`~aioras.exceptions.OrasError`, and every file a successful
pull reported is there afterwards with its content.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from aioras.exceptions import OrasError, OutputPathError
from aioras.registry import AsyncRegistry
from aioras.testing import LocalRegistry
from support.rawartifacts import archive, directory, entry, fresh_reference, push_layers, tree

pytestmark = pytest.mark.anyio

ROUNDS = 4
FILES = {f"pkg/d{i % 5}/f{i:03d}.txt": f"content {i}\n" * 20 for i in range(250)}


@pytest.fixture
async def directory_artifact(areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path) -> str:
    """A directory pushed the ordinary way (packed by aioras, unpacked on pull)."""
    for rel, content in FILES.items():
        (tmp_cwd / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_cwd / rel).write_text(content)
    ref = fresh_reference(registry, "concurrent")
    await areg.push(ref, files=["pkg"])
    return ref


async def pull_at_once(
    areg: AsyncRegistry, refs: list[str], out: Path
) -> list[list[str] | OrasError]:
    """Pull every reference into ``out`` concurrently; typed errors are results, others raise."""
    results: list[list[str] | OrasError] = [[] for _ in refs]

    async def one(i: int) -> None:
        try:
            results[i] = await areg.pull(refs[i], outdir=str(out))
        except OrasError as error:
            results[i] = error

    async with anyio.create_task_group() as tg:
        for i in range(len(refs)):
            tg.start_soon(one, i)
    return results


def assert_all_files_there(out: Path) -> None:
    found = {rel: text for rel, text in tree(out).items() if rel in FILES}
    assert len(found) == len(FILES), f"{len(FILES) - len(found)} files are missing"
    assert found == FILES


async def test_two_concurrent_pulls_of_a_directory_both_succeed(
    areg: AsyncRegistry, directory_artifact: str, tmp_path: Path
) -> None:
    for n in range(ROUNDS):
        out = tmp_path / f"out-{n}"
        results = await pull_at_once(areg, [directory_artifact] * 3, out)

        assert [r for r in results if isinstance(r, OrasError)] == []
        assert_all_files_there(out)
        assert not [p for p in out.rglob(".aioras-*")]


async def test_a_failing_concurrent_pull_never_removes_the_other_pulls_files(
    areg: AsyncRegistry, registry: LocalRegistry, directory_artifact: str, tmp_path: Path
) -> None:
    # The same tree, then a member below a file: it fails at its very end.
    failing = fresh_reference(registry, "concurrent", "bad")
    members = [directory("pkg")]
    members += [entry(rel, text.encode()) for rel, text in FILES.items()]
    members += [entry("pkg/zz", b"a file"), entry("pkg/zz/x")]
    await push_layers(areg, failing, [archive("pkg", *members)])

    for n in range(ROUNDS):
        out = tmp_path / f"out-{n}"
        good, bad = await pull_at_once(areg, [directory_artifact, failing], out)

        assert isinstance(good, list), good
        assert isinstance(bad, OutputPathError)
        assert_all_files_there(out)
        assert "pkg/zz" not in tree(out)
