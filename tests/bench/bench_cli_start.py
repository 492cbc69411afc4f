"""Whole-process times of the commands people type: ``syncer search``, ``syncer show``, ``status``.

Why this script exists: in-process the query is fast (bench_search measures
it so, which is right for the web archive), but from the shell every command
first pays the interpreter's start and its imports. The issue's bound is
≤ 0.25 s p50 per command as a whole process; ``notmuch search`` (and ``notmuch
show``) on the same messages is printed next to it: with ``--notmuch`` the
corpus is also written to a Maildir and indexed by ``notmuch new``, as the
search benchmark does (:func:`tests.bench.bench_search.index_notmuch`). Each
command is timed as a whole process, wall and CPU (user + system, which a
shared machine's load inflates less), p50 over the runs. It also prints the
slowest imports of each command (``python -X importtime``), which is where
start-up time goes. The syncer package is compiled to bytecode first, as an
installed one is. Not part of ``make test``::

    python -m tests.bench.bench_cli_start --messages 100000 --notmuch [--runs 15]
    python -m tests.bench.bench_cli_start --archive /path/archive.db   # an existing archive
    python -m tests.bench.bench_cli_start --messages 100000 --notmuch --workdir DIR  # kept, reused

By default it times this venv's ``syncer`` (in a checkout, an editable install: its
path finder costs about 50 M instructions of the interpreter's start, ~1 % of a
``search``, see docs/performance.md). ``--syncer`` times another venv's, for example
what users install::

    python3 -m venv /tmp/inst && /tmp/inst/bin/pip install .
    python -m tests.bench.bench_cli_start --archive DIR/archive.db --syncer /tmp/inst/bin/syncer
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tests.bench.syncer_peer import compile_tree, syncer_binary

COMMANDS = (
    ("search", "budget", "--limit", "20"),
    ("search", "from:alice invoice", "--limit", "20"),
    ("show", "1"),
    ("status",),
)
#: The same searches through notmuch (its syntax accepts both as they are).
NOTMUCH_QUERIES = ("budget", "from:alice invoice")


def _build(path: Path, messages: int) -> None:
    from syncer.archive.store import ArchiveStore
    from syncer.model import RemoteMessage
    from syncer.sync.normalize import normalize_pending
    from tests.corpus import generate

    with ArchiveStore.open(f"sqlite:///{path}", migrate=True) as store:
        store.ensure_account("bench", "imap")
        batch: list[RemoteMessage] = []
        for uid, message in enumerate(generate(messages, size_profile="small"), 1):
            batch.append(RemoteMessage(folder="INBOX", uid=uid, raw=message.raw))
            if len(batch) == 1000:
                store.archive_batch("bench", "INBOX", 1, batch, None)
                batch = []
        if batch:
            store.archive_batch("bench", "INBOX", 1, batch, None)
        normalize_pending(store)


def _times(argv: Sequence[str], runs: int, env: dict[str, str]) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (user + system, from ``wait4``) of *runs* whole processes."""
    walls, cpus = [], []
    for _ in range(runs):
        started = time.perf_counter()
        child = subprocess.Popen(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _pid, status, usage = os.wait4(child.pid, 0)
        walls.append(time.perf_counter() - started)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(argv)} failed")
        cpus.append(usage.ru_utime + usage.ru_stime)
    return walls, cpus


def _line(label: str, times: tuple[list[float], list[float]]) -> str:
    walls, cpus = times
    return (
        f"{label:<48} {statistics.median(walls):8.3f} {min(walls):8.3f} {max(walls):8.3f} "
        f"{statistics.median(cpus):8.3f}"
    )


def _notmuch_lines(messages: int, workdir: Path, runs: int) -> list[str]:
    """``notmuch search`` of the same queries and ``notmuch show`` of one message, on the
    same corpus written to a Maildir and indexed with ``notmuch new``."""
    from tests.bench.bench_search import index_notmuch

    config = workdir / "notmuch-config"
    if (workdir / "mail" / ".notmuch").is_dir() and config.exists():  # indexed by an earlier run
        env: dict[str, str] | None = {**os.environ, "NOTMUCH_CONFIG": str(config)}
    else:
        env = index_notmuch({"count": messages, "size_profile": "small"}, workdir)
    binary = shutil.which("notmuch")
    if env is None or binary is None:
        return []
    lines = []
    for query in NOTMUCH_QUERIES:
        argv = [binary, "search", "--limit=20", query]
        lines.append(_line(f"notmuch search {query!r} --limit=20", _times(argv, runs, env)))
    first = subprocess.run(
        [binary, "search", "--output=messages", "--limit=1", "*"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    argv = [binary, "show", "--format=text", first]
    lines.append(_line("notmuch show --format=text (one message)", _times(argv, runs, env)))
    return lines


def _slowest_imports(argv: Sequence[str], env: dict[str, str], shown: int = 6) -> str:
    python = Path(argv[0]).with_name("python")  # the syncer script's own interpreter
    done = subprocess.run(
        [str(python), "-X", "importtime", "-m", "syncer", *argv[1:]],
        env=env,
        cwd="/",  # not this checkout's syncer ahead of the one timed (-m puts the cwd first)
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "[us]" not in line:
            _self, cumulative, name = line[len("import time:") :].split("|")
            if not name.startswith("  "):  # top-level imports only (their own total)
                rows.append((int(cumulative.strip()), name.strip()))
    rows.sort(reverse=True)
    return ", ".join(f"{name} {us / 1000:.0f} ms" for us, name in rows[:shown])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--archive", type=Path, help="an existing SQLite archive")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--workdir", type=Path, help="keep the archive and Maildir here (reused)")
    parser.add_argument(
        "--notmuch", action="store_true", help="also index the corpus with notmuch and time it"
    )
    parser.add_argument(
        "--syncer", help="the syncer script to time (another venv's, e.g. a non-editable install)"
    )
    args = parser.parse_args(argv)
    if args.syncer:
        compile_tree(args.syncer)  # a pip-installed one has its bytecode already
    binary = args.syncer or syncer_binary()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        archive = args.archive
        if archive is None and (work / "archive.db").exists():
            archive = work / "archive.db"  # built by an earlier run
        if archive is None:
            archive = work / "archive.db"
            started = time.perf_counter()
            _build(archive, args.messages)
            took = time.perf_counter() - started
            print(f"archive of {args.messages} messages built in {took:.0f} s")
        config = Path(tmp) / "syncer.toml"
        config.write_text(
            f'[archive]\nurl = "sqlite:///{archive}"\n\n[[accounts]]\nname = "bench"\n'
            'host = "127.0.0.1"\nport = 1\nsecurity = "plain"\nallow_insecure = true\n'
            'username = "u"\npassword_env = "BENCH_PASS"\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCER_")}
        env["BENCH_PASS"] = "x"
        notmuch = _notmuch_lines(args.messages, work, args.runs) if args.notmuch else []
        print(f"syncer: {binary}; load: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
        print(f"{'command':<48} {'p50 wall':>8} {'min':>8} {'max':>8} {'p50 CPU':>8}")
        for command in COMMANDS:
            line = [binary, "--config", str(config), *command]
            print(_line("syncer " + " ".join(command), _times(line, args.runs, env)))
            print(f"    slowest imports: {_slowest_imports(line, env)}")
        for text in notmuch:
            print(text)
        print(f"load: {os.getloadavg()[0]:.2f} (1 min) at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
