"""``syncer export``: archived mail out into files people can open anywhere.

Why it is built this way: the archive decides *what* goes out
(:meth:`~syncer.archive.store.ArchiveStore.placements`: each message in each
folder it lives in, with that folder's flags and INTERNALDATE) and
:mod:`syncer.formats` decides *how* it looks on disk; this module only walks
the selection in batches and keeps the incremental state. The bytes written
are the archived bytes (mbox adds only its From_ line, quoting and separator,
all undone on import).

Layout under ``--out PATH`` (always a directory; names made safe by
:mod:`syncer.formats.safe_names`, so a folder called ``../../etc`` or a subject
full of control characters cannot leave PATH):

Folders are laid out by the name people see (:mod:`syncer.sources.folder_names`):
``Archive/2024`` on every server, never the ``INBOX/Archive/...`` of an ``INBOX.``
prefix.

* ``mbox --split folder``: ``PATH/<account>/<folder>/<sub>.mbox``;
  ``--split none``: ``PATH/messages.mbox``, each distinct message once.
* ``maildir``: ``PATH/<account>/<folder>/{cur,new,tmp}`` (see :mod:`syncer.formats.maildir`).
* ``eml``: ``PATH/<account>/<folder>/<date>-<subject>-<sha>.eml``.

Gmail labels (``labels``): by default the bytes stay exactly as archived and
the folders are the source's. ``header`` adds an ``X-Gmail-Labels:`` line,
as Google Takeout does (and ``syncer import`` reads back); ``folders`` writes
one folder per label (:mod:`syncer.transfer.labels`).

Incremental exports: ``PATH/.syncer-export.json`` records what every export to
PATH wrote (per account and folder, the SHA-256s) and each mbox file's length.
``--since-last`` skips what is recorded, and first cuts every mbox back to its
recorded length, so a run that died half-way leaves no half message behind.
The state file is written atomically (first when a run starts, claiming an
empty PATH, then at its end); PATH must be empty or hold an earlier export,
and without ``--since-last`` not even that.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO, Literal

import structlog

from syncer.errors import SyncerError, UsageError
from syncer.formats import eml as eml_format
from syncer.formats import mbox as mbox_format
from syncer.formats.files import private_dir, refuse_symlinks, write_private
from syncer.formats.maildir import MaildirWriter
from syncer.formats.safe_names import inside, safe_component, safe_relpath
from syncer.sources.folder_names import shown_levels
from syncer.transfer.labels import label_placements

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.archive.store_transfer import Placement

__all__ = ["STATE_FILE", "ExportOptions", "ExportSummary", "export_archive"]

log = structlog.get_logger(__name__)

STATE_FILE = ".syncer-export.json"
Format = Literal["mbox", "maildir", "eml"]
Split = Literal["folder", "none"]


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """What ``syncer export`` was asked to do."""

    format: Format
    out: Path
    query: str = ""
    split: Split = "folder"
    since_last: bool = False
    #: Gmail labels: "header" adds ``X-Gmail-Labels:`` (as Google Takeout does), "folders"
    #: writes a folder per label (:mod:`syncer.transfer.labels`); None: bytes as archived.
    labels: Literal["header", "folders"] | None = None


@dataclass
class ExportSummary:
    """What one export wrote."""

    messages: int = 0
    bytes: int = 0
    skipped: int = 0
    folders: dict[str, int] = field(default_factory=dict)


class _State:
    """The incremental state kept in PATH (see the module docstring)."""

    def __init__(self, root: Path, options: ExportOptions) -> None:
        self.path = root / STATE_FILE
        self.done: dict[str, set[str]] = {}
        self.mbox_sizes: dict[str, int] = {}
        if not self.path.exists():
            if any(root.iterdir()):
                raise UsageError(
                    f"{root} is not empty and holds no syncer export.",
                    hint="Export into a new or empty directory.",
                )
            # Claim the directory first: a run that dies leaves it marked as ours.
            self.save(options)
            return
        if not options.since_last:
            raise UsageError(
                f"{root} holds an earlier export.",
                hint="Add --since-last to export only what is new, or choose an empty directory.",
            )
        data = json.loads(self.path.read_text("utf-8"))
        if (data.get("format"), data.get("split")) != (options.format, options.split):
            raise UsageError(
                f"{root} holds a {data.get('format')} export (split {data.get('split')}); "
                f"cannot add {options.format} (split {options.split}) to it.",
                hint="Use the same --format and --split, or another directory.",
            )
        self.done = {key: set(shas) for key, shas in data.get("done", {}).items()}
        self.mbox_sizes = {name: int(size) for name, size in data.get("mbox", {}).items()}

    def save(self, options: ExportOptions) -> None:
        data = {
            "version": 1,
            "format": options.format,
            "split": options.split,
            "done": {key: sorted(shas) for key, shas in sorted(self.done.items())},
            "mbox": dict(sorted(self.mbox_sizes.items())),
        }
        write_private(self.path, json.dumps(data, indent=1).encode("utf-8"))


def _folder_dir(placement: Placement) -> PurePosixPath:
    """``<account>/<levels of the shown name>``: ``Archive/2024``, never ``INBOX/Archive/…``
    (the shown name has lost the personal prefix; a ``/`` inside a level is ``_``)."""
    name = placement.display_name or placement.folder
    return PurePosixPath(safe_component(placement.account)) / safe_relpath(shown_levels(name))


class _Writer:
    """Writes placements in one format under ``root``."""

    def __init__(self, root: Path, options: ExportOptions, state: _State) -> None:
        self.root = root
        self.options = options
        self.state = state
        self._files = ExitStack()
        self._mboxes: dict[str, BinaryIO] = {}
        self._maildir = MaildirWriter()

    def key(self, placement: Placement) -> str:
        if self.options.format == "mbox" and self.options.split == "none":
            return ""
        return f"{placement.account}\t{placement.folder}"

    def _target(self, relative: PurePosixPath) -> Path:
        path = self.root.joinpath(*relative.parts)
        if not inside(self.root, path):  # cannot happen with safe names; never trust that
            raise SyncerError(f"Refusing to write {path}: it is outside {self.root}.")
        return path

    def _mbox(self, relative: str) -> BinaryIO:
        out = self._mboxes.get(relative)
        if out is None:
            path = self._target(PurePosixPath(relative))
            private_dir(path.parent)
            # 0600 and never through a link (refused up front; O_NOFOLLOW closes the race).
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            out = self._files.enter_context(os.fdopen(fd, "ab"))
            # Anything past the recorded length is from a run that died before saving.
            size = self.state.mbox_sizes.get(relative, 0)
            if out.tell() > size:
                out.truncate(size)
                out.seek(size)
            self._mboxes[relative] = out
        return out

    def write(self, placement: Placement, raw: bytes) -> int:
        fmt = self.options.format
        if fmt == "mbox":
            if self.options.split == "none":
                relative = "messages.mbox"
            else:
                folder = _folder_dir(placement)
                relative = str(folder.with_name(folder.name + ".mbox"))
            return mbox_format.write_message(self._mbox(relative), raw, placement.internaldate)
        folder_path = self._target(_folder_dir(placement))
        if fmt == "maildir":
            self._maildir.add(
                folder_path, raw, placement.flags, placement.internaldate, placement.sha256[:20]
            )
            return len(raw)
        private_dir(folder_path)
        subject = placement.subject
        if subject is None:  # not normalized yet
            subject = eml_format.raw_subject(raw)
        name = eml_format.eml_name(
            placement.date or placement.internaldate, subject, placement.sha256
        )
        target = folder_path / name
        if not inside(self.root, target):
            raise SyncerError(f"Refusing to write {target}: it is outside {self.root}.")
        eml_format.write_file(target, raw, placement.internaldate)
        return len(raw)

    def close(self) -> None:
        for relative, out in self._mboxes.items():
            out.flush()
            os.fsync(out.fileno())
            self.state.mbox_sizes[relative] = out.tell()
        self._files.close()
        self._maildir.close()


def with_labels_header(raw: bytes, labels: tuple[str, ...] | None) -> bytes:
    """``raw`` with an ``X-Gmail-Labels:`` line first, as in a Google Takeout mbox
    (comma-separated); unchanged when the message has no labels. The line ends as the
    message's first line does (CRLF, or LF for an mbox import)."""
    if not labels:
        return raw
    first = raw.find(b"\n")
    eol = b"\r\n" if first > 0 and raw[first - 1 : first] == b"\r" else b"\n"
    names = ",".join(label.replace(",", " ") for label in labels)
    return b"X-Gmail-Labels: " + names.encode("utf-8") + eol + raw


def export_archive(
    store: ArchiveStore,
    options: ExportOptions,
    progress: Callable[[int], None] | None = None,
) -> ExportSummary:
    """Export the messages ``options.query`` selects into ``options.out``.

    :param progress: called with the number of messages just written.
    :raises UsageError: PATH holds another export, or is not a directory.
    :raises ArchiveError: when the archive cannot be read.
    """
    root = options.out
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} is not a directory; --out names a directory to export into.")
    private_dir(root)
    root = root.resolve()
    # A symlink planted anywhere under PATH would send a write outside it.
    refuse_symlinks(root)
    state = _State(root, options)
    writer = _Writer(root, options, state)
    summary = ExportSummary()
    try:
        for ids in store.transfer_message_ids(options.query):
            placements = store.placements(ids)
            if options.labels == "folders":
                placements = label_placements(placements)
            todo: list[Placement] = []
            for placement in placements:
                key = writer.key(placement)
                done = state.done.setdefault(key, set())
                if placement.sha256 in done:
                    summary.skipped += 1
                    continue
                done.add(placement.sha256)
                todo.append(placement)
            raws = store.raw_messages([p.sha256 for p in todo])
            for placement in todo:
                raw = raws[placement.sha256]
                if options.labels == "header":
                    raw = with_labels_header(raw, placement.labels)
                summary.bytes += writer.write(placement, raw)
                summary.messages += 1
                shown = placement.display_name or placement.folder
                label = f"{placement.account}/{shown}"
                summary.folders[label] = summary.folders.get(label, 0) + 1
            if progress is not None and todo:
                progress(len(todo))
    finally:
        writer.close()
    state.save(options)
    log.info(
        "export.completed",
        format=options.format,
        messages=summary.messages,
        skipped=summary.skipped,
        bytes=summary.bytes,
    )
    return summary
