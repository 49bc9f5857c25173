"""One measured operation in a fresh process: ``_worker.py TOOL OP HOST TARGET [ARGS]``.

``TOOL`` is ``aioras`` or ``oras``; ``OP`` is ``push`` (ARGS: the files), ``pull`` (ARGS:
the empty output directory), ``push-all``/``pull-all`` (many artifacts; ARGS: a JSON plan,
a list of ``{"target", "files"}`` or ``{"target", "outdir"}``; TARGET is ignored) or, for
aioras only, ``copy`` (ARGS: the destination reference, on another registry).
``push-all``/``pull-all`` start every artifact at once in one task group (aioras), or run
them one after the other (oras-py), or on ``--threads N`` threads (oras-py, one client per
thread). The tool (and httpcore, which httpx imports lazily) is imported
and its client object built before the clock starts; the clock stops when the push or pull
call returns. The last line printed is ``BENCH-RESULT {json}`` with the wall time, the CPU
time of the operation, and the process's own peak resident set size (VmHWM, KiB; see
``_system.peak_rss_kib`` for why not ``ru_maxrss``)
both after the imports and at the end.

``--profile FILE`` runs the operation under cProfile and dumps the stats to FILE;
``--ranges N`` sets aioras's ``download_ranges``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from typing import Any

from _system import peak_rss_kib


def _usage() -> resource.struct_rusage:
    return resource.getrusage(resource.RUSAGE_SELF)


def _run_aioras(
    op: str, host: str, target: str, args: list[str], profile: str | None, ranges: int | None
) -> Any:
    import asyncio
    import functools

    import anyio

    # httpx imports httpcore (and with it trio, when installed) only when the first client
    # is built, which aioras does on its first request; aioras imports jsonschema when it
    # first checks a manifest. Both are imported here, off the clock, as oras-py's are:
    # `import oras.client` brings jsonschema with it. (jsonschema's import took 40 ms on
    # the development machine with its files cached, up to 180 ms without: 8-30 % of a
    # pull of 50 artifacts at 20 ms, on the clock for one client and not the other.)
    import httpcore  # noqa: F401
    import jsonschema  # noqa: F401

    from aioras import AsyncRegistry

    async def main() -> Any:
        options = {} if ranges is None else {"download_ranges": ranges}
        async with AsyncRegistry(host, insecure=True, **options) as reg:
            start = _begin()
            if op == "push":
                await reg.push(target, files=args, disable_path_validation=True)
                result: Any = len(args)
            elif op in ("push-all", "pull-all"):
                jobs = _plan(args)
                async with anyio.create_task_group() as group:
                    for job in jobs:
                        if op == "push-all":
                            group.start_soon(
                                functools.partial(
                                    reg.push,
                                    job["target"],
                                    files=job["files"],
                                    disable_path_validation=True,
                                )
                            )
                        else:
                            group.start_soon(
                                functools.partial(reg.pull, job["target"], outdir=job["outdir"])
                            )
                result = len(jobs)
            elif op == "copy":
                await reg.copy(target, args[0])
                result = 1
            else:
                result = len(await reg.pull(target, outdir=args[0]))
            return _end(start, result)

    if profile:
        import cProfile

        with cProfile.Profile() as prof:
            out = asyncio.run(main())
        prof.dump_stats(profile)
        return out
    return asyncio.run(main())


def _run_oras(
    op: str,
    host: str,
    target: str,
    args: list[str],
    profile: str | None,
    ranges: int | None,
    threads: int | None = None,
) -> Any:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import oras.client

    client = oras.client.OrasClient(hostname=host, insecure=True)
    local = threading.local()

    def one(job: dict[str, Any]) -> None:
        # A client of each thread's own: oras-py does not say its client is thread-safe.
        if threads:
            if not hasattr(local, "client"):
                local.client = oras.client.OrasClient(hostname=host, insecure=True)
            own = local.client
        else:
            own = client
        if "files" in job:
            try:
                own.push(
                    target=job["target"],
                    files=job["files"],
                    disable_path_validation=True,
                    quiet=True,
                )
            except ValueError:
                # Threads pushing one shared layer into one repository at once can meet the
                # registry's own race (its link file rewritten while the manifest PUT reads
                # it: "blob unknown"). Pushed again, and counted.
                if not threads:
                    raise
                _BASE["retried"] = _BASE.get("retried", 0) + 1
                own.push(
                    target=job["target"],
                    files=job["files"],
                    disable_path_validation=True,
                    quiet=True,
                )
        else:
            own.pull(target=job["target"], outdir=job["outdir"])

    def main() -> Any:
        start = _begin()
        if op == "push":
            client.push(target=target, files=args, disable_path_validation=True, quiet=True)
            result: Any = len(args)
        elif op in ("push-all", "pull-all"):
            jobs = _plan(args)
            if threads:
                with ThreadPoolExecutor(threads) as pool:
                    for future in [pool.submit(one, job) for job in jobs]:
                        future.result()
            else:
                for job in jobs:
                    one(job)
            result = len(jobs)
        else:
            result = len(client.pull(target=target, outdir=args[0]))
        return _end(start, result)

    if profile:
        import cProfile

        with cProfile.Profile() as prof:
            out = main()
        prof.dump_stats(profile)
        return out
    return main()


_BASE: dict[str, Any] = {}


def _plan(args: list[str]) -> list[dict[str, Any]]:
    with open(args[0]) as fd:
        jobs: list[dict[str, Any]] = json.load(fd)
    return jobs


def _disk_writes() -> int | None:
    """Bytes this process caused to be written to storage (Linux ``/proc/self/io``)."""
    try:
        with open("/proc/self/io") as fd:
            for line in fd:
                if line.startswith("write_bytes:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _begin() -> tuple[float, resource.struct_rusage]:
    _BASE["rss_before_kib"] = peak_rss_kib() or 0
    return time.perf_counter(), _usage()


def _end(start: tuple[float, resource.struct_rusage], files: int) -> dict[str, Any]:
    elapsed = time.perf_counter() - start[0]
    after = _usage()
    return {
        "seconds": elapsed,
        "cpu_user": after.ru_utime - start[1].ru_utime,
        "cpu_sys": after.ru_stime - start[1].ru_stime,
        "files": files,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("tool", choices=["aioras", "oras"])
    parser.add_argument("op", choices=["push", "pull", "copy", "push-all", "pull-all"])
    parser.add_argument("host")
    parser.add_argument("target")
    parser.add_argument("args", nargs="+")
    parser.add_argument("--profile", default=None)
    parser.add_argument("--ranges", type=int, default=None, help="aioras download_ranges")
    parser.add_argument("--threads", type=int, default=None, help="oras-py *-all: threads")
    ns = parser.parse_args()
    if ns.tool == "aioras":
        result = _run_aioras(ns.op, ns.host, ns.target, ns.args, ns.profile, ns.ranges)
    else:
        result = _run_oras(ns.op, ns.host, ns.target, ns.args, ns.profile, ns.ranges, ns.threads)
    result["rss_before_kib"] = _BASE["rss_before_kib"]
    result["retried"] = _BASE.get("retried", 0)
    result["peak_rss_kib"] = peak_rss_kib() or 0
    result["disk_write_bytes"] = _disk_writes()
    sys.stdout.flush()
    print("BENCH-RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
