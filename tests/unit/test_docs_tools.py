"""The developer scripts behind ``nox -s lint`` and ``nox -s docs``.

``scripts/function_lengths.py`` (no function over 60 lines of code), ``scripts/
check_docs_site.py`` (no literal Sphinx role, a parameters table for every callable, an
entry for every public name) and ``scripts/convert_roles.py`` (Sphinx roles in docstrings
to mkdocstrings cross-references), each on small inputs made here.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import textwrap
import zlib
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_script_{name}", SCRIPTS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


lengths = _script("function_lengths")
site_check = _script("check_docs_site")
roles = _script("convert_roles")


# -- function lengths ---------------------------------------------------------------------


def _function(statements: int, *, docstring_lines: int = 0, comments: int = 0) -> str:
    body = []
    if docstring_lines:
        body += ['    """Summary.', *["    more" for _ in range(docstring_lines - 2)], '    """']
    body += ["    # why" for _ in range(comments)] + ["", ""]
    body += [f"    x{i} = {i}" for i in range(statements - 1)]
    return "\n".join(["def f():", *body]) + "\n"


def test_function_over_sixty_lines_of_code_fails_the_length_check(tmp_path: Path) -> None:
    (tmp_path / "long.py").write_text(_function(61))
    assert lengths.main([str(tmp_path)]) == 1
    (tmp_path / "long.py").write_text(_function(60))
    assert lengths.main([str(tmp_path)]) == 0


def test_docstring_comments_and_blank_lines_do_not_count_as_code(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(_function(10, docstring_lines=30, comments=30))
    assert dict(lengths.measure(path)) == {"f": 10}


def test_method_and_nested_function_are_measured_with_their_qualified_name(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.py"
    path.write_text("class C:\n    def m(self):\n        def inner():\n            pass\n")
    assert dict(lengths.measure(path)) == {"C.m": 3}


# -- the built site -----------------------------------------------------------------------


def _inventory(entries: dict[str, str]) -> bytes:
    lines = "".join(f"{name} py:class 1 {url} -\n" for name, url in entries.items())
    header = b"# Sphinx inventory version 2\n# Project: x\n# Version: 0\n# zlib\n"
    return header + zlib.compress(lines.encode())


def _entry(anchor: str, signature: str, rows: list[str] | None, text: str = "") -> str:
    table = ""
    if rows is not None:
        cells = "".join(
            f'<tr class="doc-section-item"><td><code>{r}</code></td></tr>' for r in rows
        )
        table = f'<p><span class="doc-section-title">Parameters:</span></p><table>{cells}</table>'
    return (
        f'<div class="doc doc-object doc-function"><h3 id="{anchor}" class="doc doc-heading">'
        f"<code>{signature}</code></h3><div class='doc doc-contents'><p>{text}</p>{table}"
        "</div></div>"
    )


def _site(tmp_path: Path, body: str, names: list[str]) -> tuple[Path, Path]:
    site = tmp_path / "site"
    (site / "ref").mkdir(parents=True)
    (site / "ref" / "index.html").write_text(f"<html><body>{body}</body></html>")
    (site / "objects.inv").write_bytes(
        _inventory({f"aioras.{n}": f"ref/#aioras.{n}" for n in names})
    )
    init = tmp_path / "__init__.py"
    init.write_text(f"__all__ = {names!r}\n")
    return site, init


def test_site_with_tables_for_every_callable_and_every_name_passes(tmp_path: Path) -> None:
    body = _entry("aioras.f", "f(a, *, b=(1, 2), **kw)", ["a", "b", "**kw"])
    problems, counts = site_check.check(*_site(tmp_path, body, ["f"]))
    assert problems == []
    assert counts["callables with parameters"] == 1


def test_literal_sphinx_role_on_a_page_fails_the_site_check(tmp_path: Path) -> None:
    body = _entry("aioras.f", "f()", None, text="see :class:<code>~aioras.X</code>")
    problems, _ = site_check.check(*_site(tmp_path, body, ["f"]))
    assert problems == ["ref/index.html:1: literal Sphinx role ':class:<code'"]


def test_callable_without_a_parameters_table_fails_the_site_check(tmp_path: Path) -> None:
    body = _entry("aioras.f", "f(self, a)", None) + _entry("aioras.g", "g(a, b)", ["a"])
    problems, _ = site_check.check(*_site(tmp_path, body, ["f", "g"]))
    assert problems == [
        "ref/index.html#aioras.f: no parameters table",
        "ref/index.html#aioras.g: no table row for ['b']",
    ]


def test_public_name_without_a_reference_entry_fails_the_site_check(tmp_path: Path) -> None:
    site, init = _site(tmp_path, _entry("aioras.f", "f()", None), ["f"])
    init.write_text("__all__ = ['f', 'Missing']\n")
    problems, _ = site_check.check(site, init)
    assert problems == ["aioras.Missing: no entry in the API reference"]


# -- role conversion ----------------------------------------------------------------------

KNOWN = {
    "aioras.exceptions.NotFoundError": "aioras.exceptions.NotFoundError",
    "aioras.Container": "aioras.container.Container",
    "aioras.container.Container": "aioras.container.Container",
    "aioras.container.Container.parse": "aioras.container.Container.parse",
    "aioras.registry.AsyncRegistry": "aioras.registry.AsyncRegistry",
    "aioras.AsyncRegistry": "aioras.registry.AsyncRegistry",
    "aioras.registry.AsyncRegistry.mirror": "aioras.registry.AsyncRegistry.mirror",
    "aioras.mod.Thing": "aioras.mod.Thing",
}

MODULE = textwrap.dedent(
    '''
    """Module: raises :class:`~aioras.exceptions.NotFoundError`; see :mod:`asyncio`."""

    from .container import Container

    NOTE = ":class:`Container` in a plain string stays"  # :class:`Container` in a comment


    class Thing:
        """A :class:`Container` user, with :meth:`parse <aioras.Container.parse>`."""

        def go(self) -> None:
            """Runs :meth:`aioras.AsyncRegistry.mirror` and :class:`Thing` s."""

        KIND = 1
        """Used by :func:`!private`."""
    '''
)


def test_roles_become_links_to_what_the_site_documents() -> None:
    text, converter = roles.convert_source(MODULE, "aioras.mod", KNOWN)
    text = " ".join(text.split())  # long lines are wrapped
    assert "raises [`NotFoundError`][aioras.exceptions.NotFoundError]; see `asyncio`." in text
    assert "A [`Container`][aioras.container.Container] user" in text
    assert "with [`parse`][aioras.container.Container.parse]." in text
    assert "Runs [`aioras.AsyncRegistry.mirror`][aioras.registry.AsyncRegistry.mirror]" in text
    assert "and [`Thing`][aioras.mod.Thing]s." in text
    assert "Used by `private`." in text
    assert (converter.counts.linked, converter.counts.code) == (5, 2)


def test_role_conversion_changes_only_docstrings_and_is_idempotent() -> None:
    text, _ = roles.convert_source(MODULE, "aioras.mod", KNOWN)
    assert 'NOTE = ":class:`Container` in a plain string stays"  # :class:`Container` in' in text
    assert roles.remaining(text) == []
    again, converter = roles.convert_source(text, "aioras.mod", KNOWN)
    assert again == text
    assert converter.counts.linked == converter.counts.code == 0


def test_converted_line_over_the_limit_is_wrapped_into_its_paragraph() -> None:
    source = (
        "def f():\n"
        '    """Summary.\n\n'
        "    A long line that ends with a role: " + "w " * 20 + ":class:`Container`, and\n"
        "    the next line of the paragraph.\n"
        '    """\n'
    )
    text, _ = roles.convert_source(source, "aioras.mod", KNOWN)
    assert max(len(line) for line in text.splitlines()) <= 100
    doc = ast.get_docstring(ast.parse(text).body[0])  # type: ignore[arg-type]
    assert doc is not None
    assert " ".join(doc.split()).endswith(
        "w w [`Container`][aioras.container.Container], and the next line of the paragraph."
    )


def test_role_check_reports_a_role_left_in_a_docstring() -> None:
    assert roles.remaining(MODULE) == [
        (2, ":class:`~aioras.exceptions.NotFoundError`"),
        (2, ":mod:`asyncio`"),
        (10, ":class:`Container`"),
        (10, ":meth:`parse <aioras.Container.parse>`"),
        (13, ":meth:`aioras.AsyncRegistry.mirror`"),
        (13, ":class:`Thing` s"),
        (16, ":func:`!private`"),
    ]


def test_inventory_name_standing_for_two_anchors_is_not_linked(tmp_path: Path) -> None:
    lines = (
        "aioras.copy py:function 2 a/#one.copy -\n"
        "aioras.copy py:function 2 b/#two.copy -\n"
        "aioras.X py:class 2 a/#aioras.x.X -\n"
    )
    header = b"# Sphinx inventory version 2\n# Project: x\n# Version: 0\n# zlib\n"
    path = tmp_path / "objects.inv"
    path.write_bytes(header + zlib.compress(lines.encode()))
    assert roles.read_inventory(path) == {"aioras.X": "aioras.x.X"}


def test_no_docstring_in_src_has_a_sphinx_role() -> None:
    src = SCRIPTS.parent / "src" / "aioras"
    left = [
        (str(path.relative_to(src)), line, role)
        for path in sorted(src.rglob("*.py"))
        for line, role in roles.remaining(path.read_text(encoding="utf-8"))
    ]
    assert left == []


@pytest.mark.parametrize("shown", ["`x`", "[`x`][aioras.x]"])
def test_converted_reference_is_not_taken_for_a_role(shown: str) -> None:
    assert roles.remaining(f'"""Uses {shown}."""\n') == []
