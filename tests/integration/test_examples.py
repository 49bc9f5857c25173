"""Every user-guide example, run as a script against a real registry, then checked there.

Scripts are found by glob in ``examples/guide`` (the oras-py guide's code with ``aioras``
names) and ``examples/guide_async`` (the async twins); each runs as
``python SCRIPT HOST`` and must exit 0. Then its check, looked up by file stem in
:data:`CHECKS`, reads the registry (or the files the script pulled and printed) to prove
the script did what it says. A new example without a check fails, as does an empty
directory or an example with no twin.

Each run gets an empty registry of its own, because a twin writes the same references as
its sibling and a shared registry would let one's result pass the other's check. Auth
examples get a registry with htpasswd basic auth and their credentials through the
environment variables they read. ``TMPDIR`` and ``DOCKER_CONFIG`` point into the test's
temporary directory, so a script writes nothing outside it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
import tarfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from aioras import defaults
from aioras._environment import Environment
from aioras.registry import AsyncRegistry
from aioras.testing import LocalRegistry

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_DIRS = ("guide", "guide_async")
SCRIPTS = sorted(path for name in EXAMPLE_DIRS for path in (EXAMPLES / name).glob("[0-9]*.py"))
SCRIPT_TIMEOUT = 120

# What the examples write into their input files, byte for byte.
ARTIFACT = b"Hello, dinosaur!\n"
CONFIG = b'{"dinosaur": "t-rex", "diet": "avocado"}\n'
T_REX = b"tyrannosaurus rex: big teeth, small arms\n"
STEGO = b"stegosaurus: plates on the back\n"
SBOM = b'{"bomFormat": "CycloneDX", "specVersion": "1.5"}\n'
INFO = b'{"name": "xtensor", "version": "0.9.0", "build": 0}\n'
GOOGLE_PRICES = b'{"e2-micro": 0.0084}\n'
XTENSOR = "wolfv/conda-forge/linux-64/xtensor:0.9.0-0"
CREDENTIAL_VARIABLES = ("ORAS_USER", "ORAS_PASS", "GITHUB_USER", "GITHUB_TOKEN")


@dataclass
class Run:
    """A finished example run and what its check needs."""

    host: str
    stdout: str
    stderr: str
    tmpdir: Path
    """The script's ``TMPDIR``: its inputs (removed at exit) and what it pulled live here."""
    docker_config: Path
    """The script's ``DOCKER_CONFIG`` directory."""
    registry: AsyncRegistry
    """Reads the script's registry, with credentials when it requires them."""


@dataclass(frozen=True)
class Check:
    verify: Callable[[Run], Awaitable[None]]
    credentials: tuple[str, str] | None = None
    """Names of the user and password variables the example reads, for an auth registry."""


# -- helpers -----------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def title(layer: dict[str, Any]) -> str:
    return str(layer["annotations"][defaults.annotation_title])


async def blob(run: Run, repository: str, digest: str) -> bytes:
    return (await run.registry.get_blob(f"{run.host}/{repository}", digest)).content


async def artifact(run: Run, reference: str, contents: dict[str, bytes]) -> dict[str, Any]:
    """Assert ``reference`` holds one layer per title in ``contents``, with those bytes."""
    manifest = await run.registry.get_manifest(f"{run.host}/{reference}")
    layers = {title(layer): layer for layer in manifest["layers"]}
    assert sorted(layers) == sorted(contents), manifest
    repository = reference.rsplit(":", 1)[0]
    for name, data in contents.items():
        assert layers[name]["digest"] == sha256(data), name
        assert await blob(run, repository, layers[name]["digest"]) == data, name
    return manifest


def printed_file(run: Run, name: str) -> Path:
    """The one quoted path ending in ``/name`` the script printed; it must exist in TMPDIR."""
    paths = [p for p in re.findall(r"'([^']+)'", run.stdout) if p.endswith(f"/{name}")]
    assert len(paths) == 1, f"expected one printed path of {name} in {run.stdout!r}"
    path = Path(paths[0])
    assert path.is_file(), path
    assert run.tmpdir in path.parents, f"{path} is not in the script's TMPDIR {run.tmpdir}"
    return path


# -- one check per example (the stem of both twins) ---------------------------------------


async def check_client_class(run: Run) -> None:
    for repository in ("provider", "client"):
        await artifact(run, f"dinosaur/{repository}:v1", {"artifact.txt": ARTIFACT})
    assert run.stdout.count("['v1']") == 2, run.stdout


async def check_create_config(run: Run) -> None:
    assert await blob(run, "dinosaur/config", defaults.blank_config_hash) == b"{}"
    assert await blob(run, "dinosaur/config", sha256(CONFIG)) == CONFIG
    assert f'"size": {len(CONFIG)}' in run.stdout


async def check_create_layers(run: Run) -> None:
    layers = json.loads(run.stdout[: run.stdout.rindex("]") + 1])
    assert [title(layer) for layer in layers] == ["t-rex.txt", "stego.txt"]
    assert {layer["mediaType"] for layer in layers} == {"org.dinosaur.tools.blobish"}
    for layer, data in zip(layers, (T_REX, STEGO), strict=True):
        assert layer["digest"] == sha256(data)
        assert await blob(run, "dinosaur/layers", layer["digest"]) == data


async def check_create_manifest(run: Run) -> None:
    contents = {"t-rex.txt": T_REX, "stego.txt": STEGO}
    manifest = await artifact(run, "dinosaur/manifest:v1", contents)
    assert manifest["annotations"] == {"org.dinosaur.tool.food": "avocado"}
    assert {layer["mediaType"] for layer in manifest["layers"]} == {"org.dinosaur.tools.blobish"}
    assert manifest["config"]["mediaType"] == defaults.unknown_config_media_type
    assert manifest["config"]["digest"] == sha256(CONFIG)
    assert await blob(run, "dinosaur/manifest", sha256(CONFIG)) == CONFIG


async def check_basic_push(run: Run) -> None:
    await artifact(run, "dinosaur/artifact:v1", {"artifact.txt": ARTIFACT})
    assert "201" in run.stdout


async def check_custom_push(run: Run) -> None:
    reference = "vsoch/excellent-dinosaur:latest"
    manifest = await run.registry.get_manifest(f"{run.host}/{reference}")
    tarball, sbom = manifest["layers"]
    assert (title(tarball), tarball["mediaType"]) == (
        "pakages-0.0.16.tar.gz",
        "application/vnd.oci.image.layer.v1.tar+gzip",
    )
    assert (title(sbom), sbom["mediaType"]) == ("sbom.json", "application/vnd.cyclonedx")
    assert sbom["annotations"]["org.dinosaur.sbom.format"] == "cyclonedx-1.5"
    assert await blob(run, "vsoch/excellent-dinosaur", sbom["digest"]) == SBOM
    packed = await blob(run, "vsoch/excellent-dinosaur", tarball["digest"])
    with tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as tar:
        member = tar.extractfile("pakages-0.0.16/README.md")
        assert member is not None
        assert member.read() == b"# pakages 0.0.16\n"
    assert manifest["annotations"] == {"org.opencontainers.image.description": "pakages 0.0.16"}
    assert manifest["config"]["annotations"] == {"org.dinosaur.config.kind": "empty"}


async def check_custom_push_list(run: Run) -> None:
    fossils, notes = b"name,era\nt-rex,cretaceous\n", b"found near the river\n"
    contents = {"fossils.csv": fossils, "notes.txt": notes}
    manifest = await artifact(run, "dinosaur/tool-data:v1", contents)
    for layer in manifest["layers"]:
        assert layer["mediaType"] == "org.dinosaur.tool.datatype"
        assert layer["annotations"]["size"] == str(len(contents[title(layer)]))
        assert layer["annotations"]["creationTime"]
    assert "Found username and password for basic auth" in run.stdout


async def check_basic_pull(run: Run) -> None:
    await artifact(run, "dinosaur/artifact:v1", {"artifact.txt": ARTIFACT})
    assert printed_file(run, "artifact.txt").read_bytes() == ARTIFACT


async def check_inspect(run: Run) -> None:
    manifest = await run.registry.get_manifest(f"{run.host}/{XTENSOR}")
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        "application/vnd.dinosaur.info+json",
        "application/x-bzip2",
        defaults.default_blob_media_type,
    ]
    assert "application/vnd.dinosaur.info+json: ['info.json']" in run.stdout
    assert f"info.json: {json.dumps(json.loads(INFO))}" in run.stdout


async def check_custom_pull(run: Run) -> None:
    manifest = await run.registry.get_manifest(f"{run.host}/dinosaur/prices:v1")
    assert len(manifest["layers"]) == 3
    path = printed_file(run, "google-prices.json")
    assert path.read_bytes() == GOOGLE_PRICES
    assert [p.name for p in path.parent.iterdir()] == ["google-prices.json"]


async def check_login_logout(run: Run) -> None:
    await artifact(run, "dinosaur/private:v1", {"artifact.txt": ARTIFACT})
    assert "Login Succeeded" in run.stdout
    # login saved the credentials there; logout removed them again.
    config = json.loads((run.docker_config / "config.json").read_text())
    assert run.host not in json.dumps(config.get("auths", {})), config


async def check_github_credentials(run: Run) -> None:
    await artifact(run, XTENSOR, {"info.json": INFO})
    assert f"{run.host}/{XTENSOR}: info.json (application/vnd.dinosaur.info+json" in run.stdout
    contents = {"pakages-0.0.16.tar.gz": b"\x1f\x8b pretend this is a release", "sbom.json": SBOM}
    await artifact(run, "vsoch/excellent-dinosaur:latest", contents)


async def check_debugging(run: Run) -> None:
    await artifact(run, "dinosaur/debug:v1", {"artifact.txt": ARTIFACT})
    assert "This is my debug message!" in run.stderr
    # The library's own debug lines: the request that stored the manifest.
    assert f"PUT http://{run.host}/v2/dinosaur/debug/manifests/v1 -> 201" in run.stderr


async def check_attach_discover(run: Run) -> None:
    name = f"{run.host}/dinosaur/app"
    subject = await run.registry.resolve(f"{name}:v1")
    tree = json.loads(run.stdout.strip().splitlines()[-1])
    assert tree["digest"] == subject["digest"]
    (sbom,) = tree["referrers"]
    assert sbom["artifactType"] == "application/vnd.cyclonedx+json"
    (signature,) = sbom["referrers"]
    assert signature["artifactType"] == "application/vnd.dinosaur.signature"
    assert signature["annotations"]["signer"] == "t-rex"
    assert f"sbom: {sbom['digest']}" in run.stdout
    manifest = await run.registry.get_manifest(f"{name}@{sbom['digest']}")
    assert manifest["subject"]["digest"] == subject["digest"]
    assert await blob(run, "dinosaur/app", manifest["layers"][0]["digest"]) == SBOM
    listed = await run.registry.get_referrers(f"{name}@{sbom['digest']}")
    assert [d["digest"] for d in listed] == [signature["digest"]]
    assert "latest" not in await run.registry.get_tags(name)


async def check_multi_platform(run: Run) -> None:
    index = await run.registry.get_manifest(f"{run.host}/dinosaur/multi:v1")
    keys = ("os", "architecture", "variant")
    platforms = [
        "/".join(e["platform"][k] for k in keys if k in e["platform"]) for e in index["manifests"]
    ]
    assert platforms == ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"]
    for platform, arch in (
        ("linux/amd64", "amd64"),
        ("linux/arm64", "arm64"),
        ("linux/arm/v7", "arm"),
    ):
        assert f"{platform} a dinosaur built for {arch}" in run.stdout
    assert "refused: linux/amd64, linux/arm64/v8, linux/arm/v7" in run.stdout


CHECKS: dict[str, Check] = {
    "00_client_class": Check(check_client_class),
    "01_create_config": Check(check_create_config),
    "02_create_layers": Check(check_create_layers),
    "03_create_manifest": Check(check_create_manifest),
    "04_basic_push": Check(check_basic_push),
    "05_custom_push": Check(check_custom_push),
    "06_custom_push_list": Check(check_custom_push_list, ("ORAS_USER", "ORAS_PASS")),
    "07_basic_pull": Check(check_basic_pull),
    "08_inspect": Check(check_inspect),
    "09_custom_pull": Check(check_custom_pull),
    "10_login_logout": Check(check_login_logout, ("ORAS_USER", "ORAS_PASS")),
    "11_github_credentials": Check(check_github_credentials, ("GITHUB_USER", "GITHUB_TOKEN")),
    "12_debugging": Check(check_debugging),
    "13_attach_discover": Check(check_attach_discover),
    "14_multi_platform": Check(check_multi_platform),
}


# -- tests ---------------------------------------------------------------------------------


def test_every_example_directory_has_examples_with_checks_and_twins() -> None:
    for name in EXAMPLE_DIRS:
        assert list((EXAMPLES / name).glob("[0-9]*.py")), f"examples/{name} has no examples"
    stems = {name: {p.stem for p in SCRIPTS if p.parent.name == name} for name in EXAMPLE_DIRS}
    unchecked = sorted(set().union(*stems.values()) - set(CHECKS))
    assert not unchecked, f"add a check to CHECKS in {Path(__file__).name} for {unchecked}"
    for name, found in stems.items():
        assert found == set(CHECKS), f"examples/{name} lacks twins: {sorted(set(CHECKS) - found)}"


@pytest.fixture
async def checker(tmp_path: Path) -> AsyncIterator[Callable[[LocalRegistry], AsyncRegistry]]:
    """Make the AsyncRegistry a check reads with; it ignores this process's credentials."""
    made: list[AsyncRegistry] = []

    def make(reg: LocalRegistry) -> AsyncRegistry:
        environment = Environment(docker_config_dir=tmp_path / "checker-docker")
        made.append(AsyncRegistry(reg.host, insecure=True, environment=environment))
        return made[-1]

    yield make
    for areg in made:
        await areg.aclose()


@pytest.mark.integration
@pytest.mark.anyio
@pytest.mark.parametrize(
    "script", SCRIPTS, ids=[f"{path.parent.name}/{path.stem}" for path in SCRIPTS]
)
async def test_example(
    script: Path,
    registry_factory: Callable[..., LocalRegistry],
    checker: Callable[[LocalRegistry], AsyncRegistry],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    check = CHECKS.get(script.stem)
    if check is None:
        pytest.fail(f"no check for {script.stem}: add one to CHECKS in {Path(__file__).name}")

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {*CREDENTIAL_VARIABLES, "AIORAS_EXAMPLE_REGISTRY"}
    }
    tmpdir, docker_config, cwd = tmp_path / "tmp", tmp_path / "docker", tmp_path / "cwd"
    for directory in (tmpdir, docker_config, cwd):
        directory.mkdir()
    env.update(TMPDIR=str(tmpdir), DOCKER_CONFIG=str(docker_config))

    if check.credentials is None:
        reg = registry_factory()
        areg = checker(reg)
    else:
        user = request.getfixturevalue("htpasswd_user")
        reg = registry_factory(htpasswd=user.htpasswd)
        async with httpx.AsyncClient() as client:
            anonymous = await client.get(f"{reg.url}/v2/")
        assert anonymous.status_code == 401, "the auth registry must refuse anonymous requests"
        areg = checker(reg)
        areg.set_basic_auth(user.username, user.password)
        env.update(zip(check.credentials, (user.username, user.password), strict=True))

    with anyio.fail_after(SCRIPT_TIMEOUT):
        done = await anyio.run_process(
            [sys.executable, str(script), reg.host], cwd=cwd, env=env, check=False
        )
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, f"{script.name} exited {done.returncode}\n{stdout}\n{stderr}"

    await check.verify(Run(reg.host, stdout, stderr, tmpdir, docker_config, areg))
