"""Each operation's options dataclass and the public signatures taking its options agree.

The public methods list their keyword options explicitly (readers, type checkers, the sync
twins, oras-py code) and gather them into the dataclass in one line; an option added to
one but not the other must fail here, by name, default and annotation.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import pytest

import aioras
from aioras.operations._options import gather, keyword_options_of
from aioras.operations.attach import AttachOptions
from aioras.operations.copy import CopyOptions
from aioras.operations.mirror.run import MirrorOptions
from aioras.operations.pull import PullOptions
from aioras.operations.push import PushOptions

# (public callable, its options class, keyword options it takes that are no field)
CASES: list[tuple[Callable[..., Any], type[Any], set[str]]] = [
    (aioras.AsyncRegistry.push, PushOptions, {"files"}),
    (aioras.Registry.push, PushOptions, {"files"}),
    (aioras.AsyncRegistry.pull, PullOptions, set()),
    (aioras.Registry.pull, PullOptions, set()),
    (aioras.AsyncRegistry.attach, AttachOptions, set()),
    (aioras.AsyncRegistry.copy, CopyOptions, {"platform", "progress"}),
    (aioras.copy, CopyOptions, {"platform", "progress"}),
    (aioras.AsyncRegistry.mirror, MirrorOptions, {"rate_limits"}),
]


def _keyword_options(function: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    parameters = inspect.signature(function).parameters.values()
    return {p.name: p for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


@pytest.mark.parametrize(
    ("function", "kind", "extra"),
    [pytest.param(*case, id=f"{case[0].__module__}.{case[0].__qualname__}") for case in CASES],
)
def test_public_signature_and_options_fields_name_the_same_options(
    function: Callable[..., Any], kind: type[Any], extra: set[str]
) -> None:
    keywords = _keyword_options(function)
    fields = {f.name: f for f in dataclasses.fields(kind)}
    assert set(keywords) - extra == set(fields), function.__qualname__
    for name, field in fields.items():
        parameter = keywords[name]
        if field.default is not dataclasses.MISSING:
            assert parameter.default == field.default, name
        else:
            assert parameter.default is inspect.Parameter.empty, name
        if name != "platforms":  # a sequence given, a tuple kept
            assert parameter.annotation == field.type, name


def test_options_classes_are_frozen_and_public() -> None:
    for kind in (PushOptions, PullOptions, AttachOptions, CopyOptions, MirrorOptions):
        assert getattr(aioras, kind.__name__) is kind
        assert kind.__name__ in aioras.__all__
        with pytest.raises(dataclasses.FrozenInstanceError):
            kind.__new__(kind).concurrency = 1


def test_gather_refuses_a_call_that_lacks_an_option() -> None:
    arguments = {f.name: f.default for f in dataclasses.fields(PullOptions)}
    assert gather(PullOptions, {**arguments, "self": object()}) == PullOptions()
    del arguments["platform"]
    with pytest.raises(KeyError, match="platform"):
        gather(PullOptions, arguments)


def _template(a: int, b: int, c: int, d: int = 0, *, depth: int = 2, label: str = "x") -> None:
    """Four positional parameters, then the keyword options a method takes from here."""


class _Taker:
    @keyword_options_of(_template)
    async def run(self, first: str, second: str, **options: Any) -> dict[str, Any]:
        return {"first": first, "second": second, **options}


def test_keyword_options_of_gives_the_method_the_templates_options_with_defaults() -> None:
    parameters = inspect.signature(_Taker.run).parameters
    assert list(parameters) == ["self", "first", "second", "depth", "label"]
    assert parameters["label"].default == "x"
    assert parameters["depth"].kind is inspect.Parameter.KEYWORD_ONLY
    result = asyncio.run(_Taker().run("a", second="b", label="y"))
    assert result == {"first": "a", "second": "b", "depth": 2, "label": "y"}


def test_keyword_options_of_refuses_an_option_the_template_does_not_take() -> None:
    with pytest.raises(TypeError, match="bogus"):
        asyncio.run(_Taker().run("a", "b", bogus=1))  # type: ignore[call-arg]
