"""Run one parsed verb: build the registry client, call the verb, turn failures into one line."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import anyio

from .. import exceptions as exc
from . import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from .terminal import SafeFormatter, write_err

__all__ = ["UsageError", "hint_for", "run"]


class UsageError(Exception):
    """A verb's arguments are wrong in a way argparse cannot see (exit status 2)."""


# Verb functions whose name is not their words on the command line.
_VERB_NAMES = {"index_create": "manifest index create", "index_update": "manifest index update"}

PASSWORD_ON_COMMAND_LINE = (
    "aioras: warning: a password given with -p/--password can be read by other users of this "
    "machine (process list, shell history); pass it with --password-stdin instead"
)


def run(args: argparse.Namespace) -> int:
    """Run ``args.run`` from :mod:`aioras.cli.commands`; return the exit status."""
    from . import commands

    if args.password is not None:
        write_err(PASSWORD_ON_COMMAND_LINE + "\n")
    verb = getattr(commands, args.run)
    try:
        with _log_to_stderr(args.debug):
            anyio.run(partial(commands.invoke, verb, args))
    except KeyboardInterrupt:
        write_err("aioras: interrupted\n")
        return EXIT_INTERRUPTED
    except (UsageError, exc.InvalidReference) as error:
        return _fail(args, error, EXIT_USAGE)
    except (exc.OrasError, OSError, ValueError) as error:
        return _fail(args, error, EXIT_FAILURE)
    except Exception as error:
        # Anything else is a bug: still one line (the traceback under --debug).
        return _fail(args, error, EXIT_FAILURE)
    return EXIT_OK


@contextmanager
def _log_to_stderr(debug: bool) -> Iterator[None]:
    """Log lines (warnings; everything under ``--debug``) to stderr, through the gate.

    Without this, the library's warnings would reach the terminal through :mod:`logging`'s
    last-resort handler, unfiltered, and they quote registries (``Warning`` headers).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("%(name)s: %(message)s" if debug else "%(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.captureWarnings(True)
    if debug:
        from ..logger import redact_http_logs

        redact_http_logs()
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        root.setLevel(level)


def _fail(args: argparse.Namespace, error: BaseException, status: int) -> int:
    if args.debug:
        write_err("".join(traceback.format_exception(error)))
    what = _VERB_NAMES.get(args.run, args.run.replace("_", " "))
    # One line, whatever the message holds: the registry's words are escaped, not obeyed.
    message = " ".join(str(error).split()) or type(error).__name__
    hint = hint_for(error)
    write_err(f"aioras {what}: {message}{'; ' + hint if hint else ''}\n")
    return status


def hint_for(error: BaseException) -> str:
    """What to do about ``error`` on the command line, when its message does not say."""
    text = str(error)
    if isinstance(error, exc.UnsafePathError) and "--disable-path-validation" not in text:
        return "pass --disable-path-validation to allow it"
    if isinstance(error, exc.AuthenticationError):
        return "log in with 'aioras login HOST' or pass -u and -p"
    if isinstance(error, exc.PermissionDenied):
        return "the credentials lack the right to do this"
    if isinstance(error, exc.ConnectError) and "--plain-http" not in text and "TLS" in text:
        return "pass --ca-file PATH to trust a private CA, or --insecure to skip verification"
    if isinstance(error, exc.NotFoundError) and "not an OCI registry" not in text:
        return "check the name, tag or digest ('aioras repo tags HOST/NAME' lists the tags)"
    if isinstance(error, FileNotFoundError):
        return "check the path"
    if not isinstance(error, (exc.OrasError, OSError, ValueError)):
        return f"unexpected {type(error).__name__}: rerun with --debug and report the traceback"
    return ""
