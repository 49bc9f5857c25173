"""The mirror's pure parts: semver ranges, tag selection, rate limits, state file, reports."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from aioras import MirrorReport, MirrorSpec, RateLimits, load_plan
from aioras._http.ratelimit import HostPacer, parse_quota
from aioras.operations.mirror_plan import MirrorJob, select_tags, shard_by_repository
from aioras.operations.mirror_report import ArtifactFailure, ArtifactResult
from aioras.operations.mirror_state import MirrorState
from aioras.operations.semver import SemverRange


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        (">=1.2 <2", ["1.2.0", "v1.9.9", "1.2"], ["1.1.9", "2.0.0", "2.0.0-rc.1"]),
        ("^1.2.3", ["1.2.3", "1.99.0"], ["1.2.2", "2.0.0"]),
        ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0", "0.2.2"]),
        ("~1.2", ["1.2.0", "1.2.7"], ["1.3.0", "1.1.0"]),
        ("1.x || >=3.1.0", ["1.0.0", "1.8.1", "3.1.0", "4.0"], ["2.0.0", "0.9.0", "3.0.9"]),
        (">=2.0.0-rc.1", ["2.0.0-rc.1", "2.0.0-rc.10", "2.0.0"], ["2.0.0-beta", "1.9.0"]),
        ("*", ["0.0.1", "10.2.3"], ["latest", "1.0.0-rc.1", "sha256-abc"]),
    ],
)
def test_semver_range_matches_versions_inside_only(
    text: str, inside: list[str], outside: list[str]
) -> None:
    rng = SemverRange(text)
    assert [t for t in inside if not rng.matches(t)] == []
    assert [t for t in outside if rng.matches(t)] == []


def test_semver_range_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match=r"1\.x\.3"):
        SemverRange(">=1.x.3")
    with pytest.raises(ValueError, match="abc"):
        SemverRange("abc")


def test_tag_selection_applies_filters_then_newest_in_listing_order() -> None:
    listed = ["v2.0.0", "latest", "v1.0.0", "v1.5.0", "v1.5.0-debug", "sha256-" + "a" * 64]
    spec = MirrorSpec("h/a", "d/a", tags=r"v.*", exclude=r".*-debug", semver="<2", newest=1)
    assert select_tags(spec, listed) == ["v1.5.0"]
    assert select_tags(MirrorSpec("h/a", "d/a"), listed) == listed[:-1]
    assert select_tags(MirrorSpec("h/a", "d/a", digest_tags=True), listed) == listed


def test_plan_file_takes_a_platforms_list(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(
        '[[mirror]]\nsource = "a.example/x"\ndestination = "b.example/x"\n'
        'platforms = ["linux/amd64", "linux/arm64/v8"]\n'
        '[[mirror]]\nsource = "a.example/y"\ndestination = "b.example/y"\n'
        'platform = "linux/arm64"\n'
    )
    many, one = load_plan(path)
    assert isinstance(many, MirrorSpec)
    assert isinstance(one, MirrorSpec)
    assert many.platforms == ("linux/amd64", "linux/arm64/v8")
    assert one == MirrorSpec("a.example/y", "b.example/y", platforms=["linux/arm64"])
    assert one.platforms == ("linux/arm64",)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"platforms": "linux/amd64"}, "list"),
        ({"platforms": []}, "at least one"),
        ({"platforms": ["linux"]}, "os/arch"),
        ({"platform": "linux/amd64", "platforms": ["linux/arm64"]}, "not both"),
    ],
)
def test_bad_platforms_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MirrorSpec("a/x", "b/x", **options)  # type: ignore[arg-type]


def test_shards_keep_one_source_repository_together_in_plan_order() -> None:
    jobs = [MirrorJob(f"h/{r}:{t}", f"d/{r}:{t}") for r, t in ["a1", "b1", "a2", "c1", "b2"]]
    assert [[j.source for j in s] for s in shard_by_repository(jobs)] == [
        ["h/a:1", "h/a:2"],
        ["h/b:1", "h/b:2"],
        ["h/c:1"],
    ]


def test_rate_limits_are_off_for_loopback_and_on_for_public_hosts() -> None:
    limits = RateLimits(rate=5.0, hosts={"127.0.0.1:9": (2.0, 1)})
    assert limits.for_host("127.0.0.1:5000") == (None, 20)
    assert limits.for_host("localhost:5000") == (None, 20)
    assert limits.for_host("[::1]:5000") == (None, 20)
    assert limits.for_host("registry-1.docker.io") == (5.0, 20)
    assert limits.for_host("127.0.0.1:9") == (2.0, 1)
    with pytest.raises(ValueError, match="rate"):
        RateLimits(rate=0)


def test_quota_header_is_read() -> None:
    assert parse_quota("76;w=21600") == (76, 21600.0)
    assert parse_quota("100") == (100, None)
    assert parse_quota("nonsense") is None


@pytest.mark.anyio
async def test_token_bucket_holds_requests_to_the_rate() -> None:
    pacer = HostPacer(RateLimits(hosts={"h": (20.0, 2)}))
    started = time.monotonic()
    for _ in range(6):
        await pacer.before("h", "GET")
    # Two at once (the burst), then four more at 20 a second: at least 0.2 s.
    assert time.monotonic() - started >= 0.18
    assert pacer.requests() == 6


@pytest.mark.anyio
async def test_retry_after_and_low_quota_pause_the_whole_host() -> None:
    pacer = HostPacer(RateLimits(rate=None))
    pacer.after(await pacer.before("h", "GET"), 429, {"retry-after": "1"})
    started = time.monotonic()
    await pacer.before("h", "HEAD")
    assert time.monotonic() - started >= 0.9
    await pacer.before("other", "HEAD")  # another host is not held
    quota = {"ratelimit-remaining": "1;w=10", "ratelimit-limit": "20;w=10"}
    pacer.after(await pacer.before("h", "HEAD"), 200, quota)
    started = time.monotonic()
    await pacer.before("h", "HEAD")
    assert time.monotonic() - started >= 0.45  # one request's worth of quota: 10 s / 20


@pytest.mark.anyio
async def test_state_file_is_rewritten_whole_and_forgotten_once_complete(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = MirrorState.load(path)
    await state.record("a -> b", "sha256:1")
    assert MirrorState.load(path).known("a -> b") == "sha256:1"
    # No temporary left; the lock's sidecar file stays (removing it would race a locker).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "state.json.lock"]
    await state.finish()
    assert MirrorState.load(path).known("a -> b") is None


def test_state_file_that_is_not_one_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"something": "else"}')
    with pytest.raises(ValueError, match="unreadable"):
        MirrorState.load(path)
    assert path.read_text() == '{"something": "else"}'


def test_report_round_trips_as_data_and_merges() -> None:
    one = MirrorReport(
        copied=[ArtifactResult("h/a:1", "d/a:1", "sha256:1")],
        failed=[ArtifactFailure("h/a:2", "d/a:2", "NotFoundError", "gone", KeyError("x"))],
        bytes_sent=10,
        requests=3,
        duration=2.0,
    )
    two = MirrorReport.from_dict(json.loads(one.to_json()))
    assert two == one
    two.merge(one)
    assert len(two.copied) == 2
    assert two.bytes_sent == 20
    assert two.duration == 2.0
    assert "1 copied" in one.summary()
