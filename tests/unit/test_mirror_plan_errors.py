"""A plan file's mistakes are refused naming the file, the entry and the key (or line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aioras import load_plan
from aioras.exceptions import InvalidMirrorPlan

HEAD = '[[mirror]]\nsource = "a.example/x"\ndestination = "b.example/x"\n'


def refusal(tmp_path: Path, text: str) -> str:
    path = tmp_path / "plan.toml"
    path.write_text(text)
    with pytest.raises(InvalidMirrorPlan) as info:
        load_plan(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    return message


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("tags = 5", "tags must be a string (a regular expression), got int 5"),
        ("newest = true", "newest must be a whole number, got bool True"),
        ("referrers = 'yes'", "referrers must be true or false, got str 'yes'"),
        ("platforms = [1]", "platforms must be a list of os/arch[/variant] strings"),
    ],
)
def test_a_value_of_the_wrong_type_names_the_file_entry_and_key(
    tmp_path: Path, line: str, says: str
) -> None:
    message = refusal(tmp_path, f"{HEAD}{HEAD}{line}\n")
    assert "[[mirror]] entry 2 (source 'a.example/x')" in message
    assert says in message


def test_a_pattern_that_does_not_compile_names_the_file_entry_and_key(tmp_path: Path) -> None:
    message = refusal(tmp_path, f"{HEAD}exclude = '^v[0-9+$'\n")
    assert "[[mirror]] entry 1" in message
    assert "exclude '^v[0-9+$' is not a valid regular expression" in message


def test_broken_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    message = refusal(tmp_path, '[[mirror]]\nsource = "a.example/x\n')
    assert "not valid TOML" in message
    assert "line 2" in message


def test_unknown_keys_and_missing_fields_name_the_file_and_entry(tmp_path: Path) -> None:
    assert "[[mirror]] entry 1 (source 'a.example/x'): unknown keys ['newset']" in refusal(
        tmp_path, f"{HEAD}newset = 3\n"
    )
    assert "[[mirror]] entry 1: missing destination" in refusal(
        tmp_path, "[[mirror]]\nsource = 5\n"
    )
    assert "[[copy]] entry 1 (source 'a/x:1'): destination must be a string" in refusal(
        tmp_path, '[[copy]]\nsource = "a/x:1"\ndestination = 5\n'
    )
