"""Push and pull through ``AsyncRegistry`` against the real CNCF registry."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from aioras import defaults
from aioras.exceptions import (
    DigestMismatch,
    ManifestTooLarge,
    NotFoundError,
    SizeMismatch,
    UnsafePathError,
)
from aioras.registry import AsyncRegistry
from aioras.testing import LocalRegistry

pytestmark = pytest.mark.anyio


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fd:
        while chunk := fd.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def write_random(path: Path, size: int) -> Path:
    with open(path, "wb") as fd:
        remaining = size
        while remaining:
            n = min(remaining, 4 << 20)
            fd.write(os.urandom(n))
            remaining -= n
    return path


def blob_data_path(registry: LocalRegistry, digest: str) -> Path:
    """Where the CNCF registry's filesystem driver keeps a blob's bytes."""
    algorithm, hexpart = digest.split(":")
    return (
        Path(registry.storage_dir)
        / "docker/registry/v2/blobs"
        / algorithm
        / hexpart[:2]
        / hexpart
        / "data"
    )


async def test_many_layers_round_trip_byte_identical(
    areg: AsyncRegistry,
    registry: LocalRegistry,
    tmp_cwd: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    sizes = [0, 1, 1000, 65_536, 1 << 20, 3 * (1 << 20) + 7, 200_000, 5, 10_000, 2 << 20]
    names = []
    for i, size in enumerate(sizes):
        write_random(tmp_cwd / f"file{i}.bin", size)
        names.append(f"file{i}.bin")
    target = registry.reference("roundtrip/many:v1")

    response = await areg.push(target, files=names)

    assert response.status_code == 201
    outdir = tmp_path_factory.mktemp("out")
    paths = await areg.pull(target, outdir=str(outdir))
    assert [Path(p).name for p in paths] == names
    for name in names:
        assert sha256_file(outdir / name) == sha256_file(tmp_cwd / name)
    manifest = await areg.get_manifest(target)
    assert [
        layer["annotations"][defaults.annotation_title] for layer in manifest["layers"]
    ] == names
    assert manifest["config"]["digest"] == defaults.blank_config_hash


async def test_directory_is_packed_and_unpacked(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path, tmp_path: Path
) -> None:
    tree = tmp_cwd / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("alpha\n")
    (tree / "sub" / "b.bin").write_bytes(os.urandom(4096))
    target = registry.reference("roundtrip/dir:v1")

    await areg.push(target, files=["tree"])
    outdir = tmp_path / "out"
    paths = await areg.pull(target, outdir=str(outdir))

    assert paths == [str(outdir / "tree")]
    assert (outdir / "tree" / "a.txt").read_text() == "alpha\n"
    assert (outdir / "tree" / "sub" / "b.bin").read_bytes() == (tree / "sub" / "b.bin").read_bytes()
    layer = (await areg.get_manifest(target))["layers"][0]
    assert layer["mediaType"] == defaults.default_blob_dir_media_type
    assert layer["annotations"][defaults.annotation_unpack] == "true"
    assert not list(outdir.glob(".aioras-*")), "the downloaded archive must not be left behind"


async def test_repeated_directory_push_is_reproducible(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path
) -> None:
    (tmp_cwd / "d").mkdir()
    (tmp_cwd / "d" / "x").write_text("same")
    await areg.push(registry.reference("repro/a:v1"), files=["d"])
    os.utime(tmp_cwd / "d" / "x", (1, 1))
    await areg.push(registry.reference("repro/a:v2"), files=["d"])

    first = await areg.get_manifest(registry.reference("repro/a:v1"))
    second = await areg.get_manifest(registry.reference("repro/a:v2"))
    assert first["layers"][0]["digest"] == second["layers"][0]["digest"]


async def test_chunked_push_round_trip(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path, tmp_path: Path
) -> None:
    write_random(tmp_cwd / "big.bin", 5 * (1 << 20) + 123)
    target = registry.reference("chunked/art:v1")

    await areg.push(target, files=["big.bin"], do_chunked=True, chunk_size=1 << 20)
    paths = await areg.pull(target, outdir=str(tmp_path / "out"))

    assert sha256_file(paths[0]) == sha256_file(tmp_cwd / "big.bin")


async def test_media_type_suffix_and_annotations(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path
) -> None:
    (tmp_cwd / "sbom.json").write_text("{}")
    (tmp_cwd / "annotations.json").write_text(
        json.dumps(
            {
                "$manifest": {"org.example.kind": "demo", "org.example.over": "file"},
                "$config": {"org.example.config": "yes"},
                "sbom.json": {"org.example.layer": "sbom"},
            }
        )
    )
    target = registry.reference("annot/art:v1")

    await areg.push(
        target,
        files=["sbom.json:application/vnd.cyclonedx+json"],
        annotation_file="annotations.json",
        manifest_annotations={"org.example.over": "argument"},
        artifact_type="application/vnd.example.demo",
    )

    manifest = await areg.get_manifest(target)
    layer = manifest["layers"][0]
    assert layer["mediaType"] == "application/vnd.cyclonedx+json"
    assert layer["annotations"]["org.example.layer"] == "sbom"
    assert manifest["annotations"] == {"org.example.kind": "demo", "org.example.over": "argument"}
    assert manifest["config"]["annotations"] == {"org.example.config": "yes"}
    assert manifest["artifactType"] == "application/vnd.example.demo"


async def test_push_refuses_paths_outside_working_directory(
    areg: AsyncRegistry,
    registry: LocalRegistry,
    tmp_cwd: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    outside = tmp_path_factory.mktemp("elsewhere") / "x.txt"
    outside.write_text("x")
    with pytest.raises(UnsafePathError):
        await areg.push(registry.reference("paths/art:v1"), files=[str(outside)])
    with pytest.raises(FileNotFoundError):
        await areg.push(registry.reference("paths/art:v1"), files=["nope.txt"])
    response = await areg.push(
        registry.reference("paths/art:v1"), files=[str(outside)], disable_path_validation=True
    )
    assert response.status_code == 201


async def test_pull_by_digest_and_resolve(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path, tmp_path: Path
) -> None:
    (tmp_cwd / "f.txt").write_text("by digest")
    response = await areg.push(registry.reference("bydigest/art:v1"), files=["f.txt"])
    digest = response.headers["docker-content-digest"]

    descriptor = await areg.resolve(registry.reference("bydigest/art:v1"))
    assert descriptor["digest"] == digest
    assert descriptor["mediaType"] == defaults.default_manifest_media_type
    paths = await areg.pull(registry.reference(f"bydigest/art@{digest}"), outdir=str(tmp_path))
    assert Path(paths[0]).read_text() == "by digest"


async def test_existing_blobs_are_not_uploaded_again(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path
) -> None:
    write_random(tmp_cwd / "f.bin", 100_000)
    target = registry.reference("skip/art:v1")
    await areg.push(target, files=["f.bin"])
    layer = (await areg.get_manifest(target))["layers"][0]

    response = await areg.upload_blob("f.bin", target, layer)

    assert response.request.method == "HEAD"
    assert response.status_code == 200
    assert await areg.blob_exists(layer, target)


async def test_upload_blob_refuses_a_file_of_the_wrong_size(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path
) -> None:
    (tmp_cwd / "f.bin").write_bytes(b"12345")
    layer = {"mediaType": "x/y", "digest": "sha256:" + "0" * 64, "size": 6}
    with pytest.raises(SizeMismatch):
        await areg.upload_blob("f.bin", registry.reference("size/art:v1"), layer)


async def test_corrupted_blob_download_is_detected_and_leaves_no_file(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path, tmp_path: Path
) -> None:
    write_random(tmp_cwd / "victim.bin", 300_000)
    target = registry.reference("corrupt/art:v1")
    await areg.push(target, files=["victim.bin"])
    layer = (await areg.get_manifest(target))["layers"][0]
    data = blob_data_path(registry, layer["digest"])
    raw = bytearray(data.read_bytes())
    raw[1000] ^= 0xFF  # same size, different bytes: only the digest check can tell
    data.write_bytes(bytes(raw))
    outdir = tmp_path / "out"

    with pytest.raises(DigestMismatch) as info:
        await areg.pull(target, outdir=str(outdir))

    assert info.value.expected == layer["digest"]
    assert list(outdir.iterdir()) == [] if outdir.exists() else True
    with pytest.raises(DigestMismatch):
        await areg.get_blob(target, layer["digest"])


async def test_existing_file_survives_a_failed_download(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path, tmp_path: Path
) -> None:
    (tmp_cwd / "keep.txt").write_text("original content of the upload")
    target = registry.reference("corrupt/keep:v1")
    await areg.push(target, files=["keep.txt"])
    layer = (await areg.get_manifest(target))["layers"][0]
    blob_data_path(registry, layer["digest"]).write_bytes(b"ORIGINAL CONTENT OF THE UPLOAD")
    existing = tmp_path / "keep.txt"
    existing.write_text("what the user had before")

    with pytest.raises(DigestMismatch):
        await areg.download_blob(target, layer["digest"], existing)

    assert existing.read_text() == "what the user had before"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


async def _push_raw_artifact(
    areg: AsyncRegistry, target: str, blob: bytes, annotations: dict[str, str], media_type: str
) -> None:
    """Push a one-layer manifest with whatever annotations a hostile publisher chooses."""
    from aioras.oci import ManifestConfig, NewManifest

    path = Path(f"blob-{hashlib.sha256(blob).hexdigest()[:8]}")
    path.write_bytes(blob)
    layer = {
        "mediaType": media_type,
        "digest": "sha256:" + hashlib.sha256(blob).hexdigest(),
        "size": len(blob),
        "annotations": annotations,
    }
    await areg.upload_blob(str(path), target, layer)
    conf, config_file = ManifestConfig()
    await areg.upload_blob(config_file, target, conf)
    manifest = NewManifest()
    manifest["layers"] = [layer]
    manifest["config"] = conf
    await areg.upload_manifest(manifest, target)


@pytest.mark.parametrize("title", ["../escape.txt", "/etc/evil.txt", "a/../../escape.txt"])
async def test_pull_rejects_a_title_escaping_outdir(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path, tmp_path: Path, title: str
) -> None:
    target = registry.reference("hostile/title:v1")
    await _push_raw_artifact(
        areg, target, b"pwned", {defaults.annotation_title: title}, "text/plain"
    )
    outdir = tmp_path / "deep" / "out"
    outdir.mkdir(parents=True)

    with pytest.raises(UnsafePathError):
        await areg.pull(target, outdir=str(outdir))

    assert list(outdir.iterdir()) == []
    assert not (tmp_path / "deep" / "escape.txt").exists()
    assert not (tmp_path / "escape.txt").exists()


def _tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _member(name: str, data: bytes = b"x", **attrs: object) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data if info.isfile() else None


@pytest.mark.parametrize(
    "members",
    [
        [_member("pkg/ok.txt"), _member("pkg/../../escape.txt")],
        [_member("/tmp/aioras-absolute-escape.txt")],
        [_member("pkg/link", b"", type=tarfile.SYMTYPE, linkname="../../escape.txt")],
        [_member("pkg/hard", b"", type=tarfile.LNKTYPE, linkname="../../../etc/passwd")],
    ],
    ids=["dotdot", "absolute", "symlink-out", "hardlink-out"],
)
async def test_pull_rejects_a_tar_member_escaping_outdir(
    areg: AsyncRegistry,
    registry: LocalRegistry,
    tmp_cwd: Path,
    tmp_path: Path,
    members: list[tuple[tarfile.TarInfo, bytes | None]],
) -> None:
    target = registry.reference("hostile/tar:v1")
    await _push_raw_artifact(
        areg,
        target,
        _tar_gz(members),
        {defaults.annotation_title: "pkg", defaults.annotation_unpack: "true"},
        defaults.default_blob_dir_media_type,
    )
    outdir = tmp_path / "a" / "out"
    outdir.mkdir(parents=True)

    with pytest.raises(UnsafePathError):
        await areg.pull(target, outdir=str(outdir))

    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "a" / "escape.txt").exists()
    assert not Path("/tmp/aioras-absolute-escape.txt").exists()
    assert not any(p.name.startswith(".aioras-") for p in outdir.rglob("*"))


async def test_tags_listed_across_pages_and_limited(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path
) -> None:
    (tmp_cwd / "t.txt").write_text("tags")
    repo = registry.reference("tags/art")
    await areg.push(f"{repo}:base", files=["t.txt"])
    manifest = await areg.get_manifest(f"{repo}:base")
    tags = [f"v{i:02d}" for i in range(23)]
    for tag in tags:
        await areg.upload_manifest(manifest, f"{repo}:{tag}")

    every = await areg.get_tags(repo, page_size=5)
    assert sorted(every) == sorted([*tags, "base"])
    assert len(every) == len(set(every))
    limited = await areg.get_tags(repo, N=7, page_size=3)
    assert len(limited) == len(set(limited)) == 7
    assert set(limited) <= {*tags, "base"}
    assert await areg.get_tags(repo, N=0) == []


async def test_delete_tags(areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path) -> None:
    (tmp_cwd / "a.txt").write_text("a")
    (tmp_cwd / "b.txt").write_text("b")
    repo = registry.reference("delete/art")
    await areg.push(f"{repo}:one", files=["a.txt"])
    await areg.push(f"{repo}:two", files=["b.txt"])

    assert await areg.delete_tag(repo, "one") is True
    assert await areg.delete_tag(repo, "one") is False
    assert await areg.delete_tags(repo, ["two", "missing"]) == ["two"]
    with pytest.raises(NotFoundError) as info:
        await areg.get_manifest(f"{repo}:one")
    assert "MANIFEST_UNKNOWN" in info.value.codes


async def test_missing_blob_and_manifest_raise_typed_errors(
    areg: AsyncRegistry, registry: LocalRegistry
) -> None:
    with pytest.raises(NotFoundError) as info:
        await areg.get_manifest(registry.reference("nothing/here:v1"))
    assert info.value.status_code == 404
    digest = "sha256:" + "a" * 64
    with pytest.raises(NotFoundError):
        await areg.get_blob(registry.reference("nothing/here:v1"), digest)
    assert not await areg.blob_exists({"digest": digest}, registry.reference("nothing/here"))


async def test_manifest_over_the_size_limit_is_refused(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path
) -> None:
    (tmp_cwd / "m.txt").write_text("m")
    target = registry.reference("limits/art:v1")
    await areg.push(target, files=["m.txt"])
    with pytest.raises(ManifestTooLarge):
        await areg.fetch_manifest(target, max_size=64)


async def test_subject_links_an_artifact_to_its_manifest(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path
) -> None:
    (tmp_cwd / "app.txt").write_text("app")
    (tmp_cwd / "sig.txt").write_text("signature")
    base = registry.reference("subject/app:v1")
    pushed = await areg.push(base, files=["app.txt"])

    await areg.push(registry.reference("subject/app:sig"), files=["sig.txt"], subject="v1")

    referrer = await areg.get_manifest(registry.reference("subject/app:sig"))
    assert referrer["subject"]["digest"] == pushed.headers["docker-content-digest"]
    assert referrer["subject"]["mediaType"] == defaults.default_manifest_media_type


async def test_one_gibibyte_blob_round_trip(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path, tmp_path: Path
) -> None:
    big = tmp_cwd / "gib.bin"
    # Random head and tail around a sparse middle: written fast, still a real 1 GiB blob.
    with open(big, "wb") as fd:
        fd.write(os.urandom(1 << 20))
        fd.seek((1 << 30) - (1 << 20))
        fd.write(os.urandom(1 << 20))
    assert big.stat().st_size == 1 << 30
    target = registry.reference("large/gib:v1")

    await areg.push(target, files=["gib.bin"])
    paths = await areg.pull(target, outdir=str(tmp_path / "out"))

    assert sha256_file(paths[0]) == sha256_file(big)
    os.remove(paths[0])
