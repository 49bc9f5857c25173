"""The registry never writes to the user's terminal: the real CLI against a hostile registry.

A registry chooses tag and repository names, referrers' artifact types, error messages and
``Warning`` headers; each test sends terminal control sequences (OSC window title, CSI erase
and cursor moves, 8-bit CSI, bidi override, a newline posing as a second line) down one print
path of the command and checks the bytes that come out: no control or format character
arrives, and each string is still recognisable, its controls shown as escapes.
"""

from __future__ import annotations

import hashlib
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from support.clitools import aioras_bytes, cli_env
from support.hostileregistry import Answer, hostile_registry, json_answer

pytestmark = pytest.mark.integration

OSC_TITLE = "\x1b]0;pwned\x07"
CSI_ERASE = "\x1b[2K\x1b[1A"
C1_CSI = "\x9b31m"
BIDI = "\u202egpj.exe"
FAKE_LINE = "a\nDigest: sha256:fake"
# Each hostile string, and how the output must show it.
ATTACKS = {
    "v1" + OSC_TITLE: "v1\\x1b]0;pwned\\x07",
    "v2" + CSI_ERASE: "v2\\x1b[2K\\x1b[1A",
    "v3" + C1_CSI: "v3\\x9b31m",
    "v4" + BIDI: "v4\\u202egpj.exe",
    "v5" + FAKE_LINE: "v5a\\nDigest: sha256:fake",
    "v6\x7f[bold]": "v6\\x7f[bold]",
}
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def inert(data: bytes) -> str:
    """``data`` as text, after checking that no character in it steers a terminal."""
    text = data.decode("utf-8")
    assert b"\x1b" not in data
    assert b"\x07" not in data
    assert b"\x7f" not in data
    assert "\x9b" not in text
    assert "\u202e" not in text
    assert all(c.isprintable() or c == "\n" for c in text), repr(text)
    return text


def recognisable(text: str) -> None:
    for shown in ATTACKS.values():
        assert shown in text.splitlines() or any(shown in line for line in text.splitlines())


def manifest_bytes(subject: str | None = None) -> bytes:
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": "application/x.demo",
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "size": 2,
        },
        "layers": [],
    }
    if subject:
        doc["subject"] = {"mediaType": MANIFEST, "digest": subject, "size": 1}
    return json.dumps(doc).encode()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hostile_error(status: int = 400) -> Answer:
    return json_answer(
        {"errors": [{"code": "DENIED", "message": "denied" + OSC_TITLE + CSI_ERASE + C1_CSI}]},
        status,
    )


def test_tag_names_with_escape_sequences_are_shown_escaped_by_repo_tags() -> None:
    def script(method: str, path: str, query: str) -> Answer | None:
        return json_answer({"name": "x", "tags": list(ATTACKS)}) if "tags/list" in path else None

    with hostile_registry(script) as server:
        status, out, err = aioras_bytes("repo", "tags", "--plain-http", server.ref("x"))
    assert status == 0, err
    text = inert(out)
    recognisable(text)
    assert len(text.splitlines()) == len(ATTACKS)  # a newline in a name is no second line


def test_catalog_names_with_escape_sequences_are_shown_escaped_by_repo_ls() -> None:
    def script(method: str, path: str, query: str) -> Answer | None:
        return json_answer({"repositories": list(ATTACKS)}) if path == "/v2/_catalog" else None

    with hostile_registry(script) as server:
        status, out, err = aioras_bytes("repo", "ls", "--plain-http", server.host)
    assert status == 0, err
    text = inert(out)
    recognisable(text)
    assert len(text.splitlines()) == len(ATTACKS)


def referrers_script(kinds: list[str]) -> tuple[str, object]:
    """A subject ``x:v1`` with one referrer per hostile artifact type."""
    subject = manifest_bytes()
    digest = sha256(subject)
    entries = [
        {"mediaType": MANIFEST, "digest": "sha256:" + f"{i:064x}", "size": 10, "artifactType": k}
        for i, k in enumerate(kinds, 1)
    ]

    def script(method: str, path: str, query: str) -> Answer | None:
        if path == "/v2/x/manifests/v1" or path == f"/v2/x/manifests/{digest}":
            headers = {"Content-Type": MANIFEST, "Docker-Content-Digest": digest}
            return 200, headers, subject
        if path.startswith("/v2/x/referrers/"):
            found = entries if path.endswith(digest) else []
            doc = {"schemaVersion": 2, "mediaType": INDEX, "manifests": found}
            return 200, {"Content-Type": INDEX}, doc
        return None

    return digest, script


# The descriptor schema refuses C0 controls and DEL in an artifactType (see the next test);
# what it lets through (8-bit CSI, bidi overrides) must still reach the terminal inert.
SCHEMA_PASSES = {k: v for k, v in ATTACKS.items() if not any(c < " " or c == "\x7f" for c in k)}


@pytest.mark.parametrize("output", ["tree", "table"])
def test_artifact_types_with_escape_sequences_are_shown_escaped_by_discover(output: str) -> None:
    _, script = referrers_script(list(SCHEMA_PASSES))
    with hostile_registry(script) as server:  # type: ignore[arg-type]
        status, out, err = aioras_bytes(
            "discover", "--plain-http", "--output", output, server.ref("x:v1")
        )
    assert status == 0, err
    text = inert(out)
    for shown in SCHEMA_PASSES.values():
        assert any(shown in line for line in text.splitlines())
    # The subject or the header, then one line each.
    assert len(text.splitlines()) == len(SCHEMA_PASSES) + 1


def test_artifact_type_with_c0_controls_is_refused_and_the_error_line_inert() -> None:
    _, script = referrers_script(["v1" + OSC_TITLE])
    with hostile_registry(script) as server:  # type: ignore[arg-type]
        status, out, err = aioras_bytes("discover", "--plain-http", server.ref("x:v1"))
    assert status == 1
    assert inert(out) == ""
    assert len(inert(err).splitlines()) == 1


def test_oci_error_message_with_escape_sequences_is_shown_escaped_on_the_error_line() -> None:
    def script(method: str, path: str, query: str) -> Answer | None:
        return hostile_error() if "tags/list" in path else None

    with hostile_registry(script) as server:
        status, _out, err = aioras_bytes("repo", "tags", "--plain-http", server.ref("x"))
    assert status == 1
    text = inert(err)
    assert "denied\\x1b]0;pwned\\x07\\x1b[2K\\x1b[1A\\x9b31m" in text
    assert len(text.splitlines()) == 1


def test_oci_error_message_with_escape_sequences_is_escaped_in_the_debug_traceback() -> None:
    def script(method: str, path: str, query: str) -> Answer | None:
        return hostile_error() if "tags/list" in path else None

    with hostile_registry(script) as server:
        status, _, err = aioras_bytes("repo", "tags", "-d", "--plain-http", server.ref("x"))
    assert status == 1
    assert "Traceback" in inert(err)


def test_mirror_failure_line_with_escape_sequences_is_shown_escaped(tmp_path: Path) -> None:
    source = manifest_bytes()

    def script(method: str, path: str, query: str) -> Answer | None:
        if method == "HEAD" and path == "/v2/src/manifests/v1":
            # Resolved, then refused when fetched, with the hostile message.
            return 200, {"Content-Type": MANIFEST, "Docker-Content-Digest": sha256(source)}, source
        return hostile_error() if path.startswith("/v2/src/") else None

    with hostile_registry(script) as server:
        plan = tmp_path / "plan.toml"
        plan.write_text(
            f'[[copy]]\nsource = "{server.ref("src:v1")}"\ndestination = "{server.ref("dst:v1")}"\n'
        )
        status, out, err = aioras_bytes("mirror", "--plain-http", "--keep-going", str(plan))
    assert status == 1, err
    text = inert(out)
    failed = [line for line in text.splitlines() if line.startswith("Failed ")]
    assert len(failed) == 1
    assert "denied\\x1b]0;pwned\\x07\\x1b[2K\\x1b[1A\\x9b31m" in failed[0]
    assert "denied\\x1b]0;pwned\\x07" in inert(err)  # the log line of the failure


def test_registry_warning_header_with_8bit_csi_is_shown_escaped_in_the_log_line() -> None:
    # ESC cannot travel in a header value (the HTTP parser refuses it); 8-bit CSI and a bidi
    # override in UTF-8 can, and the library logs the registry's Warning headers.
    def script(method: str, path: str, query: str) -> Answer | None:
        if "tags/list" in path:
            warning = '299 - "quota' + C1_CSI + '"'
            return 200, {"Warning": warning}, {"name": "x", "tags": ["v1"]}
        return None

    with hostile_registry(script) as server:
        status, out, err = aioras_bytes("repo", "tags", "--plain-http", server.ref("x"))
    assert status == 0, err
    text = inert(err)
    assert "registry warning" in text
    assert "quota\\x9b31m" in text
    assert inert(out) == "v1\n"


def test_manifest_with_escape_sequences_is_shown_escaped_on_a_terminal() -> None:
    # Piped, `manifest fetch` gives the exact bytes; to a terminal, the same text escaped.
    # JSON carries no raw C0 control, but raw C1 controls and bidi overrides are valid in it.
    doc = {"schemaVersion": 2, "mediaType": MANIFEST, "x": C1_CSI + BIDI}
    subject = json.dumps(doc, ensure_ascii=False).encode()
    digest = sha256(subject)

    def script(method: str, path: str, query: str) -> Answer | None:
        if path == "/v2/x/manifests/v1":
            return 200, {"Content-Type": MANIFEST, "Docker-Content-Digest": digest}, subject
        return None

    with hostile_registry(script) as server:
        args = ["manifest", "fetch", "--plain-http", server.ref("x:v1")]
        status, piped, _ = aioras_bytes(*args)
        assert status == 0
        assert piped == subject
        shown = subject.decode().replace("\x9b", "\\x9b").replace("\u202e", "\\u202e")
        assert on_a_terminal(args) == shown


def on_a_terminal(args: list[str]) -> str:
    """What ``aioras ARGS`` writes to stdout when stdout is a terminal (a pseudo-terminal)."""
    leader, follower = pty.openpty()
    done = subprocess.Popen(
        [sys.executable, "-m", "aioras", *args],
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.PIPE,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    _, err = done.communicate(timeout=60)
    assert done.returncode == 0, err
    # The terminal turns "\n" into "\r\n" on the way out.
    return inert(b"".join(chunks).replace(b"\r\n", b"\n"))
