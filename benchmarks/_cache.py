"""The ``cache`` section of the benchmark: a pull through ``BlobCache``, cold and warm.

Workload: 8 x 64 MiB files pushed as one artifact (``--quick``: 8 x 8 MiB) to a local
registry. Measured, each the median of ``--repeat`` runs, every run in a process of its
own (``python benchmarks/_cache.py child ...``):

- a pull without a cache, for reference;
- cold pull: a new, empty cache directory, so every blob comes from the registry into the
  cache and then to ``outdir``;
- warm pull: the same cache again, a new ``outdir`` (no blob request: a reflink,
  ``copy_file_range`` or a streamed copy per file);
- ``cp -r`` of the pulled files to a new directory on the same disk, the floor a warm pull
  is compared with (target: warm pull at most 1.2 x ``cp -r``);
- 8 processes pulling the artifact at once into one new cache, through a byte-counting
  forwarder in front of the registry: the wall time and the bytes the registry served
  (target: at most 1.01 x the artifact). The wall time includes starting 8 interpreters
  on the machine's cores; the slowest pull's own time is reported beside it.

The page cache is not dropped (that needs root): the files the cache holds and the ones
``cp`` reads are warm in memory alike. ``python benchmarks/bench.py --section cache``
writes ``cache.json`` beside the other results.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
MiB = 1024 * 1024
TARGETS = (
    ("warm pull time / cp -r time", "warm_over_cp", 1.2),
    ("8 processes: bytes served / artifact size", "served_over_size", 1.01),
)


class CountingForwarder:
    """A TCP forwarder to the registry counting the bytes it sends back (in a thread)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.served = 0
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CountingForwarder:
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        ureader, uwriter = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: bool):
            try:
                while data := await reader.read(1 << 20):
                    if count:
                        self.served += len(data)
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        await asyncio.gather(pump(creader, uwriter, False), pump(ureader, cwriter, True))


def child(argv: list[str]) -> None:
    """``child HOST TARGET CACHE OUTDIR``: one pull through the cache (``-``: no cache);
    prints its seconds."""
    import anyio

    from aioras import AsyncRegistry, BlobCache

    host, target, cache_dir, outdir = argv

    async def main() -> float:
        cache = BlobCache(cache_dir) if cache_dir != "-" else False
        async with AsyncRegistry(host, insecure=True, cache=cache) as reg:
            started = time.perf_counter()
            await reg.pull(target=target, outdir=outdir)
            return time.perf_counter() - started

    print(json.dumps({"seconds": anyio.run(main)}))


def _pull(host: str, target: str, cache: Path | str, outdir: Path) -> float:
    out = subprocess.run(
        [sys.executable, str(HERE), "child", host, target, str(cache), str(outdir)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(json.loads(out.stdout)["seconds"])


def _cp(source: Path, destination: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["cp", "-r", str(source), str(destination)], check=True)
    return time.perf_counter() - started


def _push(host: str, target: str, files: list[Path]) -> None:
    import anyio

    from aioras import AsyncRegistry

    async def main() -> None:
        async with AsyncRegistry(host, insecure=True) as reg:
            cwd = os.getcwd()
            os.chdir(files[0].parent)
            try:
                await reg.push(target=target, files=[f.name for f in files])
            finally:
                os.chdir(cwd)

    anyio.run(main)


def _eight_at_once(port: int, target_path: str, scratch: Path) -> dict[str, Any]:
    cache = scratch / "cache-8"
    with CountingForwarder(port) as forwarder:
        host = f"127.0.0.1:{forwarder.port}"
        started = time.perf_counter()
        procs = [
            subprocess.Popen(
                [sys.executable, str(HERE), "child", host, f"{host}/{target_path}",
                 str(cache), str(scratch / f"out-8-{i}")],
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(8)
        ]  # fmt: skip
        pulls = [json.loads(p.communicate()[0] or "{}").get("seconds") for p in procs]
        codes = [p.returncode for p in procs]
        wall = time.perf_counter() - started
        served = forwarder.served
    if any(codes):
        raise RuntimeError(f"a pulling process failed: exit codes {codes}")
    # The wall time includes starting 8 interpreters; each pull's own time is in the child.
    slowest = round(max(pulls), 3) if all(pulls) else None
    return {"wall_s": round(wall, 3), "slowest_pull_s": slowest, "bytes_served": served}


def run(output: Path, *, quick: bool, repeat: int, workdir: str | None) -> int:
    """Measure, print the table, write ``output``; 1 when a target fails, else 0."""
    from _workload import Workload, generate

    from aioras.testing import LocalRegistry

    size = 8 * MiB if quick else 64 * MiB
    workload = Workload("cache", f"8 x {size // MiB} MiB", 8, size)
    scratch = Path(tempfile.mkdtemp(prefix="aioras-bench-cache-", dir=workdir))
    try:
        files = generate(workload, scratch / "files")
        with LocalRegistry(log_level="warn") as reg:
            target = f"{reg.host}/bench/cache:v1"
            _push(reg.host, target, files)
            plain, cold, warm, cp = [], [], [], []
            for i in range(repeat):
                plain.append(_pull(reg.host, target, "-", scratch / f"plain-{i}"))
                shutil.rmtree(scratch / f"plain-{i}")
                cache = scratch / f"cache-{i}"
                cold.append(_pull(reg.host, target, cache, scratch / f"cold-{i}"))
                warm.append(_pull(reg.host, target, cache, scratch / f"warm-{i}"))
                cp.append(_cp(scratch / f"warm-{i}", scratch / f"cp-{i}"))
                for name in (f"cold-{i}", f"warm-{i}", f"cp-{i}"):
                    shutil.rmtree(scratch / name)
            eight = _eight_at_once(reg.port or 0, "bench/cache:v1", scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    rows = {
        "workload": workload.label,
        "pull_without_cache_s": round(statistics.median(plain), 3),
        "cold_pull_s": round(statistics.median(cold), 3),
        "warm_pull_s": round(statistics.median(warm), 3),
        "cp_r_s": round(statistics.median(cp), 3),
        "eight_processes": eight,
        "artifact_bytes": workload.total,
    }
    ratios = {
        "warm_over_cp": rows["warm_pull_s"] / rows["cp_r_s"],
        "served_over_size": eight["bytes_served"] / workload.total,
    }
    targets = [
        {
            "name": name,
            "value": round(ratios[key], 3),
            "threshold": limit,
            "status": "PASS" if ratios[key] <= limit else "FAIL",
        }
        for name, key, limit in TARGETS
    ]
    print(f"\ncache section ({workload.label}, median of {repeat})")
    print(f"  pull without a cache      {rows['pull_without_cache_s']:8.3f} s")
    print(f"  cold pull (empty cache)   {rows['cold_pull_s']:8.3f} s")
    print(f"  warm pull (from cache)    {rows['warm_pull_s']:8.3f} s")
    print(f"  cp -r of the same files   {rows['cp_r_s']:8.3f} s")
    print(
        f"  8 processes at once       {eight['wall_s']:8.3f} s (slowest pull "
        f"{eight['slowest_pull_s']:.3f} s), registry served "
        f"{eight['bytes_served'] / MiB:.1f} MiB of a {workload.total / MiB:.0f} MiB artifact"
    )
    for t in targets:
        print(f"  {t['status']}  {t['name']}: {t['value']} (at most {t['threshold']})")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"rows": rows, "targets": targets}, indent=2) + "\n")
    print(f"wrote {output}")
    return 1 if any(t["status"] == "FAIL" for t in targets) else 0


if __name__ == "__main__" and sys.argv[1:2] == ["child"]:
    child(sys.argv[2:])
