"""Human-readable output for the CLI: tables (rich) and summaries (progress: syncer.progress).

Kept apart from ``cli`` so commands stay thin; ``--json`` output never comes here.
Progress goes to stderr, so stdout stays clean for data.

rich is imported by the functions that draw tables only: the summary of a
``syncer sync``, printed after every (often no-change) run, is plain lines
(:func:`render_sync`, colored on a terminal by click), which spares that run
rich's import.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

import click

from syncer.model import RunSummary

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from syncer.archive.admin_views import ArchiveStatus
    from syncer.sync.preview import AccountPreview


@cache
def _console() -> Console:
    """stdout as a rich console, made on first use."""
    from rich.console import Console

    return Console(highlight=False)


def _table(**options: Any) -> Table:
    from rich.table import Table

    return Table(**options)


def human_size(n: int | float | None) -> str:
    value = float(n or 0)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def render_status(status: ArchiveStatus) -> None:
    totals = status.totals
    _console().print(f"Archive: {status.database}")
    _console().print(
        f"{totals.messages} messages, {totals.blobs} blobs, "
        f"{human_size(totals.raw_bytes)} raw, "
        f"{human_size(totals.stored_bytes)} stored"
    )
    if totals.awaiting_normalization:
        _console().print(
            f"{totals.awaiting_normalization} messages await normalization (`syncer normalize`)"
        )
    for account_name, account in status.accounts.items():
        title = f"{account_name} ({account.protocol}): {account.messages} messages"
        table = _table(title=title, title_justify="left")
        table.add_column("folder")
        table.add_column("messages", justify="right")
        table.add_column("last sync")
        for folder in account.folders:
            name = folder.display_name or folder.name
            if folder.deleted:
                name = f"{name} (deleted on server)"
            synced = folder.last_synced_at.isoformat() if folder.last_synced_at else "never"
            table.add_row(name, str(folder.messages), synced)
        _console().print(table)
        folders = [f for f in account.folders if not f.deleted]
        partial = [f for f in folders if not f.complete]
        if partial:
            _console().print(
                f"download in progress: {len(folders) - len(partial)} of {len(folders)} "
                f"folders complete, {account.messages} messages archived so far"
            )
        if account.resume_at:
            _console().print(
                f"next run resumes at {account.resume_at.isoformat()} (provider limit or budget)"
            )


#: Folder changes in the order the summary lists them.
_CHANGES = ("created", "renamed", "deleted")


def render_sync(summaries: Sequence[RunSummary]) -> None:
    """One line per account and one per folder that changed (plain text: folder names
    are printed as they are, never read as markup)."""
    for s in summaries:
        if not s.ok and not s.folders:
            click.echo(f"{click.style(f'{s.account}: failed', fg='red', bold=True)} — {s.error}")
            continue
        changed = [f for f in s.folders if not f.skipped]
        skipped = len(s.folders) - len(changed)
        state = click.style("ok", fg="green") if s.ok else click.style("failed", fg="red")
        click.echo(
            f"{s.account}: {state}, {s.new} new ({human_size(s.bytes)}), "
            f"{sum(f.flags_changed for f in s.folders)} flag changes, "
            f"{sum(f.expunged for f in s.folders)} expunged, {skipped} folders unchanged, "
            f"{s.seconds:.2f} s"
        )
        events = Counter(f.change for f in s.folders if f.change)
        if events:
            click.echo("  folders: " + ", ".join(f"{events[c]} {c}" for c in _CHANGES if events[c]))
        for f in changed:
            if f.change == "deleted":
                click.echo(f"  {f.folder}: deleted on the server (its messages stay archived)")
                continue
            line = f"  {f.folder}: {f.new} new, {f.flags_changed} flags, {f.expunged} expunged"
            if f.change == "renamed":
                line = f"  {f.folder} (renamed from {f.renamed_from}):" + line.split(":", 1)[1]
            elif f.change == "created":
                line = f"  {f.folder} (new folder):" + line.split(":", 1)[1]
            if f.reused:
                line += f", {f.reused} recognised without download"
            if f.error:
                line += " — " + click.style(f.error, fg="red")
            click.echo(line)
        if not s.ok and s.error:
            click.echo("  " + click.style(s.error, fg="red"))


def render_preview(previews: Sequence[AccountPreview]) -> None:
    """`syncer sync --dry-run`: per account, its folders with counts and sizes, what is
    archived (or why not) and what the run would download (POP3: delete)."""
    for p in previews:
        if not p.ok:
            _console().print(f"[bold red]{p.account}: failed[/] — {p.error}", markup=True)
            continue
        included = [f for f in p.folders if f.excluded is None]
        size = "size unknown" if p.new_bytes is None else human_size(p.new_bytes)
        what = "first sync" if p.first_sync else "next sync"
        _console().print(
            f"{p.account} ({p.protocol}): {what}: {p.new_messages:,} messages, {size} "
            f"in {len([f for f in included if f.new_messages])} folders "
            f"({len(included)} of {len(p.folders)} folders archived)"
        )
        table = _table(show_edge=False, box=None, pad_edge=False)
        for column, justify in (("folder", "left"), ("messages", "right"), ("size", "right")):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        table.add_column("sync would")
        for f in p.folders:
            if f.excluded is not None:
                action = f"skip ({f.excluded})"
            elif f.new_messages:
                new_size = "?" if f.new_bytes is None else human_size(f.new_bytes)
                action = f"download {f.new_messages:,} ({new_size})"
            else:
                action = "nothing new"
            messages = "?" if f.messages is None else f"{f.messages:,}"
            table.add_row(
                f.name, messages, human_size(f.size) if f.size is not None else "?", action
            )
        _console().print(table, markup=False)
        for line in (*p.deletions, *p.notes):
            _console().print(f"  {line}", markup=False)


def render_check(reports: Sequence[dict[str, Any]]) -> None:
    for r in reports:
        if r.get("error"):
            _console().print(f"[bold red]{r['account']}: check failed[/] — {r['error']}")
        verdict = "[green]complete[/]" if r.get("complete") else "[red]INCOMPLETE[/]"
        _console().print(f"{r['account']}: {verdict}")
        for f in r.get("folders", []):
            line = f"  {f['folder']}: server {f['server']}, archive {f['archive']}"
            if f["missing"]:
                line += (
                    f", [red]{f['missing']} missing from the archive[/] (UIDs {f['missing_uids']})"
                )
            if f["stale"]:
                line += f", [yellow]{f['stale']} gone from the server but live in the archive[/]"
            _console().print(line)


def render_jobs(jobs: Sequence[dict[str, Any]]) -> None:
    """The scheduled jobs of `syncer status`: last run, outcome, next run."""
    if not jobs:
        return
    table = _table(title="Jobs (syncer run)", title_justify="left")
    for column in ("job", "schedule", "last run (UTC)", "outcome", "next run (UTC)"):
        table.add_column(column, no_wrap=True)
    errors: list[str] = []
    for job in jobs:
        last = job.get("last_run") or {}
        if last.get("error"):
            errors.append(f"{job['job']}: {last['error']}")
        table.add_row(
            job["job"],
            job.get("schedule", ""),
            _when(last.get("started_at")),
            job.get("outcome") or ("never run" if job.get("recorded", True) else "—"),
            _when(job.get("next_run")) if job.get("next_run") else job.get("problem") or "—",
        )
    _console().print(table)
    for line in errors:
        _console().print(line, soft_wrap=True, markup=False, emoji=False)


def render_push(accounts: Sequence[dict[str, Any]]) -> None:
    """Push mode per IMAP account in `syncer status`: state, mode and since when."""
    if not accounts:
        return
    table = _table(title="Push (syncer run)", title_justify="left")
    for column in ("account", "push", "state", "mode", "since (UTC)"):
        table.add_column(column, no_wrap=True)
    errors: list[str] = []
    for row in accounts:
        if row.get("error"):
            errors.append(f"push {row['account']}: {row['error']}")
        table.add_row(
            row["account"],
            row["push"],
            row["state"],
            row.get("mode") or "—",
            _when(row.get("since")),
        )
    _console().print(table)
    for line in errors:
        _console().print(line, soft_wrap=True, markup=False, emoji=False)


def _when(iso: str | None) -> str:
    """An ISO 8601 UTC time as ``MM-DD HH:MM:SS`` (the zone is UTC; the year is implied)."""
    return iso[5:19].replace("T", " ") if iso else "—"
