"""Benchmark syncer against mbsync on one server and corpus, and print the table.

docs/performance.md states every target as a ratio to a peer measured in the same
run, because these shared VMs are noisy (file-writing times vary 2-3x between
runs). So this script loads the deterministic corpus into one Dovecot once and
then, for each run, measures both peers scenario by scenario, alternating which
peer goes first, and reports medians and the syncer/mbsync ratio:

- ``full``: full pull from fresh state over plain IMAP;
- ``full-tls``: the same over IMAPS;
- ``nochange``: re-sync of the ``full`` state when nothing changed;
- ``delta``: re-sync after another client toggled a flag on 100 messages and
  delivered 100 new ones (undone after each run, so every run sees the same mailbox);
- ``normalize``: the normalize stage alone, as a sync pays it: a fresh archive filled
  by ``syncer sync --no-normalize`` (untimed), then ``syncer normalize``, as messages
  per CPU-second of its whole process tree.

Peers: ``mbsync`` (download into a Maildir), ``mbsync+notmuch`` (the same, then
``notmuch new``: download + index, what users combine today), ``syncer`` (the
default ``syncer sync``: download + normalize + index) and, on request,
``syncer-raw`` (``--no-normalize``). ``syncer verify`` runs (untimed) after every
syncer run; a run that is not verify-clean is flagged in the table.

Before each timed re-sync it waits 1.1 s: mbsync sleeps one second when its own
Maildir changed within the current second (it cannot trust directory mtimes then),
which a back-to-back loop would otherwise measure instead of the re-sync. A first,
untimed mbsync pull warms the page cache and Dovecot's index caches.

Whole processes are timed (wall clock, CPU and peak RSS of the whole process
tree: worker processes count), never in-process calls. A peer that fails shows
"n/a" with its error; the others still run. Not part of ``make test``::

    python -m tests.bench.run_bench --messages 10000 --runs 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tests.bench.load_corpus import USER, seed_corpus, server_params, start_server
from tests.bench.mbsync import (
    Measurement,
    ServerParams,
    count_maildir,
    make_changes,
    revert_changes,
    run_mbsync,
    run_mbsync_notmuch,
    write_mbsync_config,
    write_notmuch_config,
)
from tests.bench.syncer_peer import run_syncer, run_syncer_command

#: mbsync (download), mbsync then ``notmuch new`` (download + index), syncer's default
#: sync (download + normalize + index) and ``syncer sync --no-normalize`` (download).
PEERS = ("mbsync", "mbsync+notmuch", "syncer", "syncer-raw")
DEFAULT_PEERS = ("mbsync", "mbsync+notmuch", "syncer")
SCENARIOS = ("full", "full-tls", "nochange", "delta", "normalize")
TITLES = {
    "full": "full pull, plain IMAP",
    "full-tls": "full pull, IMAPS",
    "nochange": "no-change re-sync",
    "delta": "re-sync, 100 flags + 100 new",
    "normalize": "normalize stage (fresh archive)",
}
#: The peer each syncer figure is divided by, in the ratio columns.
BASES = ("mbsync", "mbsync+notmuch")
#: mbsync's Maildir sleeps 1 s when a directory changed in the current second.
SETTLE_SECONDS = 1.1


@dataclass
class Sample:
    """One peer, one scenario, one run."""

    peer: str
    scenario: str
    run: int
    wall: float | None
    max_rss_kb: int | None  # peak RSS of the whole process tree
    error: str | None = None
    note: str | None = None  # e.g. a message-count mismatch
    cpu: float | None = None  # user + system seconds of the whole process tree


def run_peer(peer: str, params: ServerParams, state: Path) -> tuple[Measurement, str | None]:
    """Run *peer* against *params* with its state in *state*; (measurement, result note)."""
    state.mkdir(parents=True, exist_ok=True)
    if peer == "mbsync":
        config = write_mbsync_config(state / "mbsyncrc", params, state / "mail")
        measured = run_mbsync(config)
        return measured, f"{count_maildir(state / 'mail')} messages on disk"
    if peer == "mbsync+notmuch":
        config = write_mbsync_config(state / "mbsyncrc", params, state / "mail")
        notmuch = write_notmuch_config(state / "notmuch-config", state / "mail")
        measured = run_mbsync_notmuch(config, notmuch)
        return measured, f"{count_maildir(state / 'mail')} messages on disk, indexed"
    if peer in ("syncer", "syncer-raw"):
        measured, _init = run_syncer(params, state, normalize=peer == "syncer")
        note = None
        if measured.ok:
            with contextlib.suppress(ValueError, TypeError, KeyError):
                summary = json.loads(measured.stdout)
                new = sum(a.get("new", 0) for a in summary)
                flags = sum(f.get("flags_changed", 0) for a in summary for f in a["folders"])
                note = f"{new} new, {flags} flag changes"
            note = f"{note}; {_verify(params, state)}"
        return measured, note
    raise ValueError(f"unknown peer {peer!r}")


def _verify(params: ServerParams, state: Path) -> str:
    """``syncer verify`` after a run (untimed): "verify clean" or what it found."""
    checked = run_syncer_command(params, state, "verify")
    if checked.ok:
        return "verify clean"
    return f"VERIFY FAILED: {checked.error()}"


def _measure(peer: str, scenario: str, run: int, params: ServerParams, state: Path) -> Sample:
    try:
        measured, note = run_peer(peer, params, state)
    except Exception as exc:  # a peer that cannot even start is reported, not fatal
        return Sample(peer, scenario, run, None, None, error=f"{type(exc).__name__}: {exc}")
    if not measured.ok:
        return Sample(peer, scenario, run, None, None, error=measured.error())
    return Sample(
        peer, scenario, run, measured.wall, measured.max_rss_kb, note=note, cpu=measured.cpu
    )


def _measure_normalize(run: int, params: ServerParams, state: Path) -> Sample:
    """The normalize stage alone, as a sync pays it: a fresh archive filled by
    ``syncer sync --no-normalize`` (untimed), then ``syncer normalize`` of everything
    pending, timed.

    Not ``normalize --rebuild`` of the run's archive: a rebuild re-derives messages
    already indexed and leaves unchanged index rows alone, so it would write less of
    the index than the first normalization every message gets.
    """
    fresh = state.parent / f"{state.name}-normalize"
    shutil.rmtree(fresh, ignore_errors=True)
    try:
        filled, _init = run_syncer(params, fresh, normalize=False)
        if not filled.ok:
            return Sample("syncer", "normalize", run, None, None, error=filled.error())
        measured = run_syncer_command(params, fresh, "normalize", "--json")
        if not measured.ok:
            return Sample("syncer", "normalize", run, None, None, error=measured.error())
        note = _verify(params, fresh)
        with contextlib.suppress(ValueError, TypeError, KeyError):
            note = f"{json.loads(measured.stdout)['processed']} messages; {note}"
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    return Sample(
        "syncer",
        "normalize",
        run,
        measured.wall,
        measured.max_rss_kb,
        note=note,
        cpu=measured.cpu,
    )


class _Run:
    """One benchmark run: every scenario for every peer, in this run's peer order."""

    def __init__(
        self,
        run: int,
        order: Sequence[str],
        run_dir: Path,
        scenarios: Sequence[str],
        samples: list[Sample],
    ) -> None:
        self.run = run
        self.order = order
        self.run_dir = run_dir
        self.scenarios = scenarios
        self.samples = samples
        self.failed: set[str] = set()  # peers whose full pull failed in this run

    def step(self, scenario: str, params: ServerParams, *, settle: bool) -> None:
        """Measure *scenario* for each peer; "full-tls" uses a throwaway state directory."""
        if scenario not in self.scenarios:
            return
        if scenario == "normalize":
            if "syncer" in self.order and "syncer" not in self.failed:
                sample = _measure_normalize(self.run, params, self.run_dir / "syncer")
                self.samples.append(sample)
                _print_sample(sample)
            return
        for peer in self.order:
            if scenario in ("nochange", "delta") and peer in self.failed:
                sample = Sample(peer, scenario, self.run, None, None, error="full pull failed")
                self.samples.append(sample)
                _print_sample(sample)
                continue
            throwaway = scenario == "full-tls"
            where = self.run_dir / (f"{peer}-tls" if throwaway else peer)
            if settle:
                time.sleep(SETTLE_SECONDS)
            sample = _measure(peer, scenario, self.run, params, where)
            self.samples.append(sample)
            _print_sample(sample)
            if scenario == "full" and sample.error:
                self.failed.add(peer)
            if throwaway:
                shutil.rmtree(where, ignore_errors=True)


def run_all(
    base: Path,
    *,
    messages: int,
    runs: int,
    seed: int,
    folders: str,
    size_profile: str,
    peers: Sequence[str],
    scenarios: Sequence[str],
    warmup: bool,
    keep: bool,
) -> dict[str, Any]:
    """Load the corpus, run every scenario *runs* times; return corpus info and samples."""
    server = start_server(base / "server")
    try:
        print(f"Seeding {messages} messages into Dovecot ({base / 'server'}) ...", flush=True)
        report = seed_corpus(
            server,
            USER,
            messages,
            seed=seed,
            folders=folders,  # type: ignore[arg-type]
            size_profile=size_profile,  # type: ignore[arg-type]
        )
        print(
            f"  {report.messages} messages, {report.bytes / 1e6:.1f} MB, "
            f"{len(report.folders)} folders, seeded in {report.seconds:.1f} s",
            flush=True,
        )
        plain = server_params(server, tls=False)
        tls = server_params(server, tls=True)
        info: dict[str, Any] = {"corpus": asdict(report), "samples": []}
        if warmup:
            started = time.perf_counter()
            warm = run_peer("mbsync", plain, base / "warmup")[0]
            shutil.rmtree(base / "warmup", ignore_errors=True)
            info["warmup_seconds"] = warm.wall
            print(f"  warm-up pull (mbsync, untimed): {time.perf_counter() - started:.1f} s")
        samples: list[Sample] = []
        for run in range(runs):
            order = list(peers) if run % 2 == 0 else list(reversed(peers))
            print(f"run {run + 1}/{runs} (order: {', '.join(order)})", flush=True)
            one = _Run(run, order, base / f"run{run}", scenarios, samples)
            one.step("full", plain, settle=False)
            one.step("full-tls", tls, settle=False)
            one.step("nochange", plain, settle=True)
            if "delta" in scenarios:
                changes = make_changes(plain, seed=seed)
                try:
                    one.step("delta", plain, settle=True)
                finally:
                    revert_changes(plain, changes)
            one.step("normalize", plain, settle=False)
            if not keep:
                shutil.rmtree(one.run_dir, ignore_errors=True)
        info["samples"] = [asdict(s) for s in samples]
        return info
    finally:
        server.stop()


def _print_sample(sample: Sample) -> None:
    if sample.error:
        print(f"  {sample.scenario:<9} {sample.peer:<7} n/a: {sample.error}", flush=True)
        return
    rss = f"{sample.max_rss_kb / 1024:.0f} MB" if sample.max_rss_kb else "?"
    cpu = f"{sample.cpu:7.2f} CPU-s" if sample.cpu is not None else ""
    note = f" ({sample.note})" if sample.note else ""
    print(
        f"  {sample.scenario:<9} {sample.peer:<14} {sample.wall:8.3f} s  {rss:>7} {cpu}{note}",
        flush=True,
    )


def _fmt_time(seconds: float) -> str:
    return f"{seconds:.3f} s" if seconds < 1 else f"{seconds:.2f} s"


def _top_folders(folders: dict[str, int], shown: int = 4) -> str:
    text = ", ".join(f"{name} {count}" for name, count in list(folders.items())[:shown])
    return text + (", ..." if len(folders) > shown else "")


def render_table(info: dict[str, Any], peers: Sequence[str]) -> str:
    """Per scenario and peer: median wall time, spread, rates, CPU, peak RSS, ratios.

    The ratios divide syncer's median by mbsync's and by mbsync + notmuch's; the
    normalize row gives messages per CPU-second of the whole ``syncer normalize``
    process tree (start-up, pool, extractors, index writes included).
    """
    corpus = info["corpus"]
    messages, total = corpus["messages"], corpus["bytes"]
    samples = [Sample(**s) for s in info["samples"]]
    header = (
        f"{'scenario':<30} {'peer':<14} {'median':>9} {'min-max':>17} {'msg/s':>7} "
        f"{'CPU s':>7} {'msg/CPU-s':>9} {'peak RSS':>9} {'/mbsync':>8} {'/+notmuch':>9}"
    )
    lines = [
        f"Corpus: {messages} messages, {total / 1e6:.1f} MB, {len(corpus['folders'])} folders "
        f"({_top_folders(corpus['folders'])})",
        header,
        "-" * len(header),
    ]
    for scenario in SCENARIOS:
        rows = [s for s in samples if s.scenario == scenario]
        if not rows:
            continue
        medians: dict[str, float] = {}
        shown = [p for p in peers if any(s.peer == p for s in rows)]
        for peer in shown:
            mine = [s for s in rows if s.peer == peer]
            good = [s for s in mine if s.wall is not None]
            title = TITLES[scenario] if peer == shown[0] else ""
            if not good:
                errors = sorted({s.error or "not run" for s in mine})
                lines.append(f"{title:<30} {peer:<14} {'n/a':>9}  ({'; '.join(errors)[:200]})")
                continue
            walls = [s.wall for s in good if s.wall is not None]
            median = statistics.median(walls)
            medians[peer] = median
            spread = f"{_fmt_time(min(walls))}-{_fmt_time(max(walls))}"
            bulk = scenario.startswith("full") or scenario == "normalize"
            rate = f"{messages / median:7.0f}" if bulk else f"{'-':>7}"
            cpus = [s.cpu for s in good if s.cpu is not None]
            cpu = statistics.median(cpus) if cpus else None
            cpu_text = f"{cpu:7.2f}" if cpu is not None else f"{'?':>7}"
            per_cpu = f"{messages / cpu:9.0f}" if cpu and bulk else f"{'-':>9}"
            rss_values = [s.max_rss_kb for s in mine if s.max_rss_kb]
            rss = f"{max(rss_values) / 1024:.0f} MB" if rss_values else "?"
            failed = len(mine) - len(good)
            extra = f"  ({failed} failed)" if failed else ""
            unverified = sum(1 for s in good if s.note and "VERIFY FAILED" in s.note)
            extra += f"  ({unverified} runs NOT verify-clean)" if unverified else ""
            ratios = [
                f"{median / medians[base]:.2f}x"
                if peer.startswith("syncer") and base in medians
                else ""
                for base in BASES
            ]
            lines.append(
                f"{title:<30} {peer:<14} {_fmt_time(median):>9} {spread:>17} {rate} {cpu_text} "
                f"{per_cpu} {rss:>9} {ratios[0]:>8} {ratios[1]:>9}{extra}".rstrip()
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--folders", choices=("standard", "many"), default="standard")
    parser.add_argument("--size-profile", choices=("realistic", "small"), default="realistic")
    parser.add_argument(
        "--peers", default=",".join(DEFAULT_PEERS), help=f"comma-separated, of {PEERS}"
    )
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"comma-separated, of {SCENARIOS}"
    )
    parser.add_argument("--dir", type=Path, help="working directory (default: new one in /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep per-run state directories")
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed first pull")
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    args = parser.parse_args(argv)
    peers = [p for p in args.peers.split(",") if p]
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = (set(peers) - set(PEERS)) | (set(scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown peer or scenario: {', '.join(sorted(unknown))}")
    if ("nochange" in scenarios or "delta" in scenarios) and "full" not in scenarios:
        parser.error("nochange and delta re-sync the state of the 'full' scenario; include it")
    base = args.dir or Path(tempfile.mkdtemp(prefix="syncer-bench-", dir="/tmp"))
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)  # Dovecot's unprivileged processes must traverse it
    print(f"Machine: {os.cpu_count()} CPUs; working directory {base}", flush=True)
    try:
        info = run_all(
            base,
            messages=args.messages,
            runs=args.runs,
            seed=args.seed,
            folders=args.folders,
            size_profile=args.size_profile,
            peers=peers,
            scenarios=scenarios,
            warmup=not args.no_warmup,
            keep=args.keep,
        )
    finally:
        if args.dir is None and not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print()
    print(render_table(info, peers))
    if args.json:
        args.json.write_text(json.dumps(info, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
