"""A mirror between a plain-http registry and a TLS one with its own CA and credentials.

Each side of a plan entry reaches its registry its own way (``source_connection``,
``destination_connection``): plain http on one, a private CA and basic auth on the other,
the credentials named by environment variables, never written in the plan.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import aioras
from aioras import AsyncRegistry
from aioras.exceptions import InvalidMirrorPlan
from aioras.operations.mirror_plan import Connection, MirrorSpec
from aioras.testing import LocalRegistry
from support.authtools import BasicTLSRegistry
from support.mirrortools import digests, populate, unique

pytestmark = pytest.mark.anyio


async def test_plan_entry_reaches_plain_http_and_tls_with_credentials_per_side(
    registry: LocalRegistry,
    basic_tls_registry: BasicTLSRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = unique("conn/app")
    async with AsyncRegistry(insecure=True) as plain:
        made = await populate(plain, f"{registry.host}/{name}", ["a", "b"])
    secure = basic_tls_registry
    monkeypatch.setenv("I21_MIRROR_USER", secure.username)
    monkeypatch.setenv("I21_MIRROR_PASS", secure.password)
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(
        f'[[mirror]]\nsource = "{registry.host}/{name}"\n'
        f'destination = "{secure.host}/{name}"\n'
        "source_connection = { plain_http = true }\n"
        f'destination_connection = {{ ca_file = "{secure.ca}", '
        'username_env = "I21_MIRROR_USER", password_env = "I21_MIRROR_PASS" }\n'
    )
    plan = aioras.load_plan(plan_file)
    assert plan[0] == MirrorSpec(
        f"{registry.host}/{name}",
        f"{secure.host}/{name}",
        source_connection=Connection(plain_http=True),
        destination_connection=Connection(
            ca_file=str(secure.ca),
            username_env="I21_MIRROR_USER",
            password_env="I21_MIRROR_PASS",
        ),
    )
    # The mirror's own object speaks https with the system CAs and has no credentials:
    # neither side is reachable through it.
    async with AsyncRegistry() as reg:
        report = await reg.mirror(plan)
        assert len(report.copied) == 2
        again = await reg.mirror(plan, dry_run=True)
        assert len(again.skipped) == 2
    async with AsyncRegistry(tls_verify=str(secure.ca)) as check:
        check.set_basic_auth(secure.username, secure.password)
        assert await digests(check, f"{secure.host}/{name}", "ab") == made


def test_a_secret_in_a_plan_is_refused_naming_where_it_belongs(tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(
        '[[mirror]]\nsource = "a.example/x"\ndestination = "b.example/x"\n'
        'destination_connection = { username = "me", password = "hunter2" }\n'
    )
    with pytest.raises(InvalidMirrorPlan) as info:
        aioras.load_plan(plan_file)
    message = str(info.value)
    assert "destination_connection" in message
    assert "password_env" in message
    assert "hunter2" not in message
