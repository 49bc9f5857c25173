"""The terminal gate: what it escapes, that the live display takes no markup, and no bypass."""

from __future__ import annotations

import ast
import io
from pathlib import Path

import pytest

from aioras.cli.progress import LiveProgress, PlainProgress
from aioras.cli.terminal import safe
from aioras.progress import TransferEvent

CLI = Path(__file__).resolve().parents[2] / "src" / "aioras" / "cli"


@pytest.mark.parametrize(
    ("hostile", "shown"),
    [
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),  # OSC: window title
        ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),  # CSI: clear the screen, cursor home
        ("\x9b2J\x9d0;t\x9c", "\\x9b2J\\x9d0;t\\x9c"),  # 8-bit CSI, OSC, ST
        ("a\rb\tc\x00\x7f", "a\\rb\\tc\\x00\\x7f"),  # carriage return overwrites a line
        ("\u202eexe.txt\u2066\u200b", "\\u202eexe.txt\\u2066\\u200b"),  # bidi, zero width
        ("a\u2028b\u00a0c", "a\\u2028b\\xa0c"),  # line separator, no-break space
        ("\U000e0041", "\\U000e0041"),  # a tag character (invisible)
        ("v1.2-ünïcødé ✓ [bold]", "v1.2-ünïcødé ✓ [bold]"),  # printable text stays as it is
    ],
    ids=["osc", "csi", "c1", "c0-del", "bidi", "separators", "astral", "printable"],
)
def test_terminal_controls_are_shown_as_visible_escapes(hostile: str, shown: str) -> None:
    assert safe(hostile) == shown
    assert safe(shown) == shown  # escaping twice changes nothing


def test_a_newline_is_a_line_break_only_where_the_command_joins_lines() -> None:
    assert safe("a\nb") == "a\\nb"
    assert safe("a\nb\x1b", newlines=True) == "a\nb\\x1b"


def event(title: str) -> TransferEvent:
    descriptor = {
        "mediaType": "application/octet-stream",
        "digest": "sha256:" + "a" * 64,
        "size": 3,
        "annotations": {"org.opencontainers.image.title": title},
    }
    return TransferEvent(kind="start", descriptor=descriptor, done=0, total=3)  # type: ignore[arg-type]


def test_rich_markup_and_osc_in_a_title_are_drawn_as_plain_escaped_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # room for the whole title (narrower, it is cut)
    sink = io.StringIO()
    with LiveProgress(sink) as display:
        display(event("[bold red]boom[/] \x1b]0;pwned\x07"))
    drawn = sink.getvalue()
    assert "[bold red]boom[/] \\x1b]0;pwned\\x07" in drawn  # the markup shown, not applied
    assert "\x1b]0;" not in drawn
    assert "\x07" not in drawn


def test_plain_progress_lines_show_a_titles_controls_as_escapes() -> None:
    sink = io.StringIO()
    PlainProgress(sink)(event("x\x1b[2Ky\u202e"))
    assert "x\\x1b[2Ky\\u202e (sha256:aaaaaaaaaaaa)" in sink.getvalue()


def test_no_cli_module_writes_to_the_terminal_around_the_gate() -> None:
    # Every write to stdout or stderr goes through aioras.cli.terminal (or Output.raw's
    # byte path for pipes): print() and sys.std*.write elsewhere would skip the escaping.
    # __init__ prints fixed text (help, the missing extra) before any registry is asked.
    found = []
    for path in sorted(CLI.glob("*.py")):
        if path.name in ("terminal.py", "__init__.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            text = ast.unparse(node.func)
            if text == "print" or text.startswith(("sys.stdout.write", "sys.stderr.write")):
                found.append(f"{path.name}:{node.lineno}: {text}")
            if text.endswith(("print_exception", "print_exc")):
                found.append(f"{path.name}:{node.lineno}: {text}")
    assert found == []
