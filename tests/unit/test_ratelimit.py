"""The per-host politeness: the AIMD window, the pace a 429 teaches, shared pauses.

:class:`AdaptiveLimit` takes its clock as arguments, so its rule is tested with exact times;
the transport tests at the end show the pacer hears every outcome (MockTransport servers).
"""

from __future__ import annotations

import anyio
import httpx
import pytest

from aioras import RateLimits, RetryPolicy
from aioras._http.ratelimit import (
    INITIAL_WINDOW,
    PACE_FACTOR,
    PACE_PLATEAU,
    PACE_PROBE,
    AdaptiveLimit,
    HostPacer,
)
from aioras._http.transport import Transport
from aioras.auth import TokenAuth
from aioras.exceptions import TransportError

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(attempts=2, backoff=0.001, max_backoff=0.002, max_retry_after=0.01)


def full(limit: AdaptiveLimit) -> None:
    """Take every slot of the window (synchronously: the window has room)."""
    while limit.in_flight < limit.window:
        limit.in_flight += 1


def answer_clean(limit: AdaptiveLimit, now: float, count: int = 1) -> None:
    for _ in range(count):
        limit.release()
        limit.clean(now, now)
        full(limit)  # requests are waiting: every free slot is taken at once


def test_rate_limits_set_no_fixed_rate_by_default() -> None:
    limits = RateLimits()
    assert limits.rate is None
    assert limits.for_host("registry-1.docker.io") == (None, 20)
    assert limits.for_host("ghcr.io:443") == (None, 20)
    # The fixed rate stays, opt-in, for a registry that asks for one.
    assert RateLimits(hosts={"registry-1.docker.io": (5.0, 10)}).for_host(
        "registry-1.docker.io"
    ) == (5.0, 10)


def test_window_doubles_per_round_of_clean_answers_until_the_first_cut() -> None:
    limit = AdaptiveLimit()
    full(limit)
    answer_clean(limit, 1.0, INITIAL_WINDOW)
    assert limit.window == 2 * INITIAL_WINDOW
    limit.congested(sent=1.0, now=1.1)
    assert limit.window == INITIAL_WINDOW
    # After a cut: one more slot per window's worth of clean answers (additive increase).
    full(limit)
    answer_clean(limit, 1.2, INITIAL_WINDOW)
    assert INITIAL_WINDOW + 0.9 < limit.window < INITIAL_WINDOW + 1.1


def test_window_does_not_grow_while_it_holds_nothing_back() -> None:
    limit = AdaptiveLimit()
    for _ in range(100):
        limit.in_flight += 1
        limit.release()
        limit.clean(1.0, 1.0)
    assert limit.window == INITIAL_WINDOW


@pytest.mark.parametrize(
    "strain",
    [
        pytest.param(lambda p, t: p.after(t, 429, {}), id="429"),
        pytest.param(lambda p, t: p.after(t, 503, {}), id="503"),
        pytest.param(lambda p, t: p.failed(t, congested=True), id="timeout-or-reset"),
        pytest.param(lambda p, t: (p.after(t, 200, {}), p.broke(t)), id="body-broke-off"),
    ],
)
async def test_window_is_halved_on_429_503_timeouts_and_resets(strain: object) -> None:
    pacer = HostPacer()
    ticket = await pacer.before("registry.example", "GET")
    strain(pacer, ticket)  # type: ignore[operator]
    limit = pacer.limit("registry.example")
    assert limit is not None
    assert limit.window == INITIAL_WINDOW / 2
    assert limit.in_flight == 0


async def test_cancelled_or_plain_errors_leave_the_window_as_it_was() -> None:
    pacer = HostPacer()
    for ending in (
        lambda t: pacer.failed(t, congested=False),
        lambda t: pacer.after(t, 404, {}),
        lambda t: pacer.after(t, 500, {}),
    ):
        ending(await pacer.before("registry.example", "GET"))
    limit = pacer.limit("registry.example")
    assert limit is not None
    assert (limit.window, limit.in_flight) == (INITIAL_WINDOW, 0)


def test_strain_cuts_once_per_round_trip() -> None:
    limit = AdaptiveLimit()
    assert limit.congested(sent=1.0, now=1.5)
    # Answers to requests sent before that cut were already reacted to.
    assert not limit.congested(sent=1.2, now=1.6)
    limit.throttled(sent=1.4, now=1.7)
    assert limit.window == INITIAL_WINDOW / 2
    assert limit.congested(sent=1.6, now=1.9)
    assert limit.window == INITIAL_WINDOW / 4


def test_window_never_drops_below_one() -> None:
    limit = AdaptiveLimit()
    for n in range(20):
        limit.congested(sent=float(n), now=n + 0.5)
    assert limit.window == 1


def clean_answers(limit: AdaptiveLimit, count: int, *, sent: float, now: float) -> None:
    for _ in range(count):
        limit.in_flight += 1
        limit.release()
        limit.clean(sent, now)


def test_a_429_paces_at_the_rate_the_host_was_accepting_then_probes_upward() -> None:
    limit = AdaptiveLimit()
    assert limit.pace is None
    # 40 clean answers over the second before the 429 (the host's rule: 50 a second) ...
    for n in range(40):
        clean_answers(limit, 1, sent=10.0 + n / 50, now=10.0 + n / 50)
    limit.throttled(sent=10.99, now=11.0)
    assert limit.pace == pytest.approx(40 * PACE_FACTOR, rel=0.05)
    # ... and 10 more sent in that second, answered clean after the 429: accepted too.
    clean_answers(limit, 10, sent=10.9, now=11.02)
    assert limit.pace == pytest.approx(50 * PACE_FACTOR, rel=0.05)
    learned = limit.pace
    assert learned is not None
    # A second 429 from the same round trip changes nothing; clean answers raise the pace.
    limit.throttled(sent=10.995, now=11.03)
    assert limit.pace == learned
    clean_answers(limit, 10, sent=11.5, now=11.5)
    assert limit.pace == pytest.approx(learned + 10 * PACE_PROBE)
    # Meeting the limit again lowers the pace to what the host accepted then.
    paced = limit.pace
    assert paced is not None
    limit.throttled(sent=11.6, now=11.7)
    assert limit.pace is not None
    assert limit.pace < paced


def test_pace_probes_ten_times_slower_near_the_rate_the_429_came_at() -> None:
    limit = AdaptiveLimit()
    clean_answers(limit, 100, sent=5.5, now=5.5)
    limit.throttled(sent=5.9, now=5.95)
    assert limit.pace == pytest.approx(100 * PACE_FACTOR, rel=0.05)
    clean_answers(limit, 1000, sent=7.0, now=7.0)
    # 0.9 x -> 0.95 x at the full step (2.5 requests/s), then 997.5... at a tenth of it.
    pace = limit.pace
    assert pace is not None
    assert 100 * PACE_PLATEAU < pace < 100 * PACE_PLATEAU + 1000 * PACE_PROBE / 10 + 0.1


def test_pace_is_lifted_once_the_host_stops_minding() -> None:
    limit = AdaptiveLimit()
    for _ in range(20):
        limit.in_flight += 1
        limit.release()
        limit.clean(5.5, 5.5)
    limit.throttled(sent=5.9, now=5.95)
    assert limit.pace is not None
    for _ in range(10_000):
        limit.in_flight += 1
        limit.release()
        limit.clean(20.0, 20.0)
        if limit.pace is None:
            break
    assert limit.pace is None


def test_no_rate_is_learned_across_a_pause() -> None:
    limit = AdaptiveLimit()
    clean_answers(limit, 50, sent=1.5, now=1.5)
    limit.throttled(sent=1.9, now=2.0)
    limit.paused(until=3.0)
    clean_answers(limit, 1, sent=3.05, now=3.1)
    learned = limit.pace
    assert learned is not None
    # A 429 soon after the pause: the second before it was mostly pause, no rate in it
    # (one clean answer); the pace learned before is cut, not replaced by that.
    limit.throttled(sent=3.2, now=3.3)
    assert limit.pace == pytest.approx(learned * PACE_FACTOR)


def test_a_429_read_before_any_clean_answer_still_learns_the_rate() -> None:
    limit = AdaptiveLimit()
    # 32 requests went at once; the host took 20. A 429 is read first ...
    limit.throttled(sent=1.0, now=1.05)
    assert limit.pace is not None
    # ... then the 20 clean answers to requests of that second.
    clean_answers(limit, 20, sent=1.0, now=1.06)
    assert limit.pace == pytest.approx(20 * PACE_FACTOR, abs=1.5)


async def test_full_window_holds_the_next_request_until_a_slot_is_free() -> None:
    limit = AdaptiveLimit(window=2)
    await limit.acquire()
    await limit.acquire()
    order: list[str] = []

    async def third() -> None:
        await limit.acquire()
        order.append("third sent")

    async with anyio.create_task_group() as tg:
        tg.start_soon(third)
        await anyio.wait_all_tasks_blocked()
        assert order == []
        order.append("first answered")
        limit.release()
    assert order == ["first answered", "third sent"]
    assert limit.in_flight == 2


async def test_a_cancelled_wait_gives_back_nothing_it_did_not_take() -> None:
    limit = AdaptiveLimit(window=1)
    await limit.acquire()
    with anyio.move_on_after(0.01):
        await limit.acquire()
    limit.release()
    assert limit.in_flight == 0
    await limit.acquire()
    assert limit.in_flight == 1


async def test_retry_after_pauses_the_whole_host_and_not_another() -> None:
    pacer = HostPacer()
    ticket = await pacer.before("slow.example", "GET")
    pacer.after(ticket, 429, {"retry-after": "30"})
    # Another host goes at once; the paused host holds every task until the time is up.
    with anyio.fail_after(5):
        pacer.after(await pacer.before("other.example", "GET"), 200, {})
    with anyio.move_on_after(0.2) as scope:
        await pacer.before("slow.example", "HEAD")
    assert scope.cancelled_caught


async def test_a_late_429_from_before_the_cut_does_not_extend_the_pause() -> None:
    pacer = HostPacer()
    early = await pacer.before("h.example", "PUT")
    first = await pacer.before("h.example", "GET")
    pacer.after(first, 429, {"retry-after": "1"})
    state = pacer._host("h.example")
    paused_until = state.paused_until
    # The PUT went before that 429; its own 429 comes late (its body waited on another
    # host): the pause counts from when it was sent, inside the one already running.
    pacer.after(early, 429, {"retry-after": "1"})
    assert state.paused_until == paused_until


async def test_quota_nearly_spent_pauses_the_host() -> None:
    pacer = HostPacer()
    ticket = await pacer.before("hub.example", "HEAD")
    pacer.after(ticket, 200, {"ratelimit-remaining": "1;w=21600", "ratelimit-limit": "100;w=21600"})
    with anyio.move_on_after(0.2) as scope:
        await pacer.before("hub.example", "HEAD")
    assert scope.cancelled_caught


async def test_adaptive_false_keeps_only_pauses_and_fixed_rates() -> None:
    pacer = HostPacer(RateLimits(adaptive=False))
    ticket = await pacer.before("registry.example", "GET")
    pacer.after(ticket, 503, {})
    assert pacer.limit("registry.example") is None


def pacer_transport(handler: httpx.MockTransport) -> tuple[Transport, HostPacer]:
    transport = Transport(authenticator=TokenAuth(), retry=FAST, transport=handler)
    transport.pacer = HostPacer()
    return transport, transport.pacer


async def test_transport_tells_the_pacer_of_503s_and_timeouts() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/slow"):
            raise httpx.ReadTimeout("no answer", request=request)
        return httpx.Response(503)

    transport, pacer = pacer_transport(httpx.MockTransport(handler))
    response = await transport.send("GET", "https://busy.example/v2/")
    assert response.status_code == 503
    with pytest.raises(TransportError):
        await transport.send("GET", "https://stalls.example/v2/slow")
    await transport.aclose()
    for host in ("busy.example", "stalls.example"):
        limit = pacer.limit(host)
        assert limit is not None
        assert limit.window < INITIAL_WINDOW
        assert limit.in_flight == 0
    assert pacer.requests() == 6  # three tries each


async def test_transport_gives_every_slot_back() -> None:
    transport, pacer = pacer_transport(
        httpx.MockTransport(lambda request: httpx.Response(200, content=b"{}"))
    )
    async with anyio.create_task_group() as tg:
        for _ in range(100):
            tg.start_soon(transport.send, "GET", "https://registry.example/v2/")
    await transport.aclose()
    limit = pacer.limit("registry.example")
    assert limit is not None
    assert limit.in_flight == 0
    assert pacer.requests() == 100
