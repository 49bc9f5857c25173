"""OCI document helpers of aioras.oci."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from importlib import resources
from pathlib import Path

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from aioras import defaults, oci
from aioras.exceptions import InvalidDigest, ManifestValidationError

D256 = "sha256:" + "a" * 64


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_new_manifest_is_fresh_each_call() -> None:
    m = oci.NewManifest()
    assert m == {
        "schemaVersion": 2,
        "mediaType": defaults.default_manifest_media_type,
        "config": {},
        "layers": [],
        "annotations": {},
    }
    m["layers"].append({"x": 1})
    m["annotations"]["a"] = "b"
    assert oci.NewManifest()["layers"] == []
    assert oci.NewManifest()["annotations"] == {}


def test_new_index() -> None:
    assert oci.NewIndex() == {
        "schemaVersion": 2,
        "mediaType": defaults.default_index_media_type,
        "manifests": [],
    }


def test_aliases_are_the_same_objects() -> None:
    assert oci.new_manifest is oci.NewManifest
    assert oci.new_index is oci.NewIndex
    assert oci.new_layer is oci.NewLayer
    assert oci.manifest_config is oci.ManifestConfig


@pytest.mark.parametrize(
    ("media_type", "is_dir", "expected"),
    [
        (None, False, defaults.default_blob_media_type),
        (None, True, defaults.default_blob_dir_media_type),
        ("org.dinosaur.tools.blobish", False, "org.dinosaur.tools.blobish"),
        ("org.dinosaur.tools.blobish", True, "org.dinosaur.tools.blobish"),
    ],
)
def test_new_layer(tmp_path: Path, media_type: str | None, is_dir: bool, expected: str) -> None:
    blob = tmp_path / "artifact.txt"
    blob.write_bytes(b"hello oras\n")
    layer = oci.NewLayer(str(blob), is_dir=is_dir, media_type=media_type)
    assert layer == {"mediaType": expected, "digest": sha256(b"hello oras\n"), "size": 11}
    # The user guide adds annotations to the returned dict.
    layer["annotations"] = {defaults.annotation_title: blob.name}


def test_layer_class(tmp_path: Path) -> None:
    blob = tmp_path / "b.bin"
    blob.write_bytes(b"\0" * 5000)
    layer = oci.Layer(blob, annotations={"k": "v"})
    assert layer.blob_path == str(blob)
    assert layer.media_type == defaults.default_blob_media_type
    assert (layer.digest, layer.size) == (sha256(b"\0" * 5000), 5000)
    layer.set_media_type(is_dir=True)
    assert layer.media_type == defaults.default_blob_dir_media_type
    layer.set_media_type("x/y")
    assert layer.to_dict() == {
        "mediaType": "x/y",
        "digest": layer.digest,
        "size": 5000,
        "annotations": {"k": "v"},
    }
    assert "b.bin" in repr(layer)


def test_layer_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        oci.NewLayer(str(tmp_path / "missing"))


def test_manifest_config_without_path_points_at_matching_bytes() -> None:
    conf, path = oci.ManifestConfig()
    assert conf == {
        "mediaType": defaults.unknown_config_media_type,
        "digest": defaults.blank_config_hash,
        "size": 2,
    }
    data = Path(path).read_bytes()
    assert data == b"{}"
    assert sha256(data) == conf["digest"]
    assert len(data) == conf["size"]


def test_manifest_config_media_type_and_path(tmp_path: Path) -> None:
    conf, _ = oci.ManifestConfig(media_type="application/vnd.x.config+json")
    assert conf["mediaType"] == "application/vnd.x.config+json"
    cfg = tmp_path / "config.json"
    cfg.write_text('{"a": 1}')
    conf, path = oci.ManifestConfig(str(cfg))
    assert path == str(cfg)
    assert conf == {
        "mediaType": defaults.unknown_config_media_type,
        "digest": sha256(b'{"a": 1}'),
        "size": 8,
    }


def test_empty_config_is_packaged_data() -> None:
    resource = resources.files("aioras") / "data" / "empty-config.json"
    assert resource.read_bytes() == b"{}"
    assert os.path.samefile(oci.empty_config_path(), str(resource))


def test_empty_descriptor() -> None:
    assert oci.empty_descriptor() == {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "digest": sha256(b"{}"),
        "size": 2,
    }


def test_new_descriptor_optional_fields() -> None:
    assert oci.new_descriptor("a/b", D256, 3) == {"mediaType": "a/b", "digest": D256, "size": 3}
    desc = oci.new_descriptor(
        "a/b",
        D256,
        3,
        annotations={"k": "v"},
        artifact_type="x/y",
        urls=["https://example.invalid/b"],
        data=b"abc",
    )
    assert desc["annotations"] == {"k": "v"}
    assert desc["artifactType"] == "x/y"
    assert desc["urls"] == ["https://example.invalid/b"]
    assert base64.b64decode(desc["data"]) == b"abc"


@pytest.mark.parametrize("size", [-1, 1.5, True, "3"])
def test_new_descriptor_rejects_bad_size(size: object) -> None:
    with pytest.raises(ValueError, match="size"):
        oci.new_descriptor("a/b", D256, size)  # type: ignore[arg-type]


def test_new_descriptor_rejects_bad_digest() -> None:
    with pytest.raises(InvalidDigest):
        oci.new_descriptor("a/b", "sha256:xyz", 1)


def test_manifest_bytes_are_the_bytes_oras_py_sends() -> None:
    doc = {"b": 1, "a": ["é", {"c": None}]}
    assert oci.manifest_bytes(doc) == b'{"b": 1, "a": ["\\u00e9", {"c": null}]}'
    # oras-py PUTs manifests with requests' json=: the same dict must give the same bytes.
    prepared = requests.models.PreparedRequest()
    prepared.prepare_headers({})
    prepared.prepare_body(data=None, files=None, json=doc)
    assert oci.manifest_bytes(doc) == prepared.body


def test_manifest_bytes_refuse_nan() -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        oci.manifest_bytes({"size": float("nan")})


def test_subject_from_empty_manifest_names_oras_py_digest() -> None:
    subject = oci.Subject.from_manifest(oci.NewManifest())
    # The digest and size oras-py 0.2.43 names for its own empty manifest.
    assert subject.digest == (
        "sha256:7a6f84d8c73a71bf9417c13f721ed102f74afac9e481f89e5a72d28954e7d0c5"
    )
    assert subject.size == 126


def test_subject_from_manifest_digests_upload_bytes() -> None:
    manifest = oci.NewManifest()
    manifest["config"] = oci.empty_descriptor()
    manifest["annotations"] = {"note": "ünïcode"}
    subject = oci.Subject.from_manifest(manifest)
    raw = oci.manifest_bytes(manifest)
    assert subject == oci.Subject(defaults.default_manifest_media_type, sha256(raw), len(raw))
    assert subject.to_dict() == {
        "mediaType": defaults.default_manifest_media_type,
        "digest": sha256(raw),
        "size": len(raw),
    }
    no_type = {"schemaVersion": 2, "layers": []}
    assert oci.Subject.from_manifest(no_type).mediaType == defaults.default_manifest_media_type


def test_subject_from_descriptor() -> None:
    desc = {"mediaType": "a/b", "digest": D256, "size": 7, "annotations": {}}
    assert oci.Subject.from_descriptor(desc) == oci.Subject("a/b", D256, 7)


@pytest.mark.parametrize(
    ("desc", "exc"),
    [
        ({"digest": D256, "size": 1}, ManifestValidationError),
        ({"mediaType": "a/b", "size": 1}, ManifestValidationError),
        ({"mediaType": "a/b", "digest": D256}, ManifestValidationError),
        ({"mediaType": "a/b", "digest": D256, "size": -1}, ManifestValidationError),
        ({"mediaType": "a/b", "digest": D256, "size": True}, ManifestValidationError),
        ({"mediaType": "a/b", "digest": "sha256:1", "size": 1}, InvalidDigest),
    ],
)
def test_subject_from_descriptor_rejects(desc: dict[str, object], exc: type[Exception]) -> None:
    with pytest.raises(exc):
        oci.Subject.from_descriptor(desc)


# Annotations --------------------------------------------------------------------------------


def test_annotations_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "annotations.json"
    path.write_text(
        json.dumps(
            {
                "$manifest": {"org.dinosaur.tool.food": "avocado"},
                "$config": {"k": "v"},
                "artifact.txt": {"title": "art"},
                str(tmp_path / "abs.txt"): {"abs": "yes"},
            }
        )
    )
    annots = oci.Annotations(str(path))
    assert annots.get_annotations("$manifest") == {"org.dinosaur.tool.food": "avocado"}
    assert annots.get_annotations("$config") == {"k": "v"}
    assert annots.get_annotations("artifact.txt") == {"title": "art"}
    # By absolute path, in both directions.
    assert annots.get_annotations(str(tmp_path / "artifact.txt")) == {"title": "art"}
    assert annots.get_annotations("abs.txt") == {"abs": "yes"}
    assert annots.get_annotations("./artifact.txt") == {"title": "art"}
    assert annots.get_annotations("missing") == {}
    assert annots.get_annotations("$other") == {}
    # A copy: callers may update what they get.
    annots.get_annotations("$config")["new"] = "x"
    assert annots.get_annotations("$config") == {"k": "v"}


def test_annotations_add_and_load_merge(tmp_path: Path) -> None:
    annots = oci.Annotations()
    assert annots.lookup == {}
    annots.add("$manifest", "a", "1")
    annots.add("$manifest", "b", "2")
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"$manifest": {"b": "3"}, "f": {"x": "y"}}))
    annots.load(path)
    assert annots.get_annotations("$manifest") == {"a": "1", "b": "3"}
    assert annots.get_annotations("f") == {"x": "y"}


def test_annotations_from_mapping() -> None:
    # The user guide passes ``annotations or {}``.
    assert oci.Annotations({}).lookup == {}
    annots = oci.Annotations({"$config": {"a": "b"}})
    assert annots.get_annotations("$config") == {"a": "b"}
    with pytest.raises(ManifestValidationError):
        oci.Annotations({"$config": {"a": 1}})  # type: ignore[dict-item]


def test_annotations_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        oci.Annotations(str(tmp_path / "nope.json"))


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("not json", ""),
        ("[]", ""),
        ('"x"', ""),
        ('{"$manifest": "x"}', "/$manifest"),
        ('{"$manifest": ["x"]}', "/$manifest"),
        ('{"$manifest": {"k": 1}}', "/$manifest/k"),
        ('{"$manifest": {"k": null}}', "/$manifest/k"),
        ('{"$manifest": {"k": {"x": "y"}}}', "/$manifest/k"),
    ],
)
def test_annotations_bad_shape(tmp_path: Path, text: str, path: str) -> None:
    file = tmp_path / "a.json"
    file.write_text(text)
    with pytest.raises(ManifestValidationError) as info:
        oci.Annotations(str(file))
    assert info.value.path == path
    assert str(file) in str(info.value)


sections = st.dictionaries(
    st.text(min_size=1), st.dictionaries(st.text(), st.text(), max_size=4), max_size=5
)


# No deadline: it would time the machine (shared CI boxes stall), not the code.
@settings(deadline=None)
@given(sections)
def test_annotation_files_round_trip(doc: dict[str, dict[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "annotations.json")
        with open(path, "w", encoding="utf-8") as fd:
            json.dump(doc, fd)
        annots = oci.Annotations(path)
    assert annots.lookup == doc
    for section, values in doc.items():
        assert annots.get_annotations(section) == values


bad_values = st.one_of(st.integers(), st.none(), st.booleans(), st.lists(st.text(), max_size=2))


@settings(deadline=None)
@given(st.text(min_size=1), st.text(), bad_values)
def test_annotation_files_with_non_string_values_are_refused(
    section: str, key: str, value: object
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "annotations.json")
        with open(path, "w", encoding="utf-8") as fd:
            json.dump({section: {key: value}}, fd)
        with pytest.raises(ManifestValidationError) as info:
            oci.Annotations(path)
    assert info.value.path == f"/{section}/{key}"
