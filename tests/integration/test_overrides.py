"""The built-in push() and pull() of the sync facade call a subclass's endpoint overrides.

oras-py's ``push`` and ``pull`` are built from ``self.upload_blob``, ``self.download_blob``,
``self.get_manifest`` ...; code that subclasses ``oras.provider.Registry`` to change one of
them keeps working only if aioras's operations call the override too.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

import aioras.provider
from aioras import AsyncRegistry
from aioras.container import Container
from aioras.exceptions import RegistryError
from aioras.sync._overrides import overridden_endpoints
from aioras.testing import LocalRegistry

pytestmark = pytest.mark.integration


def unique(name: str) -> str:
    return f"overrides/{name}-{uuid.uuid4().hex[:10]}"


class RecordingRegistry(aioras.provider.Registry):
    """Overrides upload_blob and download_blob as an oras-py subclass would, recording calls."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.uploaded: list[str] = []
        self.downloaded: list[str] = []
        self.threads: set[int] = set()

    def upload_blob(
        self,
        blob: str | os.PathLike[str] | None,
        container: Container | str,
        layer: Mapping[str, Any],
        do_chunked: bool = False,
        chunk_size: int | None = None,
        *,
        skip_existing: bool = True,
    ) -> httpx.Response:
        self.uploaded.append(layer["digest"])
        self.threads.add(threading.get_ident())
        # The override may call the facade's own methods: they run on the loop thread.
        return super().upload_blob(blob, container, layer, do_chunked, chunk_size)

    def download_blob(
        self,
        container: Container | str,
        digest: str,
        outfile: str | os.PathLike[str],
        *,
        size: int | None = None,
    ) -> str:
        self.downloaded.append(digest)
        return super().download_blob(container, digest, outfile, size=size)


def test_push_and_pull_call_sync_upload_blob_and_download_blob_overrides(
    registry: LocalRegistry, tmp_cwd: Path
) -> None:
    data = b"overridden transfer\n"
    (tmp_cwd / "note.txt").write_bytes(data)
    target = registry.reference(unique("sync") + ":v1")
    layer_digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with RecordingRegistry(insecure=True) as reg:
        response = reg.push(target, files=["note.txt"])
        assert response.status_code == 201
        # The layer and the empty config both went through the override, off the caller's
        # thread (in a worker) so that an override may block.
        assert layer_digest in reg.uploaded
        assert len(reg.uploaded) == 2
        assert threading.get_ident() not in reg.threads

        paths = reg.pull(target, outdir=tmp_cwd / "out")
        assert reg.downloaded == [layer_digest]
        assert Path(paths[0]).read_bytes() == data


def test_instance_override_and_blob_exists_answer_are_honoured(
    registry: LocalRegistry, tmp_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_cwd / "a.txt").write_bytes(b"never sent")
    target = registry.reference(unique("exists") + ":v1")
    with aioras.provider.Registry(insecure=True) as reg:
        # An override set on the instance (as oras-py's tests do) counts too: a blob_exists
        # that claims every blob is present means nothing is uploaded, so the registry
        # refuses the manifest that names the missing blobs.
        monkeypatch.setattr(reg, "blob_exists", lambda layer, container: True)
        assert overridden_endpoints(reg, aioras.provider.Registry) == {"blob_exists"}
        with pytest.raises(RegistryError):
            reg.push(target, files=["a.txt"])


def test_manifest_overrides_see_what_push_and_pull_send(
    registry: LocalRegistry, tmp_cwd: Path
) -> None:
    seen: dict[str, Any] = {}

    class Annotating(aioras.provider.Registry):
        def upload_manifest(  # type: ignore[override]
            self, manifest: Mapping[str, Any], container: Container | str
        ) -> httpx.Response:
            changed = dict(manifest)
            changed["annotations"] = {"added.by": "override"}
            return super().upload_manifest(changed, container)

        def get_manifest(  # type: ignore[override]
            self, container: Container | str, allowed_media_type: Any = None
        ) -> dict[str, Any]:
            manifest = super().get_manifest(container, allowed_media_type)
            seen.update(manifest)
            return manifest

    (tmp_cwd / "m.txt").write_bytes(b"manifest override")
    target = registry.reference(unique("manifest") + ":v1")
    with Annotating(insecure=True) as reg:
        reg.push(target, files=["m.txt"])
        reg.pull(target, outdir=tmp_cwd / "out")
    assert seen["annotations"] == {"added.by": "override"}


def test_no_override_runs_the_async_core_directly() -> None:
    reg = aioras.provider.Registry("registry.test")
    try:
        assert overridden_endpoints(reg, aioras.provider.Registry) == frozenset()
        assert reg._async_method("push", inspect.unwrap(AsyncRegistry.push)) == reg.aregistry.push
    finally:
        reg.close()
