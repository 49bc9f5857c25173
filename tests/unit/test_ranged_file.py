"""How a large blob is cut into ranges, and how the hash follows ranges written out of order."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import anyio
import pytest

from aioras._files.blobio import RangedFile
from aioras.remote._downloads import RangeOptions

pytestmark = pytest.mark.anyio

MiB = 1 << 20


def test_a_blob_too_small_for_several_ranges_a_connection_gets_one_each() -> None:
    options = RangeOptions(parts=8, min_block=8 * MiB)
    assert options.blocks(100 * MiB, 8) == 8
    assert options.blocks(63 * MiB, 4) == 4
    assert options.blocks(64 * MiB, 4) == 8  # two ranges of 8 MiB per connection


def test_a_large_blob_is_cut_into_rounds_of_ranges_no_smaller_than_min_block() -> None:
    options = RangeOptions(parts=8, rounds=4, min_block=8 * MiB)
    assert options.blocks(1024 * MiB, 8) == 32  # four ranges per connection, 32 MiB each
    assert options.blocks(200 * MiB, 8) == 24  # three: a fourth would be under 8 MiB
    assert options.blocks(64 * 1024 * MiB, 8) == 32  # never more than the rounds
    assert options.blocks(10, 8) == 8
    assert options.blocks(5, 8) == 5  # at most one range per byte


def _blob(size: int) -> tuple[bytes, str]:
    data = os.urandom(size)
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


async def test_a_range_written_while_another_thread_hashes_is_left_to_that_thread(
    tmp_path: Path,
) -> None:
    data, digest = _blob(3 * 1000)
    async with RangedFile(tmp_path / "blob", digest, len(data), 3, flush_size=100) as sink:
        sink._hashing.acquire()  # another part's thread is hashing
        # Range 0 is where the hash stands, yet its writer does not wait for the hash.
        await anyio.to_thread.run_sync(sink._write_part, 0, [data[:1000]])
        assert sink.filled[0] == 1000
        assert sink.hashed == 0
        sink._hashing.release()
        # The hashing thread looks again once it lets go, and finds range 0 on disk.
        await anyio.to_thread.run_sync(sink._advance)
        assert sink.hashed == 1000
        await anyio.to_thread.run_sync(sink._write_part, 2, [data[2000:]])
        assert sink.hashed == 1000  # range 1 is missing: range 2 waits on disk
        await anyio.to_thread.run_sync(sink._write_part, 1, [data[1000:2000]])
        assert sink.hashed == 3000  # range 1 from its buffer, then range 2 read back
        await sink.commit()
    assert (tmp_path / "blob").read_bytes() == data
