"""``python -m aioras``: the command line (see `aioras.cli`)."""

from aioras.cli import main

raise SystemExit(main())
