"""Schemas and validators of aioras.schemas."""

from __future__ import annotations

import copy
from typing import Any

import anyio
import jsonschema
import pytest

from aioras import defaults, oci, schemas
from aioras.exceptions import ManifestValidationError
from support.hops import count_thread_hops

D256 = "sha256:" + "a" * 64
D512 = "sha512:" + "b" * 128


def a_manifest() -> dict[str, Any]:
    manifest = oci.NewManifest()
    manifest["config"] = oci.empty_descriptor()
    manifest["layers"] = [
        oci.new_descriptor(
            defaults.default_blob_media_type,
            D256,
            10,
            annotations={defaults.annotation_title: "a.txt"},
        ),
        oci.new_descriptor("application/vnd.cyclonedx+json", D512, 0, data=b""),
    ]
    manifest["annotations"] = {"org.dinosaur.tool.food": "avocado"}
    manifest["artifactType"] = "application/vnd.example+type"
    manifest["subject"] = oci.new_descriptor(defaults.default_manifest_media_type, D256, 100)
    return manifest


def an_index() -> dict[str, Any]:
    index = oci.NewIndex()
    index["manifests"] = [
        {
            **oci.new_descriptor(defaults.default_manifest_media_type, D256, 500),
            "platform": {"architecture": "amd64", "os": "linux"},
        },
        {
            **oci.new_descriptor(defaults.default_manifest_media_type, D256, 500),
            "platform": {
                "architecture": "arm64",
                "os": "windows",
                "os.version": "10.0.14393.1066",
                "os.features": ["win32k"],
                "variant": "v8",
            },
        },
    ]
    return index


@pytest.mark.parametrize(
    "schema",
    [
        schemas.descriptor,
        schemas.layer,
        schemas.manifest,
        schemas.index,
        schemas.config,
        schemas.empty,
        schemas.platform,
    ],
)
def test_schemas_are_valid_json_schema(schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(schema)


def test_oras_py_names_kept() -> None:
    assert schemas.layer is schemas.descriptor
    assert schemas.manifest["required"] == ["schemaVersion", "config", "layers"]


def test_valid_documents_pass() -> None:
    schemas.validate_manifest(a_manifest())
    schemas.validate_index(an_index())
    schemas.validate_descriptor(oci.empty_descriptor())
    schemas.validate_config({"anything": ["goes"]})
    schemas.validate(a_manifest())
    schemas.validate(an_index())
    schemas.validate(a_manifest(), defaults.default_manifest_media_type)
    schemas.validate(an_index(), defaults.default_index_media_type)
    schemas.validate({}, defaults.empty_media_type)
    schemas.validate({"a": 1}, defaults.unknown_config_media_type)
    schemas.validate({"a": 1}, defaults.default_config_media_type)
    schemas.validate(oci.empty_descriptor(), "application/vnd.oci.descriptor.v1+json")


def test_manifest_without_media_type_field() -> None:
    manifest = a_manifest()
    del manifest["mediaType"]
    schemas.validate(manifest)
    schemas.validate(manifest, defaults.default_manifest_media_type)
    index = an_index()
    del index["mediaType"]
    schemas.validate(index)


def test_docker_types_share_the_shapes() -> None:
    manifest = a_manifest()
    manifest["mediaType"] = defaults.docker_manifest_media_type
    schemas.validate(manifest, defaults.docker_manifest_media_type)
    index = an_index()
    index["mediaType"] = defaults.docker_manifest_list_media_type
    schemas.validate(index)


def _set(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    target: Any = doc
    for part in path[:-1]:
        target = target[part]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "pointer"),
    [
        (("schemaVersion",), 1, "/schemaVersion"),
        (("schemaVersion",), 2.0, "/schemaVersion"),
        (("schemaVersion",), "2", "/schemaVersion"),
        (("config",), _DELETE, ""),
        (("layers",), _DELETE, ""),
        (("layers",), {}, "/layers"),
        (("config",), {}, "/config"),
        (("config", "mediaType"), "", "/config/mediaType"),
        (("config", "mediaType"), "a/b c", "/config/mediaType"),
        (("config", "mediaType"), "a\tb", "/config/mediaType"),
        (("config", "mediaType"), "a/b\n", "/config/mediaType"),
        (("layers", 0, "digest"), "sha256", "/layers/0/digest"),
        (("layers", 0, "digest"), "SHA256:abc", "/layers/0/digest"),
        (("layers", 0, "digest"), D256 + "\n", "/layers/0/digest"),
        (("layers", 0, "size"), -1, "/layers/0/size"),
        (("layers", 0, "size"), 1.0, "/layers/0/size"),
        (("layers", 0, "size"), True, "/layers/0/size"),
        (("layers", 0, "size"), 2**63, "/layers/0/size"),
        (("layers", 0, "size"), _DELETE, "/layers/0"),
        (("layers", 0, "urls"), "http://x", "/layers/0/urls"),
        (("layers", 0, "urls"), [1], "/layers/0/urls/0"),
        (("layers", 0, "annotations"), {"k": 1}, "/layers/0/annotations/k"),
        (("layers", 0, "annotations"), ["k"], "/layers/0/annotations"),
        (("layers", 1, "data"), "not base64!", "/layers/1/data"),
        (("layers", 1, "data"), "abc", "/layers/1/data"),
        (("layers", 1, "artifactType"), 42, "/layers/1/artifactType"),
        (("artifactType",), 5, "/artifactType"),
        (("subject",), {"mediaType": "a/b"}, "/subject"),
        (("annotations",), {"k": None}, "/annotations/k"),
    ],
)
def test_invalid_manifest_reports_path(path: tuple[Any, ...], value: Any, pointer: str) -> None:
    manifest = copy.deepcopy(a_manifest())
    _set(manifest, path, value)
    with pytest.raises(ManifestValidationError) as info:
        schemas.validate_manifest(manifest)
    assert info.value.path == pointer
    assert f"at {pointer or '/'}:" in str(info.value)


@pytest.mark.parametrize(
    ("path", "value", "pointer"),
    [
        (("manifests",), _DELETE, ""),
        (("manifests", 0, "platform", "os"), _DELETE, "/manifests/0/platform"),
        (("manifests", 0, "platform", "architecture"), 1, "/manifests/0/platform/architecture"),
        (("manifests", 1, "platform", "os.features"), "x", "/manifests/1/platform/os.features"),
        (("manifests", 0, "digest"), "x", "/manifests/0/digest"),
        (("schemaVersion",), 3, "/schemaVersion"),
    ],
)
def test_invalid_index_reports_path(path: tuple[Any, ...], value: Any, pointer: str) -> None:
    index = copy.deepcopy(an_index())
    _set(index, path, value)
    with pytest.raises(ManifestValidationError) as info:
        schemas.validate_index(index)
    assert info.value.path == pointer


@pytest.mark.parametrize("doc", [None, [], "x", 1])
def test_non_objects_are_refused(doc: Any) -> None:
    for check in (
        schemas.validate_manifest,
        schemas.validate_index,
        schemas.validate_descriptor,
        schemas.validate_config,
    ):
        with pytest.raises(ManifestValidationError):
            check(doc)


def test_empty_config_must_be_empty() -> None:
    with pytest.raises(ManifestValidationError):
        schemas.validate({"a": 1}, defaults.empty_media_type)


def test_validate_refuses_unknown_media_type() -> None:
    with pytest.raises(ManifestValidationError, match="no schema"):
        schemas.validate({}, "application/octet-stream")
    with pytest.raises(ManifestValidationError, match="no schema"):
        schemas.validate({"mediaType": "application/x"})


def test_validate_refuses_contradicting_media_type() -> None:
    with pytest.raises(ManifestValidationError, match="contradicts") as info:
        schemas.validate(a_manifest(), defaults.default_index_media_type)
    assert info.value.path == "/mediaType"
    with pytest.raises(ManifestValidationError, match="contradicts"):
        schemas.validate(a_manifest(), defaults.docker_manifest_media_type)


def test_validate_infers_index_from_shape() -> None:
    index = an_index()
    del index["mediaType"]
    index["manifests"][0]["size"] = -5
    with pytest.raises(ManifestValidationError, match="invalid index"):
        schemas.validate(index)


def test_schema_for() -> None:
    assert schemas.schema_for(defaults.default_manifest_media_type) is schemas.manifest
    assert schemas.schema_for(defaults.docker_manifest_list_media_type) is schemas.index
    assert schemas.schema_for(defaults.empty_media_type) is schemas.empty
    assert schemas.schema_for("text/plain") is None


def test_long_messages_are_truncated() -> None:
    manifest = a_manifest()
    manifest["layers"] = "x" * 10_000
    with pytest.raises(ManifestValidationError) as info:
        schemas.validate_manifest(manifest)
    assert len(str(info.value)) < 400


def test_additional_properties_are_allowed() -> None:
    # The spec lets documents carry fields it does not define.
    manifest = a_manifest()
    manifest["x-extra"] = {"anything": 1}
    manifest["layers"][0]["x-extra"] = True
    schemas.validate_manifest(manifest)


def test_media_types_outside_rfc_6838_are_accepted() -> None:
    """Peers and the oras-py guide push ``org.dinosaur.tools.blobish``; registries store it."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "org.example.config", "digest": "sha256:" + "a" * 64, "size": 2},
        "layers": [
            {"mediaType": "org.dinosaur.tools.blobish", "digest": "sha256:" + "b" * 64, "size": 1}
        ],
    }
    schemas.validate_manifest(manifest)


@pytest.mark.anyio
async def test_many_first_checks_at_once_make_the_validators_ready_in_one_thread_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(schemas, "_READY", False)  # as in a process that checked nothing yet
    hops = count_thread_hops(monkeypatch)
    async with anyio.create_task_group() as tasks:
        for _ in range(50):
            tasks.start_soon(schemas.ready)
    assert hops[0] == 1
    await schemas.ready()
    assert hops[0] == 1  # ready: no thread call at all
    schemas.validate(a_manifest())
