"""The mirror's plan checks without a registry: patterns, names, semver bounds, state file."""

from __future__ import annotations

from pathlib import Path

import pytest

from aioras import MirrorSpec
from aioras.exceptions import InvalidMirrorPlan
from aioras.operations.mirror import MirrorState, SemverRange, parse_version, select_tags


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "pattern",
    [r"^(v?\d+\.?)+$", r"(a+)+", r"(\w+\s?)*x", r"(a|aa)+$", r"(x|x)*y", r"(\d*)*"],
)
def test_patterns_that_could_backtrack_without_bound_are_refused(pattern: str) -> None:
    with pytest.raises(InvalidMirrorPlan, match="backtrack"):
        MirrorSpec("a.example/x", "b.example/x", tags=pattern)
    with pytest.raises(InvalidMirrorPlan, match="repositories"):
        MirrorSpec("a.example", "b.example/m", repositories=pattern)


def test_ordinary_patterns_still_select_tags() -> None:
    listed = ["v1.2", "v1.2.3", "latest", "stable", "edge", "v10.0"]
    spec = MirrorSpec("a.example/x", "b.example/x", tags=r"^v\d+\.\d+$")
    assert select_tags(spec, listed) == ["v1.2", "v10.0"]
    assert select_tags(MirrorSpec("a.example/x", "b.example/x", tags=".*"), listed) == listed
    spec = MirrorSpec("a.example/x", "b.example/x", tags="^(latest|stable)$")
    assert select_tags(spec, listed) == ["latest", "stable"]
    # Nested repeats kept apart by a separator cannot split a name two ways: accepted.
    spec = MirrorSpec("a.example/x", "b.example/x", tags=r"v\d+(\.\d+)*(-[a-z]+)?")
    assert select_tags(spec, listed) == ["v1.2", "v1.2.3", "v10.0"]


@pytest.mark.parametrize(
    ("source", "destination", "what"),
    [
        ("a.example/x", "a.example/x", "overlap"),
        ("a.example:5000/x", "A.EXAMPLE:5000/x", "overlap"),
        ("a.example/Up", "b.example/x", "source"),
        ("a.example/x:v1", "b.example/x", "source"),
        ("a.example/x", "b.example/x@sha256:" + "0" * 64, "destination"),
        ("a.example", "b.example/../m", "destination"),
        ("not a host", "b.example/m", "source"),
    ],
)
def test_malformed_or_overlapping_specs_are_refused_when_built(
    source: str, destination: str, what: str
) -> None:
    with pytest.raises(InvalidMirrorPlan, match=what) as info:
        MirrorSpec(source, destination)
    assert source in info.value.entry


def test_a_version_longer_than_a_tag_is_no_version_and_a_huge_range_a_valueerror() -> None:
    assert parse_version("1" * 5000) is None
    assert not SemverRange(">=1").matches("1" * 5000)
    with pytest.raises(ValueError, match="cannot read"):
        SemverRange(">=" + "1" * 5000)


def test_a_deeply_nested_state_file_is_a_valueerror_not_a_recursionerror(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"version": 1, "done": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ValueError, match="unreadable"):
        MirrorState.load(path)
