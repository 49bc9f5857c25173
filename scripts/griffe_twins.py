"""Griffe extension for the API reference: the sync ``Registry``'s twins shown as methods.

``Registry`` declares its methods as class attributes built from the async ones
(``push = twin(AsyncRegistry.push)``, see ``aioras.sync._twins``), which the static analysis
behind the reference sees as plain attributes. This extension puts in their place a copy of
what each names: its parameters, return annotation and docstring, without the ``async``
label (a module function's registry parameter becomes ``self``; a method whose docstring is
set at run time takes that of its ``via`` operation), and gives ``__init__``
the parameters of ``AsyncRegistry.__init__``.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import griffe

_TWIN = re.compile(r"^(plain_|context_|loop_)?twin\(([\w.]+)")


class SyncTwins(griffe.Extension):
    """Expand ``name = twin(...)`` attributes of ``aioras.sync.registry.Registry``."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != "aioras":
            return
        facade = pkg["sync.registry.Registry"]
        core = pkg["registry.AsyncRegistry"]
        for name, member in list(facade.members.items()):
            match = _TWIN.match(str(getattr(member, "value", "") or ""))
            if member.is_attribute and match:
                kind, source = match.groups()
                method = _method(pkg, core, facade, name, kind, source)
                via = re.search(r"via=(\w+)", str(member.value))
                if method.docstring is None and via:  # set at run time: push.__doc__ = ...
                    method.docstring = pkg.modules_collection[
                        facade.module.imports[via[1]]
                    ].docstring
                facade.set_member(name, method)
        init = facade.members["__init__"]
        init.parameters = copy.deepcopy(_final(core.all_members["__init__"]).parameters)


def _method(
    pkg: griffe.Module,
    core: griffe.Object,
    facade: griffe.Object,
    name: str,
    kind: str | None,
    source: str,
) -> griffe.Function:
    if source.startswith("AsyncRegistry."):
        # Most methods are the endpoint client's, inherited: an alias to the client's.
        original = _final(core.all_members[source.removeprefix("AsyncRegistry.")])
    else:
        original = _imported(pkg, facade, source)
    method = copy.copy(original)
    method.name = name
    # The copy is no import's target: sharing the original's aliases would make the
    # reference offer two anchors for a name such as aioras.copy.
    method.aliases = {}
    method.labels = set(original.labels) - {"async"}
    parameters = list(original.parameters)
    if not source.startswith("AsyncRegistry."):
        self = griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword)
        parameters = [self, *(parameters if kind == "loop_" else parameters[1:])]
    method.parameters = griffe.Parameters(*parameters)
    return method


def _final(member: Any) -> Any:
    """The object an inherited member (an alias) stands for."""
    return member.final_target if isinstance(member, griffe.Alias) else member


def _imported(pkg: griffe.Module, facade: griffe.Object, name: str) -> Any:
    """What ``name``, imported by the facade's module, stands for."""
    return pkg.modules_collection[facade.module.imports[name]]
