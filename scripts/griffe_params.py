"""Griffe extension for the API reference: a parameters table for every public callable.

The docstrings describe parameters in prose, naming each one in double backticks
(````files````, ````root````) rather than in an ``Args:`` section. This extension gives every
public function, method and class (its ``__init__``) of the package a parameters section
built from the signature (name, annotation, default) whose descriptions are the docstring's
sentences that name the parameter. A parameter the prose never names still gets its row,
with an empty description, so the table is never silently shorter than the signature; an
``Args:`` entry written in the docstring wins over the prose.

It also gives a method whose docstring is copied at run time (``push.__doc__ =
push_operation.__doc__`` in a class body, which static analysis cannot see) that docstring.

List it after ``dataclasses`` and ``SyncTwins`` in mkdocs.yml: it needs the ``__init__``
griffe builds for a dataclass, and the twins' final signatures.
"""

from __future__ import annotations

import ast
import copy
import re
from collections.abc import Iterator
from typing import Any

import griffe

# A sentence ends at . ! or ? followed by a space and what can begin one.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`(\[\"'])")
# At most this many sentences describe one parameter: the prose above the table has the rest.
_MAX_SENTENCES = 3


class ParameterTables(griffe.Extension):
    """Add a parameters section to each public callable of ``aioras``."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != "aioras":
            return
        for obj in _walk(pkg):
            if obj.is_class:
                _copied_docstrings(pkg, obj)
        for obj in _walk(pkg):
            if obj.is_function and _public(obj.name) and "property" not in obj.labels:
                _add_table(obj, obj)
            elif obj.is_class and _public(obj.name):
                init = obj.all_members.get("__init__")
                if isinstance(init, griffe.Alias):  # inherited: the parent class's __init__
                    init = init.final_target
                if init is not None and init.is_function:
                    _add_table(obj, init)


class KeywordOptions(griffe.Extension):
    """Show a method decorated ``@keyword_options_of(f)`` with ``f``'s keyword options.

    The method is written ``(self, a, b, **options)``; the reference shows, in place of
    ``**options``, the keyword-only parameters of ``f`` (as ``inspect.signature`` does).
    List it before ``SyncTwins``, whose twins copy the expanded parameters.
    """

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != "aioras":
            return
        for obj in _walk(pkg):
            if not obj.is_function:
                continue
            for decorator in obj.decorators:
                match = re.fullmatch(r"keyword_options_of\((\w+)\)", str(decorator.value))
                if match:
                    template = pkg.modules_collection[obj.module.imports[match[1]]]
                    keywords = [
                        p
                        for p in template.parameters
                        if p.kind is griffe.ParameterKind.keyword_only
                    ]
                    own = [
                        p for p in obj.parameters if p.kind is not griffe.ParameterKind.var_keyword
                    ]
                    obj.parameters = griffe.Parameters(*own, *keywords)


def _public(name: str) -> bool:
    return not name.startswith("_")


def _walk(obj: griffe.Object) -> Iterator[griffe.Object]:
    """Every module, class and function defined in ``obj`` (aliases, imports, skipped)."""
    for member in list(obj.members.values()):
        if isinstance(member, griffe.Alias):
            continue
        if member.is_module or member.is_class or member.is_function:
            yield member
        if member.is_module or member.is_class:
            yield from _walk(member)


def _copied_docstrings(pkg: griffe.Module, cls: griffe.Object) -> None:
    """Give ``name`` the docstring of ``other`` for each ``name.__doc__ = other.__doc__``."""
    source = "\n".join(cls.lines)
    try:
        body = ast.parse(_dedent(source)).body
    except SyntaxError:
        return
    if not body or not isinstance(body[0], ast.ClassDef):
        return
    for node in body[0].body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target, value = node.targets[0], node.value
        if not (
            isinstance(target, ast.Attribute)
            and target.attr == "__doc__"
            and isinstance(target.value, ast.Name)
            and isinstance(value, ast.Attribute)
            and value.attr == "__doc__"
            and isinstance(value.value, ast.Name)
        ):
            continue
        method = cls.members.get(target.value.id)
        path = cls.module.imports.get(value.value.id)
        if method is None or method.docstring is not None or path is None:
            continue
        try:
            source_obj = pkg.modules_collection[path]
        except KeyError:
            continue
        if source_obj.docstring is not None:
            method.docstring = copy.copy(source_obj.docstring)
            method.docstring.parent = method


def _dedent(source: str) -> str:
    lines = source.splitlines()
    indent = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
    return "\n".join(x[indent:] for x in lines)


def _add_table(owner: griffe.Object, function: griffe.Object) -> None:
    """Put a parameters section built from ``function``'s signature in ``owner``'s docstring."""
    parameters = [p for p in function.parameters if p.name not in ("self", "cls")]
    if not parameters:
        return
    # A class's parameters are its __init__'s, described by either docstring (the reference
    # shows both: merge_init_into_class).
    docstrings = {id(d): d for d in (owner.docstring, function.docstring) if d is not None}
    texts = [d.value for d in docstrings.values()]
    if owner.docstring is None:
        owner.docstring = griffe.Docstring("", parent=owner)
    # A docstring may be shared (a twin is a copy of its async original, whose first
    # parameter differs): the table is per object, so the docstring is copied first.
    docstring = copy.copy(owner.docstring)
    docstring.__dict__.pop("parsed", None)
    docstring.parent = owner
    owner.docstring = docstring
    sections = docstring.parse()
    written = {
        p.name: p
        for s in sections
        if s.kind is griffe.DocstringSectionKind.parameters
        for p in s.value
    }
    sections = [s for s in sections if s.kind is not griffe.DocstringSectionKind.parameters]
    prose = "\n\n".join(texts)
    rows = [written.get(p.name) or _row(p, prose) for p in parameters]
    at = 1 if sections and sections[0].kind is griffe.DocstringSectionKind.text else 0
    sections.insert(at, griffe.DocstringSectionParameters(rows))
    docstring.__dict__["parsed"] = sections


def _row(parameter: griffe.Parameter, prose: str) -> griffe.DocstringParameter:
    name = parameter.name
    if parameter.kind is griffe.ParameterKind.var_positional:
        name = f"*{name}"
    elif parameter.kind is griffe.ParameterKind.var_keyword:
        name = f"**{name}"
    return griffe.DocstringParameter(
        name,
        description=_describe(parameter.name, prose),
        annotation=parameter.annotation,
        value=parameter.default,
    )


def _describe(name: str, prose: str) -> str:
    """The sentences of ``prose`` naming ``name`` in double backticks, in reading order.

    Of a sentence listing several parameters in clauses (``a`` is ...; ``b`` is ...), only
    the clauses naming ``name``.
    """
    mention = re.compile(rf"``\*{{0,2}}{re.escape(name)}(=[^`]*)?``")
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", prose)]
    found: list[str] = []
    for sentence in (s for p in paragraphs for s in _SENTENCE_END.split(p)):
        if not mention.search(sentence):
            continue
        clauses = _clauses(sentence)
        naming = [c for c in clauses if mention.search(c)]
        if len(naming) < len(clauses):
            sentence = "; ".join(naming).rstrip(".;") + "."
            sentence = sentence[0].upper() + sentence[1:]
        if sentence not in found:
            found.append(sentence)
    return " ".join(found[:_MAX_SENTENCES])


def _clauses(sentence: str) -> list[str]:
    """``sentence`` split at its semicolons outside brackets."""
    clauses, depth, start = [], 0, 0
    for i, char in enumerate(sentence):
        depth += (char in "([{") - (char in ")]}")
        if char == ";" and depth == 0:
            clauses.append(sentence[start:i].strip())
            start = i + 1
    clauses.append(sentence[start:].strip())
    return [c for c in clauses if c]
