"""What the ``aioras`` command prints on stdout: text for people or one JSON document.

The JSON documents are stable (fields are only ever added): every verb prints one object,
with the descriptor fields ``mediaType``, ``digest`` and ``size`` of what it acted on where
there is one, and ``reference`` as given. The CLI reference lists each verb's document.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["Output", "descriptor_doc", "referrer_table", "referrer_tree"]


def descriptor_doc(descriptor: Mapping[str, Any]) -> dict[str, Any]:
    """The descriptor fields the JSON documents carry, in a fixed order."""
    doc: dict[str, Any] = {
        "mediaType": descriptor.get("mediaType", ""),
        "digest": descriptor["digest"],
        "size": int(descriptor.get("size", 0)),
    }
    for key in ("artifactType", "annotations"):
        if descriptor.get(key):
            doc[key] = descriptor[key]
    return doc


class Output:
    """Writes a verb's result: ``text`` lines, or the JSON document with ``--format json``."""

    def __init__(self, format: str) -> None:
        self.json = format == "json"

    def result(self, doc: Mapping[str, Any], text: str) -> None:
        """Print ``doc`` as JSON or ``text`` as it is (nothing for empty text)."""
        if self.json:
            sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        elif text:
            sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def raw(self, data: bytes) -> None:
        """Write bytes unchanged (a manifest as the registry holds it)."""
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def referrer_tree(doc: Mapping[str, Any]) -> str:
    """The subject and its referrers as a tree, one ``artifactType digest`` a line."""
    lines = [f"{doc['reference']}@{doc['digest']}"]

    def branch(items: list[dict[str, Any]], prefix: str) -> None:
        for i, item in enumerate(items):
            last = i == len(items) - 1
            kind = item.get("artifactType") or item["mediaType"]
            lines.append(f"{prefix}{'└── ' if last else '├── '}{kind} {item['digest']}")
            branch(item["referrers"], prefix + ("    " if last else "│   "))

    branch(list(doc["referrers"]), "")
    return "\n".join(lines)


def referrer_table(doc: Mapping[str, Any]) -> str:
    """The referrers as a table: depth, artifact type, digest, size."""
    rows = [("DEPTH", "ARTIFACT TYPE", "DIGEST", "SIZE")]

    def add(items: list[dict[str, Any]], depth: int) -> None:
        for item in items:
            kind = item.get("artifactType") or item["mediaType"]
            rows.append((str(depth), kind, item["digest"], str(item["size"])))
            add(item["referrers"], depth + 1)

    add(list(doc["referrers"]), 1)
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    )
