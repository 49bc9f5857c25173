"""Fail on a function in src/ longer than 60 lines of code (``nox -s lint`` runs it).

    python scripts/function_lengths.py [--limit 60] [--all] [paths...]

A function's lines of code are the lines from its ``def`` to its end that hold a token of
code: blank lines, comment lines and its docstring do not count; a nested function counts
toward the function that holds it (it is read as part of it). Standard library only.

``ALLOWED`` lists the functions that were over the limit when the check came in. They are
not waived: each is to be split, and its entry deleted then. A function not listed fails
the check, so the list can only shrink. ``--all`` prints every function over the limit,
listed or not (the worklist).
"""

from __future__ import annotations

import argparse
import ast
import io
import sys
import tokenize
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 60

# path (from the repository root) :: qualified name. Today's offenders, to be split.
ALLOWED: frozenset[str] = frozenset(
    {
        # A declarative table, exempt by design: the command line's parser, one
        # add_argument per option and nothing else.
        "src/aioras/cli/parser.py::build_parser",
    }
)

_NOT_CODE = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENDMARKER,
}


def code_lines(source: str) -> set[int]:
    """The numbers of the lines of ``source`` holding a token of code."""
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in _NOT_CODE:
            lines.update(range(token.start[0], token.end[0] + 1))
    return lines


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.AST]]:
    """Every function in ``tree`` (outermost ones, with their qualified name)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield f"{prefix}{node.name}", node
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, f"{prefix}{node.name}.")
        else:
            yield from functions(node, prefix)


def measure(path: Path) -> Iterator[tuple[str, int]]:
    """(qualified name, lines of code) of each outermost function or method in ``path``."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, str(path))
    code = code_lines(source)
    for name, node in functions(tree):
        assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        span = set(range(node.lineno, (node.end_lineno or node.lineno) + 1))
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            span -= set(range(body[0].lineno, (body[0].end_lineno or body[0].lineno) + 1))
        yield name, len(span & code)


def _shown(path: Path) -> str:
    """``path`` from the repository root (as ALLOWED names it), or as given if outside."""
    resolved = path.resolve()
    return resolved.relative_to(ROOT).as_posix() if resolved.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[ROOT / "src"])
    parser.add_argument("--limit", type=int, default=LIMIT)
    parser.add_argument("--all", action="store_true", help="list allowed offenders too")
    args = parser.parse_args(argv)
    files = sorted(f for p in args.paths for f in ([p] if p.is_file() else p.rglob("*.py")))
    new, listed, seen = [], [], set()
    for path in files:
        where = _shown(path)
        for name, length in measure(path):
            key = f"{where}::{name}"
            seen.add(key)
            if length > args.limit:
                (listed if key in ALLOWED else new).append(f"{key}: {length} lines of code")
    for line in new:
        print(f"{line} (over {args.limit}: split it)")
    if args.all:
        for line in listed:
            print(f"{line} (listed in ALLOWED)")
    gone = sorted(
        k for k in ALLOWED if k not in seen or not any(x.startswith(f"{k}:") for x in listed)
    )
    for key in gone:
        print(f"note: {key} is within the limit or gone: delete its ALLOWED entry")
    print(
        f"function lengths: {len(new)} new over {args.limit} lines, "
        f"{len(listed)} listed in ALLOWED still over"
    )
    return 1 if new else 0


if __name__ == "__main__":
    sys.exit(main())
