"""What the command line says about a failure: the message in flags, and what to do next.

The library's messages are written for Python callers ("pass insecure=True"); here they are
put in the words of the command line (``--plain-http``), and each typed error gets the hint
that fits the verb that failed. Both `run` and `commands`
import this module; it imports neither.
"""

from __future__ import annotations

import json
import re

from .. import exceptions as exc

__all__ = ["Declined", "UsageError", "cli_message", "error_document", "hint_for"]


class UsageError(Exception):
    """A verb's arguments are wrong in a way argparse cannot see (exit status 2).

    Its message says what is wrong and what to type instead.
    """


def error_document(verb: str, kind: str, message: str, hint: str, status: int) -> str:
    """The JSON document ``--format json`` prints on stdout for a failure, with a newline."""
    error = {"verb": verb, "type": kind, "message": message, "hint": hint, "status": status}
    return json.dumps({"error": error}, indent=2) + "\n"


class Declined(Exception):
    """The user answered no to a question the verb asked (exit status 1, nothing done)."""


# The library's advice to Python callers, and the same advice on the command line.
_PYTHON_ADVICE = (
    (
        re.compile(r"(?:pass|use) insecure=True \(--plain-http on the command line\)"),
        "pass --plain-http",
    ),
    (
        re.compile(
            r"pass disable_path_validation=True \(--disable-path-validation on the command line\)"
        ),
        "pass --disable-path-validation",
    ),
    (
        re.compile(r"call set_basic_auth\(\) or login\(\)"),
        "pass -u USER --password-stdin, or run 'aioras login HOST' first",
    ),
)


def cli_message(error: BaseException) -> str:
    """``error``'s message on one line, its advice to Python callers given as flags."""
    message = " ".join(str(error).split()) or type(error).__name__
    for pattern, flags in _PYTHON_ADVICE:
        message = pattern.sub(flags, message)
    return message


def _plain_http_to_tls(error: BaseException, plain_http: bool) -> bool:
    """Whether ``error`` is a TLS server's answer to a plain http request.

    Go's server answers "Client sent an HTTP request to an HTTPS server." with 400, nginx
    "The plain HTTP request was sent to HTTPS port": a bare 400, where a registry's own
    400 (an invalid manifest, digest or name) carries OCI error codes.
    """
    if not plain_http or not isinstance(error, exc.RegistryError):
        return False
    return error.status_code == 400 and not error.codes


def hint_for(error: BaseException, *, verb: str = "", plain_http: bool = False) -> str:
    """What to do about ``error`` on the command line, when its message does not say."""
    text = cli_message(error)
    if isinstance(error, (UsageError, Declined)):
        return ""
    if _plain_http_to_tls(error, plain_http):
        return "the registry speaks TLS: drop --plain-http"
    if isinstance(error, exc.UnsafePathError) and "--disable-path-validation" not in text:
        return "pass --disable-path-validation to allow it"
    if isinstance(error, exc.AuthenticationError):
        if verb == "login":
            return "the registry refused these credentials: check the user name and password"
        if "aioras login" in text:
            return ""
        return "pass -u USER --password-stdin, or run 'aioras login HOST' first"
    if isinstance(error, exc.PermissionDenied):
        return "the credentials lack the right to do this"
    if isinstance(error, exc.ConnectError) and "--plain-http" not in text and "TLS" in text:
        return "pass --ca-file PATH to trust a private CA, or --insecure to skip verification"
    if isinstance(error, exc.PlatformNotFound):
        return "pick one of the platforms it offers with --platform, or drop --platform"
    if isinstance(error, exc.NotFoundError) and "in OCI layout" in text:
        return "check the tag or digest (the layout's index.json lists its tags)"
    if isinstance(error, exc.NotFoundError) and "not an OCI registry" not in text:
        return "check the name, tag or digest ('aioras repo tags HOST/NAME' lists the tags)"
    if isinstance(error, FileNotFoundError):
        return "check the path"
    if not isinstance(error, (exc.OrasError, OSError, ValueError)):
        return f"unexpected {type(error).__name__}: rerun with --debug and report the traceback"
    return ""
