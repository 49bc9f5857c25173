"""Bench sections beside the push/pull comparison: the pull table and the capped-speed case.

``pull-table``: one artifact of 8 x 64 MiB, pulled to disk by five clients side by side,
median of ``--repeat``: 8 parallel ``curl -o`` (no verification: the raw ceiling), 8
parallel ``curl | tee FILE | openssl dgst -sha256`` (verified, native), aioras, oras-py
(which does not verify), and ``skopeo copy`` to ``dir:`` (verified).

``ranges``: a proxy in front of the registry (``tests/support/delayproxy.py`` with no delay)
caps every connection at 32 MiB/s (as object storage does); aioras pulls a 1 GiB blob
through it with one stream (``download_ranges=1``) and with its default parallel ranges (8).

Every pulled file is checked against the manifest's digest afterwards (off the clock);
shell rows report the peak RSS of their largest process, aioras and oras-py of their
worker process.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from _system import run_watched
from _workload import MiB, Workload, generate, sha256_file

HERE = Path(__file__).resolve().parent
MANIFEST_ACCEPT = "application/vnd.oci.image.manifest.v1+json"
RATE = 32 * MiB
RunWorker = Callable[..., dict[str, Any]]


def _layers(registry_url: str, repo: str, tag: str = "v1") -> list[dict[str, Any]]:
    response = httpx.get(
        f"{registry_url}/v2/{repo}/manifests/{tag}",
        headers={"Accept": MANIFEST_ACCEPT},
        timeout=30,
        trust_env=False,
    )
    response.raise_for_status()
    layers: list[dict[str, Any]] = response.json()["layers"]
    return layers


def _check(files: list[Path], layers: list[dict[str, Any]]) -> None:
    for path, layer in zip(files, layers, strict=True):
        if path.stat().st_size != layer["size"] or sha256_file(path) != layer["digest"]:
            raise RuntimeError(f"{path} does not match layer {layer['digest']}")


def _shell(command: str) -> tuple[float, float]:
    """Run ``command`` (bash); return (wall seconds, peak RSS MiB of its largest process)."""
    started = time.perf_counter()
    status, _, stderr, peak_kib = run_watched(["bash", "-o", "pipefail", "-c", command])
    wall = time.perf_counter() - started
    if status:
        raise RuntimeError(f"{command[:200]} failed: {stderr[-2000:]}")
    return wall, peak_kib / 1024


def _curl_rows(
    host: str, repo: str, layers: list[dict[str, Any]], out: Path
) -> dict[str, Callable[[], tuple[float, float]]]:
    urls = [f"http://{host}/v2/{repo}/blobs/{layer['digest']}" for layer in layers]
    plain = " ".join(
        f"curl -sf -o {shlex.quote(str(out / str(i)))} {shlex.quote(u)} &"
        for i, u in enumerate(urls)
    )
    verified = " ".join(
        f"(curl -sf {shlex.quote(u)} | tee {shlex.quote(str(out / str(i)))} | openssl dgst"
        f" -sha256 -r > {shlex.quote(str(out / f'{i}.sha'))}) &"
        for i, u in enumerate(urls)
    )
    return {
        "curl -o (x8, not verified)": functools.partial(_shell, plain + " wait"),
        "curl | tee | openssl dgst (x8)": functools.partial(_shell, verified + " wait"),
    }


def _openssl_agrees(out: Path, layers: list[dict[str, Any]]) -> None:
    for i, layer in enumerate(layers):
        printed = (out / f"{i}.sha").read_text().split()[0]
        if f"sha256:{printed}" != layer["digest"]:
            raise RuntimeError(f"openssl printed {printed} for layer {layer['digest']}")
        (out / f"{i}.sha").unlink()


def _pushed(
    reg: Any, workload: Workload, scratch: Path, run_worker: RunWorker, run_id: str
) -> tuple[str, list[dict[str, Any]]]:
    """Push the workload once with aioras (off the clock); return (repository, layers)."""
    paths = generate(workload, scratch / "files" / workload.key)
    repo = f"bench/{workload.key}-{run_id}"
    run_worker("aioras", "push", reg.host, f"{reg.host}/{repo}:v1", [str(p) for p in paths], None)
    shutil.rmtree(scratch / "files" / workload.key)
    return repo, _layers(reg.url, repo)


def pull_table(
    reg: Any, ns: Any, scratch: Path, run_worker: RunWorker, run_id: str
) -> dict[str, Any]:
    """Push 8 x 64 MiB once, then pull it with each client; return the table's figures."""
    size = 8 * MiB if ns.quick else 64 * MiB
    workload = Workload("table", f"8 x {size // MiB} MiB", 8, size)
    print(f"\n== pull table: {workload.label}")
    repo, layers = _pushed(reg, workload, scratch, run_worker, run_id)
    titles = [layer["annotations"]["org.opencontainers.image.title"] for layer in layers]
    rows: dict[str, list[tuple[float, float]]] = {}
    for rep in range(ns.repeat):
        out = scratch / "out" / "table"
        for name, run, files in _table_rows(reg, repo, layers, titles, out, run_worker):
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            _sync()
            rows.setdefault(name, []).append(run())
            _check(files(), layers)
            if name.startswith("curl | tee"):
                _openssl_agrees(out, layers)
            seconds, rss = rows[name][-1]
            print(
                f"   run {rep + 1} {name:34} {seconds:7.2f} s  peak RSS {rss:6.1f} MiB", flush=True
            )
        shutil.rmtree(out, ignore_errors=True)
    return _summary(workload, rows)


def _table_rows(
    reg: Any,
    repo: str,
    layers: list[dict[str, Any]],
    titles: list[str],
    out: Path,
    run_worker: RunWorker,
) -> list[tuple[str, Callable[[], tuple[float, float]], Callable[[], list[Path]]]]:
    numbered = lambda: [out / str(i) for i in range(len(layers))]  # noqa: E731
    by_title = lambda: [out / t for t in titles]  # noqa: E731
    by_digest = lambda: [out / layer["digest"].split(":", 1)[1] for layer in layers]  # noqa: E731
    target = f"{reg.host}/{repo}:v1"

    def worker(tool: str) -> tuple[float, float]:
        result = run_worker(tool, "pull", reg.host, target, [str(out)], reg.pid)
        return result["seconds"], result["peak_rss_kib"] / 1024

    skopeo = f"skopeo copy -q --src-tls-verify=false docker://{target} dir:{shlex.quote(str(out))}"
    curl = _curl_rows(reg.host, repo, layers, out)
    rows = [(name, run, numbered) for name, run in curl.items()]
    rows.append(("aioras (verified)", functools.partial(worker, "aioras"), by_title))
    rows.append(("oras-py 0.2.43 (not verified)", functools.partial(worker, "oras"), by_title))
    if shutil.which("skopeo"):
        rows.append(("skopeo copy dir: (verified)", functools.partial(_shell, skopeo), by_digest))
    return rows


def _sync() -> None:
    os.sync()  # earlier writes must not flush during the next measurement


def _summary(workload: Workload, rows: dict[str, list[tuple[float, float]]]) -> dict[str, Any]:
    table = {
        name: {
            "median_s": round(statistics.median(s for s, _ in runs), 3),
            "mib_s": round(workload.total / MiB / statistics.median(s for s, _ in runs), 1),
            "peak_rss_mib": round(max(r for _, r in runs), 1),
            "runs_s": [round(s, 3) for s, _ in runs],
        }
        for name, runs in rows.items()
    }
    return {"workload": workload.label, "rows": table}


def print_pull_table(section: dict[str, Any]) -> list[dict[str, Any]]:
    """Print the table and the targets; return the targets."""
    rows = section["rows"]
    print(
        f"\nPull table: {section['workload']} (median; peak RSS = largest process; "
        f"load {_loads(section)})"
    )
    print(f"{'client':36} {'median s':>9} {'MiB/s':>8} {'peak RSS MiB':>13}")
    for name, row in rows.items():
        print(f"{name:36} {row['median_s']:9.2f} {row['mib_s']:8.1f} {row['peak_rss_mib']:13.1f}")
    aioras = rows.get("aioras (verified)", {}).get("median_s")
    native = rows.get("curl | tee | openssl dgst (x8)", {}).get("median_s")
    oras = rows.get("oras-py 0.2.43 (not verified)", {}).get("median_s")
    targets = []
    if aioras and native:
        targets.append(
            _target("aioras at or above the native verified ceiling", native / aioras, 1.0)
        )
    if aioras and oras:
        targets.append(_target("aioras speed-up over oras-py", oras / aioras, 1.5))
    if aioras:
        rss = rows["aioras (verified)"]["peak_rss_mib"]
        targets.append(_target("aioras peak RSS MiB (at most)", 120.0 / rss, 1.0, shown=rss))
    return targets


def _loads(section: dict[str, Any]) -> str:
    """The 1-minute load average before and after the section ran."""
    load = section.get("loadavg")
    return "n/a" if load is None else f"{load['start'][0]:.2f} -> {load['end'][0]:.2f}"


def _target(
    name: str, ratio: float, threshold: float, shown: float | None = None
) -> dict[str, Any]:
    status = "PASS" if ratio >= threshold else "FAIL"
    value = ratio if shown is None else shown
    print(f"  {status:<4}  {name}: {value:.2f}")
    return {"target": name, "measured": round(value, 3), "status": status}


def ranges(reg: Any, ns: Any, scratch: Path, run_worker: RunWorker, run_id: str) -> dict[str, Any]:
    """Pull a 1 GiB blob through a 32 MiB/s-per-connection proxy: one stream, then ranges."""
    size = 128 * MiB if ns.quick else 1024 * MiB
    workload = Workload("ranged", f"1 x {size // MiB} MiB", 1, size)
    print(f"\n== ranges: {workload.label} through {RATE // MiB} MiB/s per connection")
    repo, layers = _pushed(reg, workload, scratch, run_worker, run_id)
    # The delay proxy of the tests, with no delay: only its per-connection bandwidth cap.
    # It runs until its stdin ends (killed below).
    delayproxy = HERE.parent / "tests" / "support" / "delayproxy.py"
    proxy = subprocess.Popen(
        [sys.executable, str(delayproxy), str(reg.port), "--delay", "0", "--bandwidth", str(RATE)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    rows: dict[str, list[tuple[float, float]]] = {}
    try:
        assert proxy.stdout is not None
        port = int(proxy.stdout.readline().split()[1])
        host = f"127.0.0.1:{port}"
        out = scratch / "out" / "ranged"
        for rep in range(ns.repeat):
            for name, count in (("one stream", 1), ("ranges (default)", None)):
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir(parents=True)
                _sync()
                option = [] if count is None else [f"--ranges={count}"]
                result = run_worker(
                    "aioras", "pull", host, f"{host}/{repo}:v1", [str(out), *option], reg.pid
                )
                _check([out / layers[0]["annotations"]["org.opencontainers.image.title"]], layers)
                rows.setdefault(name, []).append((result["seconds"], result["peak_rss_kib"] / 1024))
                print(
                    f"   run {rep + 1} {name:12} {result['seconds']:7.2f} s  peak RSS "
                    f"{result['peak_rss_kib'] / 1024:6.1f} MiB",
                    flush=True,
                )
        shutil.rmtree(out, ignore_errors=True)
    finally:
        proxy.kill()
        proxy.wait()
    return _summary(workload, rows)


def print_ranges(section: dict[str, Any]) -> list[dict[str, Any]]:
    """Print the capped-speed figures and the targets; return the targets."""
    rows = section["rows"]
    print(
        f"\nRanges: {section['workload']} at {RATE // MiB} MiB/s per connection (aioras, verified;"
        f" load {_loads(section)})"
    )
    print(f"{'download':14} {'median s':>9} {'MiB/s':>8} {'peak RSS MiB':>13}")
    for name, row in rows.items():
        print(f"{name:14} {row['median_s']:9.2f} {row['mib_s']:8.1f} {row['peak_rss_mib']:13.1f}")
    one, four = rows["one stream"], rows["ranges (default)"]
    rss = max(one["peak_rss_mib"], four["peak_rss_mib"])
    return [
        _target("ranges speed-up over one stream", one["median_s"] / four["median_s"], 4.0),
        _target("aioras peak RSS MiB (at most)", 120.0 / rss, 1.0, shown=rss),
    ]
