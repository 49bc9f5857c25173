"""``aioras.layout``: oras-py's OCI layout API on aioras's OCILayout store, real registry.

oras-py's own tests (``nox -s compat``) cover its contract; these cover what aioras adds:
verification on both ways, names that cannot leave ``blobs/``, and pulls that keep what a
layout already holds.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import anyio
import pytest

import aioras
from aioras import defaults
from aioras.exceptions import DigestMismatch, InvalidDigest, NotFoundError
from aioras.layout import Layout, NewLayoutFromRegistry
from aioras.sync import Registry
from aioras.testing import LocalRegistry

pytestmark = pytest.mark.integration


def unique(name: str) -> str:
    return f"oraslayout/{name}-{uuid.uuid4().hex[:10]}"


def pushed_artifact(reg: Registry, registry: LocalRegistry, cwd: Path, text: str) -> str:
    (cwd / "a.txt").write_text(text)
    target = registry.reference(unique("src") + ":v1")
    reg.push(target, files=["a.txt"])
    return target


def test_pull_keeps_earlier_tags_and_pushes_back_byte_identical(
    registry: LocalRegistry, tmp_cwd: Path
) -> None:
    with Registry(insecure=True) as reg:
        first = pushed_artifact(reg, registry, tmp_cwd, "first")
        second = pushed_artifact(reg, registry, tmp_cwd, "second")
        out = tmp_cwd / "layout"
        layout = NewLayoutFromRegistry(str(out), provider=reg, target=first, tag="one")
        layout.pull_from_registry(provider=reg, target=second, tag="two")
        layout.validate()

        # Both images are there, each complete, and the store reads them back.
        assert layout.get_ordered_blobs("one") != layout.get_ordered_blobs("two")
        store = aioras.OCILayout(out)
        assert anyio.run(store.tags) == ["one", "two"]

        copy = registry.reference(unique("copy") + ":v2")
        response = layout.push_to_registry(provider=reg, target=copy, tag="two")
        assert response.status_code == 201
        # The manifest went up as stored: the registry names the same digest.
        assert response.headers["Docker-Content-Digest"] == layout.get_ordered_blobs("two")[-1]
        assert reg.get_manifest(copy) == reg.get_manifest(second)


def test_tampered_blob_is_refused_on_push(registry: LocalRegistry, tmp_cwd: Path) -> None:
    with Registry(insecure=True) as reg:
        source = pushed_artifact(reg, registry, tmp_cwd, "genuine")
        layout = NewLayoutFromRegistry(str(tmp_cwd / "l"), provider=reg, target=source)
        manifest_digest = layout.get_ordered_blobs("latest")[-1]
        path = layout.digest_to_blob_path(manifest_digest)
        doc = json.loads(path.read_bytes())
        doc["annotations"] = {"changed": "behind the digest's back"}
        path.write_text(json.dumps(doc))
        target = registry.reference(unique("tampered") + ":v1")
        with pytest.raises(DigestMismatch):
            layout.push_to_registry(provider=reg, target=target)
        with pytest.raises(NotFoundError):
            reg.get_manifest(target)


def test_blob_names_cannot_leave_the_blobs_directory(tmp_path: Path) -> None:
    (tmp_path / "blobs").mkdir()
    (tmp_path / defaults.oci_layout_file).write_text('{"imageLayoutVersion": "1.0.0"}')
    (tmp_path / defaults.oci_image_index_file).write_text('{"schemaVersion": 2}')
    layout = Layout(str(tmp_path))
    for name in ("sha256:../../etc/passwd", "../x:y", "sha256:" + "a" * 10):
        assert layout.blob_exists(name) is False
        with pytest.raises(InvalidDigest):
            layout.digest_to_blob_path(name)


def test_push_of_a_layout_missing_a_layer_fails_typed_and_tags_nothing(
    registry: LocalRegistry, tmp_cwd: Path
) -> None:
    with Registry(insecure=True) as reg:
        source = pushed_artifact(reg, registry, tmp_cwd, "a layer that will go missing")
        layout = NewLayoutFromRegistry(str(tmp_cwd / "l"), provider=reg, target=source)
        layer = layout.get_ordered_blobs("latest")[0]
        layout.digest_to_blob_path(layer).unlink()
        target = registry.reference(unique("incomplete") + ":v1")
        with pytest.raises(NotFoundError):
            layout.push_to_registry(provider=reg, target=target)
        with pytest.raises(NotFoundError):
            reg.get_manifest(target)
