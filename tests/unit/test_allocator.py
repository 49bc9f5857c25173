"""Blob-sized read buffers come from the C allocator's heap, not from fresh mappings.

Each case runs in a fresh interpreter: the allocator's state is the whole process's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aioras._http import netbackend

# 64 MiB through a pipe, read as a blob is (a MiB asked for, a pipe's worth arriving each
# time); prints the page faults taken meanwhile.
_READER = """
import json, os, resource, sys, threading
from aioras import _allocator
if sys.argv[1] == "keep":
    _allocator.keep_large_buffers()
r, w = os.pipe()
piece = os.urandom(256 * 1024)
def write():
    for _ in range(256):
        view = memoryview(piece)
        while view:
            view = view[os.write(w, view):]
    os.close(w)
writer = threading.Thread(target=write)
writer.start()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
received = 0
while chunk := os.read(r, 1024 * 1024):
    received += len(chunk)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
writer.join()
print(json.dumps({"received": received, "faults": faults, "module": _allocator.__file__,
                  "malloc_env": sorted(k for k in os.environ if k.startswith("MALLOC"))}))
"""


def _faults(mode: str, tmp_path: Path, **environ: str) -> int:
    # Isolated (-I: no PYTHONPATH, no current directory on the path), in an empty directory,
    # with no MALLOC_ variable but the case's own: dask's workers in an earlier test leave
    # MALLOC_TRIM_THRESHOLD_ set in the suite's process, and aioras then leaves malloc alone.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run(
        [sys.executable, "-I", "-c", _READER, mode],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={**inherited, **environ},
    )
    result = json.loads(done.stdout)
    assert result["received"] == 64 * 1024 * 1024, result
    print(mode, result)  # shown when an assertion fails
    return int(result["faults"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc, Linux's rusage")
def test_reads_of_a_mib_reuse_memory_once_large_buffers_are_kept(tmp_path: Path) -> None:
    plain, kept = _faults("plain", tmp_path), _faults("keep", tmp_path)
    # Measured: about 18,000 faults (a fresh mapping per read) against about 300.
    assert plain > 10_000
    assert kept < plain // 10


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc, Linux's rusage")
def test_a_process_that_tunes_its_allocator_itself_is_left_alone(tmp_path: Path) -> None:
    # glibc's own default, named: the process says how its allocator is to behave.
    assert _faults("keep", tmp_path, MALLOC_MMAP_THRESHOLD_="131072") > 10_000


def test_the_network_backend_keeps_large_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[None] = []
    monkeypatch.setattr(netbackend, "keep_large_buffers", lambda: calls.append(None))
    netbackend.LargeReadBackend()
    assert calls == [None]
