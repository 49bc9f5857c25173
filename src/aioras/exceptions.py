"""Every exception aioras raises, in one tree.

::

    OrasError                          base of everything below
    ├── InvalidReference               a name, tag, digest or reference breaks the grammar
    ├── InvalidDigest                  a digest string is malformed or uses an unknown algorithm
    ├── InvalidLayout                  an OCI image layout (directory or tar) breaks the image-spec,
    │                                  or a blob cache directory has a link for a directory
    ├── ReadOnlyError                  a write was asked of a store opened read-only
    ├── ManifestValidationError        a manifest, index, descriptor or config fails its schema
    │   ├── ManifestTooLarge           a manifest exceeds the size limit (4 MiB by default)
    │   └── UnreadableArchive          a layer marked for unpacking is not a readable tar archive
    ├── UnsafePathError                a title, path or archive member would escape its directory
    ├── OutputPathError                a pulled file, directory or link cannot be made where its
    │                                  name says (another kind of entry there, name too long ...)
    ├── UnpackLimitExceeded            an archive layer unpacks past the pull's byte, member or
    │                                  ratio limit
    ├── StorageError                   a file cannot be written whole (disk full, file too large,
    │                                  I/O error); nothing is left of it (also an OSError)
    ├── GraphLimitExceeded             a graph walk (copy, discover) goes past its max_depth or
    │                                  max_nodes
    ├── InvalidHeaderValue             a header, token or credential value a header cannot carry
    ├── StreamConsumed                 an upload from a one-shot stream must start over, and cannot
    ├── MirrorError                    a mirror run on Dask had an artifact fail (see ``report``)
    ├── RegistryInUse                  a registry object was pickled while a call on it ran
    ├── InvalidMirrorPlan              a mirror plan entry is refused: a name breaks the grammar,
    │                                  source and destination overlap, or a pattern could backtrack
    ├── IntegrityError                 content does not match what was promised
    │   ├── DigestMismatch             bytes hash to another digest than the descriptor's
    │   └── SizeMismatch               byte count differs from the descriptor's size
    ├── AuthenticationError            credentials missing, refused, or a token cannot be had
    │   ├── CredentialHelperError      a docker-credential-<name> helper is missing or failed
    │   ├── CredentialsNotForwarded    another origin than the registry asks for credentials
    │   └── InsecureTokenRealm         a token realm on plain http would get credentials
    ├── TransportError                 the request never got an HTTP answer (wraps httpx)
    │   ├── ConnectError               connecting or the TLS handshake failed, or the server
    │   │                              closed the connection without answering
    │   └── TimeoutError               a timeout expired, or an answer trickled in too slowly
    └── RegistryError                  the registry answered with an unexpected status
        ├── ResponseTooLarge           a non-blob body (tag list, answer...) or a listing
        │                              across its pages exceeds its cap
        ├── NotARegistry               the server is no OCI registry (/v2/ answers 404 or HTML)
        ├── NotFoundError              404: repository, manifest, blob or upload unknown
        │   └── PlatformNotFound       an index has no manifest for the platform asked for
        ├── PermissionDenied           403, or 401 after credentials were sent
        ├── UnsupportedOperation       405 or UNSUPPORTED: the registry will not do this
        ├── RangeNotSatisfiable        416: an upload chunk does not continue the session
        ├── TooManyRequests            429: the registry throttles; see ``retry_after``
        └── ServerError                5xx: the registry failed

``AuthenticationException`` is kept as an alias of
[`AuthenticationError`][aioras.exceptions.AuthenticationError] for code written against oras-py. A
[`RegistryError`][aioras.exceptions.RegistryError] carries the HTTP status, the request method and
URL (credentials stripped), and the OCI error codes of the response body.
"""

from __future__ import annotations

import pickle
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._jsondoc import load_json

__all__ = [
    "AuthenticationError",
    "AuthenticationException",
    "ConnectError",
    "CredentialHelperError",
    "CredentialsNotForwarded",
    "DigestMismatch",
    "GraphLimitExceeded",
    "InsecureTokenRealm",
    "IntegrityError",
    "MirrorError",
    "InvalidDigest",
    "InvalidHeaderValue",
    "InvalidLayout",
    "InvalidMirrorPlan",
    "InvalidReference",
    "ManifestTooLarge",
    "ManifestValidationError",
    "NotARegistry",
    "NotFoundError",
    "OciErrorDetail",
    "OrasError",
    "OutputPathError",
    "PermissionDenied",
    "PlatformNotFound",
    "RangeNotSatisfiable",
    "ReadOnlyError",
    "RegistryError",
    "RegistryInUse",
    "ResponseTooLarge",
    "ServerError",
    "SizeMismatch",
    "StorageError",
    "StreamConsumed",
    "TimeoutError",
    "TooManyRequests",
    "TransportError",
    "UnpackLimitExceeded",
    "UnreadableArchive",
    "UnsafePathError",
    "UnsupportedOperation",
    "error_for_status",
    "parse_error_body",
]


class OrasError(Exception):
    """Base class of every error raised by aioras."""


class InvalidReference(OrasError, ValueError):
    """Raised when a reference, repository name, tag or digest does not follow the grammar.

    ``part`` names the offending component (``"name"``, ``"tag"``, ``"digest"``,
    ``"registry"`` or ``"reference"``) and ``value`` holds it.
    """

    def __init__(self, message: str, *, part: str = "reference", value: str = "") -> None:
        super().__init__(message)
        self.part = part
        self.value = value


class InvalidDigest(InvalidReference):
    """Raised when a digest is malformed or names an algorithm aioras cannot verify."""

    def __init__(self, message: str, *, value: str = "") -> None:
        super().__init__(message, part="digest", value=value)


class ManifestValidationError(OrasError, ValueError):
    """Raised when a manifest, index, descriptor or config does not satisfy its schema.

    Also raised when a fetched manifest's ``mediaType`` contradicts the response's
    ``Content-Type``. ``path`` locates the failing element when the schema names one.
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class ManifestTooLarge(ManifestValidationError):
    """Raised when a manifest is larger than the limit; it is refused before being read whole."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"manifest of {size} bytes exceeds the {limit}-byte limit")
        self.size = size
        self.limit = limit


class UnreadableArchive(ManifestValidationError, tarfile.ReadError):
    """Raised when a layer marked for unpacking is not a readable tar archive.

    Also a ``tarfile.ReadError``, which `aioras.utils.extract_targz` raised before.
    """


class InvalidLayout(OrasError, ValueError):
    """Raised when an OCI image layout, a directory or a tar, breaks the image-spec.

    Covers an ``oci-layout`` file that is missing (in a tar) or names an unsupported version;
    an ``index.json`` that is missing (in a tar), larger than the limit, not JSON or not an
    image index; blob files whose names are not digests or that are not regular files; and
    tars that are compressed, sparse or list a member twice. Also raised by
    [`BlobCache`][aioras.content.cache.BlobCache] when a directory inside the cache
    (``blobs/<algorithm>``, ``locks``), or a lock file, is a symbolic link or not what it should be:
    links there are never followed. ``path`` names the offending file or archive member.
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class ReadOnlyError(OrasError):
    """Raised when ``push``, ``tag`` or ``delete`` is asked of a store opened read-only.

    An OCI layout read from a tar
    ([`aioras.OCILayout.from_tar`][aioras.content.layout.OCILayout.from_tar]) is one.
    """


class UnsafePathError(OrasError, ValueError):
    """Raised when a layer title, push path or archive member would land outside its root.

    Covers absolute paths, ``..`` components, and links or device files inside archives.
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class OutputPathError(OrasError):
    """Raised when a pull cannot make a file, directory or link where its name says.

    For example a title naming an existing directory, an archive member ``d/x`` where ``d``
    is a file, a name too long for the file system, or a full disk. ``path`` is relative to
    the output directory; ``errno`` is the operating system's error number, when there was
    one. The pull is rolled back: files that were there before are as they were.
    """

    def __init__(self, message: str, *, path: str = "", errno: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.errno = errno


class StorageError(OrasError, OSError):
    """Raised when a blob, layout file or archive cannot be written whole to disk.

    The disk is full (``ENOSPC``), a quota or file size limit is reached (``EDQUOT``,
    ``EFBIG``), or the device failed (``EIO``), while the file was created, written, flushed,
    closed or renamed. A write the kernel cuts short is continued until every byte is on its
    way to disk or the kernel refuses, and a blob is hashed from exactly the bytes written,
    so a short file is never taken for a verified one. Nothing is left: the temporary file
    is removed, nothing is renamed to the blob's (or archive's) name, and a file it would
    have replaced keeps its content. ``path`` names the file being written and ``errno`` is
    the operating system's error number. Also an ``OSError``, as these failures were before.
    """

    def __init__(self, message: str, *, path: str = "", errno: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.errno = errno


class UnpackLimitExceeded(OrasError):
    """Raised when an archive layer unpacks past a limit of the pull, before writing past it.

    ``what`` names the limit (``"bytes"``, ``"members"`` or ``"ratio"``) and ``limit`` its
    value; the limits are the ``unpack_max_*`` options of `aioras.operations.pull.pull`.
    """

    def __init__(self, message: str, *, what: str, limit: float) -> None:
        super().__init__(message)
        self.what = what
        self.limit = limit


class GraphLimitExceeded(OrasError):
    """Raised when a graph walk would go past one of its limits; nothing past it is fetched.

    ``what`` names the limit (``"max_depth"``: levels below the root, or ``"max_nodes"``:
    distinct manifests and blobs reached) and ``limit`` its value. Both are keyword options of
    [`aioras.copy`][aioras.operations.copy.copy] and
    [`aioras.AsyncRegistry.discover`][aioras.registry.AsyncRegistry.discover] (defaults
    [`aioras.defaults.max_graph_depth`][aioras.defaults.max_graph_depth] and
    [`aioras.defaults.max_graph_nodes`][aioras.defaults.max_graph_nodes]): a registry that invents
    referrers or index entries forever stops here.
    """

    def __init__(self, message: str, *, what: str, limit: int) -> None:
        super().__init__(message)
        self.what = what
        self.limit = limit


class InvalidHeaderValue(OrasError, ValueError):
    """Raised when a header value, token or credential holds what a header cannot carry.

    CR, LF, NUL, other control characters and non-ASCII characters are refused when the
    value is set (``headers=``, ``set_header``, a registry token, a Docker config entry)
    and again before any request is sent. ``name`` says which header or field; the
    message never quotes the value, which is usually a secret.
    """

    def __init__(self, message: str, *, name: str = "") -> None:
        super().__init__(message)
        self.name = name


class StreamConsumed(OrasError):
    """Raised when an upload fed from a one-shot stream broke off and would need it again.

    A store's ``push(descriptor, stream)`` reads the stream once; a transfer that must
    restart cannot. Copies open their source anew instead (``Repository.push_from``).
    """


class MirrorError(OrasError):
    """Raised by a mirror run on Dask, without ``keep_going``, when an artifact failed.

    The workers' exceptions do not travel between processes: ``report`` (the merged
    [`MirrorReport`][aioras.MirrorReport]) names each failure by its type and message.
    """

    def __init__(self, message: str, *, report: Any) -> None:
        super().__init__(message)
        self.report = report


class RegistryInUse(OrasError, pickle.PicklingError):
    """Raised when a registry object is pickled or deep-copied while a call on it is running.

    Its configuration is what travels; wait for the call to finish (or copy it before the
    call starts), so that the copy never starts from a half-changed object.
    """


class InvalidMirrorPlan(OrasError, ValueError):
    """Raised when an entry of a mirror plan is refused before anything is copied.

    Covers a source or destination that breaks the reference grammar, a destination that
    overlaps its source on the same registry (copying would overwrite what is being
    read), and a tag or repository pattern whose matching time could grow without bound
    (see `aioras.operations.mirror.plan`). ``entry`` names the plan entry (the spec,
    or the plan file and entry number); ``__cause__`` holds the underlying error, if any.
    """

    def __init__(self, message: str, *, entry: str = "") -> None:
        super().__init__(message)
        self.entry = entry


class IntegrityError(OrasError):
    """Raised when received or stored content does not match the descriptor promising it."""


class DigestMismatch(IntegrityError):
    """Raised when content hashes to a digest other than the expected one.

    A download that fails this check leaves no file behind.
    """

    def __init__(self, *, expected: str, actual: str, what: str = "content") -> None:
        super().__init__(f"{what} digest mismatch: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


class SizeMismatch(IntegrityError):
    """Raised when content has another length than the descriptor's ``size``."""

    def __init__(self, *, expected: int, actual: int, what: str = "content") -> None:
        super().__init__(f"{what} size mismatch: expected {expected} bytes, got {actual}")
        self.expected = expected
        self.actual = actual


class AuthenticationError(OrasError):
    """Raised when credentials are missing or refused, or a bearer token cannot be obtained.

    Never carries the credentials themselves. ``codes`` holds the registry's OCI error codes
    (``UNAUTHORIZED`` ...) when the refusal came with an error body.
    """

    def __init__(
        self, message: str, *, status_code: int | None = None, codes: Iterable[str] = ()
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.codes = tuple(codes)


AuthenticationException = AuthenticationError


class CredentialHelperError(AuthenticationError):
    """Raised when a credential helper is missing, fails, times out or prints nonsense.

    The message names the helper program and the action, never a credential or anything
    the helper printed.
    """


class CredentialsNotForwarded(AuthenticationError):
    """Raised when a server on another origin than the registry asks for credentials.

    Credentials belong to the registry they were given for; an upload or mount
    ``Location``, a ``Link`` page or a redirect on another origin gets none, and a
    challenge from there is answered with an anonymous token at most.
    """


class InsecureTokenRealm(AuthenticationError):
    """Raised when a bearer challenge names a token realm on plain http that may not get them.

    A realm gets credentials over https, or over plain http only when the registry itself
    is plain http on the same host. A plain http realm for an https registry is refused
    outright. Nothing is sent to the realm.
    """


class TransportError(OrasError):
    """Raised when a request got no HTTP answer; ``__cause__`` holds the httpx exception."""

    def __init__(self, message: str, *, method: str = "", url: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.url = url


class ConnectError(TransportError):
    """Raised when the connection or the TLS handshake (including verification) fails.

    Also when the server closed the connection before any byte of an answer three times
    in a row (two quick retries): what a server that is no registry (or speaks the other
    scheme) does.
    """


# Named like the builtin on purpose: ``aioras.TimeoutError`` reads naturally in an except clause.
class TimeoutError(TransportError):
    """Raised when a timeout expires (connect, read, write, pool) once retries are spent.

    Also raised when an answer arrives, but too slowly: a non-blob answer not complete
    within the read timeout of the request being sent, or a blob body slower than
    ``defaults.min_blob_rate`` over a window of the read timeout.
    """


@dataclass(frozen=True)
class OciErrorDetail:
    """One entry of an OCI error body: ``{"code", "message", "detail"}``."""

    code: str
    message: str = ""
    detail: Any = None


class RegistryError(OrasError):
    """Raised when the registry answers with a status the operation did not expect.

    Attributes: ``status_code``; ``method`` and ``url`` of the request (query and
    credentials stripped); ``errors``, the parsed OCI error entries; ``codes``, their codes
    (``BLOB_UNKNOWN``, ``MANIFEST_UNKNOWN``, ``DENIED`` ...).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        method: str = "",
        url: str = "",
        errors: Iterable[OciErrorDetail] = (),
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.method = method
        self.url = url
        self.errors = tuple(errors)

    @property
    def codes(self) -> tuple[str, ...]:
        """The OCI error codes of the response body, in order."""
        return tuple(e.code for e in self.errors)


class NotARegistry(RegistryError):
    """Raised when the server answers, but not as an OCI registry does.

    A request answered 404 with an HTML page, and ``GET /v2/`` then answered 404, or an
    HTML page: a web server, a proxy's error page or the wrong port. The message names
    ``host:port``.
    """


class NotFoundError(RegistryError):
    """Raised on 404: the repository, manifest, blob or upload session is unknown."""


class PlatformNotFound(NotFoundError):
    """Raised when an index has no manifest for the platform asked for (``pull``, ``resolve``).

    Also when ``pull`` is asked for a platform and names one manifest (not an index) whose
    image config names another platform, or no platform (``manifest=True``).

    ``platform`` is what was asked (``os/arch[/variant]``); ``available`` lists the
    platforms the index offers, in its order, in the same form.
    """

    def __init__(
        self, index: str, platform: str, available: Iterable[str], *, manifest: bool = False
    ) -> None:
        self.platform = platform
        self.available = list(available)
        offered = ", ".join(self.available) or "none"
        message = f"index {index} has no manifest for platform {platform}; available: {offered}"
        if manifest:
            # One manifest, not an index: ``available`` is the platform its config names.
            built = f"built for {offered}" if self.available else "with no platform"
            if not self.available:
                built += " (its config is no image config)"
            message = f"{index} is one manifest, not an index, {built}: not for {platform}"
        super().__init__(message, status_code=404)


class PermissionDenied(RegistryError):
    """Raised on 403, or on 401 after credentials were already presented (``DENIED``)."""


class UnsupportedOperation(RegistryError):
    """Raised on 405 or an ``UNSUPPORTED`` code, such as deletes disabled on the registry."""


class RangeNotSatisfiable(RegistryError):
    """Raised on 416: an upload chunk does not continue where the session stands."""


class TooManyRequests(RegistryError):
    """Raised on 429 once retries are spent; ``retry_after`` is the server's hint in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(RegistryError):
    """Raised on a 5xx answer once retries are spent."""


class ResponseTooLarge(RegistryError):
    """Raised when a body that is not a blob exceeds its cap; it is not read past the cap.

    Covers tag-list and catalog pages, ``GET /v2/`` and upload answers (16 MiB by default,
    [`aioras.defaults.max_response_size`][aioras.defaults.max_response_size]); ``size`` is the
    declared length or the bytes seen when reading stopped, ``limit`` the cap. Manifests raise
    [`ManifestTooLarge`][aioras.exceptions.ManifestTooLarge] and token answers
    [`AuthenticationError`][aioras.exceptions.AuthenticationError] instead. A listing (tags,
    catalog, referrers of one subject) holding more names across its pages than its cap
    ([`aioras.defaults.max_listed_names`][aioras.defaults.max_listed_names], ``max_names=``) raises
    it too, with ``size`` and ``limit`` counting names.
    """

    def __init__(self, message: str, *, size: int, limit: int, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.size = size
        self.limit = limit


_MAX_ERROR_ENTRIES = 16


def parse_error_body(body: bytes) -> tuple[OciErrorDetail, ...]:
    """Parse an OCI error body; anything that is not one yields an empty tuple.

    Registries send plain text, HTML or nothing at all on errors, so this never raises
    (JSON nested too deeply included).
    """
    try:
        doc = load_json(body)
    except ValueError:
        return ()
    entries = doc.get("errors") if isinstance(doc, Mapping) else None
    if not isinstance(entries, list):
        return ()
    out = []
    for entry in entries[:_MAX_ERROR_ENTRIES]:
        if isinstance(entry, Mapping) and isinstance(entry.get("code"), str):
            message = entry.get("message")
            out.append(
                OciErrorDetail(
                    code=entry["code"],
                    message=message if isinstance(message, str) else "",
                    detail=entry.get("detail"),
                )
            )
    return tuple(out)


_STATUS_CLASSES: dict[int, type[RegistryError]] = {
    403: PermissionDenied,
    404: NotFoundError,
    405: UnsupportedOperation,
    416: RangeNotSatisfiable,
}


def error_for_status(
    status_code: int,
    *,
    method: str,
    url: str,
    body: bytes = b"",
    retry_after: float | None = None,
    what: str = "",
) -> RegistryError:
    """Build (not raise) the typed error for a failed response.

    ``url`` must already be free of credentials; ``what`` names the object concerned
    (``"manifest localhost:5000/a/b:v1"``) for the message.
    """
    errors = parse_error_body(body)
    codes = [e.code for e in errors]
    summary = "; ".join(f"{e.code}: {e.message}" if e.message else e.code for e in errors)
    subject = what or f"{method} {url}"
    message = f"{subject}: HTTP {status_code}" + (f" ({summary})" if summary else "")
    kw: dict[str, Any] = {
        "status_code": status_code,
        "method": method,
        "url": url,
        "errors": errors,
    }
    if status_code == 429 or "TOOMANYREQUESTS" in codes:
        return TooManyRequests(message, retry_after=retry_after, **kw)
    if "UNSUPPORTED" in codes:
        return UnsupportedOperation(message, **kw)
    if status_code >= 500:
        return ServerError(message, **kw)
    return _STATUS_CLASSES.get(status_code, RegistryError)(message, **kw)
