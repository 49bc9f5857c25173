"""The ``aioras`` command run as a subprocess against a real registry: each verb, text and JSON."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from aioras.testing import LocalRegistry
from support.clitools import Result, aioras

pytestmark = pytest.mark.integration


def ok(result: Result) -> Result:
    assert result.status == 0, result.stderr
    return result


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def attach_signature(subject: str, path: str, work: Path) -> str:
    """Attach ``path`` to ``subject`` as an ``application/x.sig`` referrer; its digest."""
    doc = ok(
        aioras(
            "attach",
            "--plain-http",
            "--format",
            "json",
            "--artifact-type",
            "application/x.sig",
            subject,
            path,
            cwd=work,
        )
    ).json()
    return str(doc["digest"])


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "a.txt").write_text("hello\n")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "x.txt").write_text("x\n")
    return tmp_path


def test_push_text_and_json_name_the_digest_the_registry_holds(
    registry: LocalRegistry, work: Path
) -> None:
    ref = f"{registry.host}/cli/push:v1"
    text = ok(aioras("push", "--plain-http", "--no-tty", ref, "a.txt", "dir", cwd=work))
    assert text.stdout.startswith(f"Pushed {ref}\nDigest: sha256:")
    digest = text.stdout.split("Digest: ")[1].strip()
    fetched = ok(aioras("manifest", "fetch", "--plain-http", ref))
    assert sha256(fetched.stdout.encode()) == digest
    manifest = json.loads(fetched.stdout)
    titles = [
        layer["annotations"]["org.opencontainers.image.title"] for layer in manifest["layers"]
    ]
    assert titles == ["a.txt", "dir"]
    doc = ok(
        aioras(
            "push",
            "--plain-http",
            "--format",
            "json",
            "--artifact-type",
            "application/x.cli",
            "-a",
            "team=blue",
            f"{registry.host}/cli/push:v2",
            "a.txt",
            cwd=work,
        )
    ).json()
    assert doc["reference"] == f"{registry.host}/cli/push:v2"
    assert doc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    pushed = json.loads(ok(aioras("manifest", "fetch", "--plain-http", doc["reference"])).stdout)
    assert pushed["artifactType"] == "application/x.cli"
    assert pushed["annotations"] == {"team": "blue"}
    assert doc["size"] == len(
        ok(aioras("manifest", "fetch", "--plain-http", doc["reference"])).stdout.encode()
    )


def test_no_tty_progress_lines_have_no_control_characters(
    registry: LocalRegistry, work: Path
) -> None:
    (work / "big.bin").write_bytes(b"\x01" * (3 << 20))
    result = ok(
        aioras(
            "push", "--plain-http", "--no-tty", f"{registry.host}/cli/plain:v1", "big.bin", cwd=work
        )
    )
    lines = result.stderr.splitlines()
    assert any(line.startswith("started") and "big.bin" in line for line in lines)
    assert any(
        line.startswith("done") and "big.bin" in line and "3.0 MiB" in line for line in lines
    )
    assert all(ch == "\n" or ch.isprintable() for ch in result.stderr)


def test_pull_writes_the_files_and_lists_them(registry: LocalRegistry, work: Path) -> None:
    ref = f"{registry.host}/cli/pull:v1"
    ok(aioras("push", "--plain-http", "--no-tty", ref, "a.txt", "dir", cwd=work))
    out = work / "out"
    text = ok(aioras("pull", "--plain-http", "--no-tty", ref, "-o", str(out)))
    assert f"Downloaded {out / 'a.txt'}" in text.stdout
    assert text.stdout.rstrip().endswith(f"Pulled {ref}")
    assert (out / "a.txt").read_text() == "hello\n"
    assert (out / "dir" / "x.txt").read_text() == "x\n"
    doc = ok(aioras("pull", "--plain-http", "--format", "json", ref, "-o", str(work / "o2"))).json()
    assert sorted(Path(f["path"]).name for f in doc["files"]) == ["a.txt", "dir"]


def test_resolve_tag_and_repo_tags(registry: LocalRegistry, work: Path) -> None:
    ref = f"{registry.host}/cli/tags:v1"
    pushed = ok(aioras("push", "--plain-http", "--format", "json", ref, "a.txt", cwd=work)).json()
    assert ok(aioras("resolve", "--plain-http", ref)).stdout.strip() == pushed["digest"]
    tagged = ok(aioras("tag", "--plain-http", ref, "v2", "v3"))
    assert tagged.stdout.splitlines()[:2] == ["Tagged v2", "Tagged v3"]
    doc = ok(aioras("resolve", "--plain-http", "--format", "json", f"{registry.host}/cli/tags:v3"))
    assert doc.json()["digest"] == pushed["digest"]
    listed = ok(aioras("repo", "tags", "--plain-http", f"{registry.host}/cli/tags"))
    assert listed.stdout.split() == ["v1", "v2", "v3"]
    tags = ok(
        aioras("repo", "tags", "--plain-http", "--format", "json", f"{registry.host}/cli/tags")
    )
    assert tags.json()["tags"] == ["v1", "v2", "v3"]


def test_manifest_push_keeps_the_bytes_and_delete_removes_it(
    registry: LocalRegistry, work: Path
) -> None:
    src = f"{registry.host}/cli/man:v1"
    ok(aioras("push", "--plain-http", src, "a.txt", cwd=work))
    data = ok(aioras("manifest", "fetch", "--plain-http", src)).stdout
    (work / "m.json").write_text(data)
    dst = f"{registry.host}/cli/man:copy"
    doc = ok(
        aioras("manifest", "push", "--plain-http", "--format", "json", dst, "m.json", cwd=work)
    )
    assert doc.json()["digest"] == sha256(data.encode())
    described = ok(aioras("manifest", "fetch", "--plain-http", "--format", "json", dst)).json()
    assert described["content"] == json.loads(data)
    assert described["digest"] == sha256(data.encode())
    # v1 names the same manifest: deleting it takes v1 too, which needs --force.
    deleted = ok(aioras("manifest", "delete", "--plain-http", "--force", dst))
    assert deleted.stdout.startswith(f"Deleted {dst}")
    gone = aioras("resolve", "--plain-http", src)
    assert gone.status == 1
    assert "HTTP 404" in gone.stderr


def test_blob_push_fetch_delete(registry: LocalRegistry, work: Path) -> None:
    repo = f"{registry.host}/cli/blob"
    (work / "b.bin").write_bytes(b"blob-bytes")
    digest = sha256(b"blob-bytes")
    doc = ok(aioras("blob", "push", "--plain-http", "--format", "json", repo, "b.bin", cwd=work))
    assert doc.json() == {
        "reference": repo,
        "mediaType": "application/octet-stream",
        "digest": digest,
        "size": 10,
    }
    fetched = ok(aioras("blob", "fetch", "--plain-http", f"{repo}@{digest}", "-o", "-"))
    assert fetched.stdout == "blob-bytes"
    out = work / "got.bin"
    text = ok(aioras("blob", "fetch", "--plain-http", f"{repo}@{digest}", "-o", str(out)))
    assert out.read_bytes() == b"blob-bytes"
    assert text.stdout.startswith(f"Downloaded {out}")
    ok(aioras("blob", "delete", "--plain-http", f"{repo}@{digest}"))
    missing = aioras("blob", "fetch", "--plain-http", f"{repo}@{digest}", "--descriptor")
    assert missing.status == 1


def test_cp_between_repositories_and_through_an_oci_layout(
    registry: LocalRegistry, work: Path
) -> None:
    src = f"{registry.host}/cli/cp-src:v1"
    pushed = ok(aioras("push", "--plain-http", "--format", "json", src, "a.txt", cwd=work)).json()
    copied = ok(aioras("cp", "--plain-http", "--no-tty", src, f"{registry.host}/cli/cp-dst"))
    assert copied.stdout.splitlines()[-1] == f"Digest: {pushed['digest']}"
    assert (
        ok(aioras("resolve", "--plain-http", f"{registry.host}/cli/cp-dst:v1")).stdout.strip()
        == (pushed["digest"])
    )
    layout = work / "layout"
    ok(aioras("cp", "--plain-http", "--to-oci-layout", src, f"{layout}:keep"))
    index = json.loads((layout / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [pushed["digest"]]
    back = ok(
        aioras(
            "cp",
            "--plain-http",
            "--format",
            "json",
            "--from-oci-layout",
            f"{layout}:keep",
            f"{registry.host}/cli/cp-back:b1",
        )
    ).json()
    assert back["digest"] == pushed["digest"]
    assert (
        ok(aioras("resolve", "--plain-http", f"{registry.host}/cli/cp-back:b1")).stdout.strip()
        == (pushed["digest"])
    )


def test_attach_then_discover_as_tree_table_and_json(registry: LocalRegistry, work: Path) -> None:
    subject = f"{registry.host}/cli/disc:v1"
    pushed = ok(
        aioras("push", "--plain-http", "--format", "json", subject, "a.txt", cwd=work)
    ).json()
    attached = ok(
        aioras(
            "attach",
            "--plain-http",
            "--format",
            "json",
            "--artifact-type",
            "application/x.sig",
            "-a",
            "signer=ci",
            subject,
            "a.txt",
            cwd=work,
        )
    ).json()
    assert attached["subject"] == subject
    assert attached["artifactType"] == "application/x.sig"
    sig = attached["digest"]
    manifest = json.loads(
        ok(aioras("manifest", "fetch", "--plain-http", f"{subject}@{sig}")).stdout
    )
    assert manifest["subject"]["digest"] == pushed["digest"]
    assert manifest["annotations"]["signer"] == "ci"
    tree = ok(aioras("discover", "--plain-http", subject)).stdout.splitlines()
    assert tree == [f"{subject}@{pushed['digest']}", f"└── application/x.sig {sig}"]
    table = ok(aioras("discover", "--plain-http", "--output", "table", subject)).stdout.splitlines()
    assert table[0].split() == ["DEPTH", "ARTIFACT", "TYPE", "DIGEST", "SIZE"]
    assert table[1].split()[:3] == ["1", "application/x.sig", sig]
    doc = ok(aioras("discover", "--plain-http", "--format", "json", subject)).json()
    assert doc["digest"] == pushed["digest"]
    assert [(r["artifactType"], r["digest"], r["referrers"]) for r in doc["referrers"]] == [
        ("application/x.sig", sig, [])
    ]
    none = ok(
        aioras("discover", "--plain-http", "--format", "json", "--artifact-type", "x/none", subject)
    ).json()
    assert none["referrers"] == []
    missing_type = aioras("attach", "--plain-http", subject, "a.txt", cwd=work)
    assert missing_type.status == 2


def test_index_create_update_and_repo_ls(fresh_registry: LocalRegistry, work: Path) -> None:
    host = fresh_registry.host
    one = ok(
        aioras("push", "--plain-http", "--format", "json", f"{host}/cli/idx:one", "a.txt", cwd=work)
    ).json()
    two = ok(
        aioras("push", "--plain-http", "--format", "json", f"{host}/cli/idx:two", "dir", cwd=work)
    ).json()
    created = ok(
        aioras(
            "manifest",
            "index",
            "create",
            "--plain-http",
            "--format",
            "json",
            f"{host}/cli/idx:both",
            "one",
            "two",
        )
    ).json()
    assert created["mediaType"] == "application/vnd.oci.image.index.v1+json"
    index = json.loads(
        ok(aioras("manifest", "fetch", "--plain-http", f"{host}/cli/idx:both")).stdout
    )
    assert [m["digest"] for m in index["manifests"]] == [one["digest"], two["digest"]]
    updated = ok(
        aioras(
            "manifest",
            "index",
            "update",
            "--plain-http",
            f"{host}/cli/idx:both",
            "--remove",
            one["digest"],
        )
    )
    assert updated.stdout.startswith(f"Updated index {host}/cli/idx:both")
    index = json.loads(
        ok(aioras("manifest", "fetch", "--plain-http", f"{host}/cli/idx:both")).stdout
    )
    assert [m["digest"] for m in index["manifests"]] == [two["digest"]]
    wrong = aioras(
        "manifest",
        "index",
        "update",
        "--plain-http",
        f"{host}/cli/idx:both",
        "--remove",
        one["digest"],
    )
    assert wrong.status == 1
    assert wrong.stderr.startswith("aioras manifest index update: ")
    ok(aioras("push", "--plain-http", f"{host}/cli/other:v1", "a.txt", cwd=work))
    assert ok(aioras("repo", "ls", "--plain-http", host)).stdout.split() == ["cli/idx", "cli/other"]
    listed = ok(aioras("repo", "ls", "--plain-http", "--format", "json", host)).json()
    assert listed == {"registry": host, "repositories": ["cli/idx", "cli/other"]}


def test_login_saves_credentials_and_logout_removes_them(
    basic_auth_registry: LocalRegistry, htpasswd_user: object, tmp_path: Path
) -> None:
    config = tmp_path / "config.json"
    user, password = htpasswd_user.username, htpasswd_user.password  # type: ignore[attr-defined]
    host = basic_auth_registry.host
    refused = aioras(
        "login", "--plain-http", "--registry-config", str(config), "-u", user, "-p", "wrong", host
    )
    assert refused.status == 1
    assert "aioras login" in refused.stderr
    assert not config.exists()
    done = ok(
        aioras(
            "login",
            "--plain-http",
            "--registry-config",
            str(config),
            "-u",
            user,
            "--password-stdin",
            "--format",
            "json",
            host,
            stdin=password + "\n",
        )
    )
    assert done.json() == {"host": host, "status": "Login Succeeded"}
    assert host in json.loads(config.read_text())["auths"]
    assert password not in done.stdout + done.stderr
    # The saved credentials are used by the next command.
    tags = aioras(
        "repo", "tags", "--plain-http", "--registry-config", str(config), f"{host}/nothing/here"
    )
    assert "401" not in tags.stderr
    out = ok(aioras("logout", "--registry-config", str(config), host))
    assert out.stdout.strip() == f"Removed credentials for {host}"
    assert host not in json.loads(config.read_text())["auths"]


def test_password_on_the_command_line_is_warned_about_without_echoing_it(
    basic_auth_registry: LocalRegistry, htpasswd_user: object, tmp_path: Path
) -> None:
    config = tmp_path / "config.json"
    user, password = htpasswd_user.username, htpasswd_user.password  # type: ignore[attr-defined]
    host = basic_auth_registry.host
    common = ["--plain-http", "--registry-config", str(config), "-u", user]
    for args in (
        ["login", *common, "-p", password, host],
        ["repo", "tags", *common, "-p", password, f"{host}/nothing/here"],
    ):
        run = aioras(*args)
        warnings = [line for line in run.stderr.splitlines() if "warning" in line]
        assert len(warnings) == 1, run.stderr
        assert "--password-stdin" in warnings[0]
        assert "-p" in warnings[0]
        assert password not in run.stdout + run.stderr
    assert ok(aioras("login", *common, "--password-stdin", host, stdin=password)).stderr == ""


def test_usage_errors_exit_2_and_failures_exit_1_with_one_line(
    registry: LocalRegistry, work: Path
) -> None:
    bad_flag = aioras("push", "--no-such-flag")
    assert bad_flag.status == 2
    bad_ref = aioras("resolve", "--plain-http", "UPPER/Case:v1")
    assert bad_ref.status == 2
    assert len(bad_ref.stderr.strip().splitlines()) == 1
    assert "Traceback" not in bad_ref.stderr
    missing = aioras("resolve", "--plain-http", f"{registry.host}/cli/none:v1")
    assert missing.status == 1
    assert missing.stderr.startswith("aioras resolve: ")
    assert len(missing.stderr.strip().splitlines()) == 1
    assert "repo tags" in missing.stderr
    debug = aioras("resolve", "--plain-http", "-d", f"{registry.host}/cli/none:v1")
    assert debug.status == 1
    assert "Traceback" in debug.stderr
    annotation = aioras(
        "push", "--plain-http", "-a", "novalue", f"{registry.host}/x/y:1", "a.txt", cwd=work
    )
    assert annotation.status == 2
    assert "KEY=VALUE" in annotation.stderr


def test_version_help_and_missing_extra() -> None:
    from aioras import __version__

    assert ok(aioras("--version")).stdout.strip() == f"aioras {__version__}"
    helped = ok(aioras("--help"))
    for verb in (
        "push",
        "pull",
        "attach",
        "cp",
        "manifest",
        "blob",
        "repo",
        "tag",
        "resolve",
        "discover",
        "login",
        "logout",
    ):
        assert f"    {verb} " in helped.stdout
    group = aioras("blob")
    assert group.status == 2
    assert "blob verbs" in group.stderr
    assert "fetch" in group.stderr
    # Without rich, a verb says how to get it and exits 2.
    import subprocess
    import sys

    from support.clitools import cli_env

    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['rich'] = None; from aioras.cli import main; "
            "sys.exit(main(['resolve', 'localhost:1/x:y']))",
        ],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "pip install 'aioras[cli]'" in done.stderr


def test_pull_and_cp_pick_platforms_of_an_index(registry: LocalRegistry, work: Path) -> None:
    import anyio

    import aioras as lib

    repo = f"{registry.host}/cli/plat"
    (work / "amd.txt").write_text("amd64 build")
    (work / "arm.txt").write_text("arm64 build")
    amd = ok(
        aioras("push", "--plain-http", "--format", "json", f"{repo}:amd", "amd.txt", cwd=work)
    ).json()
    arm = ok(
        aioras("push", "--plain-http", "--format", "json", f"{repo}:arm", "arm.txt", cwd=work)
    ).json()

    async def index() -> None:
        async with lib.AsyncRegistry(insecure=True) as reg:
            await reg.push_index(
                f"{repo}:multi",
                [
                    {**amd, "platform": {"os": "linux", "architecture": "amd64"}},
                    {**arm, "platform": {"os": "linux", "architecture": "arm64"}},
                ],
            )

    anyio.run(index)
    out = work / "out"
    ok(aioras("pull", "--plain-http", "--platform", "linux/arm64", f"{repo}:multi", "-o", str(out)))
    assert sorted(p.name for p in out.iterdir()) == ["arm.txt"]
    copied = ok(
        aioras(
            "cp",
            "--plain-http",
            "--format",
            "json",
            "--platform",
            "linux/amd64",
            f"{repo}:multi",
            f"{registry.host}/cli/plat-amd:v1",
        )
    ).json()
    assert copied["digest"] == amd["digest"]
    resolved = ok(aioras("resolve", "--plain-http", f"{registry.host}/cli/plat-amd:v1"))
    assert resolved.stdout.strip() == amd["digest"]
    both = ok(
        aioras(
            "cp",
            "--plain-http",
            "--format",
            "json",
            "--platform",
            "linux/arm64",
            "--platform",
            "linux/amd64",
            f"{repo}:multi",
            f"{registry.host}/cli/plat-both:v1",
        )
    ).json()
    fetched = ok(
        aioras("manifest", "fetch", "--plain-http", f"{registry.host}/cli/plat-both:v1")
    ).json()
    # A new index of the two entries, in the source's order, under a digest of its own.
    assert [m["digest"] for m in fetched["manifests"]] == [amd["digest"], arm["digest"]]
    assert both["digest"] != ok(aioras("resolve", "--plain-http", f"{repo}:multi")).stdout.strip()
    none = aioras(
        "pull",
        "--plain-http",
        "--platform",
        "linux/s390x",
        f"{repo}:multi",
        "-o",
        str(work / "none"),
    )
    assert none.status == 1
    assert "s390x" in none.stderr


def test_cp_recursive_brings_the_referrers(registry: LocalRegistry, work: Path) -> None:
    src = f"{registry.host}/cli/cpr-src:v1"
    ok(aioras("push", "--plain-http", src, "a.txt", cwd=work))
    sig = attach_signature(src, "a.txt", work)
    dst = f"{registry.host}/cli/cpr-dst:v1"
    plain = ok(aioras("cp", "--plain-http", src, f"{registry.host}/cli/cpr-plain:v1"))
    assert plain.status == 0
    bare = ok(
        aioras("discover", "--plain-http", "--format", "json", f"{registry.host}/cli/cpr-plain:v1")
    ).json()
    assert bare["referrers"] == []
    ok(aioras("cp", "--plain-http", "-r", src, dst))
    found = ok(aioras("discover", "--plain-http", "--format", "json", dst)).json()
    assert [r["digest"] for r in found["referrers"]] == [sig]
    depth_alone = aioras("cp", "--plain-http", "--depth", "1", src, dst)
    assert depth_alone.status == 2


def test_mirror_plan_dry_run_copies_nothing_then_mirrors_two_tags(
    registry: LocalRegistry, fresh_registry: LocalRegistry, work: Path
) -> None:
    src = f"{registry.host}/cli/mirror-src"
    made = {
        tag: ok(
            aioras("push", "--plain-http", "--format", "json", f"{src}:{tag}", path, cwd=work)
        ).json()["digest"]
        for tag, path in (("v1", "a.txt"), ("v2", "dir"))
    }
    dst = f"{fresh_registry.host}/cli/mirror-dst"
    plan = work / "plan.toml"
    plan.write_text(f'[[mirror]]\nsource = "{src}"\ndestination = "{dst}"\n')
    dry = ok(aioras("mirror", "--plain-http", "--no-tty", "--dry-run", str(plan)))
    assert dry.stdout.strip().splitlines()[-1].startswith("0 copied, 0 skipped")
    dry_doc = ok(
        aioras("mirror", "--plain-http", "--format", "json", "--dry-run", str(plan))
    ).json()
    assert sorted(p["destination"] for p in dry_doc["planned"]) == [f"{dst}:v1", f"{dst}:v2"]
    assert ok(aioras("repo", "ls", "--plain-http", fresh_registry.host)).stdout.strip() == ""
    state = work / "mirror.state"
    doc = ok(
        aioras("mirror", "--plain-http", "--format", "json", "--state", str(state), str(plan))
    ).json()
    assert {c["destination"]: c["digest"] for c in doc["copied"]} == {
        f"{dst}:{tag}": digest for tag, digest in made.items()
    }
    assert doc["failed"] == []
    for tag, digest in made.items():
        resolved = ok(aioras("resolve", "--plain-http", f"{dst}:{tag}")).stdout.strip()
        assert resolved == digest
    again = ok(aioras("mirror", "--plain-http", "--no-tty", str(plan)))
    assert again.stdout.strip().startswith("0 copied, 2 skipped")


def test_mirror_exits_1_when_an_artifact_fails_and_keep_going_reports_it(
    registry: LocalRegistry, work: Path
) -> None:
    plan = work / "plan.toml"
    missing = f"{registry.host}/cli/mirror-missing:nope"
    plan.write_text(
        f'[[copy]]\nsource = "{missing}"\ndestination = "{registry.host}/cli/mirror-x:nope"\n'
    )
    failed = aioras("mirror", "--plain-http", "--no-tty", "--keep-going", str(plan))
    assert failed.status == 1
    assert f"Failed {missing}" in failed.stdout
    assert failed.stderr.splitlines()[-1] == "aioras mirror: 1 artifact failed (listed on stdout)"
    stopped = aioras("mirror", "--plain-http", "--no-tty", str(plan))
    assert stopped.status == 1
    assert stopped.stderr.splitlines()[-1].startswith(f"aioras mirror: manifest {missing}")


def test_backup_to_a_directory_and_a_tar_then_restore_with_the_referrer(
    registry: LocalRegistry, work: Path
) -> None:
    src = f"{registry.host}/cli/backup-src:v1"
    pushed = ok(aioras("push", "--plain-http", "--format", "json", src, "a.txt", cwd=work)).json()
    sig = attach_signature(src, "dir", work)
    layout = work / "backup-dir"
    text = ok(aioras("backup", "--plain-http", "--no-tty", src, str(layout)))
    assert text.stdout.splitlines() == [
        f"Backed up {src} => {layout}:v1",
        f"Digest: {pushed['digest']}",
    ]
    blobs = {p.name for p in (layout / "blobs" / "sha256").iterdir()}
    assert sig.removeprefix("sha256:") in blobs
    archive = work / "backup.tar"
    doc = ok(aioras("backup", "--plain-http", "--format", "json", src, str(archive))).json()
    assert doc["digest"] == pushed["digest"]
    assert doc["tag"] == "v1"
    assert [p.name for p in work.iterdir() if p.name.startswith(".backup.tar")] == []
    for source, name in ((layout, "restored-dir"), (archive, "restored-tar")):
        dst = f"{registry.host}/cli/{name}"
        back = ok(aioras("restore", "--plain-http", "--format", "json", str(source), dst)).json()
        assert back["digest"] == pushed["digest"]
        assert ok(aioras("resolve", "--plain-http", f"{dst}:v1")).stdout.strip() == back["digest"]
        found = ok(aioras("discover", "--plain-http", "--format", "json", f"{dst}:v1")).json()
        assert [r["digest"] for r in found["referrers"]] == [sig]
    text = ok(aioras("restore", "--plain-http", f"{archive}:v1", f"{registry.host}/cli/rt:r2"))
    assert text.stdout.splitlines()[-1] == f"Digest: {pushed['digest']}"
    assert (
        ok(aioras("resolve", "--plain-http", f"{registry.host}/cli/rt:r2")).stdout.strip()
        == pushed["digest"]
    )
