"""Blob-sized buffers served from the C allocator's heap, not mapped afresh for each read.

Every read of a blob hands back a new ``bytes`` of up to a MiB (``_http/netbackend.py``).
glibc's malloc maps each allocation above its threshold (128 KiB at start) from the kernel
and unmaps it when it is freed. The threshold rises to the size of a freed mapping, but a
read's buffer is first shrunk to what arrived, so it rises only to a few hundred KiB and
each next MiB is mapped afresh: every page the kernel copies received bytes into is a new
page fault. Pulling 1 GiB over 8 connections took about 17,000 faults beyond the
interpreter's own. A fault's price moves on a virtual machine: on the 2-core development
VM, faulting in 32 MiB took from 27 ms to 200 ms within one benchmark run.

`keep_large_buffers` sets glibc's thresholds once per process (mallopt(3)): blocks of up to
16 MiB come from its heap, and up to 32 MiB of freed memory stays there for reuse. glibc
adopts such values by itself in a program that once frees a block of 16 MiB; freeing one to
get there depends on the state of the heap, so they are set outright. The same pull then
takes about 6,000 faults beyond the interpreter's own. Left alone: a C library other than
glibc, and a process whose ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` says how
its allocator is to behave.
"""

from __future__ import annotations

import ctypes
import os
import typing
from collections.abc import Callable

from ._environment import read_variable

__all__ = ["keep_large_buffers"]

# mallopt(3)'s parameters (glibc's malloc.h) and the values set.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 16 * 1024 * 1024
_TRIM_THRESHOLD = 32 * 1024 * 1024

_kept = False


def keep_large_buffers() -> None:
    """Have glibc's malloc keep blob-sized buffers for reuse (once per process; see above)."""
    global _kept
    if _kept:
        return  # two threads racing here only set the same values twice
    _kept = True
    if any(read_variable(name) for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return
    mallopt = _glibc_mallopt()
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)


def _glibc_mallopt() -> Callable[[int, int], int] | None:
    """glibc's ``mallopt``, or None under another C library (or none to be found)."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, ValueError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return typing.cast(Callable[[int, int], int], mallopt)
