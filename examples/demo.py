"""aioras in one minute: start a local registry, push an artifact, inspect it, pull it back.

Run with ``nox -s demo`` (or ``python examples/demo.py``). Needs the ``docker-registry``
binary (``apt-get install docker-registry``; ``scripts/bootstrap`` installs it).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import anyio

import aioras
from aioras.testing import LocalRegistry


def digest_tree(root: Path) -> dict[str, str]:
    """Map each file under ``root`` to its sha256, for comparing trees."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def make_artifact(workdir: Path) -> list[str]:
    """Write a small project: a report, a binary model and a directory of configs."""
    workdir.mkdir()
    (workdir / "report.txt").write_text("aioras demo: results of run 42\n")
    (workdir / "model.bin").write_bytes(os.urandom(24 * 1024 * 1024))
    configs = workdir / "configs"
    configs.mkdir()
    (configs / "train.yaml").write_text("epochs: 10\nlr: 0.001\n")
    (configs / "eval.yaml").write_text("batch: 64\n")
    return ["report.txt", "model.bin:application/vnd.example.model", "configs"]


async def main() -> int:
    with LocalRegistry() as local, tempfile.TemporaryDirectory() as tmp:
        work, out = Path(tmp, "work"), Path(tmp, "pulled")
        files = make_artifact(work)
        target = local.reference("demo/experiment:run-42")
        print(f"registry   {local.url} (CNCF distribution, storage in {local.storage_dir})")

        async with aioras.AsyncRegistry(local.host, insecure=True) as registry:
            os.chdir(work)  # push validates that files live under the working directory
            started = time.perf_counter()
            response = await registry.push(
                target,
                files=files,
                manifest_annotations={"org.opencontainers.image.description": "demo run"},
                artifact_type="application/vnd.example.experiment",
            )
            pushed = time.perf_counter() - started
            digest = response.headers["docker-content-digest"]
            print(f"pushed     {target}\n           {digest} in {pushed:.2f}s")

            manifest = await registry.get_manifest(target)
            for layer in manifest["layers"]:
                title = layer["annotations"][aioras.defaults.annotation_title]
                print(f"  layer    {title:<12} {layer['size']:>10} B  {layer['mediaType']}")
            print(f"tags       {await registry.get_tags(target)}")

            started = time.perf_counter()
            by_digest = aioras.Container(target).with_reference(digest)
            paths = await registry.pull(by_digest, outdir=out)
            pulled = time.perf_counter() - started
            print(f"pulled     {len(paths)} paths by digest in {pulled:.2f}s into {out}")

        original = {k: v for k, v in digest_tree(work).items() if not k.startswith(".")}
        if digest_tree(out) != original:
            print("MISMATCH: pulled files differ from the pushed ones", file=sys.stderr)
            return 1
        print(f"verified   {len(original)} files byte-identical after the round trip")
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
