"""Commands that move mail in and out of the archive: export, import, push, restore,
backup, restore-archive.

Thin, like every command: parse the options, build the objects, call one
library function (:mod:`syncer.transfer.export`, :mod:`syncer.transfer.importer`,
:mod:`syncer.transfer.push`, :mod:`syncer.transfer.backup`), print the summary. Heavy modules
are imported inside the commands. Progress: :mod:`syncer.progress`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from syncer.cli.context import State, complete_accounts, emit_json, pass_state

if TYPE_CHECKING:
    from syncer.transfer.push import PushSummary


def _query(words: tuple[str, ...]) -> str:
    return " ".join(words)


@click.command("export")
@click.argument("query", nargs=-1)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mbox", "maildir", "eml"]),
    required=True,
    help="mbox (mboxrd), Maildir (folder tree, flags in names) or one .eml per message.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Directory to export into (new, empty, or an earlier export with --since-last).",
)
@click.option(
    "--split",
    type=click.Choice(["folder", "none"]),
    default="folder",
    show_default=True,
    help="mbox: one file per folder, or one file for everything.",
)
@click.option("--since-last", is_flag=True, help="Only what earlier exports to --out lack.")
@click.option(
    "--labels",
    type=click.Choice(["header", "folders"]),
    default=None,
    help="Gmail labels: an X-Gmail-Labels: line in each message, as Google Takeout writes, "
    "or a folder per label. Default: neither, the bytes stay exactly as archived.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@pass_state
def export_command(
    state: State,
    query: tuple[str, ...],
    fmt: str,
    out: Path,
    split: str,
    since_last: bool,
    labels: str | None,
    as_json: bool,
) -> None:
    """Export archived mail (all, or what QUERY selects) as mbox, Maildir or .eml files.

    The files hold the archived bytes unchanged; names made from folders and
    subjects are made safe and stay inside --out.

    \b
    Example:
      syncer export --format mbox --out backup/
      syncer export --format maildir --out ~/Mail/archive --since-last
      syncer export --format eml --out invoices/ 'from:billing@example.com'
      syncer export --format mbox --labels header --out takeout/ 'account:gmail'
    """
    from syncer.transfer.export import ExportOptions, export_archive

    options = ExportOptions(
        format=fmt,  # type: ignore[arg-type]  # click.Choice
        out=out,
        query=_query(query),
        split=split,  # type: ignore[arg-type]
        since_last=since_last,
        labels=labels,  # type: ignore[arg-type]
    )
    with state.open_store() as store, state.progress("Exporting", json_output=as_json) as bar:
        summary = export_archive(store, options, progress=bar.advanced)
    if as_json:
        emit_json(
            {
                "messages": summary.messages,
                "bytes": summary.bytes,
                "skipped": summary.skipped,
                "folders": summary.folders,
            }
        )
        return
    for folder, count in sorted(summary.folders.items()):
        click.echo(f"  {folder}: {count}")
    click.echo(
        f"Exported {summary.messages} message(s) to {out} ({summary.skipped} already there)."
    )


@click.command("import")
@click.argument("kind", type=click.Choice(["mbox", "maildir"]))
@click.argument("path", type=click.Path(path_type=Path, exists=True))
@click.option("--account", required=True, help="Archive account to import into (created if new).")
@click.option("--folder", help="Put everything into this folder (default: INBOX, or the file's).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@pass_state
def import_command(
    state: State, kind: str, path: Path, account: str, folder: str | None, as_json: bool
) -> None:
    """Import an mbox file (or a directory of them) or a Maildir into the archive.

    Messages go through the same ingest as sync (deduplicated by SHA-256); a
    Google Takeout mbox is filed by its X-Gmail-Labels.

    \b
    Example:
      syncer import mbox ~/Takeout/Mail/All\\ mail.mbox --account gmail
      syncer import maildir ~/Maildir --account old-laptop --folder Imported
    """
    from syncer.transfer.importer import import_path

    with (
        state.open_store(first_use=True) as store,
        state.progress("Importing", json_output=as_json) as bar,
    ):
        summary = import_path(
            store,
            kind,  # type: ignore[arg-type]  # click.Choice
            path,
            account,
            folder,
            progress=bar.advanced,
        )
    if as_json:
        emit_json({"added": summary.added, "present": summary.present})
        return
    for name in sorted(set(summary.added) | set(summary.present)):
        click.echo(
            f"  {name}: {summary.added.get(name, 0)} added, "
            f"{summary.present.get(name, 0)} already archived"
        )
    click.echo(f"Imported {summary.total_added} message(s) into {account!r}.")


def _push(
    state: State,
    source: str,
    target: str,
    words: tuple[str, ...],
    maps: tuple[str, ...],
    dry_run: bool,
    include_gone: bool,
    as_json: bool,
    connections: int = 2,
    include_shared: bool = False,
) -> None:
    from syncer.connect import open_target
    from syncer.transfer.push import PushOptions, check_source, push_archive
    from syncer.transfer.push_folders import parse_maps

    options = PushOptions(
        source=source,
        target=target,
        query=_query(words),
        maps=parse_maps(maps),
        dry_run=dry_run,
        include_gone=include_gone,
        include_shared=include_shared,
    )
    account = state.config.account(target)
    with state.open_store() as store:
        check_source(store, source)
        imap = open_target(account)
        try:
            with state.progress(f"Pushing to {target}", json_output=as_json) as bar:
                summary = push_archive(
                    store,
                    imap,
                    options,
                    progress=bar.advanced,
                    on_plan=bar.set_total,
                    connect=lambda: open_target(account),
                    connections=connections,
                )
        finally:
            imap.close()
    _print_push(summary, as_json)
    if summary.failed and not dry_run:
        sys.exit(1)


def _print_push(summary: PushSummary, as_json: bool) -> None:
    if as_json:
        from dataclasses import asdict

        emit_json(
            {
                "source": summary.source,
                "target": summary.target,
                "dry_run": summary.dry_run,
                "appended": summary.appended,
                "stored_altered": summary.altered,
                "failed": summary.failed,
                "bytes": summary.bytes,
                "seconds": round(summary.seconds, 3),
                "empty_folders_created": summary.empty_created,
                "skipped_namespaces": {
                    kind: asdict(skipped) for kind, skipped in summary.skipped_namespaces.items()
                },
                "folders": [asdict(f) for f in summary.folders.values()],
            }
        )
        return
    from syncer.cli.render import human_size

    for row in sorted(summary.folders.values(), key=lambda r: r.display):
        if summary.dry_run:
            made = " (would be created)" if row.created else ""
            click.echo(f"  {row.display}{made}: {row.pending} to copy, {row.logged} pushed before")
            continue
        made = " (created)" if row.created else ""
        failed = f", {row.failed} FAILED" if row.failed else ""
        altered = f", {row.altered} stored altered" if row.altered else ""
        click.echo(
            f"  {row.display}{made}: {row.appended} appended{altered}, {row.found} already "
            f"there, {row.logged} pushed before{failed}"
        )
        for error in row.errors[:5]:
            click.echo(f"    {error}")
    _print_skipped(summary)
    if summary.dry_run:
        click.echo("Dry run: nothing was created or appended.")
        return
    sent = summary.appended + summary.altered
    rate = sent / summary.seconds if summary.seconds else 0.0
    click.echo(
        f"Pushed {sent} message(s), {human_size(summary.bytes)}, "
        f"in {summary.seconds:.1f} s ({rate:.0f} msg/s)."
    )
    if summary.altered:
        click.echo(
            f"The server stored {summary.altered} of them with other bytes than archived "
            "(stored altered; e.g. Cyrus replaces raw 8-bit header bytes with X)."
        )


_NAMESPACES = {"other": "other users' folders", "shared": "shared folders"}


def _print_skipped(summary: PushSummary) -> None:
    """Say what push left out and created empty, so nothing is left out in silence."""
    if summary.empty_created:
        done = "would be created" if summary.dry_run else "created"
        click.echo(f"{summary.empty_created} empty folder(s) {done}.")
    for kind, skipped in sorted(summary.skipped_namespaces.items()):
        click.echo(
            f"Skipped {skipped.folders} folder(s) of {_NAMESPACES.get(kind, kind)} "
            f"({skipped.messages} message(s)); --include-shared pushes them below 'Shared'."
        )


@click.command("push")
@click.argument("query", nargs=-1)
@click.option(
    "--from",
    "source",
    required=True,
    shell_complete=complete_accounts,
    help="Archive account whose mail to copy.",
)
@click.option(
    "--to",
    "target",
    required=True,
    shell_complete=complete_accounts,
    help="Configured IMAP account to copy it into.",
)
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="OLD=NEW",
    help="Rename a folder (and those below it) on the way; levels separated by /.",
)
@click.option("--dry-run", is_flag=True, help="Show what would be copied; change nothing.")
@click.option("--include-gone", is_flag=True, help="Also copy messages the source server deleted.")
@click.option(
    "--include-shared",
    is_flag=True,
    help="Also copy other users' and shared folders, below a folder 'Shared'.",
)
@click.option(
    "--connections",
    type=click.IntRange(1, 8),
    default=2,
    show_default=True,
    help="IMAP connections to the target; folders are pushed in parallel.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@pass_state
def push_command(
    state: State,
    query: tuple[str, ...],
    source: str,
    target: str,
    maps: tuple[str, ...],
    dry_run: bool,
    include_gone: bool,
    include_shared: bool,
    connections: int,
    as_json: bool,
) -> None:
    """Copy archived mail into another IMAP account, with flags, dates and folders.

    Safe to interrupt and run again: nothing is copied twice. Empty folders are
    created too. Folders of other users and shared namespaces are left out (the
    summary says how many) unless --include-shared puts them below 'Shared'.
    Exit 1 when the server refused any message.

    \b
    Example:
      syncer push --from old --to new --dry-run
      syncer push --from old --to new --map 'Sent Items=Sent'
      syncer push --from old --to new --include-shared --map 'Shared=Team'
    """
    _push(
        state,
        source,
        target,
        query,
        maps,
        dry_run,
        include_gone,
        as_json,
        connections,
        include_shared=include_shared,
    )


@click.command("restore")
@click.argument("account", shell_complete=complete_accounts)
@click.argument("query", nargs=-1)
@click.option("--dry-run", is_flag=True, help="Show what would be copied; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@pass_state
def restore_command(
    state: State, account: str, query: tuple[str, ...], dry_run: bool, as_json: bool
) -> None:
    """Put archived mail back into the account it came from (what the server lost).

    The same as `syncer push --from ACCOUNT --to ACCOUNT --include-gone`: messages
    still on the server are recognised and not copied again.

    \b
    Example:
      syncer restore work
      syncer restore work 'folder:Projects'
    """
    _push(state, account, account, query, (), dry_run, True, as_json)


@click.command("backup")
@click.argument("path", type=click.Path(path_type=Path, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@pass_state
def backup_command(state: State, path: Path, as_json: bool) -> None:
    """Write a consistent snapshot of the whole archive (database and blob files) to PATH.

    SQLite is copied with its online backup API, PostgreSQL with pg_dump; syncs
    may run meanwhile.

    \b
    Example:
      syncer backup /backups/syncer-$(date +%F)
    """
    from syncer.transfer.backup import backup_archive

    with (
        state.open_store() as store,
        state.progress("Backing up", json_output=as_json, unit="files") as progress,
    ):
        summary = backup_archive(store, path, progress=progress)
    if as_json:
        emit_json(
            {"path": summary.path, "database": summary.database, "blob_files": summary.blob_files}
        )
        return
    click.echo(
        f"Backed up the {summary.dialect} archive to {summary.path} "
        f"({summary.blob_files} blob file(s))."
    )


@click.command("restore-archive")
@click.argument("path", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--force", is_flag=True, help="Replace an archive that already holds messages.")
@pass_state
def restore_archive_command(state: State, path: Path, force: bool) -> None:
    """Bring back an archive from a `syncer backup` directory; then run `syncer verify`.

    \b
    Example:
      syncer restore-archive /backups/syncer-2024-01-04
    """
    from syncer.transfer.backup import restore_archive

    cfg = state.config
    with state.progress("Restoring", unit="files") as progress:
        summary = restore_archive(
            cfg.archive_url, cfg.blob_store, path, force=force, progress=progress
        )
    click.echo(
        f"Restored the archive from {summary.path} ({summary.blob_files} blob file(s) copied). "
        "Run `syncer verify` to check it."
    )
