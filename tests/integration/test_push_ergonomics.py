"""push(root=...), per-file media types, titles and annotations in code, and version()."""

from __future__ import annotations

import importlib.metadata
import json
import os
from pathlib import Path

import anyio
import pytest

import aioras
from aioras import exceptions as exc
from aioras.operations.push import PushFile
from aioras.testing import LocalRegistry

pytestmark = pytest.mark.integration


async def manifest_of(reg: aioras.AsyncRegistry, ref: str) -> dict[str, object]:
    data, _ = await reg.fetch_manifest_bytes(ref)
    return dict(json.loads(data))


def test_push_resolves_and_validates_paths_against_root_not_the_working_directory(
    registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "service"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.txt").write_text("in root")
    (tmp_path / "secret.txt").write_text("outside")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    ref = f"{registry.host}/ergo/root:v1"

    async def main() -> None:
        async with aioras.AsyncRegistry(insecure=True) as reg:
            await reg.push(ref, files=["sub/a.txt"], root=root)
            layers = (await manifest_of(reg, ref))["layers"]
            assert [layer["annotations"]["org.opencontainers.image.title"] for layer in layers] == [  # type: ignore[attr-defined, index]
                "a.txt"
            ]
            with pytest.raises(exc.UnsafePathError, match="disable_path_validation=True"):
                await reg.push(ref, files=["../secret.txt"], root=root)
            out = tmp_path / "out"
            await reg.pull(ref, outdir=out)
            assert (out / "a.txt").read_text() == "in root"

    anyio.run(main)
    assert os.getcwd() == str(elsewhere)


def test_push_file_gives_media_type_title_and_annotations_in_code(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    (tmp_path / "model.bin").write_bytes(b"weights")
    (tmp_path / "notes.txt").write_text("notes")
    ref = f"{registry.host}/ergo/files:v1"

    async def main() -> dict[str, object]:
        async with aioras.AsyncRegistry(insecure=True) as reg:
            await reg.push(
                ref,
                root=tmp_path,
                files=[
                    PushFile(
                        "model.bin",
                        media_type="application/x.model",
                        title="weights.bin",
                        annotations={"stage": "prod"},
                    ),
                    "notes.txt:text/plain",
                ],
                annotation_file={"$manifest": {"team": "blue"}, "notes.txt": {"kind": "doc"}},
            )
            return await manifest_of(reg, ref)

    manifest = anyio.run(main)
    layers = manifest["layers"]
    assert isinstance(layers, list)
    assert layers[0]["mediaType"] == "application/x.model"
    assert layers[0]["annotations"] == {
        "org.opencontainers.image.title": "weights.bin",
        "stage": "prod",
    }
    assert layers[1]["mediaType"] == "text/plain"
    assert layers[1]["annotations"] == {
        "org.opencontainers.image.title": "notes.txt",
        "kind": "doc",
    }
    assert manifest["annotations"] == {"team": "blue"}


def test_version_lists_the_installed_dependency_versions() -> None:
    items = aioras.AsyncRegistry().version(return_items=True)
    assert isinstance(items, dict)
    for dist in ("httpx", "anyio", "aiofiles", "jsonschema"):
        assert items[f"{dist} version"] == importlib.metadata.version(dist)
    assert items["Version"] == aioras.__version__
    text = aioras.Registry().version()
    assert f"anyio version: {importlib.metadata.version('anyio')}" in str(text)


@pytest.mark.parametrize("spec", [":doesnotexist", ":text/plain", "gone:text/plain"])
def test_push_of_a_name_that_is_only_a_media_type_or_missing_names_no_directory(
    registry: LocalRegistry, tmp_path: Path, spec: str
) -> None:
    (tmp_path / "present.txt").write_text("the root holds files")
    ref = f"{registry.host}/ergo/missing:v1"

    async def main() -> None:
        async with aioras.AsyncRegistry(insecure=True) as reg:
            # An empty path before the colon must not fall back to the root directory itself.
            with pytest.raises(FileNotFoundError, match="does not exist"):
                await reg.push(ref, files=[spec], root=tmp_path)
            with pytest.raises(exc.NotFoundError):
                await reg.resolve(ref)

    anyio.run(main)
