"""Where the bench writes: a journaled ext4 made for the run, as users' disks are made.

The development VM's root file system is an ext4 without a journal. Without a journal,
ext4 will not reuse an inode freed less than a minute ago (five while its inode-table
block is not written back), and it finds a free inode by checking every freed one of the
block group in turn. So after the bench deletes a registry or an output directory, every
file created costs 0.6-0.9 ms of kernel CPU instead of 25-30 us (2,000 files: 1.3-1.7 s
against 0.05 s on a journaled ext4; ``perf`` puts 85 % of it in ``recently_deleted``,
``find_get_block_common``, ``ext4_get_group_desc`` and ``find_inode_bit``). The
registries create several files and directories per blob upload and a pull one per
layer, so a client keeping both cores busy lost to the registries' inode searches, more
with every round, while one waiting on round trips hardly noticed.

``mkfs.ext4`` makes a journal by default, and with one that check is off. Unless told
otherwise (``--scratch-fs tmp``) the bench makes such a file system in a sparse image,
mounts it (root, a loop device) and puts its temporary directory there: the registries'
storage, every tool's output and staging. When it cannot, it says why and writes in the
default temporary directory, as before.

It is mounted ``nobarrier`` so that only the inode search changes: an fsync (the
registry makes one per blob and per link it writes) then costs what it costs on the
VM's root, 0.23-0.29 ms against 0.23-0.33 ms (0.82 ms with barriers, through the loop
device's flush of its image file). A sequential client waits on every fsync, so a
dearer one would slow it more than a concurrent one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

IMAGE_GIB = 48  # sparse: the 1 GiB rows leave at most about 14 GiB in the registry


def create_cost_us(parent: str, files: int = 300) -> float:
    """Microseconds of this process's CPU per file created (and written) under ``parent``."""
    directory = tempfile.mkdtemp(prefix="create-probe-", dir=parent)
    try:
        started = time.process_time()
        for i in range(files):
            fd = os.open(os.path.join(directory, f"f{i}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            try:
                os.write(fd, b"x")
            finally:
                os.close(fd)
        return round((time.process_time() - started) / files * 1e6, 1)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True)


def _make(holder: Path) -> tuple[str | None, str | None, str]:
    """Make and mount the image in ``holder``: (mount point, loop device, what was done),
    or (None, None, why not)."""
    image, mountpoint = holder / "scratch.img", holder / "mnt"
    device = None
    try:
        mountpoint.mkdir()
        with open(image, "wb") as fd:
            fd.truncate(IMAGE_GIB << 30)
        _run("mkfs.ext4", "-q", "-F", "-O", "has_journal", str(image))
        device = _attach(image)
        _run("mount", "-o", "discard,nobarrier", device, str(mountpoint))
    except (OSError, subprocess.CalledProcessError) as error:
        if device is not None:
            subprocess.run(["losetup", "-d", device], check=False, capture_output=True)
        detail = str(getattr(error, "stderr", None) or error).strip()[:200]
        return None, None, f"default temporary directory (no journaled ext4: {detail})"
    mountpoint.chmod(0o1777)
    what = f"journaled ext4 in {image} ({IMAGE_GIB} GiB sparse, {device} direct I/O, nobarrier)"
    return str(mountpoint), device, what


def _attach(image: Path) -> str:
    """A loop device for ``image``, reading and writing it with direct I/O.

    Buffered, the loop device's worker copies every byte written into the image file's
    own page cache and writes it back from there: 1 GiB written and synced cost 0.70-0.91 s
    of CPU, against 0.44-0.55 s with direct I/O and 0.42 s on the VM's root. In a full run
    the 1 GiB push rows showed 2.5-2.9 s of "others" CPU, beside the registry, on two cores.
    """
    found = subprocess.run(
        ["losetup", "--find", "--show", "--direct-io=on", str(image)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return found.stdout.strip()


@contextlib.contextmanager
def journaled_scratch(parent: str | None = None) -> Iterator[tuple[str | None, str]]:
    """Mount a new journaled ext4 for the run; yield (its path or None, what was done).

    The image lives in ``parent`` (default: the temporary directory), is mounted with
    ``discard`` so that deleted files give their space back and ``nobarrier`` (see the
    module), and is unmounted and deleted at the end.
    """
    tools = ("mkfs.ext4", "losetup", "mount", "umount")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if os.geteuid() != 0 or missing:
        why = f"missing {', '.join(missing)}" if missing else "not root"
        yield None, f"default temporary directory ({why}: no journaled ext4 made)"
        return
    holder = Path(tempfile.mkdtemp(prefix="aioras-bench-fs-", dir=parent))
    path, device, where = _make(holder)
    try:
        yield path, where
    finally:
        if path is not None and device is not None:
            subprocess.run(["umount", path], check=False, capture_output=True)
            subprocess.run(["losetup", "-d", device], check=False, capture_output=True)
        shutil.rmtree(holder, ignore_errors=True)


@contextlib.contextmanager
def scratch_temp(kind: str) -> Iterator[dict[str, object]]:
    """The run's temporary directory, ``kind`` ``ext4`` (see the module) or ``tmp``.

    Sets ``TMPDIR`` and ``tempfile.tempdir`` for the bench and the tools it starts, and
    yields what was done, with the per-file creation cost on both file systems.
    """
    default = tempfile.gettempdir()
    info: dict[str, object] = {"default_dir": default, "default_create_us": create_cost_us(default)}
    if kind == "tmp":
        info.update(kind="tmp", where="default temporary directory (--scratch-fs tmp)")
        yield info
        return
    with journaled_scratch() as (path, where):
        info.update(kind="ext4" if path else "tmp", where=where)
        if path is None:
            yield info
            return
        info["create_us"] = create_cost_us(path)
        saved = os.environ.get("TMPDIR")
        os.environ["TMPDIR"], tempfile.tempdir = path, path
        try:
            yield info
        finally:
            tempfile.tempdir = None
            if saved is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = saved
