"""Image indexes: push one of three platforms, pull and resolve by platform, edit it in place."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import pytest

from aioras import AsyncRegistry, Registry, defaults
from aioras.content.graph import host_platform, parse_platform, platform_matches
from aioras.digest import digest_bytes
from aioras.exceptions import (
    InvalidReference,
    ManifestValidationError,
    NotFoundError,
    PlatformNotFound,
)
from aioras.oci import manifest_bytes
from aioras.testing import LocalRegistry

pytestmark = pytest.mark.anyio

IMAGE_CONFIG = defaults.default_config_media_type
PLATFORMS = {
    "amd64": {"os": "linux", "architecture": "amd64"},
    "arm64": {"os": "linux", "architecture": "arm64", "variant": "v8"},
    "armv7": {"os": "linux", "architecture": "arm", "variant": "v7"},
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def platform_image(
    areg: AsyncRegistry, name: str, key: str, cwd: Path, platform: dict[str, str] | None = None
) -> dict[str, object]:
    """Push an image whose config records ``platform`` and whose file says ``key``."""
    folder = cwd / key
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(platform or PLATFORMS[key]))
    (folder / "hello.txt").write_text(f"hello from {key}\n")
    await areg.push(
        f"{name}:{key}",
        files=[str(folder / "hello.txt")],
        manifest_config=f"{folder / 'config.json'}:{IMAGE_CONFIG}",
    )
    return await areg.resolve(f"{name}:{key}")


@pytest.fixture
async def multi(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path
) -> tuple[str, dict[str, dict[str, object]], dict[str, object]]:
    name = f"{registry.host}/{unique('index/app')}"
    images = {key: await platform_image(areg, name, key, tmp_cwd) for key in PLATFORMS}
    index = await areg.push_index(
        f"{name}:v1", [f"{name}:{key}" for key in PLATFORMS], annotations={"made": "test"}
    )
    return name, images, index


async def test_push_index_takes_each_platform_from_the_image_config(
    areg: AsyncRegistry, multi: tuple[str, dict[str, dict[str, object]], dict[str, object]]
) -> None:
    name, images, index = multi
    assert index["mediaType"] == defaults.default_index_media_type
    document = await areg.get_manifest(f"{name}:v1")
    assert (await areg.resolve(f"{name}:v1"))["digest"] == index["digest"]
    assert document["annotations"] == {"made": "test"}
    assert [e["digest"] for e in document["manifests"]] == [images[k]["digest"] for k in PLATFORMS]
    assert [e["platform"] for e in document["manifests"]] == list(PLATFORMS.values())


@pytest.mark.parametrize(
    ("platform", "key"),
    [
        ("linux/amd64", "amd64"),
        ("linux/arm64", "arm64"),
        ("linux/arm64/v8", "arm64"),
        ("linux/arm", "armv7"),
        ("linux/arm/v7", "armv7"),
    ],
)
async def test_pull_by_platform_takes_the_matching_manifest(
    areg: AsyncRegistry,
    multi: tuple[str, dict[str, dict[str, object]], dict[str, object]],
    tmp_path: Path,
    platform: str,
    key: str,
) -> None:
    name, images, _ = multi
    paths = await areg.pull(f"{name}:v1", platform=platform, outdir=tmp_path / "out")
    assert [Path(p).read_text() for p in paths] == [f"hello from {key}\n"]
    resolved = await areg.resolve(f"{name}:v1", platform=platform)
    assert resolved["digest"] == images[key]["digest"]
    assert resolved["platform"] == PLATFORMS[key]


async def test_a_platform_the_index_lacks_is_refused_with_the_list_of_available_ones(
    areg: AsyncRegistry,
    multi: tuple[str, dict[str, dict[str, object]], dict[str, object]],
    tmp_path: Path,
) -> None:
    name, _, _ = multi
    with pytest.raises(PlatformNotFound) as caught:
        await areg.pull(f"{name}:v1", platform="linux/s390x", outdir=tmp_path / "out")
    assert caught.value.available == ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"]
    assert "linux/arm64/v8" in str(caught.value)
    assert not (tmp_path / "out").exists()
    with pytest.raises(PlatformNotFound):
        await areg.resolve(f"{name}:v1", platform="linux/arm/v6")
    with pytest.raises(ValueError, match="os/arch"):
        await areg.resolve(f"{name}:v1", platform="linux")


async def test_pull_of_an_index_without_platform_takes_this_machines_and_says_so(
    areg: AsyncRegistry,
    registry: LocalRegistry,
    tmp_cwd: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = f"{registry.host}/{unique('index/host')}"
    here = host_platform().split("/")
    mine = {"os": here[0], "architecture": here[1], **({"variant": here[2]} if here[2:] else {})}
    other = {"os": "plan9", "architecture": "mips"}
    first = await platform_image(areg, name, "other", tmp_cwd, other)
    await platform_image(areg, name, "mine", tmp_cwd, mine)
    await areg.push_index(f"{name}:v1", [first, f"{name}:mine"])
    with caplog.at_level(logging.INFO, logger="aioras"):
        paths = await areg.pull(f"{name}:v1", outdir=tmp_cwd / "out")
    assert [Path(p).read_text() for p in paths] == ["hello from mine\n"]
    assert any(host_platform() in r.getMessage() for r in caplog.records)


async def test_update_index_replaces_and_removes_keeping_untouched_entries_identical(
    areg: AsyncRegistry,
    multi: tuple[str, dict[str, dict[str, object]], dict[str, object]],
    tmp_cwd: Path,
) -> None:
    name, images, _ = multi
    before, _ = await areg.fetch_manifest_bytes(f"{name}:v1")
    entries = json.loads(before)["manifests"]
    arm64 = {"os": "linux", "architecture": "arm64", "variant": "v8"}
    rebuilt = await platform_image(areg, name, "arm64-new", tmp_cwd, arm64)
    windows = await platform_image(
        areg, name, "win", tmp_cwd, {"os": "windows", "architecture": "amd64"}
    )
    updated = await areg.update_index(
        f"{name}:v1", add=[f"{name}:arm64-new", windows], remove=["linux/arm/v7"]
    )
    after, found = await areg.fetch_manifest_bytes(f"{name}:v1")
    assert found["digest"] == updated["digest"] == digest_bytes(after)
    new_entries = json.loads(after)["manifests"]
    assert [e["digest"] for e in new_entries] == [
        images["amd64"]["digest"],
        rebuilt["digest"],
        windows["digest"],
    ]
    # The untouched entry is the same JSON, byte for byte, and the annotations stay.
    assert manifest_bytes(entries[0]) in after
    assert new_entries[0] == entries[0]
    assert json.loads(after)["annotations"] == {"made": "test"}
    paths = await areg.pull(f"{name}:v1", platform="linux/arm64", outdir=tmp_cwd / "out")
    assert [Path(p).read_text() for p in paths] == ["hello from arm64-new\n"]

    removed = await areg.update_index(f"{name}:v1", remove=[str(windows["digest"])])
    assert len((await areg.get_manifest(f"{name}@{removed['digest']}"))["manifests"]) == 2
    with pytest.raises(NotFoundError):
        await areg.update_index(f"{name}:v1", remove=["linux/riscv64"])


async def test_update_index_refuses_a_manifest_that_is_not_an_index(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path
) -> None:
    name = f"{registry.host}/{unique('index/plain')}"
    await platform_image(areg, name, "amd64", tmp_cwd)
    with pytest.raises(ManifestValidationError, match="not an image index"):
        await areg.update_index(f"{name}:amd64", remove=["linux/amd64"])


async def test_push_index_refuses_a_manifest_of_another_repository(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path
) -> None:
    other = f"{registry.host}/{unique('index/other')}"
    await platform_image(areg, other, "amd64", tmp_cwd)
    with pytest.raises(InvalidReference, match="own repository"):
        await areg.push_index(f"{registry.host}/{unique('index/mine')}:v1", [f"{other}:amd64"])


async def test_a_docker_manifest_list_is_read_like_an_oci_index(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path
) -> None:
    name = f"{registry.host}/{unique('index/docker')}"
    images = {key: await platform_image(areg, name, key, tmp_cwd) for key in ("amd64", "arm64")}
    listing = {
        "schemaVersion": 2,
        "mediaType": defaults.docker_manifest_list_media_type,
        "manifests": [
            {**{k: images[key][k] for k in ("mediaType", "digest", "size")}, "platform": p}
            for key, p in (
                ("amd64", PLATFORMS["amd64"]),
                ("arm64", {"os": "linux", "architecture": "arm64"}),
            )
        ],
    }
    await areg.push_manifest_bytes(
        manifest_bytes(listing),
        f"{name}:v1",
        media_type=defaults.docker_manifest_list_media_type,
    )
    paths = await areg.pull(f"{name}:v1", platform="linux/arm64/v8", outdir=tmp_cwd / "out")
    assert [Path(p).read_text() for p in paths] == ["hello from arm64\n"]
    edited = await areg.update_index(f"{name}:v1", remove=["linux/amd64"])
    assert edited["mediaType"] == defaults.docker_manifest_list_media_type


def test_sync_registry_pushes_resolves_and_pulls_an_index(
    registry: LocalRegistry, tmp_cwd: Path
) -> None:
    name = f"{registry.host}/{unique('index/sync')}"
    (tmp_cwd / "config.json").write_text(json.dumps(PLATFORMS["arm64"]))
    (tmp_cwd / "hello.txt").write_text("sync arm64\n")
    with Registry(registry.host, insecure=True) as reg:
        reg.push(
            f"{name}:arm64",
            files=["hello.txt"],
            manifest_config=f"config.json:{IMAGE_CONFIG}",
        )
        index = reg.push_index(f"{name}:v1", [f"{name}:arm64"])
        assert reg.resolve(f"{name}:v1")["digest"] == index["digest"]
        assert reg.resolve(f"{name}:v1", platform="linux/arm64")["platform"] == PLATFORMS["arm64"]
        paths = reg.pull(f"{name}:v1", platform="linux/arm64", outdir=str(tmp_cwd / "out"))
        assert [Path(p).read_text() for p in paths] == ["sync arm64\n"]
        reg.update_index(f"{name}:v1", remove=["linux/arm64"])
        assert reg.get_manifest(f"{name}:v1")["manifests"] == []


async def test_push_index_without_a_tag_goes_by_digest_and_writes_no_latest(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path
) -> None:
    name = f"{registry.host}/{unique('index/untagged')}"
    await platform_image(areg, name, "amd64", tmp_cwd)
    index = await areg.push_index(name, [f"{name}:amd64"])
    assert await areg.get_tags(name) == ["amd64"]
    stored = await areg.get_manifest(f"{name}@{index['digest']}")
    assert [e["platform"] for e in stored["manifests"]] == [PLATFORMS["amd64"]]


@pytest.mark.parametrize(
    ("entry", "wanted", "matches"),
    [
        ({"os": "linux", "architecture": "arm64"}, "linux/arm64/v8", True),
        ({"os": "linux", "architecture": "arm64", "variant": "v8"}, "linux/arm64", True),
        ({"os": "linux", "architecture": "arm"}, "linux/arm/v7", True),
        ({"os": "linux", "architecture": "arm", "variant": "v6"}, "linux/arm", False),
        ({"os": "linux", "architecture": "arm", "variant": "v7"}, "linux/arm", True),
        ({"os": "linux", "architecture": "amd64"}, "windows/amd64", False),
        ({"os": "linux", "architecture": "amd64"}, "linux/arm64", False),
    ],
)
def test_platform_matching_follows_the_image_spec_defaults(
    entry: dict[str, str], wanted: str, matches: bool
) -> None:
    assert platform_matches(entry, parse_platform(wanted)) is matches


def test_the_machines_platform_is_os_slash_architecture() -> None:
    parts = host_platform().split("/")
    assert parts[0] in {"linux", "darwin", "windows"}
    assert len(parts) in (2, 3)
    assert all(parts)
