"""The verbs of the ``aioras`` command, one coroutine each, on the library's operations.

Each takes the `Context` of one invocation: the parsed arguments, the open
[`AsyncRegistry`][aioras.registry.AsyncRegistry], the output and the progress display. A verb prints
its result through `Output` (text, or one JSON document).
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from .. import defaults
from .._http.headers import header_number
from ..container import names_digest
from ..content.cache import BlobCache
from ..content.graph import host_platform
from ..content.layout import OCILayout
from ..content.store import read_all
from ..descriptor import as_descriptor
from ..digest import digest_file
from ..exceptions import NotFoundError
from ..operations.attach import AttachOptions
from ..operations.copy import copy as copy_operation
from ..operations.discover import ReferrerNode
from ..operations.pull import PullOptions
from ..operations.push import PushOptions
from ..operations.stores import attach_in_store, pull_from_store, push_to_store
from ..progress import EventKind, ProgressCallback, ProgressReporter
from ..registry import AsyncRegistry
from .errors import Declined, UsageError
from .output import Output, descriptor_doc, referrer_table, referrer_tree
from .progress import show
from .terminal import write_err, write_out

__all__ = ["Context", "invoke"]


@dataclass
class Context:
    """One invocation: its arguments, registry client and output.

    ``source`` is the client of ``cp``'s source side (its own connection and credential
    flags); ``registry`` is then the destination's.
    """

    args: argparse.Namespace
    registry: AsyncRegistry
    out: Output
    source: AsyncRegistry | None = None


Verb = Callable[[Context], Awaitable[None]]

# The flag prefixes of cp's two sides; other verbs have the common flags only.
_SIDES = {"cp": ("to_", "from_")}


async def invoke(verb: Verb, args: argparse.Namespace) -> None:
    """Open the registry clients the flags describe, run ``verb``, close the clients."""
    sides = _SIDES.get(args.run, ("",))
    flags = [side for side in {"", *sides} if getattr(args, side + "password_stdin", False)]
    if len(flags) > 1:
        named = ", ".join(sorted(f"--{side.replace('_', '-')}password-stdin" for side in flags))
        raise UsageError(f"standard input holds one password: give only one of {named}")
    if flags:
        stdin = (await anyio.to_thread.run_sync(sys.stdin.readline)).rstrip("\r\n")
        setattr(args, flags[0] + "password", stdin)
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(_client(args, side)) for side in sides]
        context = Context(args, clients[0], Output(args.format))
        if len(clients) > 1:
            context.source = clients[1]
        await verb(context)


def _flag(args: argparse.Namespace, side: str, name: str) -> Any:
    """The value of ``--SIDE-NAME``, else of the common ``--NAME`` (cp's sides fall back)."""
    value = getattr(args, side + name, None) if side else None
    return value if value not in (None, False) else getattr(args, name, None)


@asynccontextmanager
async def _client(args: argparse.Namespace, side: str) -> AsyncIterator[AsyncRegistry]:
    """The registry client of one side, with that side's connection and credential flags."""
    plain_http, insecure = _flag(args, side, "plain_http"), _flag(args, side, "insecure")
    ca_file = _flag(args, side, "ca_file")
    if plain_http and (insecure or ca_file):
        dash = f"--{side.replace('_', '-')}"
        raise UsageError(
            f"{dash}plain-http speaks no TLS: drop {dash}insecure and {dash}ca-file "
            "(and the common --insecure and --ca-file)"
        )
    username, password = _flag(args, side, "username"), _flag(args, side, "password")
    tls_verify: bool | str = ca_file or not insecure
    async with AsyncRegistry(
        insecure=bool(plain_http), tls_verify=tls_verify, cache=getattr(args, "cache", None)
    ) as registry:
        if args.registry_config:
            registry.load_configs(configs=[args.registry_config])
        if username and password and args.run != "login":
            registry.set_basic_auth(username, password)
        yield registry


def _annotations(args: argparse.Namespace) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in args.annotation:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"annotation {item!r} is not KEY=VALUE: type -a KEY=VALUE")
        found[key] = value
    return found


def _report(ctx: Context, done: str, reference: str, descriptor: Mapping[str, Any]) -> None:
    """Say what was ``done`` to ``reference`` (``Pushed``, ``Deleted``...) and its descriptor."""
    ctx.out.result(
        {"reference": reference, **descriptor_doc(descriptor)},
        f"{done} {reference}\nDigest: {descriptor['digest']}",
    )


async def push(ctx: Context) -> None:
    """``aioras push REF FILE[:TYPE]...``."""
    args = ctx.args
    if not args.files and not args.config:
        raise UsageError(
            "nothing to push: name at least one file or directory "
            f"(aioras push {args.reference} FILE[:TYPE]...), or a --config PATH"
        )
    if args.oci_layout:
        await _push_to_layout(ctx)
        return
    container = ctx.registry.get_container(args.reference)
    # With no tag, oras pushes as latest: say so in what is printed.
    named = container.tag_given or container.digest is not None
    reference = args.reference if named else f"{args.reference}:latest"
    with show(tty=False if args.no_tty else None) as progress:
        options = _push_options(args, progress)
        response = await ctx.registry.push(args.reference, files=args.files, **_fields(options))
    digest = response.headers.get("docker-content-digest")
    descriptor = await ctx.registry.resolve(container)
    if digest and digest != descriptor["digest"]:
        raise RuntimeError(f"{reference} moved to {descriptor['digest']} during the push")
    _report(ctx, "Pushed", reference, descriptor)


async def pull(ctx: Context) -> None:
    """``aioras pull REF -o DIR`` (``--oci-layout``: from a layout directory or tar)."""
    args = ctx.args
    layout = await _layout_arg(args)
    platform = args.platform
    if platform is None:
        descriptor: Any = await (
            layout[0].resolve(layout[1]) if layout else ctx.registry.resolve(args.reference)
        )
        if descriptor["mediaType"] in defaults.index_media_types:
            # The index is pulled for this machine: say which manifest that is.
            platform = host_platform()
            write_err(
                f"{args.reference} is an index: pulling its {platform} manifest "
                "(this machine's; choose another with --platform)\n"
            )
    with show(tty=False if args.no_tty else None) as progress:
        options = PullOptions(
            outdir=args.output,
            overwrite=not args.keep_old_files,
            concurrency=args.concurrency,
            progress=progress,
            platform=platform,
        )
        if layout:
            # The registry pull's own code path, on the layout: the same guarantees.
            paths = await pull_from_store(layout[0], layout[1], options)
        else:
            paths = await ctx.registry.pull(args.reference, **_fields(options))
    ctx.out.result(
        {"reference": args.reference, "files": [{"path": p} for p in paths]},
        "\n".join([*(f"Downloaded {p}" for p in paths), f"Pulled {args.reference}"]),
    )


def _push_options(args: argparse.Namespace, progress: ProgressCallback) -> PushOptions:
    """The options of ``aioras push``, to a registry or a layout alike."""
    return PushOptions(
        **_artifact_options(args, progress),
        manifest_config=args.config,
        manifest_annotations=_annotations(args) or None,
        quiet=True,
    )


def _artifact_options(args: argparse.Namespace, progress: ProgressCallback) -> dict[str, Any]:
    """The options push and attach take from the same flags, by their common names."""
    return {
        "artifact_type": args.artifact_type,
        "annotation_file": args.annotation_file,
        "disable_path_validation": args.disable_path_validation,
        "concurrency": args.concurrency,
        "progress": progress,
    }


def _fields(options: Any) -> dict[str, Any]:
    """The fields of an options dataclass, as keyword arguments."""
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}


async def _push_to_layout(ctx: Context) -> None:
    """``aioras push --oci-layout PATH[:tag] FILE...``: into a layout directory, or a tar."""
    args = ctx.args
    path, tag = _layout_ref(args.reference)
    if tag is not None and names_digest(tag):
        raise UsageError(f"{args.reference}: push names a tag, not a digest: PATH[:tag]")
    tag = tag or defaults.default_tag
    reference = f"{path}:{tag}"
    async with _layout_target(path) as layout:
        assert layout is not None  # a path was given: a directory, or one built for the tar
        with show(tty=False if args.no_tty else None) as progress:
            options = _push_options(args, progress)
            descriptor = await push_to_store(layout, tag, args.files, options)
    _report(ctx, "Pushed", reference, descriptor)


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
    named = container.tag_given and not container.digest
    return registry.repository(container), container.tag if named else None


def _kept_tag(src_ref: str) -> str | None:
    """With no destination tag named, the source's tag is kept (as oras does); a digest is not."""
    return None if names_digest(src_ref) else src_ref


async def cp(ctx: Context) -> None:
    """``aioras cp SRC DST[,TAG...]`` between registries and OCI layouts (directory or tar)."""
    args = ctx.args
    if args.depth is not None and not args.recursive:
        raise UsageError(f"--depth needs -r: aioras cp -r --depth {args.depth} SRC DST")
    source = ctx.source or ctx.registry
    src: Any
    if args.from_oci_layout:
        path, src_ref = _layout_ref(args.source)
        src = await _open_layout(path)
    else:
        container = source.get_container(args.source)
        src, src_ref = source.repository(container), container.reference
    if src_ref is None:
        raise UsageError(
            f"{args.source}: name a tag or digest to copy: aioras cp --from-oci-layout PATH:TAG DST"
        )
    destination, extra_tags = _split_tags(args.destination)
    if args.to_oci_layout:
        path, dst_ref = _layout_ref(destination)
    else:
        dst_repo, dst_ref = _registry_target(ctx.registry, destination)
    if dst_ref is None and not ("@" in destination and not args.to_oci_layout):
        dst_ref = _kept_tag(src_ref)
    async with _layout_target(path if args.to_oci_layout else None) as layout:
        dst = layout if layout is not None else dst_repo
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
        for extra in extra_tags:
            await dst.tag(root, extra)
    ctx.out.result(
        {"source": args.source, "destination": args.destination, **descriptor_doc(root)},
        f"Copied {args.source} => {args.destination}\nDigest: {root['digest']}",
    )


def _split_tags(destination: str) -> tuple[str, list[str]]:
    """``NAME:t1,t2,t3`` as ``NAME:t1`` and the further tags ``[t2, t3]`` (as oras does)."""
    head, sep, tags = destination.rpartition(":")
    if not sep or "," not in tags or "/" in tags or "@" in destination:
        return destination, []
    first, *rest = tags.split(",")
    if not first or not all(rest):
        raise UsageError(f"{destination}: tags are separated by single commas: NAME:t1,t2")
    return f"{head}:{first}", rest


@asynccontextmanager
async def _layout_target(path: str | None) -> AsyncIterator[OCILayout | None]:
    """The OCI layout to write at ``path``: a directory, or a tar when it ends in ``.tar``.

    A tar is built as a layout directory beside it and saved (renamed into place when
    complete, replacing an older file) only when the body succeeds; the directory is
    removed whatever happens.
    """
    if path is None:
        yield None
        return
    destination = Path(path)
    if not destination.name.endswith(".tar"):
        yield OCILayout(destination)
        return
    directory = Path(await anyio.to_thread.run_sync(_scratch_dir, destination))
    try:
        yield OCILayout(directory)
        await OCILayout(directory).save_tar(destination)
    finally:
        await anyio.to_thread.run_sync(shutil.rmtree, directory, True)


async def manifest_fetch(ctx: Context) -> None:
    """``aioras manifest fetch REF``: the exact bytes, or the descriptor."""
    args = ctx.args
    layout = await _layout_arg(args)
    if args.descriptor:
        descriptor = await (
            layout[0].resolve(layout[1]) if layout else ctx.registry.resolve(args.reference)
        )
        doc = descriptor_doc(descriptor)
        ctx.out.result(doc, json.dumps(doc, indent=2))
        return
    if layout:
        descriptor = await layout[0].resolve(layout[1])
        data = await read_all(layout[0], descriptor)
    else:
        data, descriptor = await ctx.registry.fetch_manifest_bytes(args.reference)
    if args.output:
        await anyio.Path(args.output).write_bytes(data)
    if ctx.out.json:
        ctx.out.result({**descriptor_doc(descriptor), "content": json.loads(data)}, "")
    elif not args.output:
        ctx.out.raw(data)
        ctx.out.end_raw()


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
    """``aioras manifest delete REF [--force]``.

    Deleting a manifest deletes every tag that names it. When tags other than the one
    given name it, a terminal is asked to confirm (naming them); elsewhere the delete is
    refused without ``--force`` (exit status 2), so that no script loses them unawares.
    """
    args = ctx.args
    container = ctx.registry.get_container(args.reference)
    descriptor = await ctx.registry.resolve(container)
    if not args.force:
        others = await _other_tags(ctx.registry, container, descriptor["digest"])
        if others:
            named = ", ".join(others)
            those = "those tags" if len(others) > 1 else "that tag"
            what = f"{args.reference} is also tagged {named}: deleting it deletes {those}"
            if not _interactive():
                raise UsageError(f"{what}; nothing deleted: pass --force to delete them all")
            if not await _confirm(f"{what} too. Delete the manifest and all its tags? [y/N] "):
                raise Declined("nothing deleted")
    await ctx.registry.delete_manifest(container, descriptor["digest"])
    _report(ctx, "Deleted", args.reference, descriptor)


async def _other_tags(registry: AsyncRegistry, container: Any, digest: str) -> list[str]:
    """The repository's tags, other than ``container``'s own, that name ``digest``."""
    from .._concurrency import map_bounded

    own = None if container.digest else container.tag
    tags = [t for t in await registry.get_tags(container) if t != own]

    async def names_it(tag: str) -> bool:
        try:
            return bool((await registry.resolve(container.with_reference(tag)))["digest"] == digest)
        except NotFoundError:  # deleted meanwhile
            return False

    found = await map_bounded(names_it, tags, limit=8)
    return [t for t, same in zip(tags, found, strict=True) if same]


def _interactive() -> bool:
    """Whether a person can be asked: standard input and error are a terminal."""
    return sys.stdin.isatty() and sys.stderr.isatty()


async def _confirm(question: str) -> bool:
    write_err(question)
    answer = await anyio.to_thread.run_sync(sys.stdin.readline)
    return answer.strip().lower() in ("y", "yes")


def _blob_digest(ctx: Context) -> tuple[Any, str]:
    container = ctx.registry.get_container(ctx.args.reference)
    if not container.digest:
        raise UsageError(f"{ctx.args.reference}: name the blob by digest (NAME@sha256:...)")
    return container, container.digest


async def blob_fetch(ctx: Context) -> None:
    """``aioras blob fetch NAME@DIGEST -o PATH``, verified."""
    args = ctx.args
    container, digest = _blob_digest(ctx)
    if not args.output and not args.descriptor:
        raise UsageError(
            f"blob fetch needs somewhere to write: aioras blob fetch {args.reference} -o PATH "
            "(-o - for standard output, --descriptor for the descriptor only)"
        )
    response = await ctx.registry.get_blob(container, digest, head=True)
    size = header_number(response.headers.get("content-length")) or 0
    doc = {"mediaType": "application/octet-stream", "digest": digest, "size": size}
    if args.descriptor:
        ctx.out.result(doc, json.dumps(doc, indent=2))
        return
    if args.output == "-":
        from ..digest import Verifier

        verifier = Verifier(digest)
        async with ctx.registry.stream_blob(container, digest) as streamed:
            async for chunk in streamed.aiter_bytes():
                verifier.update(chunk)
                ctx.out.raw(chunk)
        ctx.out.end_raw()
        verifier.verify()
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
    """``aioras repo tags NAME [--last TAG] [--exclude-digest-tags]``."""
    args = ctx.args
    tags = await ctx.registry.get_tags(args.reference)
    if args.last is not None:
        # As the distribution spec's "last" parameter: the tags after TAG in lexical order.
        tags = [t for t in tags if t > args.last]
    if args.exclude_digest_tags:
        tags = [t for t in tags if not _DIGEST_TAG.fullmatch(t)]
    ctx.out.result({"reference": args.reference, "tags": tags}, tags)


# A tag that stands for a digest (the referrers fallback index, cosign's .sig/.att/.sbom).
_DIGEST_TAG = re.compile(r"[a-z0-9]+-[0-9a-f]{32,}(?:\.[a-z]+)?")


async def tag(ctx: Context) -> None:
    """``aioras tag REF TAG...`` (``--oci-layout``: in a layout directory)."""
    layout = await _layout_arg(ctx.args)
    if layout:
        if layout[0].read_only:
            raise UsageError(f"{ctx.args.reference}: a tar is read-only: tag a layout directory")
        descriptor: Any = await layout[0].resolve(layout[1])
        for name in ctx.args.tags:
            await layout[0].tag(descriptor, name)
    else:
        descriptor = await ctx.registry.tag(ctx.args.reference, *ctx.args.tags)
    ctx.out.result(
        {"reference": ctx.args.reference, "tags": ctx.args.tags, **descriptor_doc(descriptor)},
        "\n".join(f"Tagged {t}" for t in ctx.args.tags) + f"\nDigest: {descriptor['digest']}",
    )


async def resolve(ctx: Context) -> None:
    """``aioras resolve REF``: the digest."""
    layout = await _layout_arg(ctx.args)
    descriptor: Any = await (
        layout[0].resolve(layout[1]) if layout else ctx.registry.resolve(ctx.args.reference)
    )
    ctx.out.result(
        {"reference": ctx.args.reference, **descriptor_doc(descriptor)}, descriptor["digest"]
    )


async def discover(ctx: Context) -> None:
    """``aioras discover REF``: the referrers, as a tree, a table or JSON."""
    args = ctx.args
    layout = await _layout_arg(args)
    if layout:
        tree = await _layout_referrers(layout[0], layout[1], args.depth, args.artifact_type)
    else:
        tree = await ctx.registry.discover(
            args.reference, depth=args.depth, artifact_type=args.artifact_type
        )

    def node_doc(node: ReferrerNode) -> dict[str, Any]:
        return {
            **descriptor_doc(node.descriptor),
            "referrers": [node_doc(r) for r in node.referrers],
        }

    doc = {"reference": args.reference, **node_doc(tree)}
    shape = args.output or args.format
    if shape == "json":
        write_out(json.dumps(doc, indent=2) + "\n")
        return
    ctx.out.result(doc, referrer_table(doc) if shape == "table" else referrer_tree(doc))


async def _layout_arg(args: argparse.Namespace) -> tuple[OCILayout, str] | None:
    """With ``--oci-layout``: the layout ``args.reference`` names and the tag or digest in it."""
    if not getattr(args, "oci_layout", False):
        return None
    path, reference = _layout_ref(args.reference)
    layout = await _open_layout(path)
    return layout, reference or await _only_tag(layout, path)


async def _only_tag(layout: OCILayout, path: str) -> str:
    """The one tag of ``layout``; a usage error naming them when it holds none or several."""
    tags = await layout.tags()
    if len(tags) != 1:
        raise UsageError(
            f"{path} holds tags {sorted(tags)}: name one ({path}:TAG or {path}@DIGEST)"
        )
    return tags[0]


async def _layout_referrers(
    layout: OCILayout, reference: str, depth: int | None, artifact_type: str | None
) -> ReferrerNode:
    """The referrers tree of ``reference`` in a layout (local: walked one listing at a time)."""
    root = ReferrerNode(await layout.resolve(reference), reference=reference)

    async def expand(node: ReferrerNode, level: int, path: frozenset[str]) -> None:
        if depth is not None and level >= depth:
            return
        found = await layout.referrers(node.descriptor, artifact_type=artifact_type)
        node.referrers = [ReferrerNode(d) for d in found if d["digest"] not in path]
        for child in node.referrers:
            await expand(child, level + 1, path | {child.digest})

    await expand(root, 0, frozenset({root.digest}))
    return root


async def attach(ctx: Context) -> None:
    """``aioras attach SUBJECT FILE... --artifact-type TYPE`` (``--oci-layout``: in a layout)."""
    args = ctx.args
    layout = await _layout_arg(args)
    if layout and layout[0].read_only:
        raise UsageError(f"{args.reference}: a tar is read-only: attach in a layout directory")
    with show(tty=False if args.no_tty else None) as progress:
        options = AttachOptions(
            **_artifact_options(args, progress), annotations=_annotations(args) or None
        )
        descriptor: Mapping[str, Any]
        if layout:
            descriptor = await attach_in_store(layout[0], layout[1], args.files, options)
        else:
            descriptor = await ctx.registry.attach(args.reference, args.files, **_fields(options))
    ctx.out.result(
        {"subject": args.reference, **descriptor_doc(descriptor)},
        f"Attached to {args.reference}\nDigest: {descriptor['digest']}",
    )


async def repo_ls(ctx: Context) -> None:
    """``aioras repo ls HOST``: the registry's catalog."""
    names = await ctx.registry.list_repositories(ctx.args.host)
    ctx.out.result({"registry": ctx.args.host, "repositories": names}, names)


async def index_create(ctx: Context) -> None:
    """``aioras manifest index create REF MANIFEST...``."""
    args = ctx.args
    descriptor = await ctx.registry.push_index(
        args.reference,
        args.manifests,
        annotations=_annotations(args) or None,
        artifact_type=args.artifact_type,
    )
    _report(ctx, "Pushed index", args.reference, descriptor)


async def index_update(ctx: Context) -> None:
    """``aioras manifest index update REF --add MANIFEST --remove DIGEST``."""
    args = ctx.args
    if not args.add and not args.remove:
        raise UsageError("index update needs --add or --remove")
    descriptor = await ctx.registry.update_index(args.reference, add=args.add, remove=args.remove)
    _report(ctx, "Updated index", args.reference, descriptor)


async def login(ctx: Context) -> None:
    """``aioras login HOST -u USER (-p PASS | --password-stdin)``."""
    from ..auth.login import login as login_operation

    args = ctx.args
    if not args.username or not args.password:
        if not _interactive():
            raise UsageError(
                f'login needs a user name and password: echo "$PASSWORD" | aioras login -u USER '
                f"--password-stdin {args.host} (on a terminal, aioras asks for them)"
            )
        if not args.username:
            write_err("Username: ")
            args.username = (await anyio.to_thread.run_sync(sys.stdin.readline)).strip()
        if not args.password:
            args.password = await anyio.to_thread.run_sync(getpass.getpass, "Password: ")
        if not args.username or not args.password:
            raise UsageError("login needs a user name and password: none was typed")
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
    from ..operations.mirror.plan import load_plan
    from ..operations.mirror.report import ArtifactEvent
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
        write_out(report.to_json() + "\n")
    else:
        ctx.out.result({}, [*report.details(), report.summary()])
    if report.failed:
        count = len(report.failed)
        noun = "artifact" if count == 1 else "artifacts"
        raise MirrorError(f"{count} {noun} failed (listed on stdout)", report=report)


async def backup(ctx: Context) -> None:
    """``aioras backup REF DEST``: the artifact and its referrers into a layout (dir or .tar)."""
    args = ctx.args
    container = ctx.registry.get_container(args.reference)
    src = ctx.registry.repository(container)
    async with _layout_target(args.destination) as layout:
        assert layout is not None  # a path was given
        with show(tty=False if args.no_tty else None) as progress:
            root = await copy_operation(
                src,
                container.reference,
                layout,
                referrers=True,
                concurrency=args.concurrency or 3,
                progress=progress,
            )
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
        src_ref = await _only_tag(layout, path)
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


def _the_cache(ctx: Context) -> BlobCache:
    """The cache ``--cache`` (else ``ORAS_CACHE``) names: the registry client has it."""
    if ctx.registry.cache is None:
        raise UsageError("which cache? give --cache DIR or set ORAS_CACHE")
    return ctx.registry.cache


async def cache_ls(ctx: Context) -> None:
    """``aioras cache ls``: the cached blobs, least recently used first."""
    cache = _the_cache(ctx)
    entries = await cache.ls()
    ctx.out.result(
        {
            "cache": str(cache.path),
            "blobs": [
                {"digest": e.digest, "size": e.size, "lastUsed": e.last_used} for e in entries
            ],
        },
        [f"{e.digest}  {e.size}" for e in entries],
    )


async def cache_du(ctx: Context) -> None:
    """``aioras cache du``: bytes held."""
    cache = _the_cache(ctx)
    entries = await cache.ls()
    total = sum(e.size for e in entries)
    ctx.out.result(
        {"cache": str(cache.path), "blobs": len(entries), "bytes": total},
        f"{total} bytes in {len(entries)} blobs ({cache.path})",
    )


async def cache_prune(ctx: Context) -> None:
    """``aioras cache prune [--max-bytes N]``."""
    cache = _the_cache(ctx)
    result = await cache.prune(max_bytes=ctx.args.max_bytes)
    ctx.out.result(
        {
            "cache": str(cache.path),
            "evicted": result.entries,
            "bytes": result.bytes,
            "parts": result.parts,
        },
        f"Evicted {result.entries} blobs ({result.bytes} bytes); "
        f"removed {result.parts} unfinished files",
    )
