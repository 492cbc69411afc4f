"""``syncer sync``, ``run``, ``check`` and ``normalize``: getting mail into the archive."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from syncer.cli.context import State, complete_accounts, emit_json, pass_state
from syncer.errors import ConfigError, SyncerError

if TYPE_CHECKING:
    from datetime import datetime

    from syncer.archive.store import ArchiveStore
    from syncer.config.schema import AccountConfig
    from syncer.sync.normalize import NormalizeCounts


@click.command()
@click.argument("accounts", nargs=-1, shell_complete=complete_accounts)
@click.option("--folder", "folders", multiple=True, help="Only folders matching this glob.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary per account.")
@click.option("--wait", is_flag=True, help="Wait for another run holding the account to finish.")
@click.option(
    "--no-normalize",
    is_flag=True,
    help="Archive raw mail only; leave normalization to `syncer normalize`.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Sign in and show folders, counts, sizes and what the sync would do; change nothing.",
)
@pass_state
def sync(
    state: State,
    accounts: tuple[str, ...],
    folders: tuple[str, ...],
    as_json: bool,
    wait: bool,
    no_normalize: bool,
    dry_run: bool,
) -> None:
    """Pull new mail, flag changes and expunges from the accounts into the archive.

    All accounts when none is named. Exit 0 when every account synced, 1 when
    any failed (the others still run). Then the new messages are normalized
    (addresses, text, attachments ...), unless --no-normalize.

    \b
    With --dry-run: sign in to each account, list its folders with message
    counts and sizes, say which are archived (or why not) and what the sync
    would download (POP3: what it would delete, and when); nothing changes, not
    even a missing archive is created. Exit 0 when every account answered.

    \b
    Example:
      syncer sync
      syncer sync --dry-run
      syncer sync work --folder 'Archive/*' --json
    """
    from syncer.sync.runner import sync_accounts

    cfg = state.read_config("accounts")
    selected = [cfg.account(n) for n in accounts] if accounts else list(cfg.accounts)
    if not selected:
        raise ConfigError(f"{cfg.path}: no [[accounts]] configured; nothing to sync.")
    if dry_run:
        preview(state, selected, folders, as_json)
        return
    normalize_error: str | None = None
    normalized = 0
    with state.open_store(first_use=True) as store:
        if no_normalize:
            with state.progress("Syncing", json_output=as_json) as progress:
                summaries = sync_accounts(
                    store, selected, folder_globs=folders, wait=wait, progress=progress
                )
        else:
            from syncer.sync.normalize import Follower, follow_download_batches

            # Normalization overlaps the download: each committed batch is normalized
            # while the next downloads (the normalizer is imported only if one arrives).
            selected = follow_download_batches(selected)
            with Follower(store, verify_dkim=cfg.archive.verify_dkim) as follower:
                with state.progress("Syncing", json_output=as_json) as progress:
                    summaries = sync_accounts(
                        store, selected, folder_globs=folders, wait=wait, progress=progress
                    )
                try:
                    normalized = follower.finish().processed
                except SyncerError as exc:
                    normalize_error = exc.message
    if as_json:
        emit_json([_summary_dict(s) for s in summaries])
    else:
        from syncer.cli.render import render_sync

        render_sync(summaries)
        if normalized:
            click.echo(f"Normalized {normalized} message{'s' if normalized != 1 else ''}.")
    if normalize_error is not None:
        click.echo(f"Error: normalization stopped: {normalize_error}", err=True)
        click.echo("The mail is archived; run `syncer normalize` to finish.", err=True)
    if not all(s.ok for s in summaries) or normalize_error is not None:
        sys.exit(1)


def preview(
    state: State, accounts: list[AccountConfig], folders: tuple[str, ...], as_json: bool
) -> None:
    """Print what a sync of ``accounts`` would do (``sync --dry-run``, ``config check
    --connect``); exit 1 unless every account answered. Never creates the archive."""
    from contextlib import nullcontext

    from syncer.archive.engine import sqlite_file
    from syncer.sync.preview import preview_account

    path = sqlite_file(state.read_config().archive_url)
    missing = path is not None and not path.exists()
    with nullcontext(None) if missing else state.open_store() as store:
        previews = [preview_account(a, store, folder_globs=folders) for a in accounts]
    if as_json:
        from dataclasses import asdict

        emit_json(
            [
                {
                    **asdict(p),
                    "ok": p.ok,
                    "first_sync": p.first_sync,
                    "new_messages": p.new_messages,
                    "new_bytes": p.new_bytes,
                }
                for p in previews
            ]
        )
    else:
        from syncer.cli.render import render_preview

        render_preview(previews)
    if not all(p.ok for p in previews):
        sys.exit(1)


def _normalize(
    state: State,
    store: ArchiveStore,
    *,
    as_json: bool,
    rebuild: bool = False,
    since: datetime | None = None,
    workers: int | None = None,
) -> NormalizeCounts:
    from syncer.sync.normalize import normalize_pending

    with state.progress("Normalizing", json_output=as_json) as progress:
        return normalize_pending(
            store,
            rebuild=rebuild,
            since=since,
            workers=workers,
            progress=progress,
            verify_dkim=state.read_config().archive.verify_dkim,
        )


@click.command()
@click.option(
    "--once", is_flag=True, help="Run every job once, then exit (for a systemd timer or cron)."
)
@click.option(
    "--worker",
    envvar="SYNCER_WORKER",
    help="This worker's name in leases and run records (default: the host name; $SYNCER_WORKER).",
)
@click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False),
    help="With --once: write the metrics there afterwards (node_exporter textfile format).",
)
@pass_state
def run(state: State, once: bool, worker: str | None, metrics_file: str | None) -> None:
    """Run the scheduled jobs: a daemon until SIGTERM/SIGINT, or each job once with --once.

    Each account is synced on its `schedule` (cron) or `every` (interval); several
    `syncer run` processes can share one PostgreSQL archive (each account is synced
    by one of them at a time). SIGTERM/SIGINT stop after the batch in flight (within
    [scheduler] grace_period) and exit 0; SIGHUP reloads the configuration. With
    --once, exit 1 if any job failed.

    \b
    Example:
      syncer run
      syncer run --once
      syncer run --once --metrics-file /var/lib/node_exporter/syncer.prom
      SYNCER_WORKER=node-2 syncer run
    """
    from syncer.daemon.service import run_daemon

    if metrics_file is not None and not once:
        raise click.UsageError(
            "--metrics-file goes with --once; the daemon serves [metrics] listen."
        )
    if not once:
        state.default_level = "info"  # a service: its journal is the record of every run
        state.configure_logs()
    config = state.config  # every section (before the store, which needs only the archive)
    store = state.open_store(first_use=True)
    sys.exit(run_daemon(config, store, once=once, worker=worker, metrics_file=metrics_file))


@click.command()
@click.argument("accounts", nargs=-1, shell_complete=complete_accounts)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def check(state: State, accounts: tuple[str, ...], as_json: bool) -> None:
    """Prove the archive is complete: compare each folder's UIDs on the server with the archive.

    Exit 1 when anything is missing on either side.

    \b
    Example:
      syncer check work --json
    """
    from syncer.sync.runner import check_accounts

    cfg = state.config
    selected = [cfg.account(n) for n in accounts] if accounts else list(cfg.accounts)
    with (
        state.open_store() as store,
        state.progress("Checking", json_output=as_json, unit="folders") as progress,
    ):
        reports = check_accounts(cfg, store, selected, progress)
    if as_json:
        emit_json(reports)
    else:
        from syncer.cli.render import render_check

        render_check(reports)
    if not all(r["complete"] for r in reports):
        sys.exit(1)


@click.command("normalize")
@click.option(
    "--rebuild",
    is_flag=True,
    help="Re-derive every message (with --since: those since then), not only those awaiting it.",
)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    help="Only messages dated on or after this UTC day or time (undated ones: archived since).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Processes to parse with (default: one per core; 1 works in-process).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def normalize_command(
    state: State, rebuild: bool, since: datetime | None, workers: int | None, as_json: bool
) -> None:
    """Derive addresses, dates, text, attachments, threads and verdicts from the raw mail.

    Works on the messages awaiting it (new since the last run, or derived by an
    older syncer); --rebuild re-derives them all from the archived bytes.
    Resumable: an interrupted run keeps every batch it finished.

    \b
    Example:
      syncer normalize
      syncer normalize --rebuild --since 2024-01-01 --json
    """
    from dataclasses import asdict
    from datetime import UTC

    with state.open_store() as store:
        counts = _normalize(
            state,
            store,
            as_json=as_json,
            rebuild=rebuild,
            since=since.replace(tzinfo=UTC) if since is not None else None,
            workers=workers,
        )
    if as_json:
        emit_json(asdict(counts))
        return
    click.echo(
        f"Normalized {counts.processed} message{'s' if counts.processed != 1 else ''} "
        f"({counts.ok} ok, {counts.partial} partial, {counts.failed} failed) "
        f"in {counts.seconds:.1f} s with {counts.workers} "
        f"process{'es' if counts.workers != 1 else ''}."
    )


def _summary_dict(summary: Any) -> dict[str, Any]:
    from dataclasses import asdict

    data = asdict(summary)
    data["new"] = summary.new
    data["bytes"] = summary.bytes
    return data
