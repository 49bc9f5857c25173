"""Interoperability with real peers: oras-py and skopeo read what aioras wrote, and back."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from types import ModuleType

import anyio
import pytest

from aioras import defaults
from aioras.registry import AsyncRegistry
from aioras.testing import LocalRegistry

pytestmark = pytest.mark.anyio


def make_files(root: Path) -> dict[str, bytes]:
    contents = {
        "readme.txt": b"interop between clients\n",
        "empty.bin": b"",
        "data.bin": os.urandom(3 * (1 << 20) + 11),
    }
    for name, data in contents.items():
        (root / name).write_bytes(data)
    return contents


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


async def test_oras_py_pulls_what_aioras_pushed(
    areg: AsyncRegistry, registry: LocalRegistry, oras_py: ModuleType, tmp_cwd: Path, tmp_path: Path
) -> None:
    contents = make_files(tmp_cwd)
    (tmp_cwd / "folder" / "nested").mkdir(parents=True)
    (tmp_cwd / "folder" / "nested" / "n.txt").write_text("nested file")
    target = registry.reference("interop/from-aioras:v1")
    await areg.push(target, files=[*contents, "folder"])
    outdir = tmp_path / "oras-py-out"

    def oras_pull() -> list[str]:
        client = oras_py.client.OrasClient(hostname=registry.host, insecure=True)
        return list(client.pull(target=target, outdir=str(outdir)))

    pulled = await anyio.to_thread.run_sync(oras_pull)

    assert sorted(Path(p).name for p in pulled) == sorted([*contents, "folder"])
    for name, data in contents.items():
        assert (outdir / name).read_bytes() == data
    assert (outdir / "folder" / "nested" / "n.txt").read_text() == "nested file"


async def test_aioras_pulls_what_oras_py_pushed(
    areg: AsyncRegistry, registry: LocalRegistry, oras_py: ModuleType, tmp_cwd: Path, tmp_path: Path
) -> None:
    contents = make_files(tmp_cwd)
    (tmp_cwd / "folder").mkdir()
    (tmp_cwd / "folder" / "f.txt").write_text("from oras-py")
    target = registry.reference("interop/from-oras-py:v1")

    def oras_push() -> None:
        client = oras_py.client.OrasClient(hostname=registry.host, insecure=True)
        client.push(target=target, files=[*contents, "folder"])

    await anyio.to_thread.run_sync(oras_push)
    outdir = tmp_path / "aioras-out"
    pulled = await areg.pull(target, outdir=str(outdir))

    assert sorted(Path(p).name for p in pulled) == sorted([*contents, "folder"])
    for name, data in contents.items():
        assert (outdir / name).read_bytes() == data
    assert (outdir / "folder" / "f.txt").read_text() == "from oras-py"


def skopeo(skopeo_bin: str, *args: str) -> str:
    result = subprocess.run(
        [skopeo_bin, *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"skopeo {' '.join(args)} failed: {result.stderr}"
    return result.stdout


async def test_skopeo_reads_and_copies_what_aioras_pushed(
    areg: AsyncRegistry, registry: LocalRegistry, skopeo_bin: str, tmp_cwd: Path, tmp_path: Path
) -> None:
    contents = make_files(tmp_cwd)
    target = registry.reference("interop/for-skopeo:v1")
    pushed = await areg.push(target, files=list(contents))

    raw = await anyio.to_thread.run_sync(
        skopeo, skopeo_bin, "inspect", "--tls-verify=false", "--raw", f"docker://{target}"
    )
    manifest = json.loads(raw)
    assert (
        "sha256:" + hashlib.sha256(raw.encode()).hexdigest()
        == pushed.headers["docker-content-digest"]
    )
    assert [
        layer["annotations"][defaults.annotation_title] for layer in manifest["layers"]
    ] == list(contents)

    layout = tmp_path / "layout"
    await anyio.to_thread.run_sync(
        skopeo,
        skopeo_bin,
        "copy",
        "--src-tls-verify=false",
        f"docker://{target}",
        f"oci:{layout}:v1",
    )
    for layer, data in zip(manifest["layers"], contents.values(), strict=True):
        blob = layout / "blobs" / "sha256" / layer["digest"].split(":")[1]
        assert blob.read_bytes() == data


async def test_aioras_pulls_what_skopeo_copied(
    areg: AsyncRegistry, registry: LocalRegistry, skopeo_bin: str, tmp_cwd: Path, tmp_path: Path
) -> None:
    contents = make_files(tmp_cwd)
    source = registry.reference("interop/skopeo-src:v1")
    copy = registry.reference("interop/skopeo-copy:v1")
    await areg.push(source, files=list(contents))

    await anyio.to_thread.run_sync(
        skopeo,
        skopeo_bin,
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        f"docker://{source}",
        f"docker://{copy}",
    )
    pulled = await areg.pull(copy, outdir=str(tmp_path / "out"))

    assert sorted(Path(p).name for p in pulled) == sorted(contents)
    assert tree_digest(tmp_path / "out") == {
        name: hashlib.sha256(data).hexdigest() for name, data in contents.items()
    }
