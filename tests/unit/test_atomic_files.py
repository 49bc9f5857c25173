"""Every small file aioras rewrites goes through one atomic writer: whole, or not at all."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import aioras

# In a child whose files may not grow past 64 KiB (SIGXFSZ ignored, so the kernel cuts the
# write short and then refuses with EFBIG, as a full disk does with ENOSPC). Each writer is
# handed 200 kB; what it raises is printed.
_FULL_DISK = """
import resource, signal, sys
import anyio
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
path = sys.argv[2]
def run():
    if sys.argv[1] == "write_file":
        from aioras.utils import fileio
        fileio.write_file(path, b"n" * 200_000, "wb")
    elif sys.argv[1] == "docker_config":
        from aioras.auth.login import write_config
        write_config(path, {"auths": {"h": {"auth": "a" * 200_000}}})
    elif sys.argv[1] == "mirror_state":
        from aioras.operations.mirror.state import MirrorState
        state = MirrorState(path)
        async def record():
            for i in range(2000):
                state.done[f"job{i} -> there"] = "sha256:" + "0" * 64
            await state.record("last -> there", "sha256:" + "1" * 64)
        anyio.run(record)
try:
    run()
except OSError as error:
    print(type(error).__name__, error.errno)
"""


@pytest.mark.parametrize("writer", ["write_file", "docker_config", "mirror_state"])
def test_every_small_file_writer_on_a_full_disk_fails_typed_and_keeps_old_content(
    tmp_path: Path, writer: str
) -> None:
    path = tmp_path / "doc.json"
    old = b'{"version": 1, "complete": false, "done": {}}'  # a mirror state, and JSON
    path.write_bytes(old)
    env = {**os.environ, "PYTHONPATH": str(Path(aioras.__file__).parent.parent)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, writer, str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == ["StorageError", str(errno.EFBIG)]
    assert path.read_bytes() == old
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names in (["doc.json"], ["doc.json", "doc.json.lock"])


def test_docker_config_and_mirror_state_stay_private_to_their_owner(tmp_path: Path) -> None:
    import anyio

    from aioras.auth.login import write_config
    from aioras.operations.mirror.state import MirrorState

    config = tmp_path / "config.json"
    config.write_text("{}")
    config.chmod(0o644)
    write_config(config, {"auths": {}})
    assert stat.S_IMODE(config.stat().st_mode) == 0o600

    state = MirrorState(tmp_path / "state.json")
    anyio.run(state.record, "a -> b", "sha256:1")
    assert stat.S_IMODE(state.path.stat().st_mode) == 0o600
    assert MirrorState.load(state.path).known("a -> b") == "sha256:1"
