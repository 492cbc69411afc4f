"""``syncer import``: mbox files and Maildirs into the archive, through the ingest path sync uses.

Why it is built this way: reading files is :mod:`syncer.formats`' job and
storing is the archive's (:meth:`~syncer.archive.store.ArchiveStore.import_messages`
hands batches to ``archive_batch``, the path every synced message takes:
SHA-256 addressing, deduplication, one transaction per batch). This module
decides which folder each message goes to and holds the account's lease, so
an import and a sync of the same account never write at once.

Folders:

* ``mbox FILE``: every message into ``--folder`` (default INBOX) -- unless the
  file is a Google Takeout export, whose ``X-Gmail-Labels`` header names the
  labels: each label becomes a folder and a message with several labels goes
  into each (Inbox is INBOX; Sent, Drafts, Trash and Spam get their special-use
  role; Starred, Unread and Opened are flags; Important, Archived and the
  Category labels are dropped; a message with no folder label left goes to
  ``Archive``). ``--folder`` puts everything into one folder instead.
* ``mbox DIR``: every ``*.mbox`` below DIR, each into the folder named by its
  path without the suffix (what ``syncer export --format mbox`` writes), below
  ``--folder`` when given.
* ``maildir DIR``: DIR itself (when a Maildir) is INBOX (or ``--folder``);
  sub-folders, in the directory-tree or Maildir++ layout, keep their names.

Flags: Maildir info letters and keyword sidecars; mbox ``Status``/``X-Status``
headers. INTERNALDATE: the From_ line's date (mbox), the file's mtime (Maildir).
Folder names are stored the way an IMAP account's are: the wire name in
modified UTF-7 with ``/`` between levels (or, importing into an existing
account, its delimiter and ``INBOX.`` prefix if it has one), the shown name
beside it (:mod:`syncer.sources.folder_names`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import structlog

from syncer.errors import UsageError
from syncer.formats import maildir as maildir_format
from syncer.formats import mbox as mbox_format
from syncer.formats.files import refuse_symlinks
from syncer.model import FolderStatus, RemoteMessage
from syncer.sources.folder_names import FolderNaming
from syncer.transfer.push_folders import SourceFolder, source_prefix

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore

__all__ = ["ImportSummary", "import_path"]

log = structlog.get_logger(__name__)

Kind = Literal["mbox", "maildir"]
#: Messages (and bytes) per ingest transaction.
_BATCH_MESSAGES = 500
_BATCH_BYTES = 32 * 1024 * 1024

_GMAIL_FOLDERS = {
    "inbox": ("INBOX", None),
    "sent": ("Sent", "\\Sent"),
    "drafts": ("Drafts", "\\Drafts"),
    "trash": ("Trash", "\\Trash"),
    "spam": ("Junk", "\\Junk"),
}
_GMAIL_DROPPED = {"important", "archived", "starred", "unread", "opened"}
_GMAIL_ARCHIVE = ("Archive", "\\Archive")


@dataclass
class ImportSummary:
    """What one import added (and found already archived), per folder."""

    added: dict[str, int] = field(default_factory=dict)
    present: dict[str, int] = field(default_factory=dict)

    @property
    def total_added(self) -> int:
        return sum(self.added.values())


#: One message to file: (folder display name, special-use, raw, flags, INTERNALDATE,
#: Gmail labels or None).
_Item = tuple[str, str | None, bytes, tuple[str, ...], datetime | None, tuple[str, ...] | None]

#: Takeout's names of Gmail's system labels -> their names in X-GM-LABELS, so that
#: ``label:`` finds a Takeout import and an IMAP sync of the same mailbox alike.
_TAKEOUT_SYSTEM_LABELS = {
    "inbox": "\\Inbox",
    "important": "\\Important",
    "sent": "\\Sent",
    "drafts": "\\Draft",
    "starred": "\\Starred",
    "trash": "\\Trash",
    "spam": "\\Spam",
}
#: Takeout's labels that are states, not labels, in X-GM-LABELS (flags or Gmail's tabs).
_TAKEOUT_NOT_LABELS = {"archived", "unread", "opened"}


def takeout_labels(labels: list[str]) -> tuple[str, ...]:
    """A Takeout ``X-Gmail-Labels`` list as Gmail's IMAP would list the message's labels."""
    found = set()
    for label in labels:
        low = label.lower()
        if low in _TAKEOUT_NOT_LABELS or low.startswith("category "):
            continue
        found.add(_TAKEOUT_SYSTEM_LABELS.get(low, label))
    return tuple(sorted(found))


def _gmail_targets(labels: list[str], raw: bytes) -> tuple[list[tuple[str, str | None]], set[str]]:
    flags = set(mbox_format.status_flags(raw))
    lowered = {label.lower() for label in labels}
    if "starred" in lowered:
        flags.add("\\Flagged")
    if "unread" in lowered:
        flags.discard("\\Seen")
    else:
        flags.add("\\Seen")
    targets: list[tuple[str, str | None]] = []
    for label in labels:
        low = label.lower()
        if low in _GMAIL_DROPPED or low.startswith("category "):
            continue
        targets.append(_GMAIL_FOLDERS.get(low, (label, None)))
    return list(dict.fromkeys(targets)) or [_GMAIL_ARCHIVE], flags


def _mbox_items(path: Path, folder: str | None, base: str | None) -> Iterator[_Item]:
    for message in mbox_format.read_messages(path):
        labels = None if folder is not None else mbox_format.gmail_labels(message.raw)
        if labels is None:
            flags = mbox_format.status_flags(message.raw)
            yield (folder or base or "INBOX", None, message.raw, flags, message.when, None)
            continue
        targets, label_flags = _gmail_targets(labels, message.raw)
        recorded = takeout_labels(labels)
        for name, role in targets:
            yield (name, role, message.raw, tuple(sorted(label_flags)), message.when, recorded)


def _join(prefix: str | None, parts: tuple[str, ...]) -> str | None:
    if not parts:
        return prefix
    return "/".join((prefix, *parts) if prefix else parts)


def _items(kind: Kind, path: Path, folder: str | None) -> Iterator[_Item]:
    if not path.exists():
        raise UsageError(f"{path} does not exist.")
    # A link in a Maildir (to /etc/shadow, to a folder elsewhere) would be imported as mail.
    refuse_symlinks(path)
    if kind == "mbox":
        if path.is_file():
            yield from _mbox_items(path, folder, None)
            return
        files = sorted(path.rglob("*.mbox"))
        if not files:
            raise UsageError(f"{path} holds no *.mbox file.")
        for file in files:
            parts = file.relative_to(path).with_suffix("").parts
            yield from _mbox_items(file, None, _join(folder, parts))
        return
    folders = maildir_format.find_folders(path)
    if not folders:
        raise UsageError(f"{path} holds no Maildir (a directory with cur/ and new/).")
    for parts, directory in folders:
        name = _join(folder, parts) or "INBOX"
        for message in maildir_format.read_folder(directory):
            yield (name, None, message.raw, message.flags, message.when, None)


def import_path(
    store: ArchiveStore,
    kind: Kind,
    path: Path,
    account: str,
    folder: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import the mbox file(s) or Maildir(s) at ``path`` into ``account``.

    A new account is created with protocol ``import``; an existing one (even an
    IMAP account) gets the messages as extra entries its sync never touches.

    :param progress: called with the number of messages just read.
    :raises UsageError: for a path that holds nothing to import.
    :raises LeaseHeld: when a sync of the account is running.
    """
    from syncer.archive.leases import account_lease

    if store.account_protocol(account) is None:
        store.ensure_account(account, "import")
    known = store.folders(account)
    delimiter = next((f.delimiter for f in known.values() if f.delimiter), "/")
    # The account's own spelling (INBOX.Archive.2024 on Courier), so an imported folder and
    # the synced one of the same shown name are one folder.
    prefix = source_prefix(
        [SourceFolder(f.name, f.display_name, f.delimiter) for f in known.values()]
    )
    naming = FolderNaming(prefix, delimiter)
    summary = ImportSummary()
    wire: dict[str, str] = {}  # display name -> wire name
    batches: dict[str, list[RemoteMessage]] = {}
    sizes: dict[str, int] = {}

    def flush(name: str) -> None:
        batch = batches.pop(name, [])
        sizes.pop(name, None)
        if not batch:
            return
        added = store.import_messages(account, wire[name], batch)
        summary.added[name] = summary.added.get(name, 0) + added
        summary.present[name] = summary.present.get(name, 0) + len(batch) - added
        if progress is not None:
            progress(len(batch))

    with account_lease(store, account, wait=False):
        for name, role, raw, flags, when, labels in _items(kind, path, folder):
            if name not in wire:
                wire[name] = naming.wire(name)
                if wire[name] not in known:
                    store.upsert_folders(
                        account,
                        [
                            FolderStatus(
                                name=wire[name],
                                display_name=name,
                                delimiter=delimiter,
                                special_use=role,
                            )
                        ],
                    )
            batches.setdefault(name, []).append(
                RemoteMessage(
                    folder=wire[name],
                    uid=0,
                    raw=raw,
                    flags=tuple(sorted(set(flags))),
                    internaldate=when,
                    size=len(raw),
                    labels=labels,
                )
            )
            sizes[name] = sizes.get(name, 0) + len(raw)
            if len(batches[name]) >= _BATCH_MESSAGES or sizes[name] >= _BATCH_BYTES:
                flush(name)
        for name in list(batches):
            flush(name)
    log.info(
        "import.completed",
        account=account,
        kind=kind,
        added=summary.total_added,
        present=sum(summary.present.values()),
    )
    return summary
