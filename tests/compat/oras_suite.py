"""Run oras-py 0.2.43's own test suite against aioras (``nox -s compat``).

The suite is never kept in this repository: it is downloaded as the ``oras==0.2.43`` sdist
from the package index, its ``oras/tests/`` folder is extracted into a temporary directory,
and the module name ``oras`` is renamed to ``aioras`` in its Python code (name tokens only:
strings, comments and file contents are left as they are). It then runs in two passes, as
oras-py's own CI runs it:

1. a plain-http registry (``ORAS_HOST``/``ORAS_PORT``);
2. an htpasswd registry over TLS with ``ORAS_AUTH=true``, ``ORAS_USER`` and ``ORAS_PASS``.

Each pass has its own ``HOME``, so a login saved by one cannot help the other. Usage::

    python tests/compat/oras_suite.py            # both passes, without the 16 GiB test
    python tests/compat/oras_suite.py --slow     # both passes, with it
    python tests/compat/oras_suite.py --sdist oras-0.2.43.tar.gz -- -x -q

Exit status: 0 when every selected test passed in both passes.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tokenize
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from aioras.testing import LocalRegistry

ORAS_VERSION = "0.2.43"

#: Tests that cannot run here (no internet), each with the reason. The two bad-CA tests
#: would also fail online: they expect requests' SSLError, where aioras raises
#: aioras.exceptions.ConnectError (a difference the README states).
NEEDS_INTERNET = {
    "test_oras.py::test_get_many_tags": "lists tags of a repository on ghcr.io",
    "test_oras.py::test_ssl_no_verify": "lists tags of a repository on ghcr.io",
    "test_oras.py::test_ssl_verify_fails_if_bad_ca": "expects ghcr.io's TLS handshake to fail "
    "with requests' SSLError",
    "test_oras.py::test_ssl_verify_fails_fast_if_bad_ca": "expects ghcr.io's TLS handshake to "
    "fail with requests' SSLError",
}
#: Outside the default CI time budget; run by ``--slow`` (``nox -s compat_slow``).
SLOW = {
    "test_provider.py::test_chunked_push": "writes and pushes a 16 GiB sparse file",
}


def rename_module(source: str, old: str = "oras", new: str = "aioras") -> str:
    """Rename every Python name token ``old`` to ``new``; strings and comments are kept."""
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    lines = source.splitlines(keepends=True)
    # Edit from the end so that earlier positions stay valid.
    for tok in reversed(tokens):
        if tok.type == tokenize.NAME and tok.string == old:
            (row, col), (_, end) = tok.start, tok.end
            line = lines[row - 1]
            lines[row - 1] = line[:col] + new + line[end:]
    return "".join(lines)


def download_sdist(directory: Path) -> Path:
    """``pip download`` the oras-py sdist into ``directory`` and return its path."""
    subprocess.run(
        [
            sys.executable, "-m", "pip", "download", f"oras=={ORAS_VERSION}",
            "--no-binary", ":all:", "--no-deps", "--quiet", "--dest", str(directory),
        ],
        check=True,
    )  # fmt: skip
    found = sorted(directory.glob(f"oras-{ORAS_VERSION}.tar.gz"))
    if not found:
        raise SystemExit(f"compat: pip download left no oras-{ORAS_VERSION}.tar.gz")
    return found[0]


def extract_suite(sdist: Path, directory: Path) -> Path:
    """Extract ``oras/tests/`` and the pytest settings; return the tests directory."""
    top = f"oras-{ORAS_VERSION}/"
    with tarfile.open(sdist) as tar:
        members = [
            m
            for m in tar.getmembers()
            if m.name.startswith(top + "oras/tests/") or m.name == top + "pyproject.toml"
        ]
        tar.extractall(directory, members=members, filter="data")
    root = directory / top
    tests = root / "oras" / "tests"
    for path in tests.rglob("*.py"):
        path.write_text(rename_module(path.read_text(encoding="utf-8")), encoding="utf-8")
    return tests


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"compat: {name} not found (scripts/bootstrap installs it)")
    return found


def make_tls_files(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            _tool("openssl"), "req", "-x509", "-nodes", "-days", "2",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def make_htpasswd(path: Path, user: str, password: str) -> Path:
    """A bcrypt htpasswd file (distribution accepts no other hash) with one user."""
    line = subprocess.run(
        [_tool("htpasswd"), "-Bbn", user, password], check=True, capture_output=True, text=True
    ).stdout.strip()
    path.write_text(line + "\n", encoding="utf-8")
    return path


@contextmanager
def registries(work: Path) -> Iterator[list[tuple[str, LocalRegistry, dict[str, str]]]]:
    """Start both registries; yield ``(pass name, registry, environment)`` for each."""
    user, password = "oras-compat", "compat-pa55word"
    cert, key = make_tls_files(work)
    htpasswd = make_htpasswd(work / "htpasswd", user, password)
    with ExitStack() as stack:
        plain = stack.enter_context(LocalRegistry())
        secure = stack.enter_context(LocalRegistry(htpasswd=htpasswd, tls_cert=cert, tls_key=key))
        auth_env = {"ORAS_AUTH": "true", "ORAS_USER": user, "ORAS_PASS": password}
        yield [
            ("plain-http", plain, {"ORAS_AUTH": "false"}),
            ("htpasswd-tls", secure, auth_env),
        ]


def run_pass(
    name: str,
    registry: LocalRegistry,
    extra_env: dict[str, str],
    tests: Path,
    work: Path,
    deselect: Sequence[str],
    pytest_args: Sequence[str],
) -> int:
    """Run the suite once against ``registry``; return pytest's exit status."""
    home = work / f"home-{name}"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORAS_", "DOCKER_CONFIG"))}
    env |= {"HOME": str(home), "ORAS_HOST": "127.0.0.1", "ORAS_PORT": str(registry.port)}
    env |= extra_env
    env.pop("PYTEST_ADDOPTS", None)  # CI's junit path belongs to the project's own suite
    root = tests.parent.parent
    command = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
        "-c", str(root / "pyproject.toml"), "--rootdir", str(root), "-rs",
        *(f"--deselect=oras/tests/{test}" for test in deselect),
        *pytest_args, str(tests),
    ]  # fmt: skip
    print(f"compat: pass {name} against {registry.url}", flush=True)
    return subprocess.run(command, cwd=root, env=env, check=False).returncode


def main(argv: Sequence[str] | None = None) -> int:
    """Download, rename and run the suite; 0 when both passes pass."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", action="store_true", help="also run the 16 GiB push test")
    parser.add_argument("--sdist", type=Path, help="use this sdist instead of downloading it")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)

    deselect = list(NEEDS_INTERNET) + ([] if args.slow else list(SLOW))
    for test in deselect:
        print(f"compat: deselected {test}: {NEEDS_INTERNET.get(test) or SLOW[test]}")
    with tempfile.TemporaryDirectory(prefix="aioras-compat-") as tmp:
        work = Path(tmp)
        sdist = args.sdist.resolve() if args.sdist else download_sdist(work)
        tests = extract_suite(sdist, work / "suite")
        status = 0
        with registries(work) as passes:
            for name, registry, env in passes:
                code = run_pass(name, registry, env, tests, work, deselect, args.pytest_args)
                print(f"compat: pass {name} finished with status {code}", flush=True)
                status = status or code
        return status


if __name__ == "__main__":
    sys.exit(main())
