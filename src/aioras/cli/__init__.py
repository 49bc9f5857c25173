"""The ``aioras`` command line: verbs and flags after the oras CLI, on the library's operations.

``main(argv)`` parses, runs one verb and returns the exit status:

- ``0`` success;
- ``1`` the operation failed (one line on stderr saying what failed and what to do);
- ``2`` usage error (bad flags or arguments, a malformed reference), or the ``cli`` extra is
  not installed (``pip install 'aioras[cli]'``);
- ``130`` interrupted (Ctrl-C).

Only `argparse` and the version are imported to parse; a verb imports what it uses, so
``aioras --help`` and ``aioras --version`` answer quickly.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .parser import ArgumentsRejected

__all__ = ["EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

MISSING_RICH = "aioras: the command line needs the cli extra: pip install 'aioras[cli]'"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    from .parser import ArgumentsRejected, build_parser

    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:
            # argparse leaves an unknown flag to the top level, whose usage does not help:
            # the verb that was named reports it, with its own usage (exit status 2).
            rejecting = getattr(args, "verb_parser", parser)
            rejecting.error(f"unrecognized arguments: {' '.join(extra)}")
    except ArgumentsRejected as rejected:
        return _usage_error(rejected, sys.argv[1:] if argv is None else argv)
    if getattr(args, "run", None) == "version":
        from ..version import __version__

        print(f"aioras {__version__}")
        return EXIT_OK
    if getattr(args, "run", None) is None:
        # A bare "aioras" or "aioras manifest": the help of what was named.
        getattr(args, "help_parser", parser).print_help(sys.stderr)
        return EXIT_USAGE
    try:
        import rich  # noqa: F401  (the extra's marker: the renderer of progress and tables)
    except ImportError:
        print(MISSING_RICH, file=sys.stderr)
        return EXIT_USAGE
    from .run import run

    return run(args)


def _usage_error(rejected: ArgumentsRejected, argv: Sequence[str]) -> int:
    """Report what argparse refused: the verb's usage and the error on stderr.

    With ``--format json`` in ``argv`` (read as far as it can be: parsing failed), the
    error document goes to stdout too, as for any other failure.
    """
    from .errors import error_document
    from .terminal import write_err, write_out

    rejected.parser.print_usage(sys.stderr)
    prog = rejected.parser.prog
    write_err(f"{prog}: error: {rejected.message}\n")
    if _json_format(argv):
        verb = prog.removeprefix("aioras").strip() or "aioras"
        write_out(error_document(verb, "UsageError", rejected.message, "", EXIT_USAGE))
    return EXIT_USAGE


def _json_format(argv: Sequence[str]) -> bool:
    """Whether ``argv`` asks for ``--format json`` (its last --format wins, as argparse's)."""
    chosen = None
    for index, word in enumerate(argv):
        if word == "--":
            break
        if word == "--format" and index + 1 < len(argv):
            chosen = argv[index + 1]
        elif word.startswith("--format="):
            chosen = word.partition("=")[2]
    return chosen == "json"
