"""OCI layouts between aioras and real tools: skopeo reads what aioras wrote, and back.

Layouts go both ways as directories (skopeo's ``oci:DIR:TAG``) and as tars
(``oci-archive:FILE:TAG``), through the CNCF registry; skopeo copies with
``--preserve-digests``, so equal digests mean identical manifest bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest

from aioras import OCILayout, defaults
from aioras.content.store import read_all
from aioras.descriptor import Descriptor
from aioras.registry import AsyncRegistry
from aioras.testing import LocalRegistry

pytestmark = pytest.mark.anyio

REF = defaults.oci_ref_name_annotation


def skopeo(skopeo_bin: str, *args: str) -> str:
    result = subprocess.run(
        [skopeo_bin, "--insecure-policy", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, f"skopeo {' '.join(args)} failed: {result.stderr}"
    return result.stdout


async def run_skopeo(skopeo_bin: str, *args: str) -> str:
    return await anyio.to_thread.run_sync(lambda: skopeo(skopeo_bin, *args))


async def skopeo_copy(skopeo_bin: str, source: str, destination: str, *extra: str) -> None:
    """``skopeo copy`` refusing to change any digest, plain HTTP on the registry side."""
    await run_skopeo(
        skopeo_bin,
        "copy",
        *extra,
        "--preserve-digests",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        source,
        destination,
    )


def describe(data: bytes, media_type: str, **extra: Any) -> Descriptor:
    out: dict[str, Any] = {
        "mediaType": media_type,
        "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
        "size": len(data),
        **extra,
    }
    return out  # type: ignore[return-value]


async def once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def put(layout: OCILayout, data: bytes, media_type: str) -> Descriptor:
    descriptor = describe(data, media_type)
    await layout.push(descriptor, once(data))
    return descriptor


def layer_tar_gz(name: str, content: bytes) -> tuple[bytes, str]:
    """A gzipped tar holding one file; returns it and the diff ID of the uncompressed tar."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    plain = raw.getvalue()
    return gzip.compress(plain, mtime=0), "sha256:" + hashlib.sha256(plain).hexdigest()


async def push_image(layout: OCILayout, arch: str = "amd64") -> tuple[Descriptor, bytes]:
    """Push a real image (config, one gzipped layer, manifest) into the layout."""
    layer, diff_id = layer_tar_gz(f"hello-{arch}.txt", os.urandom(256 * 1024))
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    config_d = await put(layout, config, defaults.default_config_media_type)
    layer_d = await put(layout, layer, defaults.default_blob_dir_media_type)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": defaults.default_manifest_media_type,
            "config": config_d,
            "layers": [layer_d],
        }
    ).encode()
    return await put(layout, manifest, defaults.default_manifest_media_type), manifest


async def verify_everything(layout: OCILayout, root: Descriptor) -> int:
    """Fetch every blob below ``root`` (each fetch verifies it); return how many."""
    data = await read_all(layout, root)
    doc = json.loads(data)
    count = 1
    if root["mediaType"] in defaults.index_media_types:
        for child in doc["manifests"]:
            count += await verify_everything(layout, child)
        return count
    for blob in [doc["config"], *doc["layers"]]:
        async with layout.fetch(blob) as stream:
            async for _ in stream:
                pass
        count += 1
    return count


async def registry_digest(areg: AsyncRegistry, reference: str) -> str:
    _, descriptor = await areg.fetch_manifest(reference)
    return str(descriptor["digest"])


# -- skopeo reads what aioras wrote --------------------------------------------------------


async def test_skopeo_copies_to_the_registry_a_layout_aioras_wrote(
    areg: AsyncRegistry, registry: LocalRegistry, skopeo_bin: str, tmp_path: Path
) -> None:
    layout = OCILayout(tmp_path / "layout")
    manifest, data = await push_image(layout)
    await layout.tag(manifest, "v1")
    target = registry.reference("layout/from-aioras-dir:v1")

    await skopeo_copy(skopeo_bin, f"oci:{tmp_path / 'layout'}:v1", f"docker://{target}")

    assert await registry_digest(areg, target) == manifest["digest"]
    for blob in json.loads(data)["layers"]:
        response = await areg.get_blob(target, blob["digest"])  # verified by get_blob
        assert len(response.content) == blob["size"]


async def test_skopeo_copies_to_the_registry_a_layout_tar_aioras_saved(
    areg: AsyncRegistry, registry: LocalRegistry, skopeo_bin: str, tmp_path: Path
) -> None:
    layout = OCILayout(tmp_path / "layout")
    manifest, _ = await push_image(layout)
    await layout.tag(manifest, "v1")
    archive = await layout.save_tar(tmp_path / "image.tar")
    target = registry.reference("layout/from-aioras-tar:v1")

    await skopeo_copy(skopeo_bin, f"oci-archive:{archive}:v1", f"docker://{target}")

    assert await registry_digest(areg, target) == manifest["digest"]


# -- aioras reads what skopeo wrote --------------------------------------------------------


def make_files(root: Path, seed: str) -> dict[str, bytes]:
    contents = {
        f"{seed}-readme.txt": f"artifact {seed}\n".encode(),
        f"{seed}-data.bin": os.urandom(1 << 20),
    }
    for name, data in contents.items():
        (root / name).write_bytes(data)
    return contents


async def test_aioras_reads_every_blob_of_a_layout_skopeo_copied_from_the_registry(
    areg: AsyncRegistry, registry: LocalRegistry, skopeo_bin: str, tmp_cwd: Path, tmp_path: Path
) -> None:
    contents = make_files(tmp_cwd, "a")
    source = registry.reference("layout/to-skopeo-dir:v1")
    await areg.push(source, files=list(contents))
    await skopeo_copy(skopeo_bin, f"docker://{source}", f"oci:{tmp_path / 'layout'}:v1")

    layout = OCILayout(tmp_path / "layout")
    root = await layout.resolve("v1")
    assert root["digest"] == await registry_digest(areg, source)
    assert await verify_everything(layout, root) == 2 + len(contents)
    layers = json.loads(await read_all(layout, root))["layers"]
    for layer in layers:
        title = layer["annotations"][defaults.annotation_title]
        assert await read_all(layout, layer, max_size=1 << 30) == contents[title]


async def test_aioras_reads_an_oci_archive_skopeo_wrote(
    areg: AsyncRegistry, registry: LocalRegistry, skopeo_bin: str, tmp_cwd: Path, tmp_path: Path
) -> None:
    contents = make_files(tmp_cwd, "b")
    source = registry.reference("layout/to-skopeo-tar:v1")
    await areg.push(source, files=list(contents))
    archive = tmp_path / "archive.tar"
    await skopeo_copy(skopeo_bin, f"docker://{source}", f"oci-archive:{archive}:v1")

    layout = await OCILayout.from_tar(archive)
    root = await layout.resolve("v1")
    assert root["digest"] == await registry_digest(areg, source)
    assert await verify_everything(layout, root) == 2 + len(contents)


async def test_aioras_reads_and_tags_a_layout_skopeo_filled_with_oras_py_artifacts(
    areg: AsyncRegistry,
    registry: LocalRegistry,
    skopeo_bin: str,
    oras_py: ModuleType,
    tmp_cwd: Path,
    tmp_path: Path,
) -> None:
    tags = ["alpha", "beta", "gamma"]
    repository = registry.reference("layout/from-oras-py")

    def oras_push() -> None:
        client = oras_py.client.OrasClient(hostname=registry.host, insecure=True)
        for tag in tags:
            client.push(target=f"{repository}:{tag}", files=list(make_files(tmp_cwd, tag)))

    await anyio.to_thread.run_sync(oras_push)
    directory = tmp_path / "layout"
    for tag in tags:
        await skopeo_copy(skopeo_bin, f"docker://{repository}:{tag}", f"oci:{directory}:{tag}")

    layout = OCILayout(directory)
    assert await layout.tags() == tags
    for tag in tags:
        root = await layout.resolve(tag)
        assert root["digest"] == await registry_digest(areg, f"{repository}:{tag}")
        assert await verify_everything(layout, root) == 4

    # An aioras edit of skopeo's index.json stays readable by skopeo.
    await layout.tag(await layout.resolve("beta"), "latest")
    raw = await run_skopeo(skopeo_bin, "inspect", "--raw", f"oci:{directory}:latest")
    assert describe(raw.encode(), "")["digest"] == (await layout.resolve("beta"))["digest"]


async def test_index_round_trips_through_skopeo_and_its_children_resolve_by_digest(
    areg: AsyncRegistry, registry: LocalRegistry, skopeo_bin: str, tmp_path: Path
) -> None:
    written = OCILayout(tmp_path / "written")
    children = []
    for arch in ("amd64", "arm64"):
        manifest, _ = await push_image(written, arch)
        children.append({**manifest, "platform": {"os": "linux", "architecture": arch}})
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": defaults.default_index_media_type, "manifests": children}
    ).encode()
    await written.tag(await put(written, index, defaults.default_index_media_type), "multi")
    target = registry.reference("layout/index:multi")

    for source, destination in (
        (f"oci:{tmp_path / 'written'}:multi", f"docker://{target}"),
        (f"docker://{target}", f"oci:{tmp_path / 'read'}:multi"),
    ):
        await skopeo_copy(skopeo_bin, source, destination, "--all")

    read = OCILayout(tmp_path / "read")
    root = await read.resolve("multi")
    assert root["digest"] == describe(index, "")["digest"]
    assert [
        e["digest"]
        for e in json.loads((tmp_path / "read" / "index.json").read_bytes())["manifests"]
    ] == [root["digest"]]  # skopeo lists only the index: children resolve through it
    for child in children:
        assert await read.resolve(child["digest"]) == child
    assert await verify_everything(read, root) == 1 + 2 * 3
