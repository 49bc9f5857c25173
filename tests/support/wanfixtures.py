"""Fixtures putting the real registry across a network: ``wan_names`` and ``wan_proxy``.

The top ``conftest.py`` registers this module once (``pytest_plugins``). Proxies are
:class:`~support.delayproxy.DelayProxy` serving from a thread of their own (so blocking
clients such as oras-py work too), dialled by names that are not loopback to a client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from aioras.testing import LocalRegistry
from support.delayproxy import HOSTS_FIX, WAN_HOSTS, DelayProxy, unresolved
from support.harness import missing

__all__ = ["WanProxyFactory", "wan_names", "wan_proxy"]

WanProxyFactory = Callable[..., DelayProxy]


@pytest.fixture(scope="session")
def wan_names() -> tuple[str, ...]:
    """The WAN host names (``/etc/hosts`` aliases of 127.0.0.1); skip (CI: fail) without them."""
    bad = unresolved()
    if bad:
        missing(f"resolving {', '.join(bad)} to 127.0.0.1 (/etc/hosts)", HOSTS_FIX)
    return WAN_HOSTS


@pytest.fixture
def wan_proxy(wan_names: tuple[str, ...]) -> Iterator[WanProxyFactory]:
    """A function ``(registry, **options) -> DelayProxy``, started, stopped when the test ends.

    ``options`` are :class:`DelayProxy`'s (``delay`` 20 ms each way by default,
    ``bandwidth``, ``rate_rule``, ``window``); ``name`` defaults to the next of the WAN names,
    so proxies made in one test are different hosts to a client. Dial ``proxy.host``.
    """
    made = 0
    with ExitStack() as stack:

        def factory(registry: LocalRegistry, **options: Any) -> DelayProxy:
            nonlocal made
            assert registry.port is not None, "the registry is not running"
            options.setdefault("name", wan_names[made % len(wan_names)])
            made += 1
            return stack.enter_context(DelayProxy(registry.port, **options).running())

        yield factory
