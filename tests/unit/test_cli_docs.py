"""The CLI reference (docs/cli.md) and the README's command-line section match the parser.

Every verb's flags, as argparse knows them, are named in that verb's row of the reference
(the common flags in the common-flags table), and no flag is documented that the parser
does not have; the README names every verb and only flags that exist.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from aioras.cli.parser import build_parser

ROOT = Path(__file__).resolve().parents[2]
FLAG = re.compile(r"(?<![\w-])(--?[a-zA-Z][\w-]*)")


def _long_and_short(action: argparse.Action) -> set[str]:
    return {s for s in action.option_strings if s not in ("-h", "--help")}


def verbs() -> dict[str, set[str]]:
    """Each verb's words (``manifest index create``) and every flag it takes."""
    found: dict[str, set[str]] = {}

    def walk(parser: argparse.ArgumentParser, words: tuple[str, ...]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found[" ".join(words)] = set().union(*map(_long_and_short, parser._actions))
            return
        for name, sub in subs[0].choices.items():
            walk(sub, (*words, name))

    parser = build_parser()
    walk(parser, ())
    # The top-level flags (--version) may be named anywhere.
    top = set().union(*map(_long_and_short, parser._actions))
    return {verb: flags | top for verb, flags in found.items()}


def common_flags() -> set[str]:
    """The flags every verb (but ``version``) takes, the top-level ones aside."""
    top = verbs()["version"]
    return set.intersection(*(f for verb, f in verbs().items() if verb != "version")) - top


def _rows(text: str) -> dict[str, str]:
    """The verbs table of the reference: each verb's words and its row."""
    rows = {}
    for line in text.splitlines():
        match = re.match(r"\| `([a-z ]+?)(?= [A-Z]|`)", line)
        if match:
            rows[match.group(1)] = line
    return rows


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_every_verbs_flags_are_in_its_row_of_the_reference_and_no_others() -> None:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    rows = _rows(_section(text, "Verbs"))
    common = common_flags() | verbs()["version"]  # the top-level flags are in the synopsis
    documented_common = set(FLAG.findall(_section(text, "Common flags"))) | verbs()["version"]
    assert common - documented_common == set(), "common flags missing from the reference"
    assert documented_common - common == set(), "common flags the parser lacks"
    for verb, flags in verbs().items():
        assert verb in rows, f"{verb} has no row in docs/cli.md"
        own = flags - common
        named = set(FLAG.findall(rows[verb]))
        assert own - named == set(), f"{verb}: flags missing from its row"
        assert named - flags == set(), f"{verb}: its row names flags it does not take"


def test_the_readme_command_line_section_names_every_verb_and_only_real_flags() -> None:
    text = _section((ROOT / "README.md").read_text(encoding="utf-8"), "Command line")
    text = text.replace("python -m aioras", "aioras")
    every = set().union(*verbs().values(), {"-h", "--help"})
    for verb in verbs():
        missing = [w for w in verb.split() if not re.search(rf"\b{w}\b", text)]
        assert not missing, f"README: {verb} missing"
    assert set(FLAG.findall(text)) - every == set(), "README names flags the parser lacks"
