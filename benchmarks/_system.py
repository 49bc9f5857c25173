"""Machine-load bookkeeping (Linux ``/proc``): is anything else using the CPUs?

On a shared 2-core machine another process's test run can halve a measurement. Before each
measured operation :func:`wait_quiet` waits (bounded) until the CPUs are nearly idle, and
around it :class:`Ledger` computes the *foreign* CPU time: all busy CPU time minus the
worker's and the registry's. ``foreign / wall`` is how many cores something else took; runs
where it is high are flagged in the output.
"""

from __future__ import annotations

import mmap
import os
import resource
import subprocess
import tempfile
import time

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _busy_jiffies() -> tuple[int, int, int] | None:
    """(busy, total, steal) jiffies over all CPUs since boot, or None without /proc/stat.

    Steal (time the hypervisor ran something else while these CPUs wanted to run) is
    counted in busy too.
    """
    try:
        with open("/proc/stat") as fd:
            fields = [int(x) for x in fd.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total, fields[7] if len(fields) > 7 else 0


def process_cpu(pid: int | None) -> float:
    """User + system CPU seconds of ``pid`` (0.0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as fd:
            fields = fd.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def busy_fraction(interval: float = 0.5) -> float | None:
    """Fraction of all CPUs busy over ``interval`` seconds (None without /proc/stat)."""
    first = _busy_jiffies()
    time.sleep(interval)
    second = _busy_jiffies()
    if first is None or second is None or second[1] == first[1]:
        return None
    return (second[0] - first[0]) / (second[1] - first[1])


def wait_quiet(threshold: float, max_wait: float) -> float | None:
    """Wait until the CPUs are at most ``threshold`` busy, or ``max_wait`` seconds passed.

    Returns the last busy fraction seen.
    """
    deadline = time.monotonic() + max_wait
    while True:
        busy = busy_fraction()
        if busy is None or busy <= threshold or time.monotonic() >= deadline:
            return busy
        time.sleep(0.5)


def settle(threshold: float = 0.15, max_wait: float = 60.0) -> float | None:
    """Flush earlier writes, then `wait_quiet`; the busy fraction last seen.

    Called before each measured operation that has no other wait of its own (the wan and
    mirror sections): work left by what came before, another section's registries writing
    back and deleting gigabytes, must not land in one client's measurement. A client that
    keeps both cores busy (aioras pulling 50 artifacts at once) loses to such work, while
    one that waits on round trips (a loop) hardly notices it.
    """
    os.sync()
    return wait_quiet(threshold, max_wait)


def touch_ms(size: int = 32 * 1024 * 1024) -> float:
    """Milliseconds to fault in ``size`` bytes of fresh memory: what a new page costs now.

    On the development VM this moved from 27 ms to 200 ms within one run (the host taking
    back free memory): a client allocating fresh buffers pays that on every page, one
    reusing its buffers does not. Recorded beside each wan measurement to tell such rounds
    apart.
    """
    started = time.perf_counter()
    with mmap.mmap(-1, size) as block:
        for offset in range(0, size, mmap.PAGESIZE):
            block[offset] = 1
    return round((time.perf_counter() - started) * 1e3, 1)


class Ledger:
    """CPU seconds spent while the ``with`` block runs: by named processes, by this process's
    children, and by the whole machine (``machine_busy_s``; with ``others_cpu_s``, the rest),
    and the time the hypervisor gave the CPUs to someone else (``steal_s``).

    ``Ledger(registry=pid, proxy=pid)`` around one client's run says where a slow
    measurement's time went: to the client, to the registry, to the proxy, or to something
    else on the machine.
    """

    def __init__(self, **pids: int | None) -> None:
        self.pids = pids
        self.figures: dict[str, float | None] = {}

    def __enter__(self) -> Ledger:
        self._busy = _busy_jiffies()
        self._cpu = {name: process_cpu(pid) for name, pid in self.pids.items()}
        self._children = _children_cpu()
        return self

    def __exit__(self, *exc_info: object) -> None:
        busy = _busy_jiffies()
        named = {
            f"{name}_cpu_s": process_cpu(pid) - self._cpu[name] for name, pid in self.pids.items()
        }
        children = _children_cpu() - self._children
        self.figures = {**named, "children_cpu_s": children}
        if self._busy is not None and busy is not None:
            total = (busy[0] - self._busy[0]) / _TICK  # steal counts as busy there
            stolen = self.figures["steal_s"] = (busy[2] - self._busy[2]) / _TICK
            self.figures["machine_busy_s"] = total
            rest = total - sum(named.values()) - children - stolen
            self.figures["others_cpu_s"] = max(0.0, rest)
        self.figures = {k: None if v is None else round(v, 3) for k, v in self.figures.items()}


def _children_cpu() -> float:
    """User + system CPU seconds of this process's waited-for children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- peak memory ---------------------------------------------------------------------------
# Not ``ru_maxrss``: Linux carries a parent's peak into its child across fork and exec, so a
# child's ru_maxrss is at least its parent's at the fork (measured here: a 9 MiB child of a
# 310 MiB Python reports 310 MiB). VmHWM is the peak of the process's own memory.


def peak_rss_kib(pid: int | str = "self") -> int | None:
    """The peak resident set of ``pid`` (VmHWM) in KiB; None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fd:
            for line in fd:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _with_descendants(pid: int) -> list[int]:
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as fd:
                    pending.extend(int(child) for child in fd.read().split())
            except (OSError, ValueError):
                continue
    return found


def run_watched(argv: list[str], *, poll: float = 0.01) -> tuple[int, str, str, int]:
    """Run ``argv``; returns (exit status, stdout, stderr, peak KiB of its largest process).

    The peak is the highest VmHWM seen, every ``poll`` seconds, of the process and each of
    its descendants (a pipeline's largest member, not their sum).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err)
        peak = 0
        while proc.poll() is None:
            for pid in _with_descendants(proc.pid):
                peak = max(peak, peak_rss_kib(pid) or 0)
            time.sleep(poll)
        out.seek(0)
        err.seek(0)
        return proc.returncode, out.read().decode(), err.read().decode(), peak
