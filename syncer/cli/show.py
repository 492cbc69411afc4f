"""``syncer show ID``: one archived message, its raw bytes or its attachments."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from syncer.cli.context import State, emit_json, pass_state

if TYPE_CHECKING:
    from syncer.archive.reader import MessageReader
    from syncer.archive.views import MessageDetail


@click.command()
@click.argument("message", metavar="ID")
@click.option("--raw", is_flag=True, help="Write the exact archived bytes to stdout.")
@click.option(
    "--attachment",
    type=click.IntRange(min=1),
    metavar="N",
    help="Write attachment N (as `syncer show ID` numbers them), decoded, to --out.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=str),
    help="The file --attachment writes ('-': stdout). Never a name taken from the mail.",
)
@click.option(
    "--attachments-dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Write every attachment, decoded, into DIR as ID-N.EXT (never a name from the mail).",
)
@click.option("--thread", is_flag=True, help="Show every message of its thread, oldest first.")
@click.option("--force", is_flag=True, help="Let --attachment replace an existing --out file.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def show(
    state: State,
    message: str,
    raw: bool,
    attachment: int | None,
    out: str | None,
    attachments_dir: Path | None,
    thread: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Show one archived message: headers, addresses, attachments, verdicts, folders, text.

    ID is the message id (as `syncer show` and searches print it) or the first
    8 or more hex digits of its SHA-256.

    \b
    Example:
      syncer show 42
      syncer show 3fa2c9e1 --json
      syncer show 42 --raw > message.eml
      syncer show 42 --attachment 1 --out invoice.pdf
      syncer show 42 --attachments-dir ./attachments
      syncer show 42 --thread
    """
    if sum((raw, attachment is not None, attachments_dir is not None, thread)) > 1:
        raise click.UsageError(
            "--raw, --attachment, --attachments-dir and --thread cannot be combined."
        )
    if (attachment is None) != (out is None):
        raise click.UsageError("--attachment N and --out FILE go together.")
    from syncer.archive.reader import MessageReader

    with state.open_as(MessageReader) as store:  # not all of ArchiveStore: start-up
        message_pk = store.find_message(message)
        detail = store.message_detail(message_pk)
        if raw or attachment is not None or attachments_dir is not None:
            content = store.get_raw(detail.sha256)
        if thread:
            details = _thread_details(store, detail)
    if thread:
        _show_all(details, as_json)
        return
    if attachments_dir is not None:
        for number, item in enumerate(detail.attachments, 1):
            extension = _extension(item.content_type or "")
            target = attachments_dir / f"{detail.id}-{number}{extension}"
            attachments_dir.mkdir(parents=True, exist_ok=True)
            _write_attachment(detail, content, number, str(target), force=force)
        return
    if raw:
        _write_stdout(content)
        return
    if attachment is not None and out is not None:
        _write_attachment(detail, content, attachment, out, force=force)
        return
    if as_json:
        emit_json(detail.to_dict())
        return
    from syncer.cli.render_mail import render_show

    render_show(detail.to_dict())


def _thread_details(store: MessageReader, detail: MessageDetail) -> list[MessageDetail]:
    """Every message of ``detail``'s thread (just it, before normalization), oldest first."""
    if not detail.thread_key:
        return [detail]
    hits = store.search(f"thread:{detail.thread_key}", limit=10_000, sort="date")
    return [store.message_detail(hit.id) for hit in hits] or [detail]


def _show_all(details: list[MessageDetail], as_json: bool) -> None:
    if as_json:
        emit_json([detail.to_dict() for detail in details])
        return
    from syncer.cli.render_mail import render_show

    for number, detail in enumerate(details, 1):
        click.echo(f"── {number} of {len(details)} " + "─" * 40)
        render_show(detail.to_dict())


def _extension(content_type: str) -> str:
    """A file extension from the attachment's type, from Python's fixed table only."""
    import mimetypes

    return mimetypes.guess_extension(content_type.split(";")[0].strip().lower()) or ".bin"


def _write_attachment(
    detail: MessageDetail, raw: bytes, number: int, out: str, *, force: bool
) -> None:
    import hashlib

    from syncer.errors import ArchiveError
    from syncer.mime.normalize import attachment_content

    listed = detail.attachments
    if number > len(listed):
        pending = " (not normalized yet: run `syncer normalize`)" * (
            detail.parse_status == "pending"
        )
        raise click.UsageError(
            f"Message {detail.id} has {len(listed)} attachment"
            f"{'s' if len(listed) != 1 else ''}{pending}; there is no attachment {number}."
        )
    item = listed[number - 1]
    content = attachment_content(raw, item.part_path)
    if content is None or hashlib.sha256(content).hexdigest() != item.sha256:
        raise ArchiveError(
            f"Attachment {number} (part {item.part_path}) of message {detail.id} no longer "
            "decodes to the bytes recorded for it.",
            hint="Run `syncer normalize --rebuild` to re-derive the message.",
        )
    if out == "-":
        _write_stdout(content)
        return
    _write_file(Path(out), content, force=force)
    click.echo(
        f"Wrote attachment {number} ({len(content)} bytes, {item.content_type}) to {out}.",
        err=True,
    )


def _write_stdout(content: bytes) -> None:
    """Bytes to stdout exactly as they are (no newline translation, no encoding)."""
    sys.stdout.flush()
    sys.stdout.buffer.write(content)
    sys.stdout.buffer.flush()


def _write_file(path: Path, content: bytes, *, force: bool) -> None:
    """Write exactly ``path`` (the --out the user gave), never replacing a file unless ``force``."""
    if path.exists() and not force:
        raise click.UsageError(f"{path} exists; add --force to replace it.")
    with path.open("wb" if force else "xb") as handle:
        handle.write(content)
