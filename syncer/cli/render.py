"""Human-readable output for the CLI (rich): tables, summaries, progress bars.

Kept apart from ``cli`` so commands stay thin; ``--json`` output never comes here.
Progress goes to stderr, so stdout stays clean for data.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from syncer.model import RunSummary

_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)


def human_size(n: int | float | None) -> str:
    value = float(n or 0)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def render_status(data: dict[str, Any]) -> None:
    totals = data.get("totals", {})
    _out.print(f"Archive: {data.get('database')}")
    _out.print(
        f"{totals.get('messages', 0)} messages, {totals.get('blobs', 0)} blobs, "
        f"{human_size(totals.get('raw_bytes'))} raw, "
        f"{human_size(totals.get('stored_bytes'))} stored"
    )
    if totals.get("awaiting_normalization"):
        _out.print(
            f"{totals['awaiting_normalization']} messages await normalization (`syncer normalize`)"
        )
    for account_name, account in data.get("accounts", {}).items():
        protocol, count = account.get("protocol", "?"), account.get("messages", 0)
        title = f"{account_name} ({protocol}): {count} messages"
        table = Table(title=title, title_justify="left")
        table.add_column("folder")
        table.add_column("messages", justify="right")
        table.add_column("last sync")
        for folder in account.get("folders", []):
            name = folder.get("display_name") or folder.get("name")
            if folder.get("deleted"):
                name = f"{name} (deleted on server)"
            table.add_row(
                name, str(folder.get("messages", 0)), str(folder.get("last_synced_at") or "never")
            )
        _out.print(table)
        folders = [f for f in account.get("folders", []) if not f.get("deleted")]
        partial = [f for f in folders if not f.get("complete", True)]
        if partial:
            _out.print(
                f"download in progress: {len(folders) - len(partial)} of {len(folders)} "
                f"folders complete, {count} messages archived so far"
            )
        if account.get("resume_at"):
            _out.print(f"next run resumes at {account['resume_at']} (provider limit or budget)")
        last = account.get("last_run")
        if last:
            _out.print(
                f"last run {last.get('run_id')}: {last.get('status')} at "
                f"{last.get('finished_at') or last.get('started_at')}"
                + (f" — {last['error']}" if last.get("error") else "")
            )


def render_sync(summaries: Sequence[RunSummary]) -> None:
    for s in summaries:
        if not s.ok and not s.folders:
            _out.print(f"[bold red]{s.account}: failed[/] — {s.error}")
            continue
        changed = [f for f in s.folders if not f.skipped]
        skipped = len(s.folders) - len(changed)
        state = "[green]ok[/]" if s.ok else "[red]failed[/]"
        _out.print(
            f"{s.account}: {state}, {s.new} new ({human_size(s.bytes)}), "
            f"{sum(f.flags_changed for f in s.folders)} flag changes, "
            f"{sum(f.expunged for f in s.folders)} expunged, {skipped} folders unchanged, "
            f"{s.seconds:.2f} s"
        )
        for f in changed:
            line = f"  {f.folder}: {f.new} new, {f.flags_changed} flags, {f.expunged} expunged"
            if f.reused:
                line += f", {f.reused} recognised without download"
            if f.error:
                line += f" — [red]{f.error}[/]"
            _out.print(line)
        if not s.ok and s.error:
            _out.print(f"  [red]{s.error}[/]")


def render_check(reports: Sequence[dict[str, Any]]) -> None:
    for r in reports:
        if r.get("error"):
            _out.print(f"[bold red]{r['account']}: check failed[/] — {r['error']}")
        verdict = "[green]complete[/]" if r.get("complete") else "[red]INCOMPLETE[/]"
        _out.print(f"{r['account']}: {verdict}")
        for f in r.get("folders", []):
            line = f"  {f['folder']}: server {f['server']}, archive {f['archive']}"
            if f["missing"]:
                line += (
                    f", [red]{f['missing']} missing from the archive[/] (UIDs {f['missing_uids']})"
                )
            if f["stale"]:
                line += f", [yellow]{f['stale']} gone from the server but live in the archive[/]"
            _out.print(line)


class SyncProgress:
    """A rich progress bar on stderr: messages and bytes per folder."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[size]}"),
            TimeElapsedColumn(),
            console=_err,
            transient=True,
            disable=not _err.is_terminal,
        )
        self._task: TaskID | None = None
        self._bytes = 0

    def __enter__(self) -> SyncProgress:
        self._progress.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.__exit__(exc_type, exc, tb)

    def folder_started(self, folder: str, messages: int, size: int) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._bytes = 0
        self._task = self._progress.add_task(folder, total=messages or None, size=human_size(0))

    def advanced(self, messages: int, size: int) -> None:
        if self._task is not None:
            self._bytes += size
            self._progress.update(self._task, advance=messages, size=human_size(self._bytes))


def render_jobs(jobs: Sequence[dict[str, Any]]) -> None:
    """The scheduled jobs of `syncer status`: last run, outcome, next run."""
    if not jobs:
        return
    table = Table(title="Jobs (syncer run)", title_justify="left")
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
    _out.print(table)
    for line in errors:
        _out.print(line, soft_wrap=True, markup=False, emoji=False)


def _when(iso: str | None) -> str:
    """An ISO 8601 UTC time as ``MM-DD HH:MM:SS`` (the zone is UTC; the year is implied)."""
    return iso[5:19].replace("T", " ") if iso else "—"
