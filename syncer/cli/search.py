"""``syncer search QUERY``: find archived messages with the query language.

Why a module of its own: ``syncer.cli.app`` only registers it; the command parses
options and calls :meth:`~syncer.archive.search.store.StoreSearch.search` (or
``count_messages``) on the archive opened as that mixin alone (see
:mod:`syncer.archive.reader`). It is imported only when ``search`` is named (see
``syncer.cli.app._FEATURE_COMMANDS``), so other commands do not pay for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from syncer.archive.search.store import SORTS as _SORTS
from syncer.archive.search.store import StoreSearch
from syncer.cli.context import State, emit_json, pass_state

if TYPE_CHECKING:
    from syncer.model import SearchHit

__all__ = ["search"]

#: The largest --limit/--offset: a signed 64-bit SQL integer, beyond which SQLite raised
#: OverflowError and PostgreSQL a database error; a usage error (exit 2) now.
_MAX_PAGE = 2**63 - 1


class _QueryCommand(click.Command):
    """A command whose arguments are query words, a negated term (``-folder:Trash``) too.

    Every word that is not one of the command's options (or an option's value) is moved,
    in order, behind ``--``, so click never reads ``-folder:Nowhere`` as ``-f -o ... -h``.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        takes_value = {
            name: not getattr(param, "is_flag", False) and not getattr(param, "count", False)
            for param in self.params
            if isinstance(param, click.Option)
            for name in (*param.opts, *param.secondary_opts)
        }
        takes_value.update({"-h": False, "--help": False})
        options: list[str] = []
        words: list[str] = []
        pending = iter(args)
        for arg in pending:
            if arg == "--":
                words.extend(pending)
                break
            name = arg.split("=", 1)[0]
            if name in takes_value:
                options.append(arg)
                value = next(pending, None) if takes_value[name] and "=" not in arg else None
                if value is not None:
                    options.append(value)
            else:
                words.append(arg)
        return super().parse_args(ctx, [*options, "--", *words])


@click.command(cls=_QueryCommand)
@click.argument("words", nargs=-1, required=True)
@click.option(
    "--limit",
    type=click.IntRange(min=0, max=_MAX_PAGE),
    default=50,
    show_default=True,
    help="At most this many hits.",
)
@click.option(
    "--offset",
    type=click.IntRange(min=0, max=_MAX_PAGE),
    default=0,
    show_default=True,
    help="Skip this many hits first (for paging).",
)
@click.option(
    "--sort",
    type=click.Choice(_SORTS),
    default="-date",
    show_default=True,
    help="Order: newest first (-date), oldest first, by size, or by relevance.",
)
@click.option("--count", "count_only", is_flag=True, help="Print only how many messages match.")
@click.option(
    "--output",
    type=click.Choice(["summary", "ids", "sha256"]),
    default="summary",
    show_default=True,
    help="What each hit prints: a summary row (or object), its id, or its SHA-256.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "jsonl", "text0"]),
    default="text",
    show_default=True,
    help="text: columns or one per line; json: one array; jsonl: one object per line; "
    "text0: NUL-separated (for xargs -0).",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@pass_state
def search(
    state: State,
    words: tuple[str, ...],
    limit: int,
    offset: int,
    sort: str,
    count_only: bool,
    output: str,
    fmt: str,
    as_json: bool,
) -> None:
    """Search the archive; messages gone from the server are included unless is:live.

    QUERY is words (quoted or not, as for export), "phrases" and field terms
    (from: to: cc: subject: body:
    filename: folder: account: flag: is: has: larger: smaller: before: after:
    on: thread: message-id: sha256:), combined with AND (implicit), OR, NOT or
    -, and parentheses. See the README's "Query language" section.

    \b
    Example:
      syncer search from:alice invoice after:2024-01-01
      syncer search has:attachment --output ids --format text0 | xargs -0 -n1 syncer show
      syncer search '"quarterly report" has:attachment -folder:Trash' --json
      syncer search 'is:gone larger:5M' --count
      syncer search 'subject:invoic* OR filename:.pdf' --sort size --limit 20
    """
    from syncer.query import parse

    query = " ".join(words)
    fmt = "json" if as_json else fmt
    parse(query)  # a malformed query is reported before the archive is opened
    with state.open_as(StoreSearch) as store:  # not all of ArchiveStore: start-up
        if count_only:
            count = store.count_messages(query)
        else:
            # The columns, ids and hashes show no snippet: their texts are not read.
            snippets = output == "summary" and fmt != "text"
            hits = store.search(query, limit=limit, offset=offset, sort=sort, snippets=snippets)
    if count_only:
        if fmt == "json":
            emit_json({"count": count})
        else:
            _emit([{"count": count}] if fmt == "jsonl" else [count], fmt)
    elif fmt == "text" and output == "summary":
        _render_hits(hits)
    else:
        _emit([_hit_output(hit, output) for hit in hits], fmt)


def _hit_output(hit: SearchHit, output: str) -> Any:
    if output == "ids":
        return hit.id
    if output == "sha256":
        return hit.sha256
    return _hit_json(hit)


def _emit(items: Sequence[Any], fmt: str) -> None:
    """The hits for a pipe: one JSON array, JSON lines, lines, or NUL-separated."""
    import json

    if fmt == "json":
        emit_json(list(items))
    elif fmt == "jsonl":
        for item in items:
            click.echo(json.dumps(item, sort_keys=True, default=str))
    else:
        end = "\0" if fmt == "text0" else "\n"
        for item in items:
            text = item if not isinstance(item, dict) else json.dumps(item, sort_keys=True)
            click.echo(f"{text}{end}", nl=False)


def _hit_json(hit: SearchHit) -> dict[str, Any]:
    return {
        "id": hit.id,
        "sha256": hit.sha256,
        "folders": list(hit.folders),
        "date": hit.date.isoformat() if hit.date else None,
        "from": hit.sender,
        "subject": hit.subject,
        "size": hit.size,
        "snippet": hit.snippet,
    }


def _render_hits(hits: Sequence[SearchHit]) -> None:
    """Columns id, date, from, subject, folder, size, cut to the terminal's width.

    Plain columns rather than a rich table: rich squeezes every column on a
    narrow terminal, while here only from, subject and folder give way (cut
    with "…", counting wide CJK characters as two cells).
    """
    import shutil

    from rich.cells import cell_len, set_cell_size

    if not hits:
        click.echo("No messages match.")
        return
    rows = [
        (
            str(hit.id),
            f"{hit.date:%Y-%m-%d %H:%M}" if hit.date else "—",
            " ".join((hit.sender or "—").split()),
            " ".join((hit.subject or "(no subject)").split()),
            ", ".join(hit.folders),
            _size(hit.size),
        )
        for hit in hits
    ]
    header = ("id", "date (UTC)", "from", "subject", "folder", "size")
    fixed = [max(cell_len(row[i]) for row in [header, *rows]) for i in (0, 1, 5)]
    room = max(30, shutil.get_terminal_size((100, 24)).columns - sum(fixed) - 5 * 2)
    wanted = [max(cell_len(row[i]) for row in [header, *rows]) for i in (2, 3, 4)]
    sender_w = min(wanted[0], max(8, room * 3 // 10))
    folder_w = min(wanted[2], max(6, room // 5))
    subject_w = max(8, min(wanted[1], room - sender_w - folder_w))
    sender_w = min(wanted[0], sender_w + max(0, room - sender_w - subject_w - folder_w))
    widths = (fixed[0], fixed[1], sender_w, subject_w, folder_w, fixed[2])

    def cell(text: str, width: int, right: bool = False) -> str:
        if cell_len(text) > width:
            text = set_cell_size(text, width - 1) + "…"
        pad = " " * (width - cell_len(text))
        return pad + text if right else text + pad

    for row in [header, *rows]:
        line = "  ".join(
            cell(text, width, i in (0, 5))
            for i, (text, width) in enumerate(zip(row, widths, strict=True))
        )
        click.echo(line.rstrip())


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"
