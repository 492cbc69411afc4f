"""The default ``syncer sync``'s cost per message on two corpus sizes, runs alternating.

Issue 17 asks that the 50,000-message corpus cost no more than 10 % more per
message than the 10,000-message one. One run of each says little on a shared
machine (two runs of the same code have differed by 10 %), so this runs a
series, sizes alternating, each a fresh archive (``init`` untimed, then the
default sync timed as a whole process tree), against servers kept up with::

    python -m tests.bench.load_corpus --dir /tmp/dv10k --messages 10000 --serve > 10k.json &
    python -m tests.bench.load_corpus --dir /tmp/dv50k --messages 50000 --serve > 50k.json &
    python -m tests.bench.scale_series 10k.json 50k.json --runs 3

It prints each run (wall, CPU, peak RSS of the tree, per message) and the
medians; ``syncer verify`` runs untimed after each sync.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.bench.mbsync import ServerParams
from tests.bench.syncer_peer import compile_bytecode, run_syncer, run_syncer_command


@dataclass(frozen=True)
class Served:
    """One corpus on a running server, as ``load_corpus --serve`` printed it."""

    params: ServerParams
    messages: int

    @classmethod
    def read(cls, path: Path) -> Served:
        info = json.loads(path.read_text())
        params = ServerParams(
            host="127.0.0.1",
            port=info["ports"]["imap"],
            user=info["user"],
            password=info["password"],
        )
        return cls(params, info["corpus"]["messages"])


@dataclass(frozen=True)
class Run:
    """One default sync into a fresh archive, as measured."""

    messages: int
    wall: float
    cpu: float
    peak_mb: int
    load: float
    clean: bool

    def __str__(self) -> str:
        return (
            f"{self.messages:>6} msgs  wall {self.wall:7.2f} s  cpu {self.cpu:7.2f} s  "
            f"tree peak {self.peak_mb:4d} MB  {1000 * self.wall / self.messages:.3f} ms wall/msg  "
            f"{1000 * self.cpu / self.messages:.3f} ms cpu/msg  load {self.load:.1f}  "
            f"verify {'clean' if self.clean else 'NOT clean'}"
        )


def one_run(served: Served, work: Path) -> Run:
    """A fresh archive synced once with the default sync, then verified (untimed)."""
    state = work / f"run-{served.messages}"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir()
    load = os.getloadavg()[0]
    sync, _ = run_syncer(served.params, state)
    if not sync.ok:
        raise SystemExit(f"sync failed: {sync.stderr.strip()[-500:]}")
    verify = run_syncer_command(served.params, state, "verify")
    return Run(
        served.messages,
        sync.wall,
        sync.cpu or 0.0,
        (sync.max_rss_kb or 0) // 1024,
        load,
        verify.ok,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", nargs="+", type=Path, help="load_corpus --serve JSON lines")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    compile_bytecode()
    served = [Served.read(path) for path in args.corpora]
    runs: dict[int, list[Run]] = {s.messages: [] for s in served}
    with tempfile.TemporaryDirectory(prefix="scale-series-") as tmp:
        for _ in range(args.runs):
            for corpus in served:
                run = one_run(corpus, Path(tmp))
                runs[corpus.messages].append(run)
                print(run, flush=True)
    for messages, done in runs.items():
        wall = statistics.median(1000 * r.wall / messages for r in done)
        cpu = statistics.median(1000 * r.cpu / messages for r in done)
        print(f"{messages:>6} msgs: median {wall:.3f} ms wall/msg, {cpu:.3f} ms cpu/msg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
