"""``python -m aioras``: the command line (see :mod:`aioras.cli`)."""

from aioras.cli import main

raise SystemExit(main())
