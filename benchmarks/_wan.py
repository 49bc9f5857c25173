"""The ``wan`` section: two registries some milliseconds away, reached by names not loopback.

Two CNCF registries (``aioras.testing.LocalRegistry``), A and B, each behind a delay proxy
(``tests/support/delayproxy.py``, run as a process of its own) adding ``--delays`` (20 ms by
default, then 50 ms) each way, one round trip before a connection's first byte. Clients dial
the proxies by ``aioras-wan-a.test`` and ``aioras-wan-b.test`` (``/etc/hosts`` aliases of
127.0.0.1 that ``scripts/bootstrap`` adds), so each runs with the defaults it gives a remote
host. Every measured operation is a process of its own; every digest is checked afterwards.

At every delay:

- **pull**: 50 artifacts (10 repositories x 5 tags on A; a config, the repository's shared
  2 MiB layer, a unique 128 KiB layer): aioras starts every pull at once in one task group
  (defaults), oras-py 0.2.43 pulls them in a loop, and with ``ThreadPoolExecutor(8)``;
- **mirror**: 200 artifacts (20 x 10) from A to B, then the re-sync: ``skopeo sync``, an
  oras-py loop, ``reg.mirror`` (defaults); the pieces of ``_mirror.py``.

At the first delay only:

- **push**: 50 artifacts of the same shape, from files, to B (the same three clients);
- **blob**: one 1 GiB file pushed to B as an artifact of one layer and pulled back: aioras,
  oras-py, curl. curl's push does the job the other two do, as a script would: the digest
  from ``openssl dgst -sha256``, the layer (a POST, then one monolithic ``PUT -T``), the
  ``{}`` config, the manifest. A reference row beside it times the layer's upload alone,
  its digest handed over off the clock. curl's pull is one ``GET -o`` of the layer;
- **polite**: the mirror of 200 by ``reg.mirror`` (defaults) through proxies that answer
  ``429`` with ``Retry-After: 1`` above 50 requests/s: its time beside the time the rule
  allows (requests forwarded / 50, on the busier proxy), and the share answered 429.

The pull and the push of many artifacts and the blob run ``--repeat`` rounds (3 by default),
the clients taking turns in each, in the reverse order every other round; their rows are the
median time and the largest peak RSS. The mirror runs once per client (``skopeo sync`` alone
takes minutes).

``--quick``: 10 artifacts to pull and push, 20 to mirror, a 64 MiB blob.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
from _pulltable import _layers, _shell
from _system import Ledger, settle, touch_ms
from _workload import MiB, Workload, generate, refresh, sha256_file

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DELAYPROXY = ROOT / "tests" / "support" / "delayproxy.py"
sys.path.insert(0, str(ROOT / "tests"))
from support.delayproxy import HOSTS_FIX, WAN_HOSTS, unresolved  # noqa: E402

RunWorker = Callable[..., dict[str, Any]]
T = TypeVar("T")
POLITE_RATE = 50
RSS_TARGET_MIB = 150.0
# (operation, peer row, aioras at least this many times faster): the "Done when".
SPEEDUPS = (
    ("pull", "oras-py loop", 10.0),
    ("pull", "oras-py 8 threads", 2.0),
    ("push", "oras-py loop", 10.0),
    ("push", "oras-py 8 threads", 2.0),
    ("mirror", "skopeo sync", 20.0),
    ("mirror", "oras-py loop", 10.0),
    ("re-sync", "skopeo sync", 10.0),
    ("blob pull", "curl", 1.0),
    ("blob push", "curl", 1.0),
)
# The push row of curl doing less than the others (no hash, no config, no manifest).
CURL_BLOB_ONLY = "curl, layer only, digest given"
AIORAS = {
    "pull": "aioras task group",
    "push": "aioras task group",
    "mirror": "reg.mirror",
    "re-sync": "reg.mirror",
    "blob pull": "aioras",
    "blob push": "aioras",
}


def check_names() -> None:
    """Exit with the fix when the WAN names do not resolve to 127.0.0.1."""
    bad = unresolved()
    if bad:
        raise SystemExit(
            f"bench: {', '.join(bad)} do not resolve to 127.0.0.1; the wan section dials the "
            f"registries by these names. Add them with `{HOSTS_FIX}`."
        )


class Proxy:
    """A delay proxy process in front of ``registry``; stats and reset over its stdin."""

    def __init__(self, registry: Any, name: str, delay_ms: float, rate: int | None = None):
        argv = [sys.executable, str(DELAYPROXY), str(registry.port), "--delay", str(delay_ms / 1e3)]
        if rate is not None:
            argv += ["--rate", str(rate), "--retry-after", "1"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.close()
            raise RuntimeError(f"the delay proxy did not start: {line!r}")
        self.host = f"{name}:{line.split()[1]}"

    def _ask(self, command: str) -> str:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline()

    def stats(self) -> dict[str, int]:
        stats: dict[str, int] = json.loads(self._ask("stats").removeprefix("STATS "))
        return stats

    def reset(self) -> None:
        self._ask("reset")

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- verification ----------------------------------------------------------------------------


def _check_files(directory: Path, layers: list[dict[str, Any]]) -> None:
    from _mirror import TITLE

    for layer in layers:
        path = directory / layer["annotations"][TITLE]
        if path.stat().st_size != layer["size"] or sha256_file(path) != layer["digest"]:
            raise RuntimeError(f"{path} does not match layer {layer['digest']}")


# -- pull and push of many artifacts -----------------------------------------------------------

CLIENTS = (
    ("aioras task group", "aioras", []),
    ("oras-py loop", "oras", []),
    ("oras-py 8 threads", "oras", ["--threads", "8"]),
)


def _many(
    op: str,
    jobs: list[dict[str, Any]],
    proxy: Proxy,
    scratch: Path,
    run_worker: RunWorker,
    registry_pid: int | None,
    before: Callable[[str], None],
    check: Callable[[str], None],
    rounds: int = 1,
) -> dict[str, dict[str, Any]]:
    """Run ``op`` (push-all/pull-all) of ``jobs`` by each client; ``{label: figures}``.

    ``rounds`` rounds, the clients taking turns in each (in the reverse order every other
    round, so that no client always goes first): a row is the median time (its ``runs``
    all of them) and the largest peak RSS, so that no client's figure hangs on one moment
    of a shared machine.
    """
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in CLIENTS}
    for turn in range(rounds):
        for label, tool, extra in _in_turn(CLIENTS, turn):
            before(label)
            plan = scratch / f"plan-{uuid.uuid4().hex[:8]}.json"
            plan.write_text(json.dumps([_for(job, label) for job in jobs]))
            proxy.reset()
            busy = settle()
            touch = touch_ms()
            with Ledger(registry=registry_pid, proxy=proxy.proc.pid) as cpu:
                result = run_worker(tool, op, proxy.host, "-", [str(plan), *extra], registry_pid)
            stats = proxy.stats()
            check(label)
            row = _row(result["seconds"], result["peak_rss_kib"] / 1024, stats, busy)
            row["cpu"] = _cpu(cpu, result)
            row["touch_ms"] = touch
            if result.get("retried"):
                row["retried"] = result["retried"]
            _say(op, label, row)
            runs[label].append(row)
    return {label: _median(done) for label, done in runs.items()}


def _median(done: list[dict[str, Any]]) -> dict[str, Any]:
    """One client's row from its rounds: the median time, the largest peak RSS, every time."""
    middle = sorted(done, key=lambda r: r["seconds"])[len(done) // 2]
    return {
        **middle,
        "peak_rss_mib": max(r["peak_rss_mib"] for r in done),
        "runs": [r["seconds"] for r in done],
    }


def _in_turn(clients: tuple[T, ...], turn: int) -> tuple[T, ...]:
    """The clients in the order round ``turn`` runs them: reversed every other round."""
    return clients if turn % 2 == 0 else clients[::-1]


def _for(job: dict[str, Any], label: str) -> dict[str, Any]:
    """A job with ``{client}`` in its fields made this client's own (a directory, a name)."""
    key = label.split()[0] + ("-threads" if "threads" in label else "")
    return {k: (v.format(client=key) if isinstance(v, str) else v) for k, v in job.items()}


def _row(
    seconds: float,
    rss_mib: float,
    stats: dict[str, int] | None = None,
    busy: float | None = None,
) -> dict[str, Any]:
    row: dict[str, Any] = {"seconds": round(seconds, 3), "peak_rss_mib": round(rss_mib, 1)}
    if busy is not None:
        row["busy_before"] = round(busy, 3)
    if stats is not None:
        row["requests"] = stats["forwarded"]
        row["connections"] = stats["connections"]
    return row


def _cpu(ledger: Ledger, result: dict[str, Any] | None) -> dict[str, float | None]:
    """Where one run's CPU went, in seconds: ``client`` (a Python worker's own figure for
    the operation; else all its processes'), ``start`` (the rest of the client's processes:
    starting and stopping the interpreter), ``registry``, ``proxy``, ``others`` (the rest
    of the machine: a high figure marks a disturbed run), and ``steal`` (CPU time the
    hypervisor gave to someone else).
    """
    figures = ledger.figures
    whole = figures["children_cpu_s"]
    client, start = whole, 0.0
    if result is not None and "cpu_user" in result and whole is not None:
        client = round(result["cpu_user"] + result["cpu_sys"], 3)
        start = round(max(0.0, whole - client), 3)
    return {
        "client": client,
        "start": start,
        "registry": figures["registry_cpu_s"],
        "proxy": figures["proxy_cpu_s"],
        "others": figures.get("others_cpu_s"),
        "steal": figures.get("steal_s"),
    }


def _say(what: str, label: str, row: dict[str, Any]) -> None:
    extra = ""
    if "requests" in row:
        extra = f"  {row['requests']} requests on {row['connections']} connections"
    if row.get("retried"):
        extra += f"  ({row['retried']} artifacts pushed again)"
    if row.get("cpu"):
        extra += "  cpu s " + " ".join(
            f"{who} {'?' if s is None else f'{s:.2f}'}" for who, s in row["cpu"].items()
        )
    if "touch_ms" in row:
        extra += f"  touch {row['touch_ms']:.0f} ms"
    print(
        f"   {what:10} {label:32} {row['seconds']:8.2f} s  peak RSS "
        f"{row['peak_rss_mib']:6.1f} MiB{extra}",
        flush=True,
    )


def _pull(
    fleet: dict[str, dict[str, Any]],
    a: Proxy,
    scratch: Path,
    run_worker: RunWorker,
    pid: Any,
    rounds: int,
) -> dict[str, dict[str, Any]]:
    out = scratch / "pulled"
    jobs = [
        {"target": f"{a.host}/{ref}", "outdir": str(out / "{client}" / ref.replace(":", "/"))}
        for ref in fleet
    ]

    def before(label: str) -> None:
        shutil.rmtree(out, ignore_errors=True)
        for job in jobs:
            Path(_for(job, label)["outdir"]).mkdir(parents=True)
        # The previous client's ~110 MB of files must not be flushed to disk during this one.
        os.sync()

    def check(label: str) -> None:
        for job, manifest in zip(jobs, fleet.values(), strict=True):
            _check_files(Path(_for(job, label)["outdir"]), manifest["layers"])
        shutil.rmtree(out, ignore_errors=True)

    return _many("pull-all", jobs, a, scratch, run_worker, pid, before, check, rounds)


def _push(
    repos: int,
    tags: int,
    b: Proxy,
    b_direct: str,
    scratch: Path,
    run_worker: RunWorker,
    pid: Any,
    rounds: int,
) -> dict[str, dict[str, Any]]:
    from _mirror import SHARED, UNIQUE

    files = scratch / "push"
    shared = {
        r: generate(Workload(f"shared-r{r:02d}", "", 1, SHARED), files)[0] for r in range(repos)
    }
    own = {
        (r, t): generate(Workload(f"own-r{r:02d}-t{t}", "", 1, UNIQUE), files)[0]
        for r in range(repos)
        for t in range(tags)
    }
    run = uuid.uuid4().hex[:6]
    jobs = [
        {
            "target": f"{b.host}/push-{run}-{{client}}/r{r:02d}:t{t}",
            "files": [str(shared[r]), str(own[(r, t)])],
        }
        for r in range(repos)
        for t in range(tags)
    ]
    expected: dict[str, str] = {}

    def before(label: str) -> None:
        # New content for every client: nobody finds a blob already there.
        paths = [*shared.values(), *own.values()]
        refresh(paths)
        os.sync()  # as for the pulls: the files just written are not flushed during a push
        expected.clear()
        expected.update({p.name: sha256_file(p) for p in paths})

    def check(label: str) -> None:
        from _mirror import TITLE

        for job in jobs:
            repo, _, tag = _for(job, label)["target"].split("/", 1)[1].rpartition(":")
            layers = _layers(f"http://{b_direct}", repo, tag)
            got = {layer["annotations"][TITLE]: layer["digest"] for layer in layers}
            want = {Path(f).name: expected[Path(f).name] for f in job["files"]}
            if got != want:
                raise RuntimeError(f"{label}: {repo}:{tag} holds {got}, expected {want}")

    rows = _many("push-all", jobs, b, scratch, run_worker, pid, before, check, rounds)
    shutil.rmtree(files)
    return rows


# -- one big blob ----------------------------------------------------------------------------


def _blob(
    size: int,
    b: Proxy,
    b_direct: str,
    scratch: Path,
    run_worker: RunWorker,
    pid: Any,
    rounds: int = 1,
) -> dict[str, dict[str, dict[str, Any]]]:
    """One big blob pushed, then pulled, by each client; ``rounds`` rounds, medians.

    A single 1 GiB transfer on the development VM varied by up to 1.6 x from one run to
    the next (memory the host had taken back, writeback), for every client alike.
    """
    workload = Workload("wan-blob", f"1 x {size // MiB} MiB", 1, size)
    path = generate(workload, scratch / "blob")[0]
    pushes: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in PUSH_CLIENTS}
    pulls: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in BLOB_CLIENTS}
    for turn in range(rounds):
        source = _blob_pushes(path, size, b, b_direct, run_worker, pid, pushes, turn)
        _blob_pulls(source, b, b_direct, scratch / "blob-out", run_worker, pid, pulls, turn)
    shutil.rmtree(scratch / "blob")
    return {
        "blob push": {label: _median(done) for label, done in pushes.items()},
        "blob pull": {label: _median(done) for label, done in pulls.items()},
    }


BLOB_CLIENTS = (("aioras", "aioras"), ("oras-py", "oras"), ("curl", "curl"))
PUSH_CLIENTS = (*BLOB_CLIENTS, (CURL_BLOB_ONLY, "curl-layer"))


def _blob_pushes(
    path: Path,
    size: int,
    b: Proxy,
    b_direct: str,
    run_worker: RunWorker,
    pid: Any,
    rows: dict[str, list[dict[str, Any]]],
    turn: int,
) -> str:
    """Each client pushes ``path`` (new content each time); the repository aioras pushed to."""
    run = uuid.uuid4().hex[:6]
    for label, tool in _in_turn(PUSH_CLIENTS, turn):
        refresh([path])
        digest = sha256_file(path)
        repo = f"blob-{run}-{tool}"
        b.reset()
        # As run_worker does for aioras and oras-py: else curl's push may pay for flushing
        # the pushes before it (4.2-10.2 s in three runs without, 3.8-5.8 s in nine with).
        busy = settle()
        touch = touch_ms()
        result = None
        with Ledger(registry=pid, proxy=b.proc.pid) as cpu:
            if tool == "curl-layer":
                seconds, rss = _shell(_curl_upload_script(b.host, repo, path, f'"{digest}"'))
            elif tool == "curl":
                seconds, rss = _shell(_curl_push_script(b.host, repo, path, size))
            else:
                result = run_worker(tool, "push", b.host, f"{b.host}/{repo}:v1", [str(path)], pid)
                seconds, rss = result["seconds"], result["peak_rss_kib"] / 1024
        _check_pushed(label, tool, f"http://{b_direct}", repo, digest, size)
        row = {**_row(seconds, rss, b.stats(), busy), "cpu": _cpu(cpu, result)}
        rows[label].append({**row, "touch_ms": touch})
        _say("blob push", label, rows[label][-1])
    return f"blob-{run}-aioras"


def _check_pushed(label: str, tool: str, direct: str, repo: str, digest: str, size: int) -> None:
    """Raise unless ``repo`` holds what the client pushed: the layer, or the artifact."""
    if tool == "curl-layer":
        head = httpx.head(f"{direct}/v2/{repo}/blobs/{digest}", trust_env=False)
        if head.status_code != 200 or int(head.headers["content-length"]) != size:
            raise RuntimeError(f"curl's upload of {digest} is not in {repo}")
        return
    layers = _layers(direct, repo)
    if [layer["digest"] for layer in layers] != [digest]:
        raise RuntimeError(f"{label} pushed {layers}, expected {digest}")


def _blob_pulls(
    source: str,
    b: Proxy,
    b_direct: str,
    out: Path,
    run_worker: RunWorker,
    pid: Any,
    rows: dict[str, list[dict[str, Any]]],
    turn: int,
) -> None:
    """Each client pulls the artifact aioras pushed (curl: its one layer, by digest)."""
    layer = _layers(f"http://{b_direct}", source)[0]
    # An untimed pull first, its file removed like every measured pull's: each measured
    # pull then follows the same thing. (On the development VM, writing 1 GiB right after
    # the pushes, or after oras-py's 1 GiB process exited, took 2-3 s of system CPU instead
    # of 0.5: memory the host had taken back is faulted in again. Whichever client came
    # first paid for it, curl as much as aioras.)
    out.mkdir(parents=True, exist_ok=True)
    _curl_pull(b.host, source, layer["digest"], out / "warm-up")
    for label, tool in _in_turn(BLOB_CLIENTS, turn):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        b.reset()
        busy = settle()  # the pushes' and the previous pull's writes must not flush now
        touch = touch_ms()
        result = None
        with Ledger(registry=pid, proxy=b.proc.pid) as cpu:
            if tool == "curl":
                target = out / "blob"
                seconds, rss = _curl_pull(b.host, source, layer["digest"], target)
            else:
                result = run_worker(tool, "pull", b.host, f"{b.host}/{source}:v1", [str(out)], pid)
                seconds, rss = result["seconds"], result["peak_rss_kib"] / 1024
                target = out / layer["annotations"]["org.opencontainers.image.title"]
        if target.stat().st_size != layer["size"] or sha256_file(target) != layer["digest"]:
            raise RuntimeError(f"{label} pulled a blob that is not {layer['digest']}")
        row = {**_row(seconds, rss, b.stats(), busy), "cpu": _cpu(cpu, result)}
        rows[label].append({**row, "touch_ms": touch})
        _say("blob pull", label, rows[label][-1])
    shutil.rmtree(out, ignore_errors=True)


def _curl_pull(host: str, repo: str, digest: str, target: Path) -> tuple[float, float]:
    """curl: one ``GET -o`` of the blob into ``target``."""
    url = f"http://{host}/v2/{repo}/blobs/{digest}"
    return _shell(f"curl -sf -o {shlex.quote(str(target))} {shlex.quote(url)}")


def _curl_upload_script(host: str, repo: str, path: Path, digest: str) -> str:
    """bash: POST an upload, then the whole file in one ``PUT -T`` (streamed, not buffered).

    ``digest`` is a shell word (a quoted value, or a variable).
    """
    start = f"http://{host}/v2/{repo}/blobs/uploads/"
    return (
        f"loc=$(curl -sf -X POST -o /dev/null -w '%header{{location}}' {shlex.quote(start)})"
        f' && case "$loc" in http*) ;; *) loc="http://{host}$loc" ;; esac'
        f' && curl -sf -o /dev/null -T {shlex.quote(str(path))} "$loc&digest="{digest}'
    )


EMPTY_CONFIG = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def _curl_push_script(host: str, repo: str, path: Path, size: int) -> str:
    """bash: push ``path`` as the others do, an artifact of one layer tagged ``v1``.

    The file's digest (``openssl dgst -sha256``, the fastest hasher at hand), its upload,
    the ``{}`` config's upload, then the manifest naming both.
    """
    config = path.parent / "config.json"
    config.write_bytes(b"{}")
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.aioras.bench",
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": EMPTY_CONFIG,
                "size": 2,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": "@DIGEST@",
                    "size": size,
                    "annotations": {"org.opencontainers.image.title": path.name},
                }
            ],
        }
    )
    head, _, tail = manifest.partition("@DIGEST@")
    put = f"http://{host}/v2/{repo}/manifests/v1"
    layer = _curl_upload_script(host, repo, path, '"$d"')
    return (
        f"d=sha256:$(openssl dgst -sha256 -r {shlex.quote(str(path))} | cut -d' ' -f1)"
        f" && {layer}"
        f" && {_curl_upload_script(host, repo, config, shlex.quote(EMPTY_CONFIG))}"
        f" && printf '%s' {shlex.quote(head)}\"$d\"{shlex.quote(tail)}"
        " | curl -sf -o /dev/null -X PUT"
        " -H 'Content-Type: application/vnd.oci.image.manifest.v1+json'"
        f" --data-binary @- {shlex.quote(put)}"
    )


# -- the mirror, and the mirror under a rate rule --------------------------------------------


def _mirror_rows(
    a: Proxy,
    b: Proxy,
    b_direct: str,
    expected: dict[str, str],
    names: list[tuple[str, str]],
    tag: str,
) -> dict[str, dict[str, dict[str, Any]]]:
    import _mirror

    first: dict[str, dict[str, Any]] = {}
    resync: dict[str, dict[str, Any]] = {}
    for label, tool in (
        ("skopeo sync", "skopeo"),
        ("oras-py loop", "oras"),
        ("reg.mirror", "aioras"),
    ):
        prefix = f"{tool}-{tag}-{uuid.uuid4().hex[:6]}"
        for phase, rows in (("mirror", first), ("re-sync", resync)):
            if phase == "re-sync" and tool == "oras":
                continue  # the loop has no re-sync check of its own
            a.reset()
            b.reset()
            result = _mirror._measure(tool, a.host, f"{b.host}/{prefix}")
            both = [a.stats(), b.stats()]
            summed = {key: sum(s[key] for s in both) for key in ("forwarded", "connections")}
            rows[label] = _row(result["wall_s"], result["rss_mib"], summed, result["busy_before"])
            _say(phase, label, rows[label])
        got = anyio.run(_mirror._digests, f"{b_direct}/{prefix}", names)
        if got != expected:
            missing = len(set(expected.items()) - set(got.items()))
            raise RuntimeError(f"{label}: {missing} of {len(expected)} artifacts differ")
    return {"mirror": first, "re-sync": resync}


def _polite(
    source: Any,
    dest: Any,
    delay_ms: float,
    expected: dict[str, str],
    names: list[tuple[str, str]],
) -> dict[str, Any]:
    import _mirror

    a = Proxy(source, WAN_HOSTS[0], delay_ms, rate=POLITE_RATE)
    b = Proxy(dest, WAN_HOSTS[1], delay_ms, rate=POLITE_RATE)
    try:
        prefix = f"polite-{uuid.uuid4().hex[:6]}"
        result = _mirror._measure("aioras", a.host, f"{b.host}/{prefix}")
        stats = [a.stats(), b.stats()]
    finally:
        a.close()
        b.close()
    got = anyio.run(_mirror._digests, f"{dest.host}/{prefix}", names)
    forwarded = sum(s["forwarded"] for s in stats)
    rejected = sum(s["rejected"] for s in stats)
    allowed = max(s["forwarded"] for s in stats) / POLITE_RATE
    row = {
        "seconds": round(result["wall_s"], 3),
        "peak_rss_mib": round(result["rss_mib"], 1),
        "forwarded": forwarded,
        "rejected": rejected,
        "rejected_pct": round(100 * rejected / max(1, forwarded + rejected), 2),
        "allowed_s": round(allowed, 3),
        "vs_allowed": round(result["wall_s"] / allowed, 2) if allowed else None,
        "identical": got == expected,
        "per_proxy": stats,
    }
    print(
        f"   polite     reg.mirror               {row['seconds']:8.2f} s  allowed "
        f"{allowed:.2f} s  429: {rejected} of {forwarded + rejected}  identical {got == expected}",
        flush=True,
    )
    return row


# -- the section -------------------------------------------------------------------------------


def run(ns: Any, scratch: Path, run_worker: RunWorker) -> dict[str, Any]:
    """Measure every table at every delay of ``ns.delays``; print them; return the figures."""
    import _mirror

    from aioras.testing import LocalRegistry

    check_names()
    quick = bool(ns.quick)
    rows = ns.wan_rows
    fleet_names = _mirror._names(2 if quick else 10, 5, prefix="pull")
    mirror_repos = 2 if quick else 20
    mirror_names = _mirror._names(mirror_repos, 10)
    # The measured mirror processes read their workload's size from here.
    os.environ["MIRROR_BENCH_REPOS"] = str(mirror_repos)
    blob_size = 64 * MiB if quick else 1024 * MiB
    tables: dict[str, Any] = {"delays_ms": list(ns.delays), "quick": quick, "at": {}}
    with LocalRegistry(log_level="warn") as a_reg, LocalRegistry(log_level="warn") as b_reg:
        print(f"\n== wan: populating {len(fleet_names) + len(mirror_names)} artifacts on A")
        fleet = anyio.run(_mirror.populate, a_reg.host, fleet_names)
        made = anyio.run(_mirror.populate, a_reg.host, mirror_names)
        expected = {ref: m["digest"] for ref, m in made.items()}
        for index, delay in enumerate(ns.delays):
            load = os.getloadavg()
            a = Proxy(a_reg, WAN_HOSTS[0], delay)
            b = Proxy(b_reg, WAN_HOSTS[1], delay)
            print(f"\n== wan at {delay:g} ms each way: A {a.host}, B {b.host}")
            at: dict[str, Any] = {}
            try:
                if "pull" in rows:
                    at["pull"] = _pull(fleet, a, scratch, run_worker, a_reg.pid, ns.repeat)
                if index == 0 and "push" in rows:
                    repos = 2 if quick else 10
                    at["push"] = _push(
                        repos, 5, b, b_reg.host, scratch, run_worker, b_reg.pid, ns.repeat
                    )
                if index == 0 and "blob" in rows:
                    at.update(
                        _blob(blob_size, b, b_reg.host, scratch, run_worker, b_reg.pid, ns.repeat)
                    )
                if "mirror" in rows:
                    label = f"{delay:g}ms"
                    at.update(_mirror_rows(a, b, b_reg.host, expected, mirror_names, label))
            finally:
                a.close()
                b.close()
            if index == 0 and "polite" in rows:
                at["polite"] = _polite(a_reg, b_reg, delay, expected, mirror_names)
            at["loadavg"] = {"start": load, "end": os.getloadavg()}
            tables["at"][f"{delay:g}"] = at
    tables["targets"] = _targets(tables)
    _print(tables, len(fleet_names), len(mirror_names), blob_size)
    return tables


def _targets(tables: dict[str, Any]) -> list[dict[str, Any]]:
    first = f"{tables['delays_ms'][0]:g}"
    at = tables["at"][first]
    out = []
    for op, peer, threshold in SPEEDUPS:
        if op not in at:
            continue
        ratio = at[op][peer]["seconds"] / at[op][AIORAS[op]]["seconds"]
        out.append(
            {
                "target": f"{op} at {first} ms: {peer} time / aioras time",
                "threshold": f">= {threshold:g}",
                "measured": round(ratio, 2),
                "status": "PASS" if ratio >= threshold else "FAIL",
            }
        )
    for delay, figures in tables["at"].items():
        measured = [figures[op][AIORAS[op]]["peak_rss_mib"] for op in AIORAS if op in figures]
        if not measured:
            continue
        rss = max(measured)
        out.append(
            {
                "target": f"aioras peak RSS at {delay} ms, every row (MiB)",
                "threshold": f"<= {RSS_TARGET_MIB:g}",
                "measured": rss,
                "status": "PASS" if rss <= RSS_TARGET_MIB else "FAIL",
            }
        )
    polite = at.get("polite")
    if polite:
        ok = (
            polite["identical"]
            and polite["rejected_pct"] <= 5
            and (polite["vs_allowed"] or 0) <= 1.3
        )
        out.append(
            {
                "target": f"polite mirror: <= 5 % answered 429, <= 1.3 x the time {POLITE_RATE}"
                " requests/s allows, every artifact identical",
                "threshold": "<= 5 %, <= 1.3 x",
                "measured": f"{polite['rejected_pct']} %, {polite['vs_allowed']} x",
                "status": "PASS" if ok else "FAIL",
            }
        )
    return out


def _print(tables: dict[str, Any], fleet: int, mirrored: int, blob_size: int) -> None:
    what = {
        "pull": f"pull {fleet} artifacts",
        "push": f"push {fleet} artifacts",
        "mirror": f"mirror {mirrored} artifacts, first copy",
        "re-sync": f"mirror {mirrored} artifacts, re-sync",
        "blob pull": f"pull one {blob_size // MiB} MiB blob",
        "blob push": f"push one {blob_size // MiB} MiB blob",
    }
    for delay, at in tables["at"].items():
        load = at["loadavg"]
        print(
            f"\nWAN, {delay} ms each way (load average {_load(load['start'])} at the start,"
            f" {_load(load['end'])} at the end)"
        )
        header = f"{'':38} {'time s':>8} {'vs aioras':>10} {'peak RSS MiB':>13} {'requests':>9}"
        for op, title in what.items():
            if op not in at:
                continue
            print(f"\n{title:38} {header[39:]}")
            mine = at[op][AIORAS[op]]["seconds"]
            for label, row in at[op].items():
                ratio = "" if label == AIORAS[op] else f"x{row['seconds'] / mine:.2f}"
                again = f"  ({row['retried']} pushed again)" if row.get("retried") else ""
                print(
                    f"  {label:36} {row['seconds']:8.2f} {ratio:>10} "
                    f"{row['peak_rss_mib']:13.1f} {row.get('requests', ''):>9}{again}"
                )
        polite = at.get("polite")
        if polite:
            print(
                f"\npolite: reg.mirror of {mirrored} through {POLITE_RATE} requests/s"
                f" (429, Retry-After: 1): {polite['seconds']:.2f} s, the rule allows"
                f" {polite['allowed_s']:.2f} s (x{polite['vs_allowed']}); "
                f"{polite['rejected']} of {polite['forwarded'] + polite['rejected']} requests"
                f" answered 429 ({polite['rejected_pct']} %); identical: {polite['identical']};"
                f" peak RSS {polite['peak_rss_mib']:.1f} MiB"
            )
    print(
        "\n'vs aioras': that row's time / aioras's (above 1: aioras is faster). 'requests':"
        " forwarded by the proxies."
    )
    quick = ", --quick: indicative only" if tables["quick"] else ""
    print(f"\nWAN targets (informational{quick})")
    for t in tables["targets"]:
        print(f"  {t['status']:<4}  {t['target']}: {t['measured']} (target {t['threshold']})")


def _load(load: Any) -> str:
    return " ".join(f"{x:.2f}" for x in load)
