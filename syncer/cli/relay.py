"""The ``syncer digest``, ``syncer forward`` and ``syncer outbox`` commands.

Thin commands over :mod:`syncer.relay.digests`, :mod:`syncer.relay.forwards` and
:mod:`syncer.relay.outbox`. Whatever queues mail then flushes the outbox under its
lease; when a running ``syncer run`` holds that lease, the mail stays queued
and that daemon's next flush (within ``[outbox] flush_every``) sends it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from syncer.cli.context import State, emit_json, pass_state

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.config.schema import Config
    from syncer.relay.outbox import FlushResult


def _flush(store: ArchiveStore, config: Config) -> FlushResult | None:
    """Send what is due, under the outbox lease; None when another process holds it."""
    from syncer.errors import LeaseHeld
    from syncer.relay.outbox import LEASE, flush_outbox
    from syncer.sync.runner import job_lease

    try:
        with job_lease(store, config, LEASE) as lease:
            return flush_outbox(store, config, heartbeat=lease)
    except LeaseHeld:
        return None


def _flush_summary(result: FlushResult | None) -> str:
    if result is None:
        return "Queued; another syncer process (the daemon) is flushing the outbox and sends it."
    parts = [f"{len(result.sent)} sent"]
    if result.deferred:
        parts.append(f"{len(result.deferred)} deferred")
    if result.failed:
        parts.append(f"{len(result.failed)} failed")
    if result.recovered:
        parts.append(f"{len(result.recovered)} resent after an interrupted flush")
    return "Outbox: " + ", ".join(parts) + "."


def _flush_dict(result: FlushResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {
        "sent": result.sent,
        "deferred": result.deferred,
        "failed": result.failed,
        "recovered": result.recovered,
        "errors": result.errors,
    }


def _exit_on_failure(result: FlushResult | None) -> None:
    if result is not None:
        for line in result.errors:
            click.echo(f"Error: {line}", err=True)
        if not result.ok:
            sys.exit(1)


# --------------------------------------------------------------------------- digest


@click.group("digest")
def digest_group() -> None:
    """Digests: summaries of what was archived, sent by mail ([[digests]])."""


@digest_group.command("send")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Print the digest; queue and send nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def digest_send(state: State, name: str, dry_run: bool, as_json: bool) -> None:
    """Send digest NAME now: the messages archived since its previous run.

    The period then counts as covered (the scheduled run starts after it). An
    empty period sends nothing unless the digest sets send_empty = true. Exit 1
    when the message could not be sent (it stays queued and is retried).

    \b
    Example:
      syncer digest send morning --dry-run
      syncer digest send morning
    """
    from syncer.relay.digests import digest_config, run_digest

    cfg = state.config
    digest = digest_config(cfg, name)
    with state.open_store() as store:
        run = run_digest(store, digest, dry_run=dry_run)
        result = _flush(store, cfg) if run.queued else None
    if as_json:
        data: dict[str, Any] = {
            "name": run.name,
            "after": run.after,
            "until": run.until,
            "count": run.count,
            "listed": run.listed,
            "queued": run.queued,
            "message_id": run.message_id,
            "subject": run.rendered.subject if run.rendered else None,
            "flush": _flush_dict(result),
        }
        if dry_run and run.rendered:
            data["text"] = run.rendered.text
        emit_json(data)
    elif dry_run:
        if run.rendered is None:
            click.echo(f"Digest {name!r}: nothing new matched; nothing would be sent.")
        else:
            click.echo(f"Subject: {run.rendered.subject}\n")
            click.echo(run.rendered.text, nl=False)
    elif not run.queued:
        click.echo(f"Digest {name!r}: nothing new matched; nothing sent.")
    else:
        click.echo(
            f"Digest {name!r}: {run.count} message{'s' if run.count != 1 else ''} "
            f"({run.listed} listed). {_flush_summary(result)}"
        )
    _exit_on_failure(result)


# --------------------------------------------------------------------------- forward


@click.group("forward")
def forward_group() -> None:
    """Forward rules: newly archived mail matching a query, sent on ([[forwards]])."""


@forward_group.command("run")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option(
    "--backfill",
    is_flag=True,
    help="Also forward matching messages archived before the rule existed (each at most once).",
)
@click.option("--dry-run", is_flag=True, help="List what would be forwarded; queue nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def forward_run(
    state: State, names: tuple[str, ...], backfill: bool, dry_run: bool, as_json: bool
) -> None:
    """Apply the forward rules (all, or those named) now, then send the outbox.

    A rule applies to messages archived (and normalized) after it was first
    seen; the first run of a new rule only marks where it starts, unless
    --backfill. Exit 1 when a message could not be sent (it stays queued).

    \b
    Example:
      syncer forward run
      syncer forward run invoices --backfill --dry-run
    """
    from syncer.errors import LeaseHeld, SyncerError
    from syncer.relay.forwards import apply_forwards, select_rules
    from syncer.relay.outbox import LEASE, flush_outbox
    from syncer.sync.runner import job_lease

    cfg = state.config
    rules = select_rules(cfg, names)
    result: FlushResult | None = None
    with state.open_store() as store:
        try:
            with job_lease(store, cfg, LEASE) as lease:
                runs = apply_forwards(
                    store, rules, backfill=backfill, dry_run=dry_run, heartbeat=lease
                )
                if not dry_run:
                    result = flush_outbox(store, cfg, heartbeat=lease)
        except LeaseHeld as exc:
            raise SyncerError(
                "Another syncer process (the daemon) is applying the forward rules now.",
                hint="It applies them every [outbox] flush_every; or try again in a moment.",
            ) from exc
    if as_json:
        emit_json(
            {
                "rules": [
                    {
                        "name": run.name,
                        "after": run.after,
                        "until": run.until,
                        "started": run.started,
                        "messages": run.ids,
                        "queued": run.queued,
                        "skipped_own_forwards": run.looped,
                    }
                    for run in runs
                ],
                "flush": _flush_dict(result),
            }
        )
    else:
        for run in runs:
            if run.started:
                click.echo(
                    f"Forward {run.name!r}: starts with the messages archived after id "
                    f"{run.until} (use --backfill for older ones)."
                )
                continue
            verb = "would forward" if dry_run else "queued"
            count = len(run.ids) if dry_run else run.queued
            line = f"Forward {run.name!r}: {verb} {count} message{'s' if count != 1 else ''}"
            if dry_run and run.ids:
                line += f" (ids {', '.join(map(str, run.ids[:20]))}{' ...' * (len(run.ids) > 20)})"
            if run.looped:
                line += f"; skipped {len(run.looped)} that a syncer forward produced"
            click.echo(line + ".")
        if result is not None:
            click.echo(_flush_summary(result))
    _exit_on_failure(result)


# --------------------------------------------------------------------------- outbox


@click.group("outbox")
def outbox_group() -> None:
    """The outbox: mail queued by digests and forwards, and how sending it went."""


@outbox_group.command("list")
@click.option(
    "--status",
    type=click.Choice(["pending", "sending", "sent", "failed"]),
    help="Only messages in this state.",
)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def outbox_list(state: State, status: str | None, limit: int, as_json: bool) -> None:
    """List queued and sent mail, newest first, with attempts and the last error.

    \b
    Example:
      syncer outbox list --status failed
    """
    with state.open_store() as store:
        rows = store.outbox_list(status=status, limit=limit)
    if as_json:
        emit_json([row.to_dict() for row in rows])
        return
    if not rows:
        click.echo("The outbox is empty." if status is None else f"No {status} messages.")
        return
    for row in rows:
        when = row.sent_at or row.next_attempt_at or row.created_at
        click.echo(
            f"{row.id:>6}  {row.status:<8} {row.kind:<8} {row.idem_key}  "
            f"to {', '.join(row.recipients)} via {row.smtp}  "
            f"attempts {row.attempts}  {when.isoformat()}"
        )
        if row.last_error:
            click.echo(f"        {row.last_error}")


@outbox_group.command("flush")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def outbox_flush(state: State, as_json: bool) -> None:
    """Send every queued message that is due now. Exit 1 if any could not be sent.

    \b
    Example:
      syncer outbox flush
    """
    from syncer.errors import SyncerError

    cfg = state.config
    with state.open_store() as store:
        result = _flush(store, cfg)
    if result is None:
        raise SyncerError(
            "Another syncer process (the daemon) is flushing the outbox now.",
            hint="It sends every [outbox] flush_every; or try again in a moment.",
        )
    if as_json:
        emit_json(_flush_dict(result))
    else:
        click.echo(_flush_summary(result))
    _exit_on_failure(result)


@outbox_group.command("retry")
@click.argument("row_id", metavar="ID", type=int)
@pass_state
def outbox_retry(state: State, row_id: int) -> None:
    """Make a failed (or waiting) message due now, its attempts counted from zero.

    It is sent by the next flush (`syncer outbox flush`, or the daemon's).

    \b
    Example:
      syncer outbox retry 17
    """
    from datetime import UTC, datetime

    with state.open_store() as store:
        row = store.outbox_retry(row_id, datetime.now(UTC))
    click.echo(f"Outbox message {row.id} ({row.idem_key}) is due again.")


@outbox_group.command("drop")
@click.argument("row_id", metavar="ID", type=int)
@pass_state
def outbox_drop(state: State, row_id: int) -> None:
    """Give up on a queued or failed message. It is kept, marked failed ("dropped by hand"),
    so the same digest period or forward is never queued again.

    \b
    Example:
      syncer outbox drop 17
    """
    from datetime import UTC, datetime

    with state.open_store() as store:
        row = store.outbox_drop(row_id, datetime.now(UTC))
    click.echo(f"Outbox message {row.id} ({row.idem_key}) dropped; it will not be sent.")
