"""Who holds the default sync's memory: the process tree's peak RSS, process by process.

Why this exists next to ``run_bench``: the issue bounds the RSS of the whole tree
(docs/performance.md, "Memory of the process tree"), and cutting it needs to know
which process peaks when. This runs ``syncer init`` and the default ``syncer sync``
against a server started by ``python -m tests.bench.load_corpus --serve`` (its JSON
line in a file), alternating the given ``syncer`` scripts (e.g. main's and a
branch's), and prints the tree's peak RSS (sampled like :mod:`tests.bench.rss`),
each process's RSS at that moment, each kind of process's CPU-seconds, the wall
time, and whether ``syncer verify`` is clean::

    python -m tests.bench.tree_memory /tmp/dv10k.json /work/main/.venv/bin/syncer \\
        .venv/bin/syncer --runs 2

Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from tests.bench.mbsync import ServerParams
from tests.bench.rss import tree_rss
from tests.bench.syncer_peer import PASSWORD_ENV, write_syncer_config

_TICK = os.sysconf("SC_CLK_TCK")


def _kind(pid: int) -> str:
    try:
        line = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return "gone"
    for word, kind in (
        ("attachments", "extractor"),
        ("resource_tracker", "tracker"),
        ("normalize_work", "worker"),
        ("multiprocessing", "worker"),
    ):
        if word in line:
            return kind
    return "main"


def _cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


class _Sampler(threading.Thread):
    """Samples the tree of ``root`` every 20 ms until :meth:`stop`."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peak = 0
        self.at_peak: dict[str, int] = {}
        self.cpu: dict[int, tuple[str, float]] = {}
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.is_set():
            total, each = tree_rss(self.root)
            kinds = {pid: self._kind(pid) for pid in each}
            for pid, kind in kinds.items():
                seconds = _cpu(pid)
                if seconds is not None:
                    self.cpu[pid] = (kind, seconds)
            if total > self.peak:
                self.peak = total
                self.at_peak = {f"{kinds[pid]}:{pid}": rss for pid, rss in each.items() if rss}
            self._stopped.wait(0.02)

    def _kind(self, pid: int) -> str:
        """What ``pid`` is: its first kind other than "main" (a child reads as its parent
        until it calls exec, and as nothing once it is a zombie)."""
        kind = _kind(pid)
        known = self.cpu.get(pid, ("main", 0.0))[0]
        return kind if known == "main" and kind != "gone" else known

    def stop(self) -> None:
        self._stopped.set()
        self.join()


def measure(binary: str, params: ServerParams, root: Path) -> str:
    """One fresh default sync with ``binary``; its line of the report."""
    state = Path(tempfile.mkdtemp(prefix="tree-", dir=root))
    try:
        config = write_syncer_config(state / "syncer.toml", params, state)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCER_")}
        env[PASSWORD_ENV] = params.password
        base = [binary, "--config", str(config)]
        subprocess.run([*base, "init"], env=env, check=True, capture_output=True)
        load = os.getloadavg()[0]
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*base, "sync", "--json"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        sampler = _Sampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        sampler.stop()
        verify = subprocess.run([*base, "verify"], env=env, capture_output=True)
        by_kind: dict[str, float] = {}
        for kind, seconds in sampler.cpu.values():
            by_kind[kind] = by_kind.get(kind, 0.0) + seconds
        held = ", ".join(f"{name} {rss >> 20}" for name, rss in sorted(sampler.at_peak.items()))
        cpu = ", ".join(f"{kind} {seconds:.1f}" for kind, seconds in sorted(by_kind.items()))
        return (
            f"{binary}: exit {os.waitstatus_to_exitcode(status)}, load {load:.1f}, "
            f"peak {sampler.peak >> 20} MB ({held}), "
            f"CPU {usage.ru_utime + usage.ru_stime:.1f} s ({cpu}), wall {wall:.1f} s, "
            f"verify {'clean' if verify.returncode == 0 else 'NOT CLEAN'}"
        )
    finally:
        shutil.rmtree(state, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server", type=Path, help="the JSON line of load_corpus --serve")
    parser.add_argument("binaries", nargs="+", help="syncer scripts, run in turn")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args(argv)
    info = json.loads(args.server.read_text().splitlines()[0])
    params = ServerParams(
        host="127.0.0.1", port=info["ports"]["imap"], user=info["user"], password=info["password"]
    )
    with tempfile.TemporaryDirectory(prefix="tree-memory-") as tmp:
        for run in range(args.runs):
            order = args.binaries if run % 2 == 0 else list(reversed(args.binaries))
            for binary in order:
                print(measure(binary, params, Path(tmp)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
