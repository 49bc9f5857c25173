"""Helpers of the test suite: servers on loopback, artifact builders, fixture modules.

``tests/`` is on ``sys.path`` (``pythonpath`` in pyproject's pytest settings), so test modules
import these as ``support.<module>``. The fixture modules (``authfixtures``, ``wanfixtures``
and the ``fault_proxy`` fixture of ``faultproxy``) are registered once, by ``pytest_plugins``
in the top ``conftest.py``.

=====================  ======================================================================
``harness``            the types the conftest fixtures hand out; ``missing()``: skip, or fail
                       under ``CI=true``, when an external tool is not installed
``faultproxy``         a fault-injecting HTTP/1.1 proxy in front of the real registry
``delayproxy``         a delaying TCP proxy (latency, set-up, bandwidth, a 429 rate rule);
                       standard library only, the bench runs it too
``wanfixtures``        ``wan_names``, ``wan_proxy``: the real registry across a network
``tokenserver``        a bearer-token issuer the real registry trusts (``auth: token``)
``authtools``          token and basic+TLS registries, Docker configs, a credential helper
``authfixtures``       the fixtures of the auth suites, built on ``authtools``
``catcher``            a hostile second origin that records what it is sent
``referrersregistry``  a small registry serving the referrers API (the real one has none)
``mirrortools``        small artifacts sharing a layer, for the mirror tests
``rawartifacts``       hand-built layers and archives of a hostile publisher
``clitools``           runs the real ``aioras`` command as a subprocess
=====================  ======================================================================
"""
