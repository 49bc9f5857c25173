"""Containment at write time: symlinks built across layers or pulls never lead a write out.

Each artifact is pushed to the real registry layer by layer and pulled into ``jail/.../out``;
afterwards nothing may exist outside ``out``, no symlink under ``out`` may resolve outside
it, and a refused pull leaves ``out`` as it was.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import anyio
import pytest

from aioras.exceptions import UnsafePathError
from aioras.registry import AsyncRegistry
from aioras.sync import Registry
from aioras.testing import LocalRegistry
from support.rawartifacts import (
    Layer,
    archive,
    directory,
    fresh_reference,
    links_leaving,
    plain,
    push_layers,
    symlink,
    tree,
)

pytestmark = pytest.mark.anyio

FILLER = 16 * 1024 * 1024


def outside_entries(jail: Path, out: Path) -> list[str]:
    """Everything under ``jail`` that is neither ``out``, inside it, nor on the way to it."""
    on_the_way = {jail, *out.parents}
    return sorted(
        str(p.relative_to(jail))
        for p in jail.rglob("*")
        if p != out and out not in p.parents and p not in on_the_way
    )


async def assert_pull_refused_and_contained(
    areg: AsyncRegistry, registry: LocalRegistry, layers: list[Layer], jail: Path, out: Path
) -> None:
    """Push ``layers``; pulling them one at a time is refused and changes nothing."""
    ref = fresh_reference(registry, "containment")
    await push_layers(areg, ref, layers)
    out.mkdir(parents=True)
    (out / "mine.txt").write_text("user data")

    with pytest.raises(UnsafePathError):
        await areg.pull(ref, outdir=str(out), concurrency=1)

    assert outside_entries(jail, out) == []
    assert tree(out) == {"mine.txt": "user data"}


async def test_symlink_chain_across_two_archive_layers_cannot_reach_outdirs_parent(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_path: Path
) -> None:
    # x -> y/.. while y does not exist yet, then y -> ., then a plain layer x/pwned.txt:
    # on disk x ends up meaning outdir/.. .
    layers = [
        archive("a", symlink("x", "y/..")),
        archive("b", symlink("y", ".")),
        plain("x/pwned.txt", b"pwned"),
    ]
    jail = tmp_path / "jail"
    await assert_pull_refused_and_contained(areg, registry, layers, jail, jail / "out")


async def test_nested_symlink_chain_cannot_reach_three_levels_up(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_path: Path
) -> None:
    # a -> b/.., b -> c/.., c -> d/.., d -> . : each harmless when made, a ends up three
    # directories above outdir.
    layers = [
        archive("l1", symlink("a", "b/..")),
        archive("l2", symlink("b", "c/..")),
        archive("l3", symlink("c", "d/..")),
        archive("l4", symlink("d", ".")),
        plain("a/pwned.txt", b"pwned"),
    ]
    jail = tmp_path / "jail"
    await assert_pull_refused_and_contained(
        areg, registry, layers, jail, jail / "l1" / "l2" / "out"
    )


async def test_two_pulls_in_a_row_cannot_complete_a_symlink_chain(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_path: Path
) -> None:
    # The first pull leaves x -> y/.. dangling; the second makes y -> . and writes through x.
    first, second = (
        fresh_reference(registry, "containment"),
        fresh_reference(registry, "containment"),
    )
    await push_layers(areg, first, [archive("a", symlink("x", "y/.."))])
    await push_layers(
        areg, second, [archive("b", symlink("y", ".")), plain("x/pwned.txt", b"pwned")]
    )
    jail = tmp_path / "jail"
    out = jail / "out"
    out.mkdir(parents=True)

    for ref in (first, second):
        with contextlib.suppress(UnsafePathError):
            await areg.pull(ref, outdir=str(out), concurrency=1)
        # After each pull, whatever it made or left: nothing out there, no link leading out.
        assert outside_entries(jail, out) == []
        assert links_leaving(out) == []
    assert not (jail / "pwned.txt").exists()


async def test_a_link_from_an_earlier_pull_is_never_written_through(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_path: Path
) -> None:
    # Even a link that stays inside: a write follows no symlink on its way.
    first, second = (
        fresh_reference(registry, "containment"),
        fresh_reference(registry, "containment"),
    )
    await push_layers(areg, first, [archive("a", directory("sub"), symlink("x", "sub"))])
    out = tmp_path / "out"
    await areg.pull(first, outdir=str(out))
    assert (out / "x").is_symlink()
    await push_layers(areg, second, [plain("x/f.txt", b"through the link")])

    with pytest.raises(UnsafePathError):
        await areg.pull(second, outdir=str(out))

    assert tree(out) == {"sub": "/", "x": "-> sub"}


async def test_symlink_chain_with_default_concurrency_through_the_sync_facade(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_path: Path
) -> None:
    # Large filler layers hold two of the three download slots, so the plain layer starts
    # only once both link layers are in place: the order a real registry gives naturally.
    ref = fresh_reference(registry, "containment")
    layers: list[Layer] = [
        archive("a", symlink("x", "y/..")),
        archive("b", symlink("y", ".")),
        plain("filler-1.bin", bytes(FILLER)),
        plain("filler-2.bin", bytes(FILLER)),
        plain("x/pwned.txt", b"pwned"),
    ]
    await push_layers(areg, ref, layers)
    jail = tmp_path / "jail"
    out = jail / "out"
    out.mkdir(parents=True)

    def pull() -> None:
        with Registry(registry.host, insecure=True) as reg:
            reg.pull(ref, outdir=str(out))

    with pytest.raises(UnsafePathError):
        await anyio.to_thread.run_sync(pull)

    assert outside_entries(jail, out) == []
    assert tree(out) == {}
