"""The argument parser of the ``aioras`` command: verbs, their flags and the common flags.

Kept free of imports beyond `argparse` so that ``--help`` answers quickly. Each verb's
parser stores ``run``: the name of its function in `aioras.cli.commands`.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from .. import defaults
from ..version import __version__

__all__ = ["ArgumentsRejected", "Parser", "build_parser"]

DESCRIPTION = """\
Push, pull, copy and inspect OCI artifacts in registries (an asyncio-native ORAS client).

References are [host[:port]/]namespace/name[:tag|@digest], without http:// or https://;
use --plain-http for a registry that speaks plain http.
"""

EPILOG = """\
exit status: 0 success, 1 failure, 2 usage error (or the cli extra missing), 130 interrupted.
--format json prints one JSON document on stdout (documented in the CLI reference);
progress and errors go to stderr. Run 'aioras VERB --help' for a verb's flags.
"""


EXAMPLES = {
    "push": "example:\n  aioras push --plain-http localhost:5000/demo/app:v1"
    " app.tar.gz:application/x.app docs/",
    "pull": "example:\n  aioras pull --plain-http localhost:5000/demo/app:v1 -o out",
    "cp": "examples:\n  aioras cp -r ghcr.io/acme/app:v1 registry.example.com/mirror/app:v1\n"
    "  aioras cp --to-oci-layout ghcr.io/acme/app:v1 backup-dir:v1\n"
    "  aioras cp --from-oci-layout backup-dir:v1 localhost:5000/app:v1 --plain-http",
    "mirror": "example:\n  aioras mirror --dry-run plan.toml\n  aioras mirror --keep-going"
    " --state mirror.state --format json plan.toml",
    "backup": "examples:\n  aioras backup ghcr.io/acme/app:v1 app-v1.tar\n"
    "  aioras backup ghcr.io/acme/app:v1 backup-dir",
    "restore": "example:\n  aioras restore --plain-http app-v1.tar localhost:5000/acme/app",
    "discover": "example:\n  aioras discover --plain-http --output table"
    " localhost:5000/demo/app:v1",
    "attach": "example:\n  aioras attach --plain-http --artifact-type application/x.sig"
    " localhost:5000/demo/app:v1 app.sig",
    "index_create": "example:\n  aioras manifest index create --plain-http"
    " localhost:5000/demo/app:multi v1-amd64 v1-arm64",
    "login": 'example:\n  echo "$TOKEN" | aioras login -u me --password-stdin ghcr.io',
}


class ArgumentsRejected(Exception):
    """argparse refused the command line: ``message`` says why, ``parser`` is the verb's."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser, self.message = parser, message


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are raised, not printed and exited on.

    The caller then reports them (with ``--format json``, as a JSON error document on
    stdout too); the verb's parser is kept, so that its usage is the one printed.
    """

    def error(self, message: str) -> NoReturn:
        """Raise `ArgumentsRejected` with ``message`` and this parser."""
        raise ArgumentsRejected(self, message)


def _common(formats: tuple[str, ...] = ("text", "json")) -> Parser:
    """The flags every verb takes: connection, credentials and output (``formats``)."""
    common = Parser(add_help=False)
    net = common.add_argument_group("registry connection")
    net.add_argument("--plain-http", action="store_true", help="speak plain http instead of https")
    net.add_argument(
        "--insecure", action="store_true", help="skip TLS certificate verification (https)"
    )
    net.add_argument("--ca-file", metavar="PATH", help="trust this CA bundle (PEM) for TLS")
    creds = common.add_argument_group("credentials")
    creds.add_argument("-u", "--username", help="registry user name")
    creds.add_argument(
        "-p",
        "--password",
        help="registry password or token (others can see it: prefer --password-stdin)",
    )
    creds.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    creds.add_argument(
        "--registry-config",
        metavar="PATH",
        help="Docker config.json to read (and, for login/logout, write) credentials",
    )
    out = common.add_argument_group("output")
    out.add_argument(
        "--format",
        choices=formats,
        default="text",
        help=f"{'/'.join(f for f in formats if f != 'json')} for people (default: text), "
        "json for scripts (one document on stdout, an error document on failure)",
    )
    out.add_argument(
        "--no-tty", action="store_true", help="plain progress lines, even on a terminal"
    )
    out.add_argument(
        "-v", "--verbose", action="store_true", help="informational log lines on stderr"
    )
    out.add_argument(
        "-d", "--debug", action="store_true", help="debug logs and tracebacks on stderr"
    )
    return common


def _side(parser: argparse.ArgumentParser, side: str, what: str) -> None:
    """``cp``'s flags for one side (``from`` or ``to``): connection and credentials."""
    group = parser.add_argument_group(f"{what} connection and credentials (over the common ones)")
    group.add_argument(
        f"--{side}-plain-http", action="store_true", help=f"speak plain http to the {what}"
    )
    group.add_argument(
        f"--{side}-insecure",
        action="store_true",
        help=f"skip TLS certificate verification of the {what}",
    )
    group.add_argument(f"--{side}-ca-file", metavar="PATH", help=f"CA bundle (PEM) of the {what}")
    group.add_argument(f"--{side}-username", metavar="USER", help=f"user name at the {what}")
    group.add_argument(
        f"--{side}-password", metavar="PASS", help=f"password at the {what} (prefer -stdin)"
    )
    group.add_argument(
        f"--{side}-password-stdin",
        action="store_true",
        help=f"read the {what}'s password from standard input",
    )


def _oci_layout(
    parser: argparse.ArgumentParser,
    help: str = "REF is an OCI layout: a directory or a .tar, PATH[:tag|@digest]",
) -> None:
    parser.add_argument("--oci-layout", action="store_true", help=help)


def _transfer() -> Parser:
    transfer = Parser(add_help=False)
    transfer.add_argument(
        "--concurrency", type=_positive, metavar="N", help="blobs transferred at once"
    )
    return transfer


def _cache_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache",
        metavar="DIR",
        help="blob cache shared by processes: a hit is not fetched again (default: $ORAS_CACHE)",
    )


def _size(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {number}")
    return number


def _key_value(item: str) -> str:
    key, sep, _ = item.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{item!r} is not KEY=VALUE: type -a KEY=VALUE")
    return item


def _annotation_flag(parser: argparse.ArgumentParser, of: str = "manifest") -> None:
    parser.add_argument(
        "-a",
        "--annotation",
        action="append",
        default=[],
        type=_key_value,
        metavar="KEY=VALUE",
        help=f"{of} annotation (repeatable)",
    )


def _annotations() -> Parser:
    parent = Parser(add_help=False)
    _annotation_flag(parent)
    parent.add_argument(
        "--annotation-file",
        metavar="PATH",
        help="JSON file of annotations per file, with $manifest and $config sections",
    )
    parent.add_argument("--artifact-type", metavar="TYPE", help="the artifact's type")
    return parent


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def build_parser() -> argparse.ArgumentParser:
    """The whole parser: ``aioras [--version] VERB [flags] ARGS``."""
    parser = Parser(
        prog="aioras",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aioras {__version__}")
    common, transfer, annotations = _common(), _transfer(), _annotations()
    tree_common = _common(("text", "json", "tree", "table"))
    verbs = parser.add_subparsers(title="verbs", metavar="VERB")

    def verb(
        group: argparse._SubParsersAction[Parser],
        name: str,
        help: str,
        run: str,
        *parents: Parser,
        base: Parser = common,
    ) -> argparse.ArgumentParser:
        sub = group.add_parser(
            name,
            help=help,
            description=help,
            parents=[base, *parents],
            epilog=EXAMPLES.get(run),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(run=run, verb_parser=sub)
        return sub

    push = verb(verbs, "push", "push files as an artifact", "push", transfer, annotations)
    push.add_argument("reference", help="where to push: host/name[:tag] (default tag: latest)")
    push.add_argument("files", nargs="*", metavar="FILE[:TYPE]", help="files or directories")
    push.add_argument("--config", metavar="PATH[:TYPE]", help="the artifact's config file")
    push.add_argument(
        "--disable-path-validation",
        action="store_true",
        help="allow files outside the working directory",
    )
    _oci_layout(
        push,
        "REF is an OCI layout to write: a directory, or a tar when it ends in .tar, PATH[:tag]",
    )

    pull = verb(verbs, "pull", "pull an artifact's files", "pull", transfer)
    pull.add_argument("reference", help="what to pull: host/name:tag or @digest")
    pull.add_argument("-o", "--output", default=".", metavar="DIR", help="output directory")
    pull.add_argument(
        "--keep-old-files", action="store_true", help="fail instead of overwriting files"
    )
    pull.add_argument(
        "--platform",
        metavar="OS/ARCH[/VARIANT]",
        help="of an index: this platform's manifest; of one manifest: check its platform",
    )

    _cache_flag(pull)
    _oci_layout(pull)

    attach = verb(verbs, "attach", "attach files to an artifact as a referrer", "attach", transfer)
    attach.add_argument("reference", help="the subject: host/name:tag or @digest")
    attach.add_argument("files", nargs="*", metavar="FILE[:TYPE]", help="files or directories")
    attach.add_argument("--artifact-type", required=True, metavar="TYPE", help="required")
    _annotation_flag(attach)
    attach.add_argument("--annotation-file", metavar="PATH", help="JSON annotations per file")
    attach.add_argument(
        "--disable-path-validation",
        action="store_true",
        help="allow files outside the working directory",
    )
    _oci_layout(attach, "REF is in an OCI layout directory: PATH[:tag|@digest]")

    cp = verb(verbs, "cp", "copy an artifact (and its referrers) elsewhere", "cp", transfer)
    cp.add_argument("source", help="host/name:tag, or PATH[:tag|@digest] with --from-oci-layout")
    cp.add_argument(
        "destination",
        help="host/name[:tag[,tag...]], or PATH[:tag] with --to-oci-layout",
    )
    cp.add_argument(
        "-r", "--recursive", action="store_true", help="also copy referrers (signatures, SBOMs)"
    )
    cp.add_argument("--depth", type=_positive, help="levels of referrers to copy with -r")
    cp.add_argument("--artifact-type", metavar="TYPE", help="with -r: only referrers of TYPE")
    cp.add_argument(
        "--platform",
        action="append",
        metavar="OS/ARCH[/VARIANT]",
        help="of an index: this platform's manifest; given twice or more, a new index of those",
    )
    cp.add_argument(
        "--from-oci-layout",
        action="store_true",
        help="the source is an OCI layout: a directory or a .tar",
    )
    cp.add_argument(
        "--to-oci-layout",
        action="store_true",
        help="the destination is an OCI layout: a directory, or a tar when it ends in .tar",
    )
    _side(cp, "from", "source")
    _side(cp, "to", "destination")
    _cache_flag(cp)

    mirror = verb(verbs, "mirror", "mirror the artifacts a TOML plan names", "mirror")
    mirror.add_argument(
        "--concurrency",
        type=_positive,
        metavar="N",
        help=f"artifacts mirrored at once (default {defaults.default_mirror_concurrency})",
    )
    _cache_flag(mirror)
    mirror.add_argument("plan", metavar="PLAN.toml", help="[[mirror]] and [[copy]] tables")
    mirror.add_argument(
        "--dry-run", action="store_true", help="report what would be copied; send nothing"
    )
    mirror.add_argument(
        "--keep-going", action="store_true", help="report a failed artifact and go on"
    )
    mirror.add_argument(
        "--state", metavar="FILE", help="resume file: a rerun skips the artifacts done"
    )

    backup = verb(
        verbs, "backup", "save an artifact and its referrers to an OCI layout", "backup", transfer
    )
    backup.add_argument("reference", help="host/name:tag or @digest")
    backup.add_argument("destination", metavar="DEST", help="layout directory, or FILE.tar")
    _cache_flag(backup)
    restore = verb(
        verbs,
        "restore",
        "push an artifact and its referrers from an OCI layout",
        "restore",
        transfer,
    )
    restore.add_argument(
        "source", metavar="SRC", help="layout directory or .tar, with :tag or @digest if several"
    )
    restore.add_argument("reference", help="host/name[:tag] (default: the layout's tag)")

    manifest = verbs.add_parser("manifest", help="fetch, push, delete manifests; make indexes")
    manifest.set_defaults(help_parser=manifest)
    manifests = manifest.add_subparsers(title="manifest verbs", metavar="VERB")
    fetch = verb(manifests, "fetch", "print a manifest (exact bytes)", "manifest_fetch")
    fetch.add_argument("reference")
    _oci_layout(fetch)
    fetch.add_argument("-o", "--output", metavar="PATH", help="write it to PATH")
    fetch.add_argument("--descriptor", action="store_true", help="print its descriptor instead")
    mpush = verb(manifests, "push", "push a manifest file as it is", "manifest_push")
    mpush.add_argument("reference")
    mpush.add_argument("file", help="the manifest file, - for standard input")
    mpush.add_argument("--media-type", help="default: the manifest's own mediaType")
    mdelete = verb(manifests, "delete", "delete a manifest", "manifest_delete")
    mdelete.add_argument("reference", help="host/name:tag or @digest")
    mdelete.add_argument(
        "-f",
        "--force",
        action="store_true",
        help="delete without asking, even when other tags name the same manifest",
    )
    index = manifests.add_parser("index", help="create or update image indexes")
    index.set_defaults(help_parser=index)
    indexes = index.add_subparsers(title="index verbs", metavar="VERB")
    create = verb(indexes, "create", "push an image index of manifests", "index_create")
    create.add_argument("reference", help="host/name[:tag] of the index")
    create.add_argument("manifests", nargs="+", metavar="MANIFEST", help="tags or digests")
    create.add_argument("--artifact-type", metavar="TYPE", help="the index's artifact type")
    _annotation_flag(create, "index")
    update = verb(indexes, "update", "add manifests to an index or remove them", "index_update")
    update.add_argument("reference", help="host/name:tag of the index")
    update.add_argument("--add", action="append", default=[], metavar="MANIFEST")
    update.add_argument("--remove", action="append", default=[], metavar="DIGEST")

    blob = verbs.add_parser("blob", help="fetch, push or delete blobs")
    blob.set_defaults(help_parser=blob)
    blobs = blob.add_subparsers(title="blob verbs", metavar="VERB")
    bfetch = verb(blobs, "fetch", "download a blob, verified", "blob_fetch")
    bfetch.add_argument("reference", help="host/name@digest")
    bfetch.add_argument("-o", "--output", metavar="PATH", help="write it to PATH (- for stdout)")
    bfetch.add_argument("--descriptor", action="store_true", help="print its descriptor only")
    bpush = verb(blobs, "push", "upload a file as a blob", "blob_push")
    bpush.add_argument("reference", help="host/name (the repository)")
    bpush.add_argument("file")
    bpush.add_argument("--media-type", default="application/octet-stream")
    bdelete = verb(blobs, "delete", "delete a blob", "blob_delete")
    bdelete.add_argument("reference", help="host/name@digest")

    repo = verbs.add_parser("repo", help="list repositories and tags")
    repo.set_defaults(help_parser=repo)
    repos = repo.add_subparsers(title="repo verbs", metavar="VERB")
    ls = verb(repos, "ls", "list the repositories of a registry (its catalog)", "repo_ls")
    ls.add_argument("host", help="host[:port]")
    tags = verb(repos, "tags", "list the tags of a repository", "repo_tags")
    tags.add_argument("reference", help="host/name")
    tags.add_argument(
        "--exclude-digest-tags",
        action="store_true",
        help="leave out tags that look like digests (sha256-...: referrers indexes, signatures)",
    )
    tags.add_argument("--last", metavar="TAG", help="only the tags after TAG (in the listing)")

    tag = verb(verbs, "tag", "give a manifest more tags", "tag")
    tag.add_argument("reference", help="host/name:tag or @digest")
    tag.add_argument("tags", nargs="+", metavar="TAG")
    _oci_layout(tag)

    resolve = verb(verbs, "resolve", "print the digest a reference names", "resolve")
    resolve.add_argument("reference")
    _oci_layout(resolve)

    discover = verb(
        verbs, "discover", "list the referrers of an artifact", "discover", base=tree_common
    )
    discover.add_argument("reference")
    _oci_layout(discover)
    discover.add_argument("--artifact-type", metavar="TYPE", help="only referrers of TYPE")
    discover.add_argument("--depth", type=_positive, help="levels of referrers (default: all)")
    discover.add_argument(
        "--output",
        choices=("tree", "table"),
        default=None,
        help="the text layout, as --format tree|table (kept for older scripts)",
    )

    login = verb(
        verbs,
        "login",
        "check credentials and save them (asks for what is missing on a terminal)",
        "login",
    )
    login.add_argument("host", help="host[:port]")
    logout = verb(verbs, "logout", "remove saved credentials", "logout")
    logout.add_argument("host", help="host[:port]")
    cache = verbs.add_parser("cache", help="list, measure and prune the blob cache")
    cache.set_defaults(help_parser=cache)
    caches = cache.add_subparsers(title="cache verbs", metavar="VERB")
    cache_ls = verb(caches, "ls", "list the cached blobs, least recently used first", "cache_ls")
    cache_du = verb(caches, "du", "print the bytes the cached blobs take", "cache_du")
    prune = verb(caches, "prune", "evict least recently used blobs not in use", "cache_prune")
    prune.add_argument(
        "--max-bytes",
        type=_size,
        metavar="N",
        help="evict down to N bytes (default: only remove what killed fetches left)",
    )
    for sub in (cache_ls, cache_du, prune):
        _cache_flag(sub)
    version = verbs.add_parser("version", help="print the version", description="print the version")
    version.set_defaults(run="version", verb_parser=version)
    return parser
