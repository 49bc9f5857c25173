"""The command line as a new user meets it (issue 21): safe deletes, mixed registries, usage.

Each test runs the real ``aioras`` command as a subprocess (some on a pseudo-terminal)
against real registries: plain http, and TLS with htpasswd basic auth.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from aioras.testing import LocalRegistry
from support.authtools import BasicTLSRegistry
from support.clitools import Result, aioras, aioras_pty

pytestmark = pytest.mark.integration

PYTHON_SPEAK = re.compile(r"\w+=True|\w+\(\)")


def ok(result: Result) -> Result:
    assert result.status == 0, result.stderr or result.stdout
    return result


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "a.txt").write_text("hello\n")
    return tmp_path


def push(ref: str, work: Path, *flags: str) -> str:
    """Push ``a.txt`` to ``ref`` over plain http; the manifest's digest."""
    doc = ok(aioras("push", "--plain-http", "--format", "json", *flags, ref, "a.txt", cwd=work))
    return str(doc.json()["digest"])


def attach_signature(subject: str, work: Path) -> None:
    """Attach a file to ``subject`` as an ``application/x.sig`` referrer."""
    (work / "sig").write_text("signature")
    args = ("--plain-http", "--artifact-type", "application/x.sig", subject, "sig")
    ok(aioras("attach", *args, cwd=work))


# -- 1. manifest delete of a manifest other tags share --------------------------------------


def test_manifest_delete_refuses_without_force_naming_the_other_tags(
    registry: LocalRegistry, work: Path
) -> None:
    repo = f"{registry.host}/conv/delete-shared"
    push(f"{repo}:v1", work)
    ok(aioras("tag", "--plain-http", f"{repo}:v1", "stable", "pushed"))
    refused = aioras("manifest", "delete", "--plain-http", f"{repo}:pushed")
    assert refused.status == 2, refused.stderr
    assert "stable" in refused.stderr
    assert "v1" in refused.stderr
    assert "--force" in refused.stderr
    assert "unexpected" not in refused.stderr
    # Nothing was deleted.
    ok(aioras("resolve", "--plain-http", f"{repo}:v1"))
    forced = ok(aioras("manifest", "delete", "--plain-http", "--force", f"{repo}:pushed"))
    assert forced.stdout.startswith(f"Deleted {repo}:pushed")
    assert aioras("resolve", "--plain-http", f"{repo}:v1").status == 1


def test_manifest_delete_of_a_manifest_no_other_tag_names_needs_no_force(
    registry: LocalRegistry, work: Path
) -> None:
    repo = f"{registry.host}/conv/delete-alone"
    (work / "b.txt").write_text("other\n")
    push(f"{repo}:keep", work)
    ok(aioras("push", "--plain-http", f"{repo}:alone", "b.txt", cwd=work))
    ok(aioras("manifest", "delete", "--plain-http", f"{repo}:alone"))
    ok(aioras("resolve", "--plain-http", f"{repo}:keep"))


def test_manifest_delete_asks_on_a_terminal_naming_the_other_tags(
    registry: LocalRegistry, work: Path
) -> None:
    repo = f"{registry.host}/conv/delete-ask"
    push(f"{repo}:v1", work)
    ok(aioras("tag", "--plain-http", f"{repo}:v1", "latest"))
    declined = aioras_pty(
        "manifest", "delete", "--plain-http", f"{repo}:v1", replies=[("[y/N]", "n\n")]
    )
    assert declined.status == 1, declined.stdout
    assert "also tagged latest" in declined.stdout
    assert "nothing deleted" in declined.stdout
    ok(aioras("resolve", "--plain-http", f"{repo}:latest"))
    confirmed = aioras_pty(
        "manifest", "delete", "--plain-http", f"{repo}:v1", replies=[("[y/N]", "y\n")]
    )
    assert confirmed.status == 0, confirmed.stdout
    assert f"Deleted {repo}:v1" in confirmed.stdout
    assert aioras("resolve", "--plain-http", f"{repo}:latest").status == 1


# -- 2. cp between a plain-http registry and a TLS one with credentials ------------------


def test_cp_copies_from_plain_http_to_a_tls_registry_with_its_own_credentials(
    registry: LocalRegistry, basic_tls_registry: BasicTLSRegistry, work: Path
) -> None:
    src = f"{registry.host}/conv/cp-mixed:v1"
    digest = push(src, work)
    dst = f"{basic_tls_registry.host}/conv/cp-mixed:v1"
    copied = aioras(
        "cp",
        "--from-plain-http",
        "--to-ca-file",
        str(basic_tls_registry.ca),
        "--to-username",
        basic_tls_registry.username,
        "--to-password-stdin",
        "--format",
        "json",
        src,
        dst,
        stdin=basic_tls_registry.password + "\n",
    )
    assert ok(copied).json()["digest"] == digest
    resolved = aioras(
        "resolve",
        "--ca-file",
        str(basic_tls_registry.ca),
        "-u",
        basic_tls_registry.username,
        "--password-stdin",
        dst,
        stdin=basic_tls_registry.password,
    )
    assert ok(resolved).stdout.strip() == digest


def test_cp_from_a_tls_registry_skipping_verification_to_plain_http(
    registry: LocalRegistry, basic_tls_registry: BasicTLSRegistry, work: Path
) -> None:
    tls = basic_tls_registry
    src = f"{tls.host}/conv/cp-back:v1"
    creds = ("-u", tls.username, "--password-stdin")
    (work / "c.txt").write_text("from tls\n")
    pushed = aioras(
        "push", "--ca-file", str(tls.ca), *creds, "--format", "json", src, "c.txt",
        cwd=work, stdin=tls.password,
    )  # fmt: skip
    digest = ok(pushed).json()["digest"]
    dst = f"{registry.host}/conv/cp-back:v1"
    ok(
        aioras(
            "cp", "--from-insecure", "--from-username", tls.username, "--from-password-stdin",
            "--to-plain-http", src, dst, stdin=tls.password,
        )
    )  # fmt: skip
    assert ok(aioras("resolve", "--plain-http", dst)).stdout.strip() == digest


# -- 3. usage errors say what is wrong and what to type -----------------------------------


def test_usage_errors_say_what_to_type_and_exit_2(registry: LocalRegistry, work: Path) -> None:
    host = registry.host
    layout = work / "two-tags"
    push(f"{host}/conv/usage:t1", work)
    push(f"{host}/conv/usage:t2", work)
    ok(aioras("cp", "--plain-http", "--to-oci-layout", f"{host}/conv/usage:t1", f"{layout}:t1"))
    ok(aioras("cp", "--plain-http", "--to-oci-layout", f"{host}/conv/usage:t2", f"{layout}:t2"))
    cases = {
        "push": (("push", "--plain-http", f"{host}/conv/usage:x"), "FILE"),
        "annotation": (
            ("push", "--plain-http", "-a", "novalue", f"{host}/x/y:1", "a.txt"), "-a KEY=VALUE"
        ),
        "depth": (
            ("cp", "--plain-http", "--depth", "1", f"{host}/a/b:1", f"{host}/a/c:1"),
            "cp -r --depth 1",
        ),
        "blob": (("blob", "fetch", "--plain-http", f"{host}/a/b@sha256:" + "0" * 64), "-o PATH"),
        "login": (("login", "-u", "me", host), "--password-stdin"),
        "layout": (
            ("restore", "--plain-http", str(layout), f"{host}/conv/restored"), f"{layout}:TAG"
        ),
    }  # fmt: skip
    for name, (args, advice) in cases.items():
        result = aioras(*args, cwd=work)
        assert result.status == 2, (name, result.stderr)
        assert advice in result.stderr, (name, result.stderr)
        assert "unexpected" not in result.stderr, name
        assert "--debug" not in result.stderr, name


# -- 4. login asks on a terminal --------------------------------------------------------


def test_login_prompts_for_the_user_name_and_password_on_a_terminal(
    basic_tls_registry: BasicTLSRegistry, tmp_path: Path
) -> None:
    tls = basic_tls_registry
    config = tmp_path / "config.json"
    result = aioras_pty(
        "login", "--ca-file", str(tls.ca), "--registry-config", str(config), tls.host,
        replies=[("Username: ", tls.username + "\n"), ("Password: ", tls.password + "\n")],
    )  # fmt: skip
    assert result.status == 0, result.stdout
    assert "Login Succeeded" in result.stdout
    assert tls.password not in result.stdout  # not echoed
    assert tls.host in json.loads(config.read_text())["auths"]


# -- 5. --plain-http against a TLS registry ---------------------------------------------


def test_plain_http_against_a_tls_registry_says_to_drop_the_flag(
    basic_tls_registry: BasicTLSRegistry,
) -> None:
    result = aioras("resolve", "--plain-http", f"{basic_tls_registry.host}/conv/x:v1")
    assert result.status == 1
    assert "the registry speaks TLS: drop --plain-http" in result.stderr, result.stderr


# -- 6. --platform of a single manifest; the platform an index pull takes -----------------


def test_pull_platform_of_a_single_manifest_checks_its_config(
    registry: LocalRegistry, work: Path
) -> None:
    repo = f"{registry.host}/conv/platform"
    config = work / "config.json"
    config.write_text(json.dumps({"os": "linux", "architecture": "amd64", "rootfs": {}}))
    push(f"{repo}:amd64", work, "--config", "config.json:application/vnd.oci.image.config.v1+json")
    wrong = aioras(
        "pull", "--plain-http", "--platform", "linux/arm64", f"{repo}:amd64", "-o", str(work / "o1")
    )
    assert wrong.status == 1, wrong.stderr
    assert "linux/amd64" in wrong.stderr
    assert "linux/arm64" in wrong.stderr
    assert not (work / "o1" / "a.txt").exists()
    right = aioras(
        "pull", "--plain-http", "--platform", "linux/amd64", f"{repo}:amd64", "-o", str(work / "o2")
    )
    assert ok(right)
    assert (work / "o2" / "a.txt").exists()
    push(f"{repo}:artifact", work)  # no image config: no platform to check
    artifact = aioras(
        "pull",
        "--plain-http",
        "--platform",
        "linux/amd64",
        f"{repo}:artifact",
        "-o",
        str(work / "o3"),
    )
    assert artifact.status == 1
    assert "no platform" in artifact.stderr


def test_pull_of_an_index_without_platform_says_which_it_took(
    registry: LocalRegistry, work: Path
) -> None:
    from aioras.content.graph import host_platform

    repo = f"{registry.host}/conv/index"
    system, arch = host_platform().split("/")[:2]
    config = work / "config.json"
    config.write_text(json.dumps({"os": system, "architecture": arch, "rootfs": {}}))
    push(f"{repo}:host", work, "--config", "config.json:application/vnd.oci.image.config.v1+json")
    ok(aioras("manifest", "index", "create", "--plain-http", f"{repo}:multi", "host"))
    pulled = ok(aioras("pull", "--plain-http", f"{repo}:multi", "-o", str(work / "out")))
    assert f"pulling its {host_platform()} manifest" in pulled.stderr


# -- 10. cp --to-oci-layout FILE.tar -------------------------------------------------------


def test_cp_to_an_oci_layout_named_tar_writes_a_tar(registry: LocalRegistry, work: Path) -> None:
    digest = push(f"{registry.host}/conv/tar:v1", work)
    archive = work / "app.tar"
    ok(
        aioras(
            "cp", "--plain-http", "--to-oci-layout", f"{registry.host}/conv/tar:v1", f"{archive}:v1"
        )
    )
    assert archive.is_file()
    with tarfile.open(archive) as tar:
        assert "oci-layout" in tar.getnames()
    resolved = ok(aioras("resolve", "--oci-layout", f"{archive}:v1"))
    assert resolved.stdout.strip() == digest


# -- 11. no Python in the command line's words ------------------------------------------------


def test_messages_give_flags_not_python(
    registry: LocalRegistry, basic_tls_registry: BasicTLSRegistry, work: Path, tmp_path: Path
) -> None:
    tls = basic_tls_registry
    anonymous = aioras("resolve", "--ca-file", str(tls.ca), f"{tls.host}/conv/x:v1")
    assert anonymous.status == 1
    assert not PYTHON_SPEAK.search(anonymous.stderr), anonymous.stderr
    assert "-u USER" in anonymous.stderr
    assert "aioras login" in anonymous.stderr
    outside = aioras(
        "push", "--plain-http", f"{registry.host}/conv/out:v1", "/etc/hostname", cwd=work
    )
    assert outside.status == 1
    assert not PYTHON_SPEAK.search(outside.stderr), outside.stderr
    assert "--disable-path-validation" in outside.stderr
    schemed = aioras("resolve", f"http://{registry.host}/conv/x:v1")
    assert schemed.status == 2
    assert not PYTHON_SPEAK.search(schemed.stderr), schemed.stderr
    assert "--plain-http" in schemed.stderr
    wrong = aioras(
        "login", "--ca-file", str(tls.ca), "--registry-config", str(tmp_path / "c.json"),
        "-u", tls.username, "--password-stdin", tls.host, stdin="wrong-password",
    )  # fmt: skip
    assert wrong.status == 1
    assert "refused these credentials" in wrong.stderr, wrong.stderr
    assert "log in with" not in wrong.stderr
    assert not PYTHON_SPEAK.search(wrong.stderr)


# -- 12. progress at 80 columns --------------------------------------------------------------


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def test_progress_rows_fit_80_columns_in_binary_units(registry: LocalRegistry, work: Path) -> None:
    (work / "a-rather-long-file-name-for-a-big-blob.bin").write_bytes(os.urandom(12 << 20))
    result = aioras_pty(
        "push", "--plain-http", f"{registry.host}/conv/progress:v1",
        "a-rather-long-file-name-for-a-big-blob.bin", cwd=work, columns=80,
    )  # fmt: skip
    assert result.status == 0, result.stdout
    lines = [line for line in re.split(r"[\r\n]", ANSI.sub("", result.stdout)) if line.strip()]
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    rows = [line for line in lines if line.startswith("a-rather")]
    assert rows, lines
    # Each blob's row holds its size and speed: nothing wrapped onto a line of its own.
    assert all(re.search(r"\d/\d+\.\d MiB", row) for row in rows), rows
    assert all(re.fullmatch(r"\s*(MiB|KiB|B)\s*", line) is None for line in lines), lines
    assert "MB/s" not in result.stdout
    assert "kB/s" not in result.stdout
    assert re.search(r"\d+\.\d (MiB|KiB|GiB)/s", result.stdout), lines[-5:]


# -- 13. push without a tag -------------------------------------------------------------------


def test_push_without_a_tag_pushes_latest_and_says_so(registry: LocalRegistry, work: Path) -> None:
    repo = f"{registry.host}/conv/notag"
    pushed = ok(aioras("push", "--plain-http", repo, "a.txt", cwd=work))
    assert pushed.stdout.startswith(f"Pushed {repo}:latest\n"), pushed.stdout
    ok(aioras("resolve", "--plain-http", f"{repo}:latest"))


# -- 15. oras CLI conventions -------------------------------------------------------------------


def test_version_verb_prints_the_version() -> None:
    from aioras import __version__

    assert ok(aioras("version")).stdout.strip() == f"aioras {__version__}"


def test_an_unknown_flag_after_a_verb_prints_that_verbs_usage() -> None:
    result = aioras("cp", "--no-such-flag", "a/b:1", "c/d:1")
    assert result.status == 2
    assert result.stderr.startswith("usage: aioras cp "), result.stderr
    assert "--no-such-flag" in result.stderr


def test_format_json_prints_an_error_document_when_a_command_fails(
    registry: LocalRegistry,
) -> None:
    result = aioras("resolve", "--plain-http", "--format", "json", f"{registry.host}/conv/none:v1")
    assert result.status == 1
    error = result.json()["error"]
    assert error["type"] == "NotFoundError"
    assert error["status"] == 1
    assert error["verb"] == "resolve"
    assert "conv/none" in error["message"]


def test_repo_tags_last_and_exclude_digest_tags(registry: LocalRegistry, work: Path) -> None:
    repo = f"{registry.host}/conv/tags"
    digest = push(f"{repo}:a", work)
    ok(aioras("tag", "--plain-http", f"{repo}:a", "b", "c", digest.replace(":", "-")))
    listed = ok(aioras("repo", "tags", "--plain-http", "--exclude-digest-tags", repo))
    assert sorted(listed.stdout.split()) == ["a", "b", "c"]
    after = ok(aioras("repo", "tags", "--plain-http", "--last", "b", repo))
    assert sorted(after.stdout.split()) == ["c", digest.replace(":", "-")]


def test_discover_format_tree_table_json(registry: LocalRegistry, work: Path) -> None:
    subject = f"{registry.host}/conv/discover:v1"
    push(subject, work)
    attach_signature(subject, work)
    tree = ok(aioras("discover", "--plain-http", "--format", "tree", subject)).stdout
    assert "└── application/x.sig sha256:" in tree
    table = ok(aioras("discover", "--plain-http", "--format", "table", subject)).stdout
    assert table.startswith("DEPTH")
    doc = ok(aioras("discover", "--plain-http", "--format", "json", subject)).json()
    assert doc["referrers"][0]["artifactType"] == "application/x.sig"


def test_cp_to_several_tags_at_once(registry: LocalRegistry, work: Path) -> None:
    digest = push(f"{registry.host}/conv/multi:v1", work)
    dst = f"{registry.host}/conv/multi-copy"
    ok(aioras("cp", "--plain-http", f"{registry.host}/conv/multi:v1", f"{dst}:t1,t2,t3"))
    for tag in ("t1", "t2", "t3"):
        assert ok(aioras("resolve", "--plain-http", f"{dst}:{tag}")).stdout.strip() == digest


def test_oci_layout_flag_on_resolve_tag_fetch_and_discover(
    registry: LocalRegistry, work: Path
) -> None:
    subject = f"{registry.host}/conv/layout:v1"
    digest = push(subject, work)
    attach_signature(subject, work)
    layout = work / "layout"
    ok(aioras("cp", "--plain-http", "-r", "--to-oci-layout", subject, f"{layout}:v1"))
    assert ok(aioras("resolve", "--oci-layout", f"{layout}:v1")).stdout.strip() == digest
    ok(aioras("tag", "--oci-layout", f"{layout}:v1", "v2"))
    assert ok(aioras("resolve", "--oci-layout", f"{layout}:v2")).stdout.strip() == digest
    fetched = ok(aioras("manifest", "fetch", "--oci-layout", f"{layout}@{digest}")).stdout
    assert (
        json.loads(fetched)["layers"][0]["annotations"]["org.opencontainers.image.title"] == "a.txt"
    )
    found = ok(aioras("discover", "--oci-layout", "--format", "json", f"{layout}:v1")).json()
    assert [r["artifactType"] for r in found["referrers"]] == ["application/x.sig"]


def test_verbose_shows_informational_lines(registry: LocalRegistry, work: Path) -> None:
    ref = f"{registry.host}/conv/verbose:v1"
    push(ref, work)
    quiet = ok(aioras("pull", "--plain-http", "--no-tty", ref, "-o", str(work / "q")))
    loud = ok(aioras("pull", "--plain-http", "--no-tty", "-v", ref, "-o", str(work / "l")))
    assert "Successfully pulled" not in quiet.stderr
    assert "Successfully pulled" in loud.stderr


# -- 15. --oci-layout on push, pull and attach; JSON error documents for usage errors ---------


def test_push_into_an_oci_layout_directory_and_tar_reads_back_the_same_bytes(
    skopeo_bin: str, work: Path
) -> None:
    (work / "d").mkdir()
    (work / "d" / "b.txt").write_text("in a directory\n")
    layout, archive = work / "layout", work / "app.tar"
    pushed = ok(
        aioras("push", "--oci-layout", "--format", "json", f"{layout}:v1", "a.txt", "d", cwd=work)
    ).json()
    assert pushed["reference"] == f"{layout}:v1"
    inspected = subprocess.run(
        [skopeo_bin, "inspect", "--raw", f"oci:{layout}:v1"],
        capture_output=True,
        check=True,
    ).stdout
    assert "sha256:" + hashlib.sha256(inspected).hexdigest() == pushed["digest"]
    ok(aioras("push", "--oci-layout", f"{archive}:v1", "a.txt", cwd=work))
    assert tarfile.is_tarfile(archive)
    for source in (layout, archive):
        out = work / f"out-{source.name}"
        ok(aioras("pull", "--oci-layout", f"{source}:v1", "-o", str(out)))
        assert (out / "a.txt").read_bytes() == (work / "a.txt").read_bytes()
    assert (work / "out-layout" / "d" / "b.txt").read_text() == "in a directory\n"


def test_pull_from_an_oci_layout_written_by_cp_from_the_registry(
    registry: LocalRegistry, work: Path
) -> None:
    ref = f"{registry.host}/conv/pull-layout:v1"
    digest = push(ref, work)
    layout = work / "copied"
    ok(aioras("cp", "--plain-http", "--to-oci-layout", ref, f"{layout}:v1"))
    out = work / "out"
    pulled = ok(
        aioras("pull", "--oci-layout", "--format", "json", f"{layout}@{digest}", "-o", str(out))
    ).json()
    assert [Path(f["path"]).name for f in pulled["files"]] == ["a.txt"]
    assert (out / "a.txt").read_text() == "hello\n"
    # The same guarantee as a registry pull: existing files are kept when asked.
    (out / "a.txt").write_text("mine\n")
    ok(aioras("pull", "--oci-layout", "--keep-old-files", f"{layout}:v1", "-o", str(out)))
    assert (out / "a.txt").read_text() == "mine\n"
    missing = aioras("pull", "--oci-layout", f"{layout}:nope", "-o", str(out))
    assert missing.status == 1
    assert "index.json lists its tags" in missing.stderr, missing.stderr


def test_attach_into_an_oci_layout_then_discover_lists_it(work: Path) -> None:
    layout = work / "layout"
    ok(aioras("push", "--oci-layout", f"{layout}:v1", "a.txt", cwd=work))
    (work / "sig").write_text("signature")
    attached = ok(
        aioras(
            "attach",
            "--oci-layout",
            "--format",
            "json",
            "--artifact-type",
            "application/x.sig",
            f"{layout}:v1",
            "sig",
            cwd=work,
        )
    ).json()
    found = ok(aioras("discover", "--oci-layout", "--format", "json", f"{layout}:v1")).json()
    assert [(r["digest"], r["artifactType"]) for r in found["referrers"]] == [
        (attached["digest"], "application/x.sig")
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ("resolve", "--format", "json", "--no-such-flag", "a/b:1"),
        ("pull", "--format=json"),
    ],
    ids=["unknown-flag", "missing-argument"],
)
def test_format_json_prints_an_error_document_for_usage_errors(argv: tuple[str, ...]) -> None:
    result = aioras(*argv)
    assert result.status == 2
    assert result.stderr.startswith(f"usage: aioras {argv[0]} "), result.stderr
    error = result.json()["error"]
    assert error["type"] == "UsageError"
    assert error["status"] == 2
    assert error["verb"] == argv[0]
    assert error["message"] in result.stderr
