"""Small parts of oras-py 0.2.43's surface that ported code (and its test suite) relies on."""

from __future__ import annotations

import os
import pydoc
import shutil
from pathlib import Path

import pytest

import aioras
import aioras.client
import aioras.provider
import aioras.utils
from aioras import defaults
from aioras.logger import logger as oras_logger
from compat.oras_suite import rename_module


def test_help_of_push_and_pull_shows_their_behaviour() -> None:
    push_help = pydoc.render_doc(aioras.AsyncRegistry.push)
    pull_help = pydoc.render_doc(aioras.AsyncRegistry.pull)
    for text in ("annotation_file", "manifest_config", "Raises", "UnsafePathError"):
        assert text in push_help
    for text in ("outdir", "overwrite", "DigestMismatch", "Raises"):
        assert text in pull_help
    assert aioras.Registry.push.__doc__ == aioras.AsyncRegistry.push.__doc__


def test_client_is_the_registry_with_every_endpoint() -> None:
    client = aioras.client.OrasClient("registry.test")
    try:
        assert isinstance(client, aioras.provider.Registry)
        assert client.remote is client
        for name in ("get_container", "get_manifest", "delete_tag", "upload_blob", "login"):
            assert callable(getattr(client, name))
    finally:
        client.close()
    assert issubclass(aioras.client.AsyncOrasClient, aioras.AsyncRegistry)


def test_provider_logger_is_oras_py_logger_object() -> None:
    assert aioras.provider.logger is oras_logger


def test_parse_manifest_ref_defaults_to_the_unknown_config_type() -> None:
    reg = aioras.provider.Registry("registry.test")
    try:
        assert reg._parse_manifest_ref("conf.json:application/x+json") == (
            "conf.json",
            "application/x+json",
        )
        assert reg._parse_manifest_ref("/dev/null") == (
            "/dev/null",
            defaults.unknown_config_media_type,
        )
    finally:
        reg.close()


def test_sanitize_path_error_has_oras_py_wording(tmp_path: Path) -> None:
    outside = tmp_path.parent
    with pytest.raises(ValueError, match="is not in") as info:
        aioras.utils.sanitize_path(tmp_path, outside)
    assert (
        str(info.value) == f"Filename {outside.resolve()} is not in {tmp_path.resolve()} directory"
    )


def test_default_temporary_names_start_with_oras() -> None:
    made = aioras.utils.get_tmpdir()
    try:
        assert os.path.basename(made).startswith("oras-tmp.")
    finally:
        shutil.rmtree(made)


def test_compat_rename_touches_module_names_only() -> None:
    source = (
        "import oras.client\n"
        "from oras.layout import Layout\n"
        "x = oras.provider.Registry  # oras stays in comments\n"
        "assert name.startswith('oras')\n"
        "orasy = 1\n"
    )
    assert rename_module(source) == (
        "import aioras.client\n"
        "from aioras.layout import Layout\n"
        "x = aioras.provider.Registry  # oras stays in comments\n"
        "assert name.startswith('oras')\n"
        "orasy = 1\n"
    )
