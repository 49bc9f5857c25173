"""Convert Sphinx roles in the docstrings of src/ into mkdocstrings cross-references.

    nox -s docs                                  # builds build/site/objects.inv
    python scripts/convert_roles.py --dry-run    # the diff and counts, nothing written
    python scripts/convert_roles.py              # rewrite the files
    python scripts/convert_roles.py --check      # exit 1 if a docstring still has a role

The API reference is rendered by mkdocstrings, which leaves ``:class:`~aioras.X``` as
literal text; it links ``[`X`][aioras.X]`` instead. Each role (``:class:``, ``:meth:``,
``:func:``, ``:mod:``, ``:data:``, ``:attr:``, ``:exc:``, ``:obj:``, ``:const:``) becomes

- ``[`shown`][identifier]`` when the target is an object the site documents: the identifier
  is looked up in the built site's ``objects.inv`` (every anchor mkdocstrings can link to),
  trying the target as Sphinx would resolve it: inside the enclosing classes, in the module,
  through the module's imports, as written, and under ``aioras``;
- ``` `shown` ``` (code, no link) otherwise: a builtin, the standard library, a private name
  the reference does not show.

``shown`` is what Sphinx would show: the last component after ``~``, the title of
``title <target>``, else the target as written. Only docstrings change (string statements:
module, class, function and attribute docstrings); the script checks that every file it
rewrites parses to the same code with only those strings changed, and it is idempotent (a
converted docstring has no role left). Standard library only.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import re
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
LINE_LENGTH = 100  # ruff's line-length (pyproject.toml)
ROLES = "class|meth|func|mod|data|attr|exc|obj|const"
# :role:`target`, :role:`~target`, :role:`!target`, :role:`title <target>`; a target may
# wrap onto the next line. A following " s" is reStructuredText's way to write a plural.
# A class whose members the reference shows on a subclass's entry (inherited_members).
SHOWN_ON = {"aioras.remote.client.RegistryClient": "aioras.registry.AsyncRegistry"}
ROLE = re.compile(rf":(?:py:)?(?:{ROLES}):`(?P<body>[^`]+)`(?P<plural> s\b)?")


@dataclass
class Counts:
    linked: int = 0
    code: int = 0
    files: int = 0


def read_inventory(path: Path) -> dict[str, str]:
    """Identifier -> its anchor, from a Sphinx ``objects.inv`` (as mkdocstrings writes it).

    An identifier that is another's alias (``aioras.AsyncRegistry`` for the class rendered
    as ``aioras.registry.AsyncRegistry``) has the anchor of what it stands for. One that
    stands for two anchors is left out (a link to it would be ambiguous).
    """
    data = path.read_bytes()
    header, _, rest = data.partition(b"\n")
    if not header.startswith(b"# Sphinx inventory version 2"):
        raise SystemExit(f"{path}: not a version 2 Sphinx inventory")
    body = zlib.decompress(rest.split(b"\n", 3)[3]).decode()
    anchors: dict[str, set[str]] = {}
    for line in body.splitlines():
        match = re.match(r"(\S+) \S+ -?\d+ (\S*) ", line)
        if match:
            name, url = match.groups()
            anchors.setdefault(name, set()).add(url.replace("$", name).rpartition("#")[2] or name)
    return {name: found.pop() for name, found in anchors.items() if len(found) == 1}


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.resolve().relative_to(src.resolve()).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(tree: ast.Module, module: str, is_package: bool) -> dict[str, str]:
    """Local name -> the dotted path it imports (relative imports resolved)."""
    package = module if is_package else module.rpartition(".")[0]
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                names[alias.asname or alias.name] = f"{base}.{alias.name}"
    return names


@dataclass
class Docstring:
    node: ast.Constant
    classes: tuple[str, ...]  # the enclosing classes, outermost first


def docstrings(tree: ast.AST, classes: tuple[str, ...] = ()) -> Iterator[Docstring]:
    """Every string statement (a docstring or an attribute docstring) with its classes."""
    for node in ast.iter_child_nodes(tree):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            yield Docstring(node.value, classes)
        elif isinstance(node, ast.ClassDef):
            yield from docstrings(node, (*classes, node.name))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            # A function's names are not looked up in the classes around it.
            yield from docstrings(node, ())
        else:
            yield from docstrings(node, classes)


class Converter:
    """Rewrites the roles of one module's docstrings against the site's identifiers."""

    def __init__(self, known: dict[str, str], module: str, names: dict[str, str]) -> None:
        self.known, self.module, self.names = known, module, names
        self.counts = Counts()
        self.unlinked: list[str] = []

    def resolve(self, target: str, classes: tuple[str, ...]) -> str | None:
        target = target.lstrip(".")
        candidates = [
            ".".join([self.module, *classes[:i], target]) for i in range(len(classes), -1, -1)
        ]
        head, _, rest = target.partition(".")
        if head in self.names:
            candidates.append(self.names[head] + (f".{rest}" if rest else ""))
        candidates += [target, f"aioras.{target}"]
        for candidate in candidates:
            for name in (candidate, *self._through_aliases(candidate)):
                if name in self.known:
                    # The anchor is the identifier autorefs knows first-hand (no alias).
                    return self.known[name]
        return None

    def _through_aliases(self, name: str) -> Iterator[str]:
        """``name`` with a leading part replaced by what the site renders it as.

        ``aioras.AsyncRegistry.mirror``: the class is rendered as
        ``aioras.registry.AsyncRegistry``, so its method is ``...AsyncRegistry.mirror``; a
        class in ``SHOWN_ON`` has its members rendered on the subclass named there.
        """
        parts = name.split(".")
        for i in range(len(parts) - 1, 0, -1):
            head, rest = ".".join(parts[:i]), parts[i:]
            for anchor in (self.known.get(head), SHOWN_ON.get(head)):
                if anchor:
                    yield ".".join([anchor, *rest])

    def replace(self, match: re.Match[str], classes: tuple[str, ...]) -> str:
        body = re.sub(r"\s*\n\s*", " ", match["body"]).strip()
        titled = re.fullmatch(r"(?P<title>.+?)\s*<(?P<target>[^<>]+)>", body)
        if titled:
            shown, target = titled["title"], titled["target"].replace(" ", "")
        else:
            target = body.lstrip("!")
            shown = target.lstrip("~").rsplit(".", 1)[-1] if target.startswith("~") else target
            target = target.lstrip("~")
        plural = "s" if match["plural"] else ""
        identifier = None if body.startswith("!") else self.resolve(target, classes)
        if identifier is None:
            self.counts.code += 1
            self.unlinked.append(target)
            return f"`{shown}`{plural}"
        self.counts.linked += 1
        return f"[`{shown}`][{identifier}]{plural}"


def convert_source(
    source: str, module: str, known: dict[str, str], is_package: bool = False
) -> tuple[str, Converter]:
    """``source`` with its docstrings' roles converted, and what was done."""
    tree = ast.parse(source)
    converter = Converter(known, module, imports(tree, module, is_package))
    data = source.encode("utf-8")
    starts = [0]
    for line in data.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    edits = []
    for doc in docstrings(tree):
        node = doc.node
        if node.end_lineno is None or node.end_col_offset is None:
            continue
        begin = starts[node.lineno - 1] + node.col_offset
        end = starts[node.end_lineno - 1] + node.end_col_offset
        literal = data[begin:end].decode("utf-8")
        new = ROLE.sub(lambda m, c=doc.classes: converter.replace(m, c), literal)
        if new != literal:
            first_column = len(data[starts[node.lineno - 1] : begin].decode("utf-8"))
            new = rewrap(new, first_column)
            edits.append((begin, end, new.encode("utf-8")))
    for begin, end, new_bytes in sorted(edits, reverse=True):
        data = data[:begin] + new_bytes + data[end:]
    text = data.decode("utf-8")
    if edits:
        _same_code(source, text, module)
    return text, converter


def rewrap(literal: str, first_column: int, limit: int = LINE_LENGTH) -> str:
    """``literal`` with each line over ``limit`` broken at its last space that fits.

    What is cut off goes to the front of the next line when that line continues the same
    paragraph (same indentation, not a list item, not the closing quotes), else onto a new
    line of its own; the next line is then checked in turn. Lines not made longer by the
    conversion are left alone unless the overflow reaches them.
    """
    lines = literal.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        offset = first_column if i == 0 else 0
        if offset + len(line) <= limit:
            i += 1
            continue
        indent = _indent(lines[i]) if i else " " * _body_indent(lines, first_column)
        item = re.match(r"(?:[-*+]|\d+[.)])\s+", line[len(indent) :])
        if item:  # a list item goes on under its text, not under its marker
            indent += " " * len(item.group())
        cut = line.rfind(" ", len(indent) + 1 if i else 4, limit - offset + 1)
        if item and cut < len(indent):
            cut = -1
        if cut <= len(indent):
            i += 1  # one long word: nothing to break
            continue
        head, tail = line[:cut].rstrip(), line[cut + 1 :].lstrip()
        lines[i] = head
        following = lines[i + 1] if i + 1 < len(lines) else None
        if following is not None and _continues(following, indent):
            lines[i + 1] = f"{indent}{tail} {following.strip()}"
        else:
            lines.insert(i + 1, f"{indent}{tail}")
        i += 1
    return "\n".join(lines)


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _body_indent(lines: list[str], first_column: int) -> int:
    """The indentation of a docstring's later lines (that of its opening quotes if none)."""
    body = [len(_indent(x)) for x in lines[1:] if x.strip()]
    return min(body) if body else first_column


def _continues(line: str, indent: str) -> bool:
    """Whether ``line`` goes on with the paragraph of a line indented by ``indent``."""
    text = line.strip()
    return (
        bool(text)
        and _indent(line) == indent
        and not re.match(r"(?:[-*+]|\d+[.)])\s|[\"']{3}|```|\.\. ", text)
        and not text.endswith("::")
    )


def _skeleton(source: str) -> str:
    """``source``'s syntax tree with every string statement emptied."""
    tree = ast.parse(source)
    for doc in docstrings(tree):
        doc.node.value = ""
    return ast.dump(tree)


def _same_code(old: str, new: str, module: str) -> None:
    if _skeleton(old) != _skeleton(new):
        raise SystemExit(f"{module}: the conversion changed more than docstrings; nothing written")


def remaining(source: str) -> list[tuple[int, str]]:
    """(line, role) of each role left in the docstrings of ``source``."""
    found = []
    for doc in docstrings(ast.parse(source)):
        for match in ROLE.finditer(doc.node.value):
            line = doc.node.lineno + doc.node.value.count("\n", 0, match.start())
            found.append((line, match.group()))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[SRC / "aioras"])
    parser.add_argument("--inventory", type=Path, default=ROOT / "build" / "site" / "objects.inv")
    parser.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
    parser.add_argument("--check", action="store_true", help="fail if a docstring has a role")
    parser.add_argument("--verbose", action="store_true", help="list the targets left unlinked")
    args = parser.parse_args(argv)
    files = sorted(f for p in args.paths for f in ([p] if p.is_file() else p.rglob("*.py")))
    if args.check:
        left = [
            f"{f.relative_to(ROOT)}:{line}: {role}"
            for f in files
            for line, role in remaining(f.read_text(encoding="utf-8"))
        ]
        print("\n".join([*left, f"Sphinx roles left in docstrings: {len(left)}"]))
        return 1 if left else 0
    if not args.inventory.exists():
        raise SystemExit(f"{args.inventory} is missing: build the site first (nox -s docs)")
    known = read_inventory(args.inventory)
    total = Counts()
    for path in files:
        source = path.read_text(encoding="utf-8")
        module = module_name(path)
        text, converter = convert_source(source, module, known, path.name == "__init__.py")
        total.linked += converter.counts.linked
        total.code += converter.counts.code
        if args.verbose and converter.unlinked:
            print(f"{module}: unlinked {sorted(set(converter.unlinked))}")
        if text == source:
            continue
        total.files += 1
        if args.dry_run:
            rel = str(path.relative_to(ROOT))
            sys.stdout.writelines(
                difflib.unified_diff(
                    source.splitlines(keepends=True), text.splitlines(keepends=True), rel, rel
                )
            )
        else:
            path.write_text(text, encoding="utf-8")
    verb = "would change" if args.dry_run else "changed"
    print(
        f"roles: {total.linked} linked, {total.code} left as code (no page documents them); "
        f"{verb} {total.files} files"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
