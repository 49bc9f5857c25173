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

__all__ = ["EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

MISSING_RICH = "aioras: the command line needs the cli extra: pip install 'aioras[cli]'"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    from .parser import build_parser

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # argparse leaves an unknown flag to the top level, whose usage does not help:
        # the verb that was named reports it, with its own usage (exit status 2).
        getattr(args, "verb_parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
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
