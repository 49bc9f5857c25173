"""Artifacts a hostile publisher builds by hand: raw layer blobs, any titles, unpack marks.

Used by the ``test_sec_*`` modules to push multi-layer artifacts to the real registry.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aioras import defaults
from aioras.oci import ManifestConfig, NewManifest
from aioras.registry import AsyncRegistry
from aioras.testing import LocalRegistry


def fresh_reference(registry: LocalRegistry, repo: str, tag: str = "v1") -> str:
    """A reference in a repository of its own: tests share the session registry."""
    return registry.reference(f"{repo}/{uuid.uuid4().hex[:10]}:{tag}")


@dataclass(frozen=True)
class Layer:
    blob: bytes
    title: str
    unpack: bool


def tar_gz(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def entry(name: str, data: bytes = b"x", **attrs: Any) -> tuple[tarfile.TarInfo, bytes | None]:
    """A tar member: a regular file by default, any type with ``type=``."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    if not info.isfile():
        info.size = 0
        return info, None
    return info, data


def symlink(name: str, target: str) -> tuple[tarfile.TarInfo, bytes | None]:
    return entry(name, b"", type=tarfile.SYMTYPE, linkname=target)


def directory(name: str) -> tuple[tarfile.TarInfo, bytes | None]:
    return entry(name, b"", type=tarfile.DIRTYPE, mode=0o755)


def archive(title: str, *members: tuple[tarfile.TarInfo, bytes | None]) -> Layer:
    """A layer marked for unpacking, holding ``members``."""
    return Layer(tar_gz(*members), title, unpack=True)


def plain(title: str, data: bytes) -> Layer:
    return Layer(data, title, unpack=False)


async def push_layers(areg: AsyncRegistry, target: str, layers: list[Layer]) -> None:
    """Push ``layers`` as one artifact, in this order, exactly as given."""
    descriptors = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, layer in enumerate(layers):
            path = Path(tmp) / f"blob-{i}"
            path.write_bytes(layer.blob)
            annotations = {defaults.annotation_title: layer.title}
            if layer.unpack:
                annotations[defaults.annotation_unpack] = "true"
            descriptor = {
                "mediaType": (
                    defaults.default_blob_dir_media_type
                    if layer.unpack
                    else "application/octet-stream"
                ),
                "digest": "sha256:" + hashlib.sha256(layer.blob).hexdigest(),
                "size": len(layer.blob),
                "annotations": annotations,
            }
            await areg.upload_blob(str(path), target, descriptor)
            descriptors.append(descriptor)
    conf, config_file = ManifestConfig()
    await areg.upload_blob(config_file, target, conf)
    manifest = NewManifest()
    manifest["layers"] = descriptors
    manifest["config"] = conf
    await areg.upload_manifest(manifest, target)


def tree(root: Path) -> dict[str, str]:
    """Every entry under ``root``: file content, ``-> target`` for links, ``/`` for dirs."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = "-> " + os.readlink(path)
            elif path.is_dir():
                out[rel] = "/"
            else:
                out[rel] = path.read_bytes().decode(errors="replace")
    return out


def links_leaving(root: Path) -> list[str]:
    """Symlinks under ``root`` that resolve outside it (dangling ones count if they would)."""
    real_root = os.path.realpath(root)
    bad = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                real = os.path.realpath(path)
                if real != real_root and not real.startswith(real_root + os.sep):
                    bad.append(f"{os.path.relpath(path, root)} -> {os.readlink(path)}")
    return bad
