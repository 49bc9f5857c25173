"""Blob-sized buffers served from the C allocator's heap, not mapped afresh for each read.

Every read of a blob hands back a new ``bytes`` of up to a MiB (``_http/netbackend.py``).
glibc's malloc maps each allocation above its threshold (128 KiB at start) from the kernel
and unmaps it when it is freed. The threshold rises to the size of a freed mapping, but a
read's buffer is first shrunk to what arrived, so it rises only to a few hundred KiB and
each next MiB is mapped afresh: every page the kernel copies received bytes into is a new
page fault. Pulling 1 GiB over 8 connections took about 17,000 faults beyond the
interpreter's own. A fault's price moves on a virtual machine: on the 2-core development
VM, faulting in 32 MiB took from 27 ms to 200 ms within one benchmark run.

`keep_large_buffers` frees one 16 MiB block, once per process. glibc then serves blocks of
up to 16 MiB from its heap and keeps up to 32 MiB of freed memory there for reuse: the state
it reaches by itself in any program that once frees a block that large (mallopt(3),
"M_MMAP_THRESHOLD"). The same pull then takes about 6,000 faults beyond the interpreter's
own. The block is allocated zeroed and not written, so it costs no memory; other
allocators just allocate and free it.
"""

from __future__ import annotations

__all__ = ["keep_large_buffers"]

# Below glibc's 32 MiB ceiling for the adjustment (a block above it changes nothing).
_BLOCK = 16 * 1024 * 1024

_kept = False


def keep_large_buffers() -> None:
    """Have the C allocator keep blob-sized buffers for reuse (once per process; see above)."""
    global _kept
    if _kept:
        return  # two threads racing here only free the block twice
    _kept = True
    # A zeroed allocation, freed at once: fresh mapped pages, none written but its ends.
    bytes(_BLOCK)
