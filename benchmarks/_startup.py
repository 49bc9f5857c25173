"""Start-up cost: ``import aioras`` against ``import httpx``, and ``aioras --help``/``--version``.

Each figure is the best of ``runs`` fresh interpreters (the least disturbed by other
processes), minus nothing: it includes the interpreter's own start. Targets: the command
answers in under 150 ms; ``import aioras`` takes at most 1.5 x ``import httpx``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SRC = str(Path(__file__).resolve().parent.parent / "src")
CASES = {
    "python": ["-c", "pass"],
    "import httpx": ["-c", "import httpx"],
    "import aioras": ["-c", "import aioras"],
    "import aioras; aioras.AsyncRegistry": ["-c", "import aioras; aioras.AsyncRegistry"],
    "aioras --version": [
        "-c",
        "import sys; from aioras.cli import main; sys.exit(main(['--version']))",
    ],
    "aioras --help": ["-c", "import sys; from aioras.cli import main; sys.exit(main(['--help']))"],
}


def measure_startup(runs: int = 9) -> dict[str, Any]:
    """Best-of-``runs`` wall time in ms of each case, and the two checks."""
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    best: dict[str, float] = {}
    for name, args in CASES.items():
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, *args], env=env, stdout=subprocess.DEVNULL, check=True)
            times.append((time.perf_counter() - start) * 1000)
        best[name] = round(min(times), 1)
    cli = max(best["aioras --version"], best["aioras --help"])
    ratio = best["import aioras"] / best["import httpx"]
    return {
        "ms": best,
        "cli_under_150ms": cli < 150,
        "import_ratio_to_httpx": round(ratio, 2),
        "import_within_1_5x_httpx": ratio <= 1.5,
    }


def print_startup(result: dict[str, Any]) -> None:
    print("\nstart-up (best of fresh interpreters, ms):")
    for name, ms in result["ms"].items():
        print(f"  {name:<40} {ms:8.1f}")
    print(
        f"  CLI under 150 ms: {result['cli_under_150ms']}; import aioras / import httpx = "
        f"{result['import_ratio_to_httpx']} (target <= 1.5)"
    )
