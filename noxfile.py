"""Developer and CI sessions: ``nox -s tests``, ``lint typecheck``, docs, demo, examples, bench.

Every tool is pinned so that CI and laptops run the same thing. External programs the tests
need (the ``docker-registry`` and ``skopeo`` binaries, ``openssl``, ``htpasswd``) come from the
system: ``scripts/bootstrap`` installs them on Debian/Ubuntu.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_external_run = True
nox.options.sessions = ["tests", "lint", "typecheck"]

ROOT = Path(__file__).parent

PYTEST = ("pytest==9.2.0", "pytest-timeout==2.4.0")
TEST_DEPS = (
    *PYTEST,
    "hypothesis==6.170.15",
    # oras-py is the interoperability peer; this exact version is what aioras is compared with.
    "oras==0.2.43",
    # The bearer-token auth tests sign JWTs for the registry with it.
    "cryptography==50.0.2",
    # The mirror's Dask path is tested on a LocalCluster (the aioras[dask] extra).
    "dask[distributed]==2026.8.0",
    # The command line's renderer (the cli extra); the CLI tests run the real command.
    "rich==15.0.0",
)
# oras-py's own suite imports requests (one exception class) and boto3 (its ECR test); oras
# itself is deliberately absent, so that every import the suite makes is aioras's.
COMPAT_DEPS = (*PYTEST, "requests==2.34.2", "boto3==1.44.8")
RUFF = "ruff==0.17.6"
MYPY = ("mypy==2.4.1", "types-aiofiles==25.1.0.20261107", "types-jsonschema==4.26.0.20261006")
BENCH_DEPS = ("oras==0.2.43", "psutil==7.2.2")
DOCS_DEPS = (
    "mkdocs==1.6.1",
    "mkdocs-material==9.8.2",
    "mkdocstrings==1.0.8",
    "mkdocstrings-python==2.0.11",
)


def _existing(*paths: str) -> list[str]:
    """Lint targets that exist in this checkout (git does not keep empty directories)."""
    return [p for p in paths if (ROOT / p).exists()]


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (default: all of it); ``nox -s tests -- -m "not integration"`` etc."""
    session.install("-e", ".", *TEST_DEPS)
    # Exit status 5 (no tests collected) is not in success_codes: an empty run fails.
    session.run("pytest", *session.posargs, success_codes=[0])


@nox.session
def compat(session: nox.Session) -> None:
    """oras-py 0.2.43's own test suite, fetched from the index, run against aioras.

    Two passes (plain http; htpasswd over TLS): see ``tests/compat/oras_suite.py``. The
    16 GiB chunked-push test is left to ``compat_slow``; arguments after ``--`` go to pytest.
    """
    session.install("-e", ".", *COMPAT_DEPS)
    session.run("python", "tests/compat/oras_suite.py", "--", *session.posargs)


@nox.session
def compat_slow(session: nox.Session) -> None:
    """``compat`` with the 16 GiB chunked-push test (needs ~32 GiB free disk and time)."""
    session.install("-e", ".", *COMPAT_DEPS)
    session.run("python", "tests/compat/oras_suite.py", "--slow", "--", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check; no function in src/ over 60 lines of code."""
    session.install(RUFF)
    targets = _existing("src", "tests", "examples", "benchmarks", "scripts", "noxfile.py")
    session.run("ruff", "check", *targets)
    session.run("ruff", "format", "--check", *targets)
    # Docstrings cross-reference as [`X`][aioras.X]; mkdocstrings shows a Sphinx role as text.
    session.run("python", "scripts/convert_roles.py", "--check")
    # Its ALLOWED list holds the functions still to be split; a new long one fails.
    session.run("python", "scripts/function_lengths.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package (settings in pyproject.toml)."""
    # The cli extra: mypy checks the progress renderer against rich's own types.
    session.install("-e", ".[cli]", *MYPY)
    session.run("mypy", "--strict", "src/aioras")


@nox.session
def demo(session: nox.Session) -> None:
    """The end-to-end demo against a local registry."""
    session.install("-e", ".")
    session.run("python", "examples/demo.py", *session.posargs)


@nox.session
def examples(session: nox.Session) -> None:
    """Runs every example and checks what it did."""
    session.install("-e", ".", *TEST_DEPS)
    session.run("pytest", "tests/integration/test_examples.py", *session.posargs, success_codes=[0])


@nox.session
def bench(session: nox.Session) -> None:
    """aioras against oras-py; arguments after ``--`` go to benchmarks/bench.py.

    ``--section wan`` dials the registries by /etc/hosts aliases of 127.0.0.1: the hosts
    step of ``scripts/bootstrap`` adds them first (it needs root or sudo, once).
    """
    session.install("-e", ".", *BENCH_DEPS)
    if "wan" in session.posargs or "--section=wan" in session.posargs:
        session.run(str(ROOT / "scripts" / "bootstrap"), "--hosts", external=True)
    session.run("python", "benchmarks/bench.py", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site (mkdocs, API reference from the docstrings) into build/site.

    Built with ``--strict``: a warning (a broken link, a docstring griffe cannot place)
    fails the session; then ``scripts/check_docs_site.py`` reads the pages: no literal
    Sphinx role, a parameters table for every callable, an entry for every name in
    ``aioras.__all__``. ``nox -s docs -- serve`` serves it with live reload instead.
    """
    session.install(*DOCS_DEPS)
    env = {"NO_MKDOCS_2_WARNING": "1"}
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", *session.posargs[1:], env=env)
        return
    session.run("mkdocs", "build", "--strict", *session.posargs, env=env)
    if not session.posargs:  # the site is where mkdocs.yml puts it
        session.run("python", "scripts/check_docs_site.py", "build/site")
