"""Compare two checkouts of syncer on one server and corpus: full sync and no-change re-sync.

Why: a change that is not meant to change speed (a restructuring, a refactoring) must
show it did not, measured the way the other benchmarks are: whole processes, the two
trees alternating on the same Dovecot and corpus, medians and the ratio new/old. Each
tree is given as the ``syncer`` script of a virtual environment that has it installed::

    python -m tests.bench.ab_trees --old /tmp/old/.venv/bin/syncer \\
        --new .venv/bin/syncer --messages 5000 --runs 5

Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.bench.load_corpus import USER, seed_corpus, server_params, start_server
from tests.bench.mbsync import Measurement, ServerParams, timed
from tests.bench.syncer_peer import PASSWORD_ENV, compile_tree, write_syncer_config


def _sync(binary: str, params: ServerParams, state: Path) -> Measurement:
    config = write_syncer_config(state / "syncer.toml", params, state)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCER_")}
    env[PASSWORD_ENV] = params.password
    if not (state / "archive.db").exists():
        timed([binary, "--config", str(config), "init"], env=env)
    return timed([binary, "--config", str(config), "sync", "--no-normalize", "--json"], env=env)


def _round(binary: str, params: ServerParams, root: Path) -> tuple[Measurement, Measurement]:
    state = Path(tempfile.mkdtemp(dir=root))
    try:
        full = _sync(binary, params, state)
        nochange = _sync(binary, params, state)
        return full, nochange
    finally:
        shutil.rmtree(state, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="the old tree's syncer script")
    parser.add_argument("--new", required=True, help="the new tree's syncer script")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    trees = {"old": args.old, "new": args.new}
    for binary in trees.values():
        compile_tree(binary)  # as installed: with bytecode
    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="ab-trees-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # the mail user of Dovecot must reach its folder
        server = start_server(root / "dovecot")
        try:
            seed_corpus(server, USER, args.messages)
            params = server_params(server, tls=False)
            _round(args.new, params, root)  # warm the page cache and Dovecot's indexes
            for run in range(args.runs):
                order = ("old", "new") if run % 2 == 0 else ("new", "old")
                for name in order:
                    full, nochange = _round(trees[name], params, root)
                    for scenario, m in (("full", full), ("nochange", nochange)):
                        if m.returncode != 0:
                            raise SystemExit(f"{name} {scenario} failed: {m.stderr[-500:]}")
                        times.setdefault((name, scenario), []).append(m.wall)
        finally:
            server.stop()
    print(f"| scenario ({args.messages} messages, {args.runs} runs) | old | new | new/old |")
    print("|---|---|---|---:|")
    for scenario in ("full", "nochange"):
        old = statistics.median(times[("old", scenario)])
        new = statistics.median(times[("new", scenario)])
        print(f"| {scenario} | {old:.3f} s | {new:.3f} s | {new / old:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
