"""The ``syncer retention``, ``syncer hold`` and ``syncer audit`` commands.

Thin commands over :mod:`syncer.retention.policy`, the legal holds and the audit trail
of :class:`~syncer.archive.store.ArchiveStore`. Every retention command first
compares the configured policies with the ones recorded in the archive and
audits any change (a shortened keep period as ``retention.keep_shortened``).
"""

from __future__ import annotations

import getpass
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from syncer.cli.context import State, emit_json, pass_state
from syncer.errors import UsageError
from syncer.formats.files import write_private

if TYPE_CHECKING:
    from syncer.archive.audit import Anchor
    from syncer.retention.policy import RetentionPlan


def actor() -> str:
    """Who is acting, for the audit trail: ``user@host`` of this process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@click.group("retention")
def retention_group() -> None:
    """Plan and apply the [[retention]] policies of the configuration."""


def _render_plan(plan: RetentionPlan) -> None:
    data = plan.to_dict()
    click.echo(
        f"Archive: {data['archive_messages']} messages. This run deletes "
        f"{data['delete']['messages']} ({data['delete']['bytes']} bytes, "
        f"{data['delete']['share']:.1%}) and expunges {data['expunge']['messages']} from "
        f"servers ({data['expunge']['copies']} copies)."
    )
    click.echo(
        f"Kept by legal holds: {data['kept_by_holds']}; kept by floors: {data['kept_by_floors']}."
    )
    unseen = data["kept_unseen_by_holds"]
    if unseen:
        reasons = ", ".join(f"{count} {why}" for why, count in unseen.items())
        click.echo(
            f"Kept because a legal hold cannot see them yet: {sum(unseen.values())} ({reasons}); "
            "`syncer normalize` lets the holds see those awaiting normalization."
        )
    for policy in data["policies"]:
        click.echo(
            f"  {policy['name']}: delete {policy['delete']['messages']} "
            f"({policy['delete']['bytes']} bytes), expunge {policy['expunge']['messages']} "
            f"({policy['expunge']['bytes']} bytes)"
        )
        for item in policy["sample"]:
            what = "+".join(w for w in ("delete", "expunge") if item[w])
            click.echo(
                f"    {what:14} #{item['id']} {item['aged_from'][:10]} {item['size']:>9} "
                f"{item['subject'] or '(no subject)'}"
            )


@retention_group.command("plan")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def retention_plan(state: State, as_json: bool) -> None:
    """Show what `syncer retention apply` would delete and expunge now; changes nothing.

    \b
    Example:
      syncer retention plan
      syncer retention plan --json
    """
    from syncer.retention.policy import build_plan, record_policies

    config = state.config
    with state.open_store() as store:
        record_policies(store, config.retention, actor=actor())
        plan = build_plan(store, config.retention)
    if as_json:
        emit_json(plan.to_dict())
    else:
        _render_plan(plan)


@retention_group.command("apply")
@click.option("--force", is_flag=True, help="Delete even more than max_delete_share.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def retention_apply(state: State, force: bool, as_json: bool) -> None:
    """Apply the retention policies: expunge from servers, then delete from the archive.

    Does what `syncer retention plan` shows, in batches, each audited. A run
    that would delete more than [retention_settings] max_delete_share of the
    archive stops (exit 2) unless --force is given. Exit 1 when some server
    copies could not be expunged.

    \b
    Example:
      syncer retention apply
      syncer retention apply --force
    """
    from syncer.archive.leases import holder_id
    from syncer.retention.job import run_retention

    config = state.config
    with (
        state.open_store() as store,
        state.progress("Applying retention", json_output=as_json) as progress,
    ):
        plan, result = run_retention(
            store, config, holder=holder_id(), actor=actor(), force=force, progress=progress
        )
    if as_json:
        emit_json({"plan": plan.to_dict(), "result": result.to_dict()})
    else:
        for problem in result.problems:
            click.echo(problem, err=True)
        click.echo(
            f"Deleted {result.deleted} messages ({result.deleted_bytes} bytes, "
            f"{result.blobs_removed} blobs); expunged {result.expunged} copies from servers."
        )
    if result.problems:
        sys.exit(1)


# --------------------------------------------------------------------------- holds


@click.group("hold")
def hold_group() -> None:
    """Legal holds: messages matching a hold's query are never deleted."""


def _hold_dict(hold: Any) -> dict[str, Any]:
    return {
        "name": hold.name,
        "query": hold.query,
        "reason": hold.reason,
        "created_at": hold.created_at.isoformat(),
        "released_at": hold.released_at.isoformat() if hold.released_at else None,
    }


@hold_group.command("add")
@click.argument("name")
@click.argument("query")
@click.option("--reason", help="Why the hold is placed (kept in the audit trail).")
@pass_state
def hold_add(state: State, name: str, query: str, reason: str | None) -> None:
    """Place a legal hold NAME on the messages matching QUERY (now and archived later).

    \b
    Example:
      syncer hold add acme-case 'from:@acme.example' --reason "Litigation 2026-17"
    """
    from syncer.query import parse

    parse(query)  # a syntax error is exit 2 and names the column
    with state.open_store() as store:
        hold = store.add_hold(name, query, reason, actor=actor())
        count = sum(1 for _ in _select(store, query))
    click.echo(f"Hold {hold.name!r} placed: {count} messages match {query!r} now.")


def _select(store: Any, query: str) -> list[int]:
    from datetime import UTC, datetime

    from syncer.retention.policy import store_selector

    return list(store_selector(store, datetime.now(UTC))(query))


@hold_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include released holds.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def hold_list(state: State, show_all: bool, as_json: bool) -> None:
    """List the legal holds in place (with --all, released ones too).

    \b
    Example:
      syncer hold list
    """
    with state.open_store() as store:
        holds = store.holds(released=show_all)
        counts = {h.name: len(_select(store, h.query)) for h in holds if h.released_at is None}
    if as_json:
        emit_json([{**_hold_dict(h), "messages": counts.get(h.name)} for h in holds])
        return
    if not holds:
        click.echo("No legal holds.")
    for h in holds:
        status = f"released {h.released_at:%Y-%m-%d}" if h.released_at else "active"
        click.echo(
            f"{h.name}  {status}  since {h.created_at:%Y-%m-%d}  query {h.query!r}  "
            f"messages {counts.get(h.name, '-')}  reason {h.reason or '-'}"
        )


@hold_group.command("release")
@click.argument("name")
@pass_state
def hold_release(state: State, name: str) -> None:
    """Release the legal hold NAME (its messages follow the policies again).

    \b
    Example:
      syncer hold release acme-case
    """
    with state.open_store() as store:
        store.release_hold(name, actor=actor())
    click.echo(f"Hold {name!r} released.")


# --------------------------------------------------------------------------- audit


@click.group("audit")
def audit_group() -> None:
    """The tamper-evident audit trail of deletions, expunges, holds and policy changes."""


@audit_group.command("verify")
@click.option(
    "--anchor",
    "anchor_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also check the head recorded by `syncer audit anchor` in this file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def audit_verify(state: State, anchor_file: Path | None, as_json: bool) -> None:
    """Check the hash chain of the audit trail; exit 1 naming the first broken link.

    Prints the head event's hash and the event count: keep them (or an anchor
    file) outside the database, since deleting the newest events together with
    the recorded head leaves a shorter chain that is intact on its own.

    \b
    Example:
      syncer audit verify --anchor /srv/audit/anchor.json
    """
    anchor = _read_anchor(anchor_file) if anchor_file is not None else None
    with state.open_store() as store:
        report = store.audit_verify(anchor)
    if as_json:
        emit_json(
            {
                "events": report.events,
                "ok": report.ok,
                "broken_at": report.broken_at,
                "problem": report.problem,
                "head_id": report.head_id,
                "head_hash": report.head_hash,
                "anchor_checked": anchor is not None,
            }
        )
    elif report.ok:
        checked = " and matches the anchor" if anchor is not None else ""
        click.echo(f"{report.events} audit events, chain intact{checked}.")
        click.echo(f"Head: event {report.head_id}, hash {report.head_hash}.")
    else:
        click.echo(f"Audit trail broken: {report.problem}.")
    if not report.ok:
        sys.exit(1)


def _read_anchor(path: Path) -> Anchor:
    from syncer.archive.audit import Anchor

    try:
        return Anchor.from_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"Cannot read the audit anchor {path}: {exc.strerror}.") from exc
    except ValueError as exc:
        raise UsageError(
            f"{path} is not an audit anchor written by `syncer audit anchor`."
        ) from exc


@audit_group.command("anchor")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@pass_state
def audit_anchor(state: State, path: Path) -> None:
    """Write the audit trail's head (event id, hash, count) to PATH, after verifying it.

    Keep PATH where whoever can edit the database cannot (another machine,
    write-once storage); `syncer audit verify --anchor PATH` then detects events
    removed or rewritten since, which the chain alone cannot when the newest
    events are cut together with the recorded head.

    \b
    Example:
      syncer audit anchor /mnt/worm/syncer-audit-$(date +%F).json
    """
    with state.open_store() as store:
        report = store.audit_verify()
    if not report.ok:
        click.echo(f"Audit trail broken: {report.problem}; no anchor written.")
        sys.exit(1)
    from syncer.archive.audit import Anchor

    anchor = Anchor(report.events, report.head_id, report.head_hash)
    write_private(path, (anchor.to_json() + "\n").encode("utf-8"))
    click.echo(
        f"Anchored {report.events} audit events (head: event {report.head_id}, "
        f"hash {report.head_hash}) in {path}."
    )


@audit_group.command("export")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the only format).")
@pass_state
def audit_export(state: State, as_json: bool) -> None:
    """Print every audit event with its hashes, for auditors.

    \b
    Example:
      syncer audit export --json > audit.json
    """
    with state.open_store() as store:
        events = store.audit_events()
    emit_json([event.to_dict() for event in events])
