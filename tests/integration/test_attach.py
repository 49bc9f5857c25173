"""attach and push(subject=...): 1.1 artifacts by digest, the fallback index, peers unaffected."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from types import ModuleType

import anyio
import pytest

from aioras import AsyncRegistry, OrasClient, defaults
from aioras.digest import digest_bytes
from aioras.exceptions import ManifestValidationError, NotFoundError
from aioras.remote.repository import referrers_tag
from aioras.testing import LocalRegistry
from support.referrersregistry import ReferrersRegistry

pytestmark = pytest.mark.anyio

SBOM = "application/vnd.example.sbom+json"
SIG = "application/vnd.example.signature"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def subject_image(areg: AsyncRegistry, reference: str, cwd: Path) -> dict[str, object]:
    (cwd / "app.bin").write_bytes(b"application bytes\n")
    await areg.push(reference, files=["app.bin"])
    return await areg.resolve(reference)


async def test_attach_pushes_an_oci_1_1_artifact_by_digest_and_no_tag(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path
) -> None:
    name = f"{registry.host}/{unique('attach/app')}"
    subject = await subject_image(areg, f"{name}:v1", tmp_cwd)
    (tmp_cwd / "sbom.json").write_text('{"bomFormat": "CycloneDX"}')
    found = await areg.attach(
        f"{name}:v1", ["sbom.json"], artifact_type=SBOM, annotations={"kind": "sbom"}
    )
    assert found["artifactType"] == SBOM
    manifest = await areg.get_manifest(f"{name}@{found['digest']}")
    assert manifest["artifactType"] == SBOM
    assert manifest["config"]["mediaType"] == defaults.empty_media_type
    assert manifest["config"]["digest"] == defaults.blank_config_hash
    assert manifest["subject"] == {k: subject[k] for k in ("mediaType", "digest", "size")}
    assert manifest["annotations"]["kind"] == "sbom"
    assert defaults.annotation_created in manifest["annotations"]
    assert [layer["annotations"][defaults.annotation_title] for layer in manifest["layers"]] == [
        "sbom.json"
    ]
    # Only the subject's tag and the fallback index tag: no "latest", no other tag.
    assert sorted(await areg.get_tags(name)) == sorted(["v1", referrers_tag(subject["digest"])])


async def test_attach_without_files_carries_the_empty_descriptor_as_its_layer(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path
) -> None:
    name = f"{registry.host}/{unique('attach/empty')}"
    await subject_image(areg, f"{name}:v1", tmp_cwd)
    found = await areg.attach(f"{name}:v1", artifact_type=SIG)
    manifest = await areg.get_manifest(f"{name}@{found['digest']}")
    assert manifest["layers"] == [
        {"mediaType": defaults.empty_media_type, "digest": defaults.blank_config_hash, "size": 2}
    ]
    blob = await areg.get_blob(name, defaults.blank_config_hash)
    assert blob.content == b"{}"


async def test_attach_without_an_artifact_type_is_refused_before_anything_is_sent(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path
) -> None:
    name = f"{registry.host}/{unique('attach/untyped')}"
    await subject_image(areg, f"{name}:v1", tmp_cwd)
    (tmp_cwd / "new.bin").write_bytes(b"never uploaded")
    with pytest.raises(ManifestValidationError, match="artifact_type"):
        await areg.attach(f"{name}:v1", ["new.bin"], artifact_type="")
    assert not await areg.blob_exists({"digest": digest_bytes(b"never uploaded")}, name)


async def test_attach_to_a_missing_subject_is_a_not_found_error(
    areg: AsyncRegistry, registry: LocalRegistry
) -> None:
    with pytest.raises(NotFoundError):
        await areg.attach(f"{registry.host}/{unique('attach/none')}:v1", artifact_type=SIG)


async def test_push_with_a_subject_and_no_tag_goes_by_digest_and_leaves_latest_alone(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path
) -> None:
    name = f"{registry.host}/{unique('attach/latest')}"
    subject = await subject_image(areg, f"{name}:latest", tmp_cwd)
    (tmp_cwd / "sig.txt").write_text("signature")
    response = await areg.push(name, files=["sig.txt"], subject=f"{name}:latest", artifact_type=SIG)
    pushed = response.headers["docker-content-digest"]
    assert f"/manifests/{pushed}" in str(response.request.url)
    assert (await areg.resolve(f"{name}:latest"))["digest"] == subject["digest"]
    # push() keeps the fallback index too, so the referrer can be found again.
    assert [d["digest"] for d in await areg.get_referrers(f"{name}:latest")] == [pushed]


async def test_concurrent_attaches_to_one_subject_lose_no_entry(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path
) -> None:
    name = f"{registry.host}/{unique('attach/many')}"
    subject = await subject_image(areg, f"{name}:v1", tmp_cwd)
    attached: list[str] = []

    async def one(n: int) -> None:
        found = await areg.attach(f"{name}:v1", artifact_type=SIG, annotations={"n": str(n)})
        attached.append(found["digest"])

    async with anyio.create_task_group() as tasks:
        for n in range(8):
            tasks.start_soon(one, n)
    assert len(set(attached)) == 8
    listed = await areg.get_referrers(f"{name}:v1")
    assert sorted(d["digest"] for d in listed) == sorted(attached)
    index = await areg.get_manifest(f"{name}:{referrers_tag(subject['digest'])}")
    assert len(index["manifests"]) == 8


async def test_superseded_fallback_index_is_deleted_unless_kept(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path
) -> None:
    name = f"{registry.host}/{unique('attach/keep')}"
    subject = await subject_image(areg, f"{name}:v1", tmp_cwd)
    tag = f"{name}:{referrers_tag(subject['digest'])}"
    await areg.attach(f"{name}:v1", artifact_type=SIG, annotations={"n": "1"})
    first = await areg.resolve(tag)
    await areg.attach(f"{name}:v1", artifact_type=SIG, annotations={"n": "2"})
    second = await areg.resolve(tag)
    with pytest.raises(NotFoundError):
        await areg.resolve(f"{name}@{first['digest']}")
    await areg.attach(f"{name}:v1", artifact_type=SIG, annotations={"n": "3"}, keep_old_index=True)
    assert (await areg.resolve(f"{name}@{second['digest']}"))["digest"] == second["digest"]
    assert len((await areg.get_manifest(tag))["manifests"]) == 3


async def test_pack_version_1_0_puts_the_artifact_type_in_the_config(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path
) -> None:
    name = f"{registry.host}/{unique('attach/v10')}"
    (tmp_cwd / "a.txt").write_text("a")
    await areg.push(f"{name}:v1", files=["a.txt"], artifact_type=SBOM, pack_version="1.0")
    manifest = await areg.get_manifest(f"{name}:v1")
    assert manifest["config"]["mediaType"] == SBOM
    assert "artifactType" not in manifest
    await areg.push(f"{name}:v2", artifact_type=SBOM, pack_version="1.1")
    packed = await areg.get_manifest(f"{name}:v2")
    assert packed["artifactType"] == SBOM
    assert packed["config"]["mediaType"] == defaults.empty_media_type
    assert packed["layers"][0]["mediaType"] == defaults.empty_media_type
    with pytest.raises(ManifestValidationError, match="subject"):
        await areg.push(f"{name}:v3", subject=f"{name}:v1", pack_version="1.0")


@pytest.mark.parametrize("api", [False, True], ids=["cncf", "referrers-api"])
def test_peers_read_the_subject_unchanged_after_attaching(
    api: bool,
    registry: LocalRegistry,
    tmp_cwd: Path,
    oras_py: ModuleType,
    skopeo_bin: str,
) -> None:
    proxy = ReferrersRegistry(registry).start() if api else None
    host = proxy.host if proxy else registry.host
    name = f"{host}/{unique('attach/peers')}"
    (tmp_cwd / "app.bin").write_bytes(b"subject content\n")
    (tmp_cwd / "sbom.json").write_text("{}")
    try:
        with OrasClient(insecure=True) as client:
            client.push(f"{name}:v1", files=["app.bin"])
            before, _ = client.remote.fetch_manifest_bytes(f"{name}:v1")
            client.attach(f"{name}:v1", ["sbom.json"], artifact_type=SBOM)
            client.attach(f"{name}:v1", artifact_type=SIG)
            after, _ = client.remote.fetch_manifest_bytes(f"{name}:v1")
            assert after == before
            assert len(client.get_referrers(f"{name}:v1")) == 2
        raw = subprocess.run(
            [skopeo_bin, "inspect", "--raw", "--tls-verify=false", f"docker://{name}:v1"],
            check=True,
            capture_output=True,
        ).stdout
        assert raw == before
        peer = oras_py.client.OrasClient(insecure=True)
        out = tmp_cwd / "pulled"
        files = peer.pull(target=f"{name}:v1", outdir=str(out))
        assert [Path(f).name for f in files] == ["app.bin"]
        assert (out / "app.bin").read_bytes() == b"subject content\n"
    finally:
        if proxy is not None:
            proxy.stop()
