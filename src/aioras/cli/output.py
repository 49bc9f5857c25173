"""What the ``aioras`` command prints on stdout: text for people or one JSON document.

The JSON documents are stable (fields are only ever added): every verb prints one object,
with the descriptor fields ``mediaType``, ``digest`` and ``size`` of what it acted on where
there is one, and ``reference`` as given. The CLI reference lists each verb's document.
"""

from __future__ import annotations

import codecs
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from .terminal import safe, write_out

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
    """Writes a verb's result: ``text`` lines, or the JSON document with ``--format json``.

    Text passes through `safe` (control and format characters
    shown as escapes); JSON escapes every non-ASCII and control character itself.
    """

    def __init__(self, format: str) -> None:
        self.json = format == "json"
        self._decoder: codecs.IncrementalDecoder | None = None

    def result(self, doc: Mapping[str, Any], text: str | Sequence[str]) -> None:
        """Print ``doc`` as JSON, or else ``text`` (nothing for empty text).

        ``text`` is a string whose ``\\n`` break lines, or a sequence of lines that are
        each one line whatever they hold (a registry's names: an embedded newline is
        escaped too).
        """
        if self.json:
            write_out(json.dumps(doc, indent=2) + "\n")
            return
        if not isinstance(text, str):
            text = "\n".join(safe(line) for line in text)
        if text:
            write_out(text + "\n")

    def raw(self, data: bytes) -> None:
        """Write bytes unchanged (a manifest, a blob): to a terminal, as escaped text.

        A pipe or file gets the exact bytes; a terminal gets them decoded as UTF-8 and
        passed through `safe` (newlines kept), since they are
        the registry's. Call `end_raw` after the last piece.
        """
        if not sys.stdout.isatty():
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
            return
        if self._decoder is None:
            self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        write_out(self._decoder.decode(data))

    def end_raw(self) -> None:
        """Finish raw output (a character split at the end of the bytes is shown)."""
        if self._decoder is not None:
            write_out(self._decoder.decode(b"", final=True))
            self._decoder = None
        sys.stdout.flush()


def referrer_tree(doc: Mapping[str, Any]) -> str:
    """The subject and its referrers as a tree, one ``artifactType digest`` a line."""
    lines = [safe(f"{doc['reference']}@{doc['digest']}")]

    def branch(items: list[dict[str, Any]], prefix: str) -> None:
        for i, item in enumerate(items):
            last = i == len(items) - 1
            kind = safe(item.get("artifactType") or item["mediaType"])
            lines.append(f"{prefix}{'└── ' if last else '├── '}{kind} {safe(item['digest'])}")
            branch(item["referrers"], prefix + ("    " if last else "│   "))

    branch(list(doc["referrers"]), "")
    return "\n".join(lines)


def referrer_table(doc: Mapping[str, Any]) -> str:
    """The referrers as a table: depth, artifact type, digest, size."""
    rows = [("DEPTH", "ARTIFACT TYPE", "DIGEST", "SIZE")]

    def add(items: list[dict[str, Any]], depth: int) -> None:
        for item in items:
            # Cells escaped before the widths are taken, so that the columns line up.
            kind = safe(item.get("artifactType") or item["mediaType"])
            rows.append((str(depth), kind, safe(item["digest"]), str(item["size"])))
            add(item["referrers"], depth + 1)

    add(list(doc["referrers"]), 1)
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    )
