"""The ``mirror`` section of the benchmark: 200 artifacts, three mirrors, first copy and re-sync.

Workload: 20 repositories x 10 tags on a source registry; each artifact a config, a 2 MiB
layer shared by its repository and a unique 128 KiB layer. Each tool mirrors all 200 into a
fresh destination registry of its own, in a process of its own (peak RSS is that process's,
or for skopeo its child's), then mirrors again with nothing changed (the re-sync):

- ``skopeo sync`` with a YAML source listing the tags (``--preserve-digests``);
- a sequential oras-py 0.2.43 loop keeping digests: raw manifest bytes fetched and PUT
  as-is, every blob through ``download_blob``/``upload_blob`` (no re-sync check of its own,
  so its re-sync is not measured);
- ``reg.mirror`` of aioras.

Every destination digest is compared with the source's. ``python benchmarks/bench.py
--section mirror``; ``python benchmarks/_mirror.py child TOOL ...`` is the measured process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _system import peak_rss_kib, run_watched, settle

# MIRROR_BENCH_REPOS shrinks the workload for a smoke run (the measured run uses 20).
REPOS, TAGS = int(os.environ.get("MIRROR_BENCH_REPOS", "20")), 10
SHARED, UNIQUE = 2 << 20, 128 << 10
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
HERE = Path(__file__).resolve()
TARGETS = (
    ("first copy: skopeo sync time / aioras time", "first", "skopeo", 5.0),
    ("first copy: oras-py loop time / aioras time", "first", "oras", 5.0),
    ("re-sync: skopeo sync time / aioras time", "resync", "skopeo", 2.0),
)
RSS_TARGET_MIB = 150.0


def _names(repos: int = REPOS, tags: int = TAGS, prefix: str = "bench") -> list[tuple[str, str]]:
    return [(f"{prefix}/r{r:02d}", f"t{t}") for r in range(repos) for t in range(tags)]


TITLE = "org.opencontainers.image.title"


async def populate(host: str, names: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """Push the artifacts ``names`` (repository, tag) to ``host``; ``repo:tag`` -> manifest.

    Each: a config, the repository's shared 2 MiB layer (``shared.bin``) and a unique 128 KiB
    one (``own.bin``), titled so that a pull writes them to files.
    """
    import hashlib

    from aioras import AsyncRegistry

    made: dict[str, dict[str, Any]] = {}

    async def once(data: bytes) -> Any:
        yield data

    def desc(data: bytes, media_type: str, title: str | None = None) -> Any:
        found = {
            "mediaType": media_type,
            "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "size": len(data),
        }
        return found if title is None else {**found, "annotations": {TITLE: title}}

    async with AsyncRegistry(insecure=True) as reg:
        for repo_name, tag in names:
            repo = reg.repository(f"{host}/{repo_name}")
            shared = hashlib.sha256(repo_name.encode()).digest() * (SHARED // 32)
            own = os.urandom(UNIQUE)
            config = json.dumps({"repo": repo_name, "tag": tag}).encode()
            blobs = [
                desc(config, "application/vnd.oci.image.config.v1+json"),
                desc(shared, "application/vnd.oci.image.layer.v1.tar", "shared.bin"),
                desc(own, "application/vnd.oci.image.layer.v1.tar", "own.bin"),
            ]
            for d, data in zip(blobs, (config, shared, own), strict=True):
                await repo.push(d, once(data))
            doc = {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": blobs[0],
                "layers": blobs[1:],
            }
            data = json.dumps(doc).encode()
            manifest = desc(data, MANIFEST)
            await repo.push_manifest(manifest, data, reference=tag)
            made[f"{repo_name}:{tag}"] = {"digest": manifest["digest"], "layers": blobs[1:]}
    return made


async def _populate(host: str) -> dict[str, str]:
    return {ref: m["digest"] for ref, m in (await populate(host, _names())).items()}


async def _digests(host: str, names: list[tuple[str, str]] | None = None) -> dict[str, str]:
    from aioras import AsyncRegistry
    from aioras.exceptions import NotFoundError

    found = {}
    async with AsyncRegistry(insecure=True) as reg:
        for repo_name, tag in _names() if names is None else names:
            try:
                d = await reg.repository(f"{host}/{repo_name}").resolve(tag)
            except NotFoundError:
                continue
            found[f"{repo_name}:{tag}"] = d["digest"]
    return found


# -- measured processes ----------------------------------------------------------------------


def _child(tool: str, src: str, dst: str, workdir: str) -> None:
    started = time.perf_counter()
    if tool == "aioras":
        import anyio

        # Imported off the clock, as the worker does (see _worker.py): aioras imports
        # them on first use, oras-py with itself.
        import httpcore  # noqa: F401
        import jsonschema  # noqa: F401

        from aioras import AsyncRegistry

        pairs = [(f"{src}/{r}:{t}", f"{dst}/{r}:{t}") for r, t in _names()]

        async def run() -> None:
            async with AsyncRegistry(insecure=True) as reg:
                # Defaults only, as a user gets them (16 artifacts at once).
                report = await reg.mirror(pairs)
                assert report.ok, report.summary()

        started = time.perf_counter()
        anyio.run(run)
        rss = peak_rss_kib() or 0
    elif tool == "oras":
        _oras_loop(src, dst, workdir)
        rss = peak_rss_kib() or 0
    else:
        yaml = Path(workdir) / "sync.yaml"
        listing: dict[str, list[str]] = {}
        for r, t in _names():
            listing.setdefault(r, []).append(t)
        lines = [f"{src}:", "  tls-verify: false", "  images:"]
        lines += [f"    {r}: [{', '.join(tags)}]" for r, tags in listing.items()]
        yaml.write_text("\n".join(lines) + "\n")
        started = time.perf_counter()
        status, _, stderr, rss = run_watched(
            ["skopeo", "sync", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false",
             "--preserve-digests", str(yaml), f"{dst}/bench"],
        )  # fmt: skip
        if status != 0:
            raise RuntimeError(f"skopeo sync failed: {stderr[-2000:]}")
    wall = time.perf_counter() - started
    print("MIRROR-RESULT " + json.dumps({"wall_s": wall, "rss_mib": rss / 1024}))


def _oras_loop(src: str, dst: str, workdir: str) -> None:
    import oras.container
    import oras.provider

    reg = oras.provider.Registry(insecure=True)
    for repo_name, tag in _names():
        source = oras.container.Container(f"{src}/{repo_name}:{tag}")
        target = oras.container.Container(f"{dst}/{repo_name}:{tag}")
        url = _manifest_url(src, repo_name, tag)
        response = reg.do_request(url, "GET", headers={"Accept": MANIFEST})
        data = response.content
        doc = json.loads(data)
        for layer in [doc["config"], *doc["layers"]]:
            path = os.path.join(workdir, layer["digest"].replace(":", "-"))
            reg.download_blob(source, layer["digest"], path)
            reg.upload_blob(path, target, layer)
            os.unlink(path)
        put = _manifest_url(dst, repo_name, tag)
        answer = reg.do_request(put, "PUT", data=data, headers={"Content-Type": MANIFEST})
        if answer.status_code != 201:
            raise RuntimeError(f"PUT {put}: {answer.status_code} {answer.text[:200]}")


def _manifest_url(base: str, repo_name: str, tag: str) -> str:
    """The manifest's URL under ``base``: a host, or a host and a repository prefix."""
    host, _, prefix = base.partition("/")
    path = f"{prefix}/{repo_name}" if prefix else repo_name
    return f"http://{host}/v2/{path}/manifests/{tag}"


def _measure(tool: str, src: str, dst: str) -> dict[str, Any]:
    """One measured mirror by ``tool`` (a process of its own), once the machine is quiet."""
    with tempfile.TemporaryDirectory(prefix="mirror-bench-") as workdir:
        busy = settle()
        proc = subprocess.run(
            [sys.executable, str(HERE), "child", tool, src, dst, workdir],
            capture_output=True, text=True, timeout=3600,
        )  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("MIRROR-RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{tool} failed ({proc.returncode}): {proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("MIRROR-RESULT "))
    result["busy_before"] = None if busy is None else round(busy, 3)
    return result


def run(output: Path) -> int:
    """The mirror section: print the table, write ``output``; 1 when a target fails."""
    import anyio

    from aioras.testing import LocalRegistry

    results: dict[str, dict[str, Any]] = {}
    with LocalRegistry(log_level="warn") as source:
        print(f"populating {REPOS * TAGS} artifacts on {source.host}")
        expected = anyio.run(_populate, source.host)
        for tool in ("skopeo", "oras", "aioras"):
            with LocalRegistry(log_level="warn") as dest:
                first = _measure(tool, source.host, dest.host)
                resync = _measure(tool, source.host, dest.host) if tool != "oras" else None
                got = anyio.run(_digests, dest.host)
                results[tool] = {"first": first, "resync": resync, "identical": got == expected}
                print(tool, json.dumps(results[tool]))
    targets = []
    for label, phase, peer, threshold in TARGETS:
        ratio = results[peer][phase]["wall_s"] / results["aioras"][phase]["wall_s"]
        targets.append({"target": label, "value": round(ratio, 2), "ok": ratio >= threshold})
    rss = max(results["aioras"][p]["rss_mib"] for p in ("first", "resync"))
    targets.append(
        {"target": "aioras peak RSS (MiB)", "value": round(rss, 1), "ok": rss <= RSS_TARGET_MIB}
    )
    print(f"\n{'tool':8} {'first s':>9} {'resync s':>9} {'RSS MiB':>8} identical")
    for tool, r in results.items():
        resync = f"{r['resync']['wall_s']:9.2f}" if r["resync"] else f"{'n/a':>9}"
        first, rss_first = r["first"]["wall_s"], r["first"]["rss_mib"]
        print(f"{tool:8} {first:9.2f} {resync} {rss_first:8.1f} {r['identical']}")
    for t in targets:
        print(f"{'PASS' if t['ok'] else 'FAIL'}  {t['target']}: {t['value']}")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"results": results, "targets": targets}, indent=2) + "\n")
    ok = all(t["ok"] for t in targets) and all(r["identical"] for r in results.values())
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        _child(*sys.argv[2:6])
    else:
        sys.exit(run(Path(sys.argv[1] if len(sys.argv) > 1 else "bench-results/mirror.json")))
