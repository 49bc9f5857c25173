"""Helpers for files, paths, archives and URLs, under oras-py's ``oras.utils`` names."""

from . import fileio
from .archive import extract_targz, make_targz
from .fileio import *  # noqa: F403 (the file helpers, under the names fileio.__all__ lists)

__all__ = [*fileio.__all__, "extract_targz", "make_targz"]
