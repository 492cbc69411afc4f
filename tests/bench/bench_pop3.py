"""Benchmark syncer's POP3 download against getmail6 on one server and corpus.

docs/performance.md's target: a full POP3 download of the benchmark corpus's INBOX
(about 3,900 messages, 260 MB) in at most 0.25x getmail6's wall time. Both
peers read the same Dovecot maildrop over loopback; getmail6 writes a Maildir
(one file per message, as its users run it), syncer its SQLite archive, raw
(``--no-normalize``, the like-for-like figure) and as ``syncer sync`` runs by
default (then normalizing the new messages: addresses, text, attachments). As in
:mod:`tests.bench.run_bench`, whole processes are timed (wall clock and peak
RSS of the child, :func:`tests.bench.mbsync.timed`), each run measures both
peers scenario by scenario with the peer order alternating, and the table
gives medians and the syncer/getmail6 ratio:

- ``full``: full download from fresh state over plain POP3 (port 110 style);
- ``full-tls``: the same over POP3S (implicit TLS);
- ``nochange``: a re-run of the ``full`` state when nothing is new.

The server sets ``pop3_no_flag_updates`` so that a RETR does not make Dovecot
rename Maildir files at QUIT (it would otherwise mark every message ``\\Seen``
on the first run only): every run sees the same mailbox. A first, untimed
download warms the page cache and Dovecot's index (its first POP3 session on a
fresh Maildir computes every message's size). syncer's ``syncer init`` is setup,
not part of the figure. getmail6 comes from Debian (``apt-get install
getmail6``). Not part of ``make test``::

    python -m tests.bench.bench_pop3 --messages 10000 --runs 3
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

from tests.bench.load_corpus import PASSWORD, USER, seed_corpus
from tests.bench.mbsync import Measurement, count_maildir, timed
from tests.bench.syncer_peer import PASSWORD_ENV, syncer_binary
from tests.servers.dovecot import DovecotServer

#: ``syncer`` archives raw mail only (``--no-normalize``), like getmail6 writing raw files;
#: ``syncer+normalize`` is the default ``syncer sync``, which also normalizes what it archived.
PEERS = ("getmail6", "syncer", "syncer+normalize")
SCENARIOS = ("full", "full-tls", "nochange")
TITLES = {
    "full": "POP3 full download, plain",
    "full-tls": "POP3 full download, POP3S",
    "nochange": "POP3 re-run, nothing new",
}


@dataclass(frozen=True)
class POP3Params:
    host: str
    port: int
    tls: bool
    ca_file: Path | None = None


@dataclass
class Sample:
    peer: str
    scenario: str
    run: int
    wall: float | None
    max_rss_kb: int | None
    error: str | None = None
    note: str | None = None


def getmail_binary() -> str:
    found = shutil.which("getmail")
    if found is None:
        raise FileNotFoundError("getmail6 is not installed: apt-get install getmail6")
    return found


#: getmail6 refuses to deliver as root; as root, it runs as this (unprivileged) uid/gid.
NOBODY = 65534


def _as_nobody(argv: list[str], state: Path) -> list[str]:
    """``argv`` run as ``nobody`` when we are root (``setpriv`` execs: no extra process)."""
    if os.geteuid() != 0:
        return argv
    for path in [state, *state.rglob("*")]:
        os.chown(path, NOBODY, NOBODY)
    ids = str(NOBODY)
    return ["setpriv", "--reuid", ids, "--regid", ids, "--clear-groups", "--", *argv]


def run_getmail(params: POP3Params, state: Path) -> tuple[Measurement, str]:
    """getmail6 into ``state/Maildir`` with its state in ``state/getmail``."""
    maildir = state / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    (state / "getmail").mkdir(parents=True, exist_ok=True)
    retriever = "SimplePOP3SSLRetriever" if params.tls else "SimplePOP3Retriever"
    tls = f"ca_certs = {params.ca_file}\n" if params.tls else ""
    rc = state / "getmailrc"
    rc.write_text(
        f"""[retriever]
type = {retriever}
server = {params.host}
port = {params.port}
username = {USER}
password = {PASSWORD}
{tls}
[destination]
type = Maildir
path = {maildir}/

[options]
verbose = 0
read_all = false
delete = false
"""
    )
    rc.chmod(0o600)
    argv = [getmail_binary(), f"--rcfile={rc}", f"--getmaildir={state / 'getmail'}"]
    measured = timed(_as_nobody(argv, state), timeout=3600)
    return measured, f"{count_maildir(maildir)} messages on disk"


def run_syncer(
    params: POP3Params, state: Path, *, normalize: bool = False
) -> tuple[Measurement, str | None]:
    """``syncer sync --json`` of one POP3 account into ``state/archive.db``.

    :param normalize: run the default sync, which normalizes what it archived,
        instead of ``--no-normalize``.
    """
    state.mkdir(parents=True, exist_ok=True)
    config = state / "syncer.toml"
    security = 'security = "tls"\n' if params.tls else 'security = "plain"\nallow_insecure = true\n'
    ca = f"ca_file = {json.dumps(str(params.ca_file))}\n" if params.ca_file else ""
    config.write_text(
        f"""[archive]
url = {json.dumps("sqlite:///" + str(state / "archive.db"))}

[logging]
level = "warning"

[[accounts]]
name = "bench"
protocol = "pop3"
host = "{params.host}"
port = {params.port}
{security}{ca}username = "{USER}"
password_env = "{PASSWORD_ENV}"
"""
    )
    config.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCER_")}
    env[PASSWORD_ENV] = PASSWORD
    binary = syncer_binary()
    if not (state / "archive.db").exists():
        init = timed([binary, "--config", str(config), "init"], env=env)
        if not init.ok:
            return init, None
    argv = [binary, "--config", str(config), "sync", "--json"]
    if not normalize:
        argv.append("--no-normalize")
    measured = timed(argv, env=env, timeout=3600)
    note = None
    if measured.ok:
        with contextlib.suppress(ValueError, KeyError, IndexError):
            note = f"{json.loads(measured.stdout)[0]['new']} new"
    return measured, note


def measure(peer: str, scenario: str, run: int, params: POP3Params, state: Path) -> Sample:
    try:
        if peer == "getmail6":
            measured, note = run_getmail(params, state)
        else:
            measured, note = run_syncer(  # type: ignore[assignment]
                params, state, normalize=peer == "syncer+normalize"
            )
    except Exception as exc:  # a peer that cannot start is reported, not fatal
        return Sample(peer, scenario, run, None, None, error=f"{type(exc).__name__}: {exc}")
    if not measured.ok:
        return Sample(peer, scenario, run, None, None, error=measured.error())
    return Sample(peer, scenario, run, measured.wall, measured.max_rss_kb, note=note)


def run_all(
    base: Path, *, messages: int, runs: int, seed: int, scenarios: Sequence[str], keep: bool
) -> dict[str, Any]:
    server = DovecotServer(base / "server", [(USER, PASSWORD)], pop3_no_flag_updates=True)
    server.start()
    try:
        print(f"Seeding {messages} messages into Dovecot ({base / 'server'}) ...", flush=True)
        report = seed_corpus(server, USER, messages, seed=seed)
        inbox = report.folders.get("INBOX", 0)
        print(
            f"  {report.messages} messages, {report.bytes / 1e6:.1f} MB; POP3 sees INBOX: "
            f"{inbox} messages; seeded in {report.seconds:.1f} s",
            flush=True,
        )
        plain = POP3Params("127.0.0.1", server.ports.pop3, tls=False)
        tls = POP3Params(server.host, server.ports.pop3s, tls=True, ca_file=server.tls.ca)
        started = time.perf_counter()
        warm, _ = run_syncer(plain, base / "warmup")
        shutil.rmtree(base / "warmup", ignore_errors=True)
        print(f"  warm-up download (syncer, untimed): {time.perf_counter() - started:.1f} s")
        if not warm.ok:
            print(f"  warm-up failed: {warm.error()}")
        samples: list[Sample] = []
        for run in range(runs):
            order = list(PEERS) if run % 2 == 0 else list(reversed(PEERS))
            print(f"run {run + 1}/{runs} (order: {', '.join(order)})", flush=True)
            run_dir = base / f"run{run}"
            for scenario in scenarios:
                for peer in order:
                    params = tls if scenario == "full-tls" else plain
                    state = run_dir / (f"{peer}-tls" if scenario == "full-tls" else peer)
                    sample = measure(peer, scenario, run, params, state)
                    samples.append(sample)
                    _print_sample(sample)
                    if sample.error and scenario != "nochange":
                        # getmail6 6.18 sometimes loses the wake-up from its delivery child
                        # and gives up after its timeout; measure again from fresh state
                        # (the failure stays in the table's count).
                        shutil.rmtree(state, ignore_errors=True)
                        sample = measure(peer, scenario, run, params, state)
                        samples.append(sample)
                        _print_sample(sample)
                    if scenario == "full-tls" and not keep:
                        shutil.rmtree(state, ignore_errors=True)
            if not keep:
                shutil.rmtree(run_dir, ignore_errors=True)
        return {
            "corpus": asdict(report),
            "inbox_messages": inbox,
            "samples": [asdict(s) for s in samples],
        }
    finally:
        server.stop()


def _print_sample(sample: Sample) -> None:
    if sample.error:
        print(f"  {sample.scenario:<9} {sample.peer:<16} n/a: {sample.error}", flush=True)
        return
    rss = f"{sample.max_rss_kb / 1024:.0f} MB" if sample.max_rss_kb else "?"
    note = f" ({sample.note})" if sample.note else ""
    print(
        f"  {sample.scenario:<9} {sample.peer:<16} {sample.wall:8.2f} s  {rss:>7}{note}",
        flush=True,
    )


def render_table(info: dict[str, Any]) -> str:
    """Per scenario and peer: median wall time, spread, msg/s, MB/s, peak RSS, ratio."""
    inbox = info["inbox_messages"]
    samples = [Sample(**s) for s in info["samples"]]
    header = (
        f"{'scenario':<28} {'peer':<16} {'median':>8} {'min-max':>15} {'msg/s':>7} "
        f"{'peak RSS':>9} {'syncer/getmail6':>16}"
    )
    lines = [f"POP3 maildrop: INBOX of the corpus, {inbox} messages", header, "-" * len(header)]
    for scenario in SCENARIOS:
        medians: dict[str, float] = {}
        for peer in PEERS:
            mine = [s for s in samples if s.scenario == scenario and s.peer == peer]
            if not mine:
                continue
            good = [s.wall for s in mine if s.wall is not None]
            title = TITLES[scenario] if peer == PEERS[0] else ""
            if not good:
                errors = "; ".join(sorted({s.error or "not run" for s in mine}))
                lines.append(f"{title:<28} {peer:<16} {'n/a':>8}  ({errors[:200]})")
                continue
            median = statistics.median(good)
            medians[peer] = median
            spread = f"{min(good):.2f}-{max(good):.2f} s"
            rate = f"{inbox / median:7.0f}" if scenario.startswith("full") else f"{'-':>7}"
            rss_values = [s.max_rss_kb for s in mine if s.max_rss_kb]
            rss = f"{max(rss_values) / 1024:.0f} MB" if rss_values else "?"
            ratio = ""
            if peer.startswith("syncer") and "getmail6" in medians:
                ratio = f"{median / medians['getmail6']:.3f}x"
            failed = len(mine) - len(good)
            extra = f"  ({failed} failed)" if failed else ""
            lines.append(
                f"{title:<28} {peer:<16} {median:7.2f}s {spread:>15} {rate} {rss:>9} {ratio:>16}"
                + extra
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="whole corpus (all folders)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"comma-separated, of {SCENARIOS}"
    )
    parser.add_argument("--dir", type=Path, help="working directory (default: new one in /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep per-run state directories")
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    args = parser.parse_args(argv)
    scenarios = [s for s in args.scenarios.split(",") if s]
    if set(scenarios) - set(SCENARIOS):
        parser.error(f"unknown scenario in {scenarios}")
    if "nochange" in scenarios and "full" not in scenarios:
        parser.error("nochange re-runs the state of the 'full' scenario; include it")
    base = args.dir or Path(tempfile.mkdtemp(prefix="syncer-bench-pop3-", dir="/tmp"))
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)  # Dovecot's unprivileged processes must traverse it
    print(f"Machine: {os.cpu_count()} CPUs; working directory {base}", flush=True)
    try:
        info = run_all(
            base,
            messages=args.messages,
            runs=args.runs,
            seed=args.seed,
            scenarios=scenarios,
            keep=args.keep,
        )
    finally:
        if args.dir is None and not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print()
    print(render_table(info))
    if args.json:
        args.json.write_text(json.dumps(info, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
