"""What a mirror did: [`MirrorReport`][aioras.MirrorReport], and the per-artifact progress event."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

__all__ = ["ArtifactEvent", "ArtifactFailure", "ArtifactResult", "MirrorReport", "Outcome"]

Outcome = Literal["copied", "skipped", "failed", "planned"]


@dataclass(frozen=True)
class ArtifactResult:
    """One artifact copied, skipped (``reason`` says why) or planned (a dry run).

    A copied artifact's ``reason`` says when the destination tag named another digest
    before (``re-pointed the tag from <digest>``) or only the tag was written (the
    content was there); a planned one's when the tag would be re-pointed.

    ``digest``: what the destination tag names (or would); ``source_digest``: what the
    source reference names. They differ when ``platforms`` picked part of an index: one
    platform gives its manifest's digest, several a new index's.
    """

    source: str
    destination: str
    digest: str | None = None
    reason: str = ""
    source_digest: str | None = None


@dataclass(frozen=True)
class ArtifactFailure:
    """One artifact that failed: the error's type and message (``error``: the exception)."""

    source: str
    destination: str
    error_type: str
    message: str
    error: BaseException | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ArtifactEvent:
    """The progress event a mirror sends once per artifact, when it is settled."""

    kind: Literal["artifact"]
    outcome: Outcome
    source: str
    destination: str
    digest: str | None = None
    reason: str = ""
    error: BaseException | None = None


@dataclass
class MirrorReport:
    """The outcome of [`aioras.AsyncRegistry.mirror`][aioras.registry.AsyncRegistry.mirror].

    ``copied``: artifacts sent (some of their content may have been there already);
    ``skipped``: artifacts left alone, with the reason; ``planned``: what a dry run would
    copy; ``failed``: artifacts that failed, with the error. ``bytes_sent``: content
    uploaded; ``bytes_skipped``: content found at the destination, or mounted, instead of
    sent (an up-to-date artifact counts its root manifest only); ``requests``: HTTP
    requests sent; ``duration``: seconds.
    """

    copied: list[ArtifactResult] = field(default_factory=list)
    skipped: list[ArtifactResult] = field(default_factory=list)
    planned: list[ArtifactResult] = field(default_factory=list)
    failed: list[ArtifactFailure] = field(default_factory=list)
    bytes_sent: int = 0
    bytes_skipped: int = 0
    requests: int = 0
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether no artifact failed."""
        return not self.failed

    def summary(self) -> str:
        """One line: counts, bytes and time."""
        return (
            f"{len(self.copied)} copied, {len(self.skipped)} skipped, "
            f"{len(self.planned)} planned, {len(self.failed)} failed; "
            f"{self.bytes_sent} bytes sent, {self.bytes_skipped} skipped; "
            f"{self.requests} requests in {self.duration:.1f}s"
        )

    def details(self) -> list[str]:
        """Lines for people, one per artifact planned by a dry run or failed.

        ``Would copy SOURCE -> DESTINATION`` (with the reason when it says more, such as
        a tag to re-point), then ``Failed SOURCE: message``; what was copied or skipped is
        in the counts of `summary`.
        """
        lines = []
        for result in self.planned:
            why = f" ({result.reason})" if result.reason not in ("", "would copy") else ""
            lines.append(f"Would copy {result.source} -> {result.destination}{why}")
        lines += [f"Failed {failure.source}: {failure.message}" for failure in self.failed]
        return lines

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (exceptions as their type name and message)."""
        # Exceptions are not plain data (nor always copyable): drop them before asdict.
        doc = asdict(replace(self, failed=[replace(f, error=None) for f in self.failed]))
        for entry in doc["failed"]:
            entry.pop("error", None)
        return doc

    def to_json(self) -> str:
        """The report as JSON; entries sorted by source so that runs compare equal."""
        doc = self.to_dict()
        for key in ("copied", "skipped", "planned", "failed"):
            doc[key].sort(key=lambda e: (e["source"], e["destination"]))
        return json.dumps(doc, indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> MirrorReport:
        """A report rebuilt from `to_dict` (failures without their exception object)."""
        return cls(
            copied=[ArtifactResult(**e) for e in doc["copied"]],
            skipped=[ArtifactResult(**e) for e in doc["skipped"]],
            planned=[ArtifactResult(**e) for e in doc["planned"]],
            failed=[ArtifactFailure(**e) for e in doc["failed"]],
            bytes_sent=doc["bytes_sent"],
            bytes_skipped=doc["bytes_skipped"],
            requests=doc["requests"],
            duration=doc["duration"],
        )

    def merge(self, other: MirrorReport) -> None:
        """Add ``other`` (a shard's report) into this one; durations overlap, so the max."""
        self.copied += other.copied
        self.skipped += other.skipped
        self.planned += other.planned
        self.failed += other.failed
        self.bytes_sent += other.bytes_sent
        self.bytes_skipped += other.bytes_skipped
        self.requests += other.requests
        self.duration = max(self.duration, other.duration)
