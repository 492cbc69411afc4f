"""Which vanished folder was renamed into which new one: evidence, not a coincidence.

Cyrus and Courier use the creation second as UIDVALIDITY, so many folders share one
(9 distinct values over 110 folders in issue 20's corpus), and an equal UIDVALIDITY
alone recorded deleted folders as renamed into unrelated new ones. A pair counts as a
rename when:

- both sides carry an RFC 8474 MAILBOXID (Cyrus, which keeps it across RENAME) and the
  ids are equal; with ids on both sides, different ids are never a rename;
- otherwise UIDVALIDITY, UIDNEXT and MESSAGES all agree (RENAME changes none of them
  on servers that keep UIDVALIDITY), and the match is unique both ways: two vanished
  folders are never mapped onto one new folder, nor one onto two.

A folder renamed *and* changed between two syncs is then taken as deleted plus new; its
bodies are still recognised by header fingerprint where the sync reuses them.

Public API: :func:`match_renames`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from syncer.model import FolderStatus

if TYPE_CHECKING:
    from syncer.archive.store import FolderRecord


def _evidence(record: FolderRecord, status: FolderStatus) -> bool:
    if record.mailbox_id is not None and status.mailbox_id is not None:
        return record.mailbox_id == status.mailbox_id
    cursor = record.cursor
    if cursor is None or cursor.messages < 0:  # never synced, or a download unfinished
        return False
    return (
        status.uidvalidity == cursor.uidvalidity
        and status.uidnext == cursor.uidnext
        and status.messages == cursor.messages
    )


def match_renames(
    vanished: Mapping[str, FolderRecord], appeared: Sequence[FolderStatus]
) -> dict[str, str]:
    """Old name -> new name for the vanished folders that were renamed.

    :param vanished: archive records of folders the server no longer lists.
    :param appeared: listed folders the archive does not know (or knows as deleted).
    """
    candidates = {
        old: [s.name for s in appeared if s.uidvalidity is not None and _evidence(record, s)]
        for old, record in vanished.items()
    }
    claimed: dict[str, int] = {}
    for names in candidates.values():
        for name in names:
            claimed[name] = claimed.get(name, 0) + 1
    return {
        old: names[0]
        for old, names in candidates.items()
        if len(names) == 1 and claimed[names[0]] == 1
    }
