"""`Hasher.resume_from`: one hash of content written to several files, taken by each."""

from __future__ import annotations

import hashlib

import pytest

from aioras.digest import Hasher, Verifier
from aioras.exceptions import DigestMismatch


def test_a_verifier_resumed_from_a_hasher_verifies_what_that_hasher_was_fed() -> None:
    content = b"the blob" * 1000
    hasher = Hasher()
    hasher.update(content[:100])
    hasher.update(content[100:])
    verifier = Verifier("sha256:" + hashlib.sha256(content).hexdigest(), len(content))
    verifier.resume_from(hasher)
    verifier.verify()
    hasher.update(b"more")  # the two go on separately
    assert verifier.size == len(content)
    verifier.verify()


def test_a_verifier_resumed_from_other_content_refuses_it() -> None:
    hasher = Hasher()
    hasher.update(b"other")
    verifier = Verifier("sha256:" + hashlib.sha256(b"right").hexdigest(), 5)
    verifier.resume_from(hasher)
    with pytest.raises(DigestMismatch):
        verifier.verify()


def test_resuming_from_another_algorithm_is_refused() -> None:
    with pytest.raises(ValueError, match="sha512"):
        Hasher("sha256").resume_from(Hasher("sha512"))
