"""Reference parsing and URL building of aioras.container."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aioras.container import Container, names_digest, parse_registry, validate_tag
from aioras.digest import validate_digest
from aioras.exceptions import InvalidDigest, InvalidReference

D256 = "sha256:" + "a" * 64
D512 = "sha512:" + "b" * 128


@pytest.mark.parametrize(
    ("name", "registry", "namespace", "repository", "tag", "digest"),
    [
        (
            "localhost:5000/dinosaur/artifact:v1",
            "localhost:5000",
            "dinosaur",
            "artifact",
            "v1",
            None,
        ),
        ("localhost/artifact", "localhost", None, "artifact", "latest", None),
        ("ghcr.io/a/b/c/d:0.9.0-0", "ghcr.io", "a/b/c", "d", "0.9.0-0", None),
        ("127.0.0.1:5000/x", "127.0.0.1:5000", None, "x", "latest", None),
        ("[::1]:5000/x/y:t", "[::1]:5000", "x", "y", "t", None),
        ("[fe80::1]/x", "[fe80::1]", None, "x", "latest", None),
        (f"example.com/x@{D256}", "example.com", None, "x", None, D256),
        (f"example.com/x:v2@{D512}", "example.com", None, "x", "v2", D512),
        (
            "example.com/a.b/c_d/e__f/g-h/i---j",
            "example.com",
            "a.b/c_d/e__f/g-h",
            "i---j",
            "latest",
            None,
        ),
        ("ubuntu", "registry-1.docker.io", "library", "ubuntu", "latest", None),
        ("ubuntu:22.04", "registry-1.docker.io", "library", "ubuntu", "22.04", None),
        ("docker.io/ubuntu", "registry-1.docker.io", "library", "ubuntu", "latest", None),
        (
            "index.docker.io/library/ubuntu",
            "registry-1.docker.io",
            "library",
            "ubuntu",
            "latest",
            None,
        ),
        ("vsoch/excellent", "registry-1.docker.io", "vsoch", "excellent", "latest", None),
        ("registry-1.docker.io/a/b:_t", "registry-1.docker.io", "a", "b", "_t", None),
    ],
)
def test_parse(
    name: str,
    registry: str,
    namespace: str | None,
    repository: str,
    tag: str | None,
    digest: str | None,
) -> None:
    c = Container(name)
    assert (c.registry, c.namespace, c.repository, c.tag, c.digest) == (
        registry,
        namespace,
        repository,
        tag,
        digest,
    )
    assert c.api_prefix == (f"{namespace}/{repository}" if namespace else repository)
    assert c.reference == (digest or tag)
    # Parsing what uri prints gives the same container back.
    assert Container(c.uri) == c


def test_docker_hub_single_name_gets_library_prefix() -> None:
    c = Container("ubuntu")
    assert c.uri == "registry-1.docker.io/library/ubuntu:latest"
    assert c.manifest_url() == "registry-1.docker.io/v2/library/ubuntu/manifests/latest"


def test_registry_argument_used_only_without_registry_in_name() -> None:
    assert Container("dinosaur/artifact:v1", registry="localhost:5000").uri == (
        "localhost:5000/dinosaur/artifact:v1"
    )
    assert Container("artifact", registry="localhost:5000").api_prefix == "artifact"
    assert Container("ghcr.io/a/b", registry="localhost:5000").registry == "ghcr.io"
    assert Container("a", registry="docker.io").api_prefix == "library/a"
    # A plain host name without dot or port is fine as an argument.
    assert Container("a/b", registry="myhost").registry == "myhost"


@pytest.mark.parametrize(
    ("name", "part"),
    [
        ("", "reference"),
        ("localhost:5000/", "name"),
        ("localhost:5000/UPPER/case", "name"),
        ("Foo/bar", "name"),
        ("localhost:5000/a//b", "name"),
        ("localhost:5000/a/b/", "name"),
        ("localhost:5000/-a", "name"),
        ("localhost:5000/a-", "name"),
        ("localhost:5000/a___b", "name"),
        ("localhost:5000/a..b", "name"),
        ("localhost:5000/a b", "name"),
        ("localhost:5000/" + "a" * 256, "name"),
        ("localhost:5000/a:", "tag"),
        ("localhost:5000/a:.x", "tag"),
        ("localhost:5000/a:-x", "tag"),
        ("localhost:5000/a:" + "t" * 129, "tag"),
        ("localhost:5000/a:t!", "tag"),
        ("localhost:5000/a@", "digest"),
        ("localhost:5000/a@sha256:abc", "digest"),
        ("localhost:5000/a@md5:" + "a" * 32, "digest"),
        (f"localhost:5000/a@{D256}@{D256}", "digest"),
        ("http://localhost:5000/a", "registry"),
        ("local_host.x/a", "registry"),
        ("-bad.com/a", "registry"),
        ("host.com:0/a", "registry"),
        ("host.com:65536/a", "registry"),
        ("host.com:port/a", "registry"),
        ("[::zz]:5000/a", "registry"),
        ("[1.2.3.4]/a", "registry"),
    ],
)
def test_invalid_references_name_the_part(name: str, part: str) -> None:
    with pytest.raises(InvalidReference) as info:
        Container(name)
    assert info.value.part == part


def test_invalid_registry_argument() -> None:
    with pytest.raises(InvalidReference) as info:
        Container("a/b", registry="bad host")
    assert info.value.part == "registry"
    assert info.value.value == "bad host"


def test_bad_digest_is_invalid_digest() -> None:
    with pytest.raises(InvalidDigest):
        Container("localhost/a@sha256:nothex")


def test_urls_match_oras_py_shape() -> None:
    c = Container("localhost:5000/dinosaur/artifact:v1")
    base = "localhost:5000/v2/dinosaur/artifact"
    assert c.manifest_url() == f"{base}/manifests/v1"
    assert c.manifest_url("v2") == f"{base}/manifests/v2"
    assert c.manifest_url(D256) == f"{base}/manifests/{D256}"
    assert c.get_blob_url(D256) == f"{base}/blobs/{D256}"
    assert c.upload_blob_url() == f"{base}/blobs/uploads/"
    assert c.tags_url() == f"{base}/tags/list"
    assert c.tags_url(10) == f"{base}/tags/list?n=10"
    assert c.tags_url(N=0) == f"{base}/tags/list?n=0"
    assert c.tags_url(5, last="v1") == f"{base}/tags/list?n=5&last=v1"
    assert c.referrers_url(D256) == f"{base}/referrers/{D256}"
    assert c.referrers_url(D256, artifact_type="application/vnd.x+json") == (
        f"{base}/referrers/{D256}?artifactType=application/vnd.x%2Bjson"
    )
    assert c.blob_mount_url(D256, "other/repo") == (
        f"{base}/blobs/uploads/?mount={D256}&from=other/repo"
    )
    source = Container("localhost:5000/src/repo")
    assert c.blob_mount_url(D256, source).endswith("&from=src/repo")


def test_manifest_url_prefers_digest() -> None:
    c = Container(f"localhost/a:v1@{D256}")
    assert c.manifest_url().endswith(f"/manifests/{D256}")
    assert c.reference == D256


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.get_blob_url("sha256:zz"),
        lambda c: c.manifest_url("bad tag"),
        lambda c: c.manifest_url("sha256:short"),
        lambda c: c.referrers_url("x"),
        lambda c: c.blob_mount_url("sha256:1", "a/b"),
        lambda c: c.blob_mount_url(D256, "Bad/Repo"),
        lambda c: c.with_reference("bad tag"),
        lambda c: c.with_reference("sha256:1"),
    ],
)
def test_url_arguments_are_validated(call: object) -> None:
    c = Container("localhost/a")
    with pytest.raises(InvalidReference):
        call(c)  # type: ignore[operator]


def test_with_reference_returns_new_container() -> None:
    c = Container("a/b", registry="myhost")
    tagged = c.with_reference("v2")
    assert (tagged.registry, tagged.api_prefix, tagged.tag, tagged.digest) == (
        "myhost",
        "a/b",
        "v2",
        None,
    )
    pinned = tagged.with_reference(D256)
    assert (pinned.tag, pinned.digest) == (None, D256)
    assert pinned.uri == f"myhost/a/b@{D256}"
    assert c.tag == "latest"  # the original is untouched


def test_str_repr_eq_hash() -> None:
    a = Container("localhost:5000/x/y:1")
    b = Container("x/y:1", registry="localhost:5000")
    assert str(a) == "localhost:5000/x/y:1"
    assert repr(a) == "Container('localhost:5000/x/y:1')"
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert a != Container("localhost:5000/x/y:2")
    assert a != "localhost:5000/x/y:1"


def test_parse_method_reparses_in_place() -> None:
    c = Container("localhost/a:v1")
    c.parse("localhost/b@" + D256)
    assert (c.repository, c.tag, c.digest) == ("b", None, D256)


def test_validate_tag_and_parse_registry() -> None:
    assert validate_tag("v1.0_rc-1") == "v1.0_rc-1"
    with pytest.raises(InvalidReference):
        validate_tag(".x")
    assert parse_registry("docker.io") == "registry-1.docker.io"
    assert parse_registry("Example.COM:443") == "Example.COM:443"


# Property tests -----------------------------------------------------------------------------

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_TAG = r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}"

components = st.from_regex(_COMPONENT, fullmatch=True).filter(lambda s: len(s) <= 30)
paths = st.lists(components, min_size=1, max_size=4).map("/".join)
labels = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
ports = st.integers(min_value=1, max_value=65535)
registries = st.one_of(
    st.builds(lambda a, b: f"{a}.{b}", labels, labels),
    st.builds(lambda a, p: f"{a}:{p}", labels, ports),
    st.builds(lambda p: f"localhost:{p}", ports),
    st.just("localhost"),
    st.builds(lambda *o: ".".join(map(str, o)), *[st.integers(0, 255)] * 4),
    st.builds(lambda p: f"[::1]:{p}", ports),
).filter(lambda r: r not in ("docker.io", "index.docker.io", "registry-1.docker.io"))
tags = st.from_regex(_TAG, fullmatch=True)
digests = st.one_of(
    st.binary(min_size=32, max_size=32).map(lambda b: "sha256:" + b.hex()),
    st.binary(min_size=64, max_size=64).map(lambda b: "sha512:" + b.hex()),
)


# No deadline: it would time the machine (shared CI boxes stall), not the code.
@settings(deadline=None)
@given(registries, paths, st.none() | tags, st.none() | digests)
def test_valid_references_round_trip(
    registry: str, path: str, tag: str | None, digest: str | None
) -> None:
    ref = f"{registry}/{path}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    c = Container(ref)
    expected = ref if tag or digest else f"{ref}:latest"
    assert c.uri == expected
    assert c.registry == registry
    assert c.api_prefix == path
    assert c.digest == digest
    assert c.tag == (tag if tag or digest else "latest")
    assert Container(c.uri) == c
    assert c.manifest_url() == f"{registry}/v2/{path}/manifests/{digest or c.tag}"


@settings(deadline=None)
@given(st.text().filter(lambda t: not re.fullmatch(_TAG, t) and not set(t) & set("/@:")))
def test_invalid_tags_raise(tag: str) -> None:
    with pytest.raises(InvalidReference) as info:
        Container(f"localhost:5000/repo:{tag}")
    assert info.value.part == "tag"


def _is_valid_digest(value: str) -> bool:
    try:
        validate_digest(value)
    except InvalidReference:
        return False
    return True


@settings(deadline=None)
@given(
    st.one_of(
        st.text().filter(lambda d: "@" not in d),
        st.builds(lambda h: "sha256:" + h, st.text("0123456789abcdefABCDEF", max_size=70)),
    ).filter(lambda d: not _is_valid_digest(d))
)
def test_invalid_digests_raise(digest: str) -> None:
    with pytest.raises(InvalidReference) as info:
        Container(f"localhost:5000/repo@{digest}")
    assert info.value.part == "digest"


@pytest.mark.parametrize(
    ("reference", "digest"),
    [
        ("v1.0", False),
        ("latest", False),
        ("sha256:" + "a" * 64, True),
        ("sha512:" + "b" * 128, True),
        # Not only sha-prefixed algorithms: the grammar, not the name, decides.
        ("blake3:" + "c" * 64, True),
    ],
)
def test_names_digest_reads_the_reference_part_as_the_container_does(
    reference: str, digest: bool
) -> None:
    assert names_digest(reference) is digest


def test_with_reference_takes_a_value_names_digest_calls_a_digest_as_a_digest() -> None:
    base = Container("example.com/app:v1")
    digest = "sha256:" + "a" * 64
    assert names_digest(digest)
    assert base.with_reference(digest).digest == digest
    assert base.with_reference("v2").tag == "v2"
