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
from . import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, commands
from .errors import Declined, UsageError, cli_message, error_document, hint_for
from .terminal import SafeFormatter, write_err, write_out

__all__ = ["report", "run", "verb_name"]


# Verb functions whose name is not their words on the command line.
_VERB_NAMES = {"index_create": "manifest index create", "index_update": "manifest index update"}

PASSWORD_ON_COMMAND_LINE = (
    "aioras: warning: a password given on the command line (-p/--password, --from-password, "
    "--to-password) can be read by other users of this machine (process list, shell "
    "history); pass it with --password-stdin (--from-/--to-password-stdin) instead"
)


def run(args: argparse.Namespace) -> int:
    """Run ``args.run`` from `aioras.cli.commands`; return the exit status."""
    if any(getattr(args, name, None) is not None for name in _PASSWORD_FLAGS):
        write_err(PASSWORD_ON_COMMAND_LINE + "\n")
    verb = getattr(commands, args.run)
    try:
        with _log_to_stderr(args.debug, getattr(args, "verbose", False)):
            anyio.run(partial(commands.invoke, verb, args))
    except KeyboardInterrupt:
        write_err("aioras: interrupted\n")
        return EXIT_INTERRUPTED
    except (UsageError, exc.InvalidReference) as error:
        return _fail(args, error, EXIT_USAGE)
    except (exc.OrasError, OSError, ValueError, Declined) as error:
        return _fail(args, error, EXIT_FAILURE)
    except Exception as error:
        # Anything else is a bug: still one line (the traceback under --debug).
        return _fail(args, error, EXIT_FAILURE)
    return EXIT_OK


_PASSWORD_FLAGS = ("password", "from_password", "to_password")


@contextmanager
def _log_to_stderr(debug: bool, verbose: bool) -> Iterator[None]:
    """Log lines (warnings; info with ``-v``; everything under ``--debug``) to stderr.

    Through the gate: without this, the library's warnings would reach the terminal through
    `logging`'s last-resort handler, unfiltered, and they quote registries (``Warning``
    headers).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("%(name)s: %(message)s" if debug else "%(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING)
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


def verb_name(run_name: str) -> str:
    """The words of a verb on the command line, from its function's name."""
    return _VERB_NAMES.get(run_name, run_name.replace("_", " "))


def _fail(args: argparse.Namespace, error: BaseException, status: int) -> int:
    if args.debug:
        write_err("".join(traceback.format_exception(error)))
    # One line, whatever the message holds: the registry's words are escaped, not obeyed.
    message = cli_message(error)
    hint = hint_for(error, verb=args.run, plain_http=_plain_http(args))
    report(args, verb_name(args.run), type(error).__name__, message, hint, status)
    return status


def _plain_http(args: argparse.Namespace) -> bool:
    names = ("plain_http", "from_plain_http", "to_plain_http")
    return any(getattr(args, name, False) for name in names)


def report(
    args: argparse.Namespace, what: str, kind: str, message: str, hint: str, status: int
) -> None:
    """The failure line on stderr and, with ``--format json``, the error document on stdout."""
    write_err(f"aioras {what}: {message}{'; ' + hint if hint else ''}\n")
    if getattr(args, "format", "text") == "json":
        write_out(error_document(what, kind, message, hint, status))
