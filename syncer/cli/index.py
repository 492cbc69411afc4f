"""``syncer index``: bring the full-text search index up to date, rebuild it, or show it.

Why a module of its own: ``syncer.cli.app`` only registers it; the command calls
one store method (:mod:`syncer.archive.search.index_store`). The archive and
rich are imported inside the command so other commands do not pay for them.
"""

from __future__ import annotations

import click

from syncer.cli.context import State, emit_json, pass_state

__all__ = ["index"]


def _size(value: int | None) -> str:
    if value is None:
        return "unknown"
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000  # type: ignore[assignment]
    return str(value)  # pragma: no cover


@click.command()
@click.option(
    "--rebuild",
    is_flag=True,
    help="Re-index every message (goes on where an interrupted rebuild stopped).",
)
@click.option("--status", "status_only", is_flag=True, help="Only show what the index holds.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def index(state: State, rebuild: bool, status_only: bool, as_json: bool) -> None:
    """Keep the full-text search index current: index what is missing, or rebuild it.

    Normalization indexes each message as it saves it, so this is needed only
    after an upgrade (messages normalized before the index existed) or to
    rebuild the index from the archive's rows (--rebuild). Search keeps
    working meanwhile; an interrupted run keeps every batch it finished.

    \b
    Example:
      syncer index
      syncer index --rebuild
      syncer index --status --json
    """
    with state.open_store() as store:
        if not status_only:
            with state.progress("Indexing", json_output=as_json) as progress:
                if rebuild:
                    counts = store.rebuild_index(progress=progress)
                else:
                    counts = store.index_missing(progress=progress)
        index_status = store.index_status()
    if as_json:
        data = index_status.to_dict()
        if not status_only:
            data["run"] = {
                "indexed": counts.indexed,
                "seconds": round(counts.seconds, 3),
                "rebuild": rebuild,
                "resumed_after": counts.resumed,
            }
        emit_json(data)
        return
    if not status_only:
        resumed = f", resumed after message {counts.resumed}" if counts.resumed else ""
        click.echo(
            f"Indexed {counts.indexed} message{'s' if counts.indexed != 1 else ''} "
            f"in {counts.seconds:.1f} s{resumed}."
        )
    missing = index_status.normalized - index_status.indexed
    click.echo(
        f"Index: {index_status.indexed} of {index_status.messages} messages "
        f"({missing} normalized but not indexed), {_size(index_status.index_bytes)}."
    )
    if index_status.rebuild_at is not None:
        click.echo(
            f"A rebuild stopped after message {index_status.rebuild_at}; "
            "run `syncer index --rebuild` to finish it."
        )
