"""JSON nested thousands of levels deep: the typed error of its context, never RecursionError.

Python's JSON parser recurses once per level, so such a document used to escape as a bare
``RecursionError`` from a manifest, an error body (turning a 404 into no NotFoundError), a
token answer, a tag list, a Docker config, a credential helper's output or an annotation
file. Each is served here by the fault proxy in front of the real registry, or written to a
file, and must give the error that context gives any malformed JSON.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from aioras import RetryPolicy, defaults
from aioras._jsondoc import load_json
from aioras.auth import CredentialHelper, CredentialHelperError
from aioras.auth.dockerconfig import DockerConfigSource
from aioras.auth.login import read_config
from aioras.exceptions import (
    AuthenticationError,
    ManifestValidationError,
    NotFoundError,
    RegistryError,
    parse_error_body,
)
from aioras.layout import Layout
from aioras.oci import Annotations
from aioras.registry import AsyncRegistry
from support.faultproxy import Fault, FaultProxy, generated

anyio_mark = pytest.mark.anyio

DEPTH = 5000  # far past Python's recursion limit of 1000
FAST = RetryPolicy(backoff=0.01, max_backoff=0.05, max_retry_after=0.1)


def deep(depth: int = DEPTH) -> str:
    return "[" * depth + "]" * depth


def answer(status: int, data: bytes, *headers: tuple[str, str]) -> Fault:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    return Fault(
        "respond",
        responder=generated(status, [*headers, ("Content-Length", str(len(data)))], chunks),
    )


@pytest.fixture
async def areg(fault_proxy: FaultProxy) -> AsyncIterator[AsyncRegistry]:
    async with AsyncRegistry(
        fault_proxy.host, insecure=True, retry=FAST, timeout=httpx.Timeout(10.0)
    ) as reg:
        yield reg


def repo() -> str:
    return f"nesting/{uuid.uuid4().hex[:10]}"


# -- the one loader ------------------------------------------------------------------------


def test_json_nested_up_to_the_limit_parses_and_deeper_is_a_value_error() -> None:
    limit = defaults.max_json_depth
    assert load_json(deep(limit)) == load_json(deep(limit).encode())
    assert load_json('{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}')
    with pytest.raises(ValueError, match="nested deeper"):
        load_json(deep(limit + 1))
    with pytest.raises(ValueError, match="nested deeper"):
        load_json(('{"x":' * DEPTH + "1" + "}" * DEPTH).encode())


def test_error_body_nested_thousands_deep_parses_as_no_error_entries() -> None:
    assert parse_error_body(('{"errors": ' + deep() + "}").encode()) == ()


# -- from the registry ---------------------------------------------------------------------


@anyio_mark
async def test_404_with_a_deeply_nested_body_is_still_not_found(
    areg: AsyncRegistry, fault_proxy: FaultProxy
) -> None:
    fault_proxy.add(
        answer(404, ('{"errors": ' + deep() + "}").encode(), ("Content-Type", "application/json")),
        path="/manifests/",
    )

    with pytest.raises(NotFoundError) as info:
        await areg.get_manifest(fault_proxy.reference(f"{repo()}:v1"))

    assert info.value.status_code == 404


@anyio_mark
async def test_manifest_nested_thousands_deep_is_a_validation_error(
    areg: AsyncRegistry, fault_proxy: FaultProxy
) -> None:
    document = {
        "schemaVersion": 2,
        "mediaType": defaults.default_manifest_media_type,
        "config": {
            "mediaType": defaults.unknown_config_media_type,
            "digest": defaults.blank_config_hash,
            "size": 2,
        },
        "layers": [],
        "x": "DEEP",
    }
    manifest = json.dumps(document).replace('"DEEP"', deep()).encode()
    fault_proxy.add(
        answer(200, manifest, ("Content-Type", defaults.default_manifest_media_type)),
        method="GET",
        path="/manifests/",
    )

    with pytest.raises(ManifestValidationError, match="not valid JSON"):
        await areg.get_manifest(fault_proxy.reference(f"{repo()}:v1"))


@anyio_mark
async def test_tag_list_nested_thousands_deep_is_a_registry_error(
    areg: AsyncRegistry, fault_proxy: FaultProxy
) -> None:
    fault_proxy.add(
        answer(200, ('{"name": "x", "tags": ' + deep() + "}").encode()), path="/tags/list"
    )

    with pytest.raises(RegistryError, match="not a JSON object"):
        await areg.get_tags(fault_proxy.reference(repo()))


@anyio_mark
async def test_token_answer_nested_thousands_deep_is_an_authentication_error(
    areg: AsyncRegistry, fault_proxy: FaultProxy
) -> None:
    realm = f"http://{fault_proxy.host}/token"
    fault_proxy.add(answer(200, ('{"token": "t", "x": ' + deep() + "}").encode()), path="^/token")
    fault_proxy.add(
        answer(401, b"", ("WWW-Authenticate", f'Bearer realm="{realm}",service="s"')),
        path="/tags/list",
    )

    with pytest.raises(AuthenticationError, match="not JSON"):
        await areg.get_tags(fault_proxy.reference(repo()))

    assert len(fault_proxy.requests_matching("GET", "^/token")) == 1


# -- from files and helpers ---------------------------------------------------------------


@anyio_mark
async def test_docker_config_nested_thousands_deep_is_skipped_like_a_malformed_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hostile = tmp_path / "hostile.json"
    hostile.write_text('{"auths": ' + deep() + "}")
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"auths": {"r.example": {"auth": "dTpw"}}}))  # u:p
    source = DockerConfigSource([hostile, good])

    with caplog.at_level(logging.WARNING, logger="aioras.auth.dockerconfig"):
        creds = await source("r.example")

    assert creds is not None
    assert (creds.username, creds.password) == ("u", "p")
    assert source.load(hostile) == {}
    assert any("cannot read Docker config" in r.getMessage() for r in caplog.records)


def test_login_refuses_a_docker_config_nested_too_deeply_as_malformed(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text('{"auths": ' + deep() + "}")

    with pytest.raises(ValueError, match="is not valid JSON"):
        read_config(config)


@anyio_mark
async def test_credential_helper_printing_deep_json_is_a_helper_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = tmp_path / "docker-credential-deep"
    program.write_text(f"#!/bin/sh\nprintf '%s' '{deep()}'\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")

    with pytest.raises(CredentialHelperError, match="not JSON"):
        await CredentialHelper("deep").get("r.example")


def test_annotation_file_nested_thousands_deep_is_a_validation_error(tmp_path: Path) -> None:
    path = tmp_path / "annotations.json"
    path.write_text('{"$manifest": {"a": "b"}, "x": ' + deep() + "}")

    with pytest.raises(ManifestValidationError, match="not valid JSON"):
        Annotations().load(path)


def layout_dir(root: Path, index: str) -> Path:
    (root / "blobs").mkdir()
    (root / defaults.oci_layout_file).write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / defaults.oci_image_index_file).write_text(index)
    return root


def test_oras_layout_index_nested_thousands_deep_is_a_value_error(tmp_path: Path) -> None:
    nested = '{"schemaVersion": 2, "manifests": ' + deep() + "}"
    with pytest.raises(ValueError, match=r"index\.json is not valid JSON: .*nested deeper"):
        Layout(str(layout_dir(tmp_path, nested)))
    layout = Layout(str(tmp_path), validate=False)
    with pytest.raises(ValueError, match="nested deeper"):
        layout.get_ordered_blobs("v1")


def test_oras_layout_manifest_nested_thousands_deep_is_unsupported(tmp_path: Path) -> None:
    media_type = defaults.default_manifest_media_type
    blob = ('{"mediaType": "' + media_type + '", "x": ' + deep() + "}").encode()
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": defaults.default_manifest_media_type,
                "digest": digest,
                "size": len(blob),
                "annotations": {defaults.oci_ref_name_annotation: "v1"},
            }
        ],
    }
    root = layout_dir(tmp_path, json.dumps(index))
    (root / "blobs" / "sha256").mkdir()
    (root / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(blob)
    with pytest.raises(ManifestValidationError):
        Layout(str(root)).get_ordered_blobs("v1")
