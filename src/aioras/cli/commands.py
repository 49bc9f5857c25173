"""The verbs of the ``aioras`` command, one coroutine each, on the library's operations.

Each takes the :class:`Context` of one invocation: the parsed arguments, the open
:class:`~aioras.AsyncRegistry`, the output and the progress display. A verb prints its
result through :class:`~aioras.cli.output.Output` (text, or one JSON document).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from .. import defaults
from ..content.layout import OCILayout
from ..descriptor import as_descriptor
from ..digest import digest_file
from ..operations.copy import copy as copy_operation
from ..operations.discover import ReferrerNode
from ..progress import EventKind, ProgressCallback, ProgressReporter
from ..remote.registry import AsyncRegistry
from .output import Output, descriptor_doc, referrer_table, referrer_tree
from .progress import show
from .run import UsageError

__all__ = ["Context", "invoke"]


@dataclass
class Context:
    """One invocation: its arguments, registry client and output."""

    args: argparse.Namespace
    registry: AsyncRegistry
    out: Output


Verb = Callable[[Context], Awaitable[None]]


async def invoke(verb: Verb, args: argparse.Namespace) -> None:
    """Open the registry client the flags describe, run ``verb``, close the client."""
    if args.plain_http and (args.insecure or args.ca_file):
        raise UsageError("--plain-http speaks no TLS: drop --insecure and --ca-file")
    tls_verify: bool | str = args.ca_file or not args.insecure
    password = args.password
    if args.password_stdin:
        password = (await anyio.to_thread.run_sync(sys.stdin.readline)).rstrip("\r\n")
    async with AsyncRegistry(insecure=args.plain_http, tls_verify=tls_verify) as registry:
        if args.registry_config:
            registry.load_configs(configs=[args.registry_config])
        if args.username and password and args.run != "login":
            registry.set_basic_auth(args.username, password)
        args.password = password
        await verb(Context(args, registry, Output(args.format)))


def _annotations(args: argparse.Namespace) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in args.annotation:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"annotation {item!r} is not KEY=VALUE")
        found[key] = value
    return found


async def push(ctx: Context) -> None:
    """``aioras push REF FILE[:TYPE]...``."""
    args = ctx.args
    if not args.files and not args.config:
        raise UsageError("push needs at least one FILE (or --config)")
    with show(tty=False if args.no_tty else None) as progress:
        response = await ctx.registry.push(
            args.reference,
            files=args.files,
            manifest_config=args.config,
            annotation_file=args.annotation_file,
            manifest_annotations=_annotations(args) or None,
            artifact_type=args.artifact_type,
            disable_path_validation=args.disable_path_validation,
            concurrency=args.concurrency,
            progress=progress,
            quiet=True,
        )
    digest = response.headers.get("docker-content-digest")
    descriptor = await ctx.registry.resolve(args.reference)
    if digest and digest != descriptor["digest"]:
        raise RuntimeError(f"{args.reference} moved to {descriptor['digest']} during the push")
    ctx.out.result(
        {"reference": args.reference, **descriptor_doc(descriptor)},
        f"Pushed {args.reference}\nDigest: {descriptor['digest']}",
    )


async def pull(ctx: Context) -> None:
    """``aioras pull REF -o DIR``."""
    args = ctx.args
    with show(tty=False if args.no_tty else None) as progress:
        paths = await ctx.registry.pull(
            args.reference,
            outdir=args.output,
            overwrite=not args.keep_old_files,
            concurrency=args.concurrency,
            progress=progress,
            platform=args.platform,
        )
    ctx.out.result(
        {"reference": args.reference, "files": [{"path": p} for p in paths]},
        "\n".join([*(f"Downloaded {p}" for p in paths), f"Pulled {args.reference}"]),
    )


def _layout_ref(spec: str) -> tuple[str, str | None]:
    """``PATH[:tag|@digest]`` of an OCI layout: the path and the reference, if any."""
    path, at, digest = spec.partition("@")
    if at:
        return path, digest
    head, colon, tag = spec.rpartition(":")
    if colon and head and "/" not in tag and os.sep not in tag:
        return head, tag
    return spec, None


async def _open_layout(path: str) -> OCILayout:
    """The layout at ``path``: a directory, or else a layout tar opened read-only."""
    return OCILayout(path) if await anyio.Path(path).is_dir() else await OCILayout.from_tar(path)


def _registry_target(registry: AsyncRegistry, spec: str) -> tuple[Any, str | None]:
    """The repository ``spec`` names, and its tag when ``spec`` names one."""
    container = registry.get_container(spec)
    named = ":" in spec.rpartition("/")[2].partition("@")[0]
    return registry.repository(container), container.tag if named and not container.digest else None


def _kept_tag(src_ref: str) -> str | None:
    """With no destination tag named, the source's tag is kept (as oras does); a digest is not."""
    return None if src_ref.startswith("sha") and ":" in src_ref else src_ref


async def cp(ctx: Context) -> None:
    """``aioras cp SRC DST`` between registries and OCI layout directories."""
    args = ctx.args
    if args.depth is not None and not args.recursive:
        raise UsageError("--depth needs -r")
    registry = ctx.registry
    src: Any
    dst: Any
    if args.from_oci_layout:
        path, src_ref = _layout_ref(args.source)
        src = await _open_layout(path)
    else:
        container = registry.get_container(args.source)
        src, src_ref = registry.repository(container), container.reference
    if src_ref is None:
        raise UsageError(f"{args.source}: name a tag or digest to copy (PATH:tag)")
    if args.to_oci_layout:
        path, dst_ref = _layout_ref(args.destination)
        dst = OCILayout(path)
    else:
        dst, dst_ref = _registry_target(registry, args.destination)
    if dst_ref is None and not ("@" in args.destination and not args.to_oci_layout):
        dst_ref = _kept_tag(src_ref)
    with show(tty=False if args.no_tty else None) as progress:
        root = await copy_operation(
            src,
            src_ref,
            dst,
            dst_ref,
            referrers=args.recursive,
            depth=args.depth,
            artifact_type=args.artifact_type,
            platforms=args.platform,
            concurrency=args.concurrency or 3,
            progress=progress,
        )
    ctx.out.result(
        {"source": args.source, "destination": args.destination, **descriptor_doc(root)},
        f"Copied {args.source} => {args.destination}\nDigest: {root['digest']}",
    )


async def manifest_fetch(ctx: Context) -> None:
    """``aioras manifest fetch REF``: the exact bytes, or the descriptor."""
    args = ctx.args
    if args.descriptor:
        descriptor = await ctx.registry.resolve(args.reference)
        doc = descriptor_doc(descriptor)
        ctx.out.result(doc, json.dumps(doc, indent=2))
        return
    data, descriptor = await ctx.registry.fetch_manifest_bytes(args.reference)
    if args.output:
        await anyio.Path(args.output).write_bytes(data)
    if ctx.out.json:
        ctx.out.result({**descriptor_doc(descriptor), "content": json.loads(data)}, "")
    elif not args.output:
        ctx.out.raw(data)


async def manifest_push(ctx: Context) -> None:
    """``aioras manifest push REF FILE``: the file's bytes, unchanged."""
    args = ctx.args
    if args.file == "-":
        data = await anyio.to_thread.run_sync(sys.stdin.buffer.read)
    else:
        data = await anyio.Path(args.file).read_bytes()
    media_type = args.media_type
    if not media_type:
        try:
            media_type = json.loads(data).get("mediaType")
        except (ValueError, AttributeError):
            media_type = None
    if not media_type:
        raise UsageError(f"{args.file} names no mediaType: pass --media-type")
    response = await ctx.registry.push_manifest_bytes(data, args.reference, media_type=media_type)
    from ..digest import digest_bytes

    digest = response.headers.get("docker-content-digest") or digest_bytes(data)
    doc = {"mediaType": media_type, "digest": digest, "size": len(data)}
    ctx.out.result(
        {"reference": args.reference, **doc}, f"Pushed {args.reference}\nDigest: {digest}"
    )


async def manifest_delete(ctx: Context) -> None:
    """``aioras manifest delete REF``."""
    container = ctx.registry.get_container(ctx.args.reference)
    descriptor = await ctx.registry.resolve(container)
    await ctx.registry.delete_manifest(container, descriptor["digest"])
    ctx.out.result(
        {"reference": ctx.args.reference, **descriptor_doc(descriptor)},
        f"Deleted {ctx.args.reference}\nDigest: {descriptor['digest']}",
    )


def _blob_digest(ctx: Context) -> tuple[Any, str]:
    container = ctx.registry.get_container(ctx.args.reference)
    if not container.digest:
        raise UsageError(f"{ctx.args.reference}: name the blob by digest (NAME@sha256:...)")
    return container, container.digest


async def blob_fetch(ctx: Context) -> None:
    """``aioras blob fetch NAME@DIGEST -o PATH``, verified."""
    args = ctx.args
    container, digest = _blob_digest(ctx)
    response = await ctx.registry.get_blob(container, digest, head=True)
    size = int(response.headers.get("content-length", 0))
    doc = {"mediaType": "application/octet-stream", "digest": digest, "size": size}
    if args.descriptor:
        ctx.out.result(doc, json.dumps(doc, indent=2))
        return
    if not args.output:
        raise UsageError("blob fetch needs -o PATH (or -o - for standard output)")
    if args.output == "-":
        from ..digest import Verifier

        verifier = Verifier(digest)
        async with ctx.registry.stream_blob(container, digest) as streamed:
            async for chunk in streamed.aiter_bytes():
                verifier.update(chunk)
                sys.stdout.buffer.write(chunk)
        verifier.verify()
        sys.stdout.buffer.flush()
        return
    path = await ctx.registry.download_blob(container, digest, args.output, size=size)
    ctx.out.result({**doc, "path": path}, f"Downloaded {path}\nDigest: {digest}")


async def blob_push(ctx: Context) -> None:
    """``aioras blob push NAME FILE``."""
    args = ctx.args
    digest, size = await digest_file(args.file)
    descriptor = {"mediaType": args.media_type, "digest": digest, "size": size}
    with show(tty=False if args.no_tty else None) as progress:
        await progress_event(progress, "start", descriptor)
        response = await ctx.registry.upload_blob(args.file, args.reference, descriptor)
        kind: EventKind = "skipped" if response.status_code == 200 else "done"
        await progress_event(progress, kind, descriptor)
    ctx.out.result(
        {"reference": args.reference, **descriptor},
        f"Pushed {args.file} to {args.reference}\nDigest: {digest}",
    )


async def progress_event(
    progress: ProgressCallback, kind: EventKind, descriptor: dict[str, Any]
) -> None:
    await ProgressReporter(progress).emit(kind, as_descriptor(descriptor))


async def blob_delete(ctx: Context) -> None:
    """``aioras blob delete NAME@DIGEST``."""
    container, digest = _blob_digest(ctx)
    await ctx.registry.delete_blob(container, digest)
    ctx.out.result(
        {"reference": ctx.args.reference, "digest": digest},
        f"Deleted {ctx.args.reference}",
    )


async def repo_tags(ctx: Context) -> None:
    """``aioras repo tags NAME``."""
    tags = await ctx.registry.get_tags(ctx.args.reference)
    ctx.out.result({"reference": ctx.args.reference, "tags": tags}, "\n".join(tags))


async def tag(ctx: Context) -> None:
    """``aioras tag REF TAG...``."""
    descriptor = await ctx.registry.tag(ctx.args.reference, *ctx.args.tags)
    ctx.out.result(
        {"reference": ctx.args.reference, "tags": ctx.args.tags, **descriptor_doc(descriptor)},
        "\n".join(f"Tagged {t}" for t in ctx.args.tags) + f"\nDigest: {descriptor['digest']}",
    )


async def resolve(ctx: Context) -> None:
    """``aioras resolve REF``: the digest."""
    descriptor = await ctx.registry.resolve(ctx.args.reference)
    ctx.out.result(
        {"reference": ctx.args.reference, **descriptor_doc(descriptor)}, descriptor["digest"]
    )


async def discover(ctx: Context) -> None:
    """``aioras discover REF``: the referrers, as a tree, a table or JSON."""
    args = ctx.args
    tree = await ctx.registry.discover(
        args.reference, depth=args.depth, artifact_type=args.artifact_type
    )

    def node_doc(node: ReferrerNode) -> dict[str, Any]:
        return {
            **descriptor_doc(node.descriptor),
            "referrers": [node_doc(r) for r in node.referrers],
        }

    doc = {"reference": args.reference, **node_doc(tree)}
    text = referrer_table(doc) if args.output == "table" else referrer_tree(doc)
    ctx.out.result(doc, text)


async def attach(ctx: Context) -> None:
    """``aioras attach SUBJECT FILE... --artifact-type TYPE``."""
    args = ctx.args
    with show(tty=False if args.no_tty else None) as progress:
        descriptor = await ctx.registry.attach(
            args.reference,
            args.files,
            artifact_type=args.artifact_type,
            annotations=_annotations(args) or None,
            annotation_file=args.annotation_file,
            disable_path_validation=args.disable_path_validation,
            concurrency=args.concurrency,
            progress=progress,
        )
    ctx.out.result(
        {"subject": args.reference, **descriptor_doc(descriptor)},
        f"Attached to {args.reference}\nDigest: {descriptor['digest']}",
    )


async def repo_ls(ctx: Context) -> None:
    """``aioras repo ls HOST``: the registry's catalog."""
    names = await ctx.registry.list_repositories(ctx.args.host)
    ctx.out.result({"registry": ctx.args.host, "repositories": names}, "\n".join(names))


async def index_create(ctx: Context) -> None:
    """``aioras manifest index create REF MANIFEST...``."""
    args = ctx.args
    descriptor = await ctx.registry.push_index(
        args.reference,
        args.manifests,
        annotations=_annotations(args) or None,
        artifact_type=args.artifact_type,
    )
    ctx.out.result(
        {"reference": args.reference, **descriptor_doc(descriptor)},
        f"Pushed index {args.reference}\nDigest: {descriptor['digest']}",
    )


async def index_update(ctx: Context) -> None:
    """``aioras manifest index update REF --add MANIFEST --remove DIGEST``."""
    args = ctx.args
    if not args.add and not args.remove:
        raise UsageError("index update needs --add or --remove")
    descriptor = await ctx.registry.update_index(args.reference, add=args.add, remove=args.remove)
    ctx.out.result(
        {"reference": args.reference, **descriptor_doc(descriptor)},
        f"Updated index {args.reference}\nDigest: {descriptor['digest']}",
    )


async def login(ctx: Context) -> None:
    """``aioras login HOST -u USER (-p PASS | --password-stdin)``."""
    from ..auth.login import login as login_operation

    args = ctx.args
    if not args.username or not args.password:
        raise UsageError("login needs -u USER and -p PASSWORD (or --password-stdin)")
    result = await login_operation(
        ctx.registry,
        args.username,
        args.password,
        hostname=args.host,
        config_path=args.registry_config,
    )
    ctx.out.result({"host": args.host, "status": result["Status"]}, result["Status"])


async def logout(ctx: Context) -> None:
    """``aioras logout HOST``."""
    from ..auth.login import logout as logout_operation

    removed = await logout_operation(
        ctx.registry, ctx.args.host, config_path=ctx.args.registry_config
    )
    ctx.out.result(
        {"host": ctx.args.host, "removed": removed},
        f"Removed credentials for {ctx.args.host}"
        if removed
        else f"No credentials for {ctx.args.host}",
    )


async def mirror(ctx: Context) -> None:
    """``aioras mirror PLAN.toml``: the plan's artifacts, with a one-line summary."""
    from ..exceptions import MirrorError
    from ..operations.mirror_plan import load_plan
    from ..operations.mirror_report import ArtifactEvent
    from ..progress import TransferEvent

    args = ctx.args
    plan = await anyio.to_thread.run_sync(load_plan, args.plan)
    with show(tty=False if args.no_tty else None) as display:

        def progress(event: TransferEvent | ArtifactEvent) -> Awaitable[None] | None:
            # The display draws transfers; the report lists the artifacts at the end.
            return None if isinstance(event, ArtifactEvent) else display(event)

        report = await ctx.registry.mirror(
            plan,
            concurrency=args.concurrency or defaults.default_mirror_concurrency,
            dry_run=args.dry_run,
            keep_going=args.keep_going,
            state=args.state,
            progress=progress,
        )
    if ctx.out.json:
        sys.stdout.write(report.to_json() + "\n")
        sys.stdout.flush()
    else:
        lines = [f"Failed {r.source}: {r.message}" for r in report.failed]
        ctx.out.result({}, "\n".join([*lines, report.summary()]))
    if report.failed:
        count = len(report.failed)
        noun = "artifact" if count == 1 else "artifacts"
        raise MirrorError(f"{count} {noun} failed (listed on stdout)", report=report)


async def backup(ctx: Context) -> None:
    """``aioras backup REF DEST``: the artifact and its referrers into a layout (dir or .tar)."""
    args = ctx.args
    container = ctx.registry.get_container(args.reference)
    src = ctx.registry.repository(container)
    destination = Path(args.destination)
    to_tar = destination.name.endswith(".tar")
    # A tar is written from a layout built beside it, removed whatever happens.
    directory = (
        Path(await anyio.to_thread.run_sync(_scratch_dir, destination)) if to_tar else destination
    )
    try:
        with show(tty=False if args.no_tty else None) as progress:
            root = await copy_operation(
                src,
                container.reference,
                OCILayout(directory),
                referrers=True,
                concurrency=args.concurrency or 3,
                progress=progress,
            )
        if to_tar:
            await OCILayout(directory).save_tar(destination)
    finally:
        if to_tar:
            await anyio.to_thread.run_sync(shutil.rmtree, directory, True)
    tag = _kept_tag(container.reference)
    ctx.out.result(
        {
            "reference": args.reference,
            "destination": args.destination,
            "tag": tag,
            **descriptor_doc(root),
        },
        f"Backed up {args.reference} => {args.destination}"
        f"{':' + tag if tag else ''}\nDigest: {root['digest']}",
    )


def _scratch_dir(beside: Path) -> str:
    return tempfile.mkdtemp(prefix=f".{beside.name}.", dir=beside.parent)


async def restore(ctx: Context) -> None:
    """``aioras restore SRC[:tag|@digest] REF``: an artifact and its referrers from a layout."""
    args = ctx.args
    path, src_ref = _layout_ref(args.source)
    layout = await _open_layout(path)
    if src_ref is None:
        tags = await layout.tags()
        if len(tags) != 1:
            raise UsageError(f"{path} holds tags {sorted(tags)}: name one (SRC:tag or SRC@digest)")
        src_ref = tags[0]
    dst, dst_ref = _registry_target(ctx.registry, args.reference)
    if dst_ref is None and "@" not in args.reference:
        dst_ref = _kept_tag(src_ref)
    with show(tty=False if args.no_tty else None) as progress:
        root = await copy_operation(
            layout,
            src_ref,
            dst,
            dst_ref,
            referrers=True,
            concurrency=args.concurrency or 3,
            progress=progress,
        )
    ctx.out.result(
        {"source": args.source, "reference": args.reference, **descriptor_doc(root)},
        f"Restored {args.source} => {args.reference}\nDigest: {root['digest']}",
    )
