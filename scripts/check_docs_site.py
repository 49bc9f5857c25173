"""Check the built documentation site: what a strict mkdocs build lets through.

    python scripts/check_docs_site.py build/site

Fails (exit status 1, one line per finding) when

- a page shows a Sphinx role literally (``:class:`` and the like followed by code): the
  docstrings write cross-references as ``[`X`][aioras.X]``, which mkdocstrings turns into
  links (``scripts/convert_roles.py`` converts the old form);
- a function or class in the API reference whose signature has parameters shows no
  parameters table, or a table missing one of them (``scripts/griffe_params.py`` builds them);
- a name in ``aioras.__all__`` has no entry in the reference: an anchor ``aioras.NAME`` (or
  what the site's ``objects.inv`` maps that name to) on a page of the site.

Standard library only, so that it runs wherever the site was built.
"""

from __future__ import annotations

import ast
import re
import sys
import zlib
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LITERAL_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|data|attr|exc|obj|const):(?:<code|`)")


@dataclass
class Entry:
    """One documented object on a page: its anchor, kind, signature and table rows."""

    kind: str
    anchor: str = ""
    signature: str | None = None
    table: list[str] | None = None
    rows: list[str] = field(default_factory=list)


class _Page(HTMLParser):
    """The documented objects of one page (mkdocstrings-python's material templates)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.entries: list[Entry] = []
        self.ids: set[str] = set()
        self._divs: list[Entry | None] = []  # per open <div>: the entry it opens, if any
        self._open: list[Entry] = []
        self._heading: Entry | None = None
        self._code: list[str] | None = None
        self._title: list[str] | None = None
        self._in_table: Entry | None = None
        self._cell: list[str] | None = None
        self._column = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        classes = (attr.get("class") or "").split()
        if attr.get("id"):
            self.ids.add(attr["id"] or "")
        if tag == "div":
            entry: Entry | None = None
            if "doc-object" in classes:
                kind = next(c[4:] for c in classes if c.startswith("doc-") and c != "doc-object")
                entry = Entry(kind)
                self.entries.append(entry)
                self._open.append(entry)
            self._divs.append(entry)
        elif re.fullmatch(r"h[1-6]", tag) and "doc-heading" in classes and self._open:
            if not self._open[-1].anchor:
                self._open[-1].anchor = attr.get("id") or ""
                self._heading = self._open[-1]
        elif tag == "code" and self._heading is not None and self._code is None:
            self._code = []
        elif tag == "span" and "doc-section-title" in classes:
            self._title = []
        elif tag == "table" and self._open and self._open[-1].table == []:
            self._in_table = self._open[-1]
        elif tag == "tr" and self._in_table is not None:
            self._column = 0
        elif tag == "td" and self._in_table is not None:
            self._column += 1
            if self._column == 1:
                self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self._divs:
            if self._divs.pop() is not None:
                self._open.pop()
        elif tag == "code" and self._code is not None:
            if self._heading is not None and self._heading.signature is None:
                self._heading.signature = "".join(self._code)
            self._code = None
        elif re.fullmatch(r"h[1-6]", tag):
            self._heading = None
        elif tag == "span" and self._title is not None:
            title = "".join(self._title).strip()
            if title == "Parameters:" and self._open and self._open[-1].table is None:
                self._open[-1].table = []
            self._title = None
        elif tag == "table" and self._in_table is not None:
            self._in_table = None
        elif tag == "td" and self._cell is not None and self._in_table is not None:
            if self._in_table.table is not None:
                self._in_table.table.append("".join(self._cell).strip().lstrip("*"))
            self._cell = None

    def handle_data(self, data: str) -> None:
        for sink in (self._code, self._title, self._cell):
            if sink is not None:
                sink.append(data)


def parameter_names(signature: str) -> list[str]:
    """The parameter names of ``name(a, *, b=1)`` as a heading shows it (no self, * or /)."""
    start, end = signature.find("("), signature.rfind(")")
    if start < 0 or end < start:
        return []
    names, depth, quote, piece = [], 0, "", ""
    for char in signature[start + 1 : end] + ",":
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            name = re.split(r"[=:]", piece, maxsplit=1)[0].strip().lstrip("*")
            if name and name not in ("self", "cls", "/"):
                names.append(name)
            piece = ""
            continue
        piece += char
    return names


def inventory(site: Path) -> dict[str, str]:
    """``objects.inv``: identifier -> page#anchor (primary and secondary identifiers)."""
    data = (site / "objects.inv").read_bytes()
    body = zlib.decompress(data.split(b"\n", 4)[4]).decode()
    urls = {}
    for line in body.splitlines():
        match = re.match(r"(\S+) (\S+) (-?\d+) (\S*) ", line)
        if match:
            name, _, _, url = match.groups()
            urls[name] = url.replace("$", name)
    return urls


def public_names(init: Path) -> list[str]:
    """``aioras.__all__``, read from the source (the docs environment does not install aioras)."""
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return list(ast.literal_eval(node.value))
    raise SystemExit(f"{init}: no __all__")


def check(
    site: Path, init: Path = ROOT / "src" / "aioras" / "__init__.py"
) -> tuple[list[str], dict[str, int]]:
    """The findings for the site in ``site``, and counts for the log."""
    problems: list[str] = []
    pages: dict[str, _Page] = {}
    literal = 0
    for path in sorted(site.rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        page_name = path.relative_to(site).as_posix()
        for match in LITERAL_ROLE.finditer(text):
            literal += 1
            line = text.count("\n", 0, match.start()) + 1
            problems.append(f"{page_name}:{line}: literal Sphinx role {match.group()!r}")
        parser = _Page()
        parser.feed(text)
        pages[page_name] = parser
    tables = callables = 0
    entries: dict[str, tuple[str, Entry]] = {}
    for page_name, parser in pages.items():
        for entry in parser.entries:
            entries[entry.anchor] = (page_name, entry)
            if entry.kind not in ("function", "class") or entry.signature is None:
                continue
            wanted = parameter_names(entry.signature)
            if not wanted:
                continue
            callables += 1
            if entry.table is None:
                problems.append(f"{page_name}#{entry.anchor}: no parameters table")
                continue
            tables += 1
            missing = [n for n in wanted if n not in entry.table]
            if missing:
                problems.append(f"{page_name}#{entry.anchor}: no table row for {missing}")
    urls = inventory(site)
    names = public_names(init)
    for name in names:
        url = urls.get(f"aioras.{name}")
        page_name, _, anchor = (url or "").partition("#")
        page_name = page_name.rstrip("/") + "/index.html" if page_name else ""
        if url is None or page_name not in pages or anchor not in pages[page_name].ids:
            problems.append(f"aioras.{name}: no entry in the API reference")
    counts = {
        "literal roles": literal,
        "callables with parameters": callables,
        "with a complete table": tables - sum("no table row" in p for p in problems),
        "__all__ names": len(names),
    }
    return problems, counts


def main(argv: list[str]) -> int:
    site = Path(argv[1] if len(argv) > 1 else ROOT / "build" / "site")
    problems, counts = check(site)
    for problem in problems:
        print(problem)
    print("docs site:", ", ".join(f"{k}: {v}" for k, v in counts.items()))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
