"""One sync of one POP3 account: from a MailDropSource into the archive, then (maybe) DELE.

The algorithm:

1. LIST + UIDL give every message's number, size and UIDL. A server without
   UIDL (or with UIDLs that are not unique) gets a fingerprint key per message
   instead: the SHA-256 of its header block (``TOP n 0``) plus its size, which
   the run summary warns is less reliable (two copies of one message look the
   same; a header the server rewrites looks new).
2. UIDLs the archive holds that the server no longer lists are recorded as
   deleted from the server (by another client, or by our own QUIT in a run
   that died before it could record it); recorded ones the server lists again
   are taken as back on the server. A UIDL whose LIST size differs from the
   size archived under it is an error: the server reuses UIDLs, and that
   message is neither archived nor deleted.
3. Messages whose key is not in ``pop3_seen`` are RETRieved one at a time and
   committed in batches bounded by count and bytes, each batch in one
   transaction with its ``pop3_seen`` rows. Memory holds one batch at most.
4. Only when every step above succeeded, and the account does not leave mail
   on the server: messages that are due (``delete_after_archive``: all that are
   archived; ``delete_after_days = N``: archived at least N days ago) are
   checked once more -- the blob is read back through the store, which
   re-hashes it, and its size must equal the size LIST gives now -- then
   marked with DELE. QUIT makes the server delete them; only after QUIT
   succeeded are they recorded as deleted, with a ``pop3.deleted`` audit event.
   A session that ends any other way deletes nothing, and the next run tries
   again. A message an active legal hold covers, or one a hold cannot see yet
   (awaiting normalization, failed or partial; :mod:`syncer.sync.holds`), is
   left on the server.

So a message is never deleted from the server unless its archive copy is
committed and verified, and a crash at any instant leaves every message in at
least one of the two places, archived at most once (docs/architecture.md, principle 2).

The pipeline sees only ``MailDropSource`` and ``ArchiveStore``; it never
imports poplib or SQLAlchemy.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from syncer.errors import ArchiveError, SourceError
from syncer.model import FolderSummary, MaildropEntry, RemoteMessage
from syncer.sync.folders import Clock, Heartbeat, Progress, utcnow
from syncer.sync.holds import Protection, protection

if TYPE_CHECKING:
    from syncer.archive.account import AccountArchive
    from syncer.archive.store import ArchiveStore
    from syncer.archive.store_pop3 import POP3Seen
    from syncer.sources.base import MailDropSource

log = structlog.get_logger(__name__)

#: The archive folder of a POP3 account (see :mod:`syncer.archive.store_pop3`).
FOLDER = "INBOX"

#: Fingerprint keys contain spaces, which a real UIDL never does (:rfc:`1939#section-7`:
#: 0x21 to 0x7E), so the two kinds of key cannot collide.
_FINGERPRINT_PREFIX = "top0 "


class _NoProgress:
    def planned(self, messages: int, size: int | None) -> None:
        pass

    def folder_started(self, folder: str, messages: int, size: int) -> None:
        pass

    def advanced(self, messages: int, size: int) -> None:
        pass


def _no_heartbeat() -> None:
    pass


@dataclass(frozen=True, slots=True)
class POP3Options:
    """Per-account knobs, taken from the account's configuration by the caller.

    With neither ``delete_after_archive`` nor ``delete_after_days`` nothing is
    ever deleted from the server (``leave_on_server``).
    """

    delete_after_archive: bool = False
    delete_after_days: int | None = None
    batch_messages: int = 500
    batch_bytes: int = 32 * 1024 * 1024

    @property
    def deletes(self) -> bool:
        return self.delete_after_archive or self.delete_after_days is not None


@dataclass(frozen=True, slots=True)
class MaildropResult:
    """What one POP3 sync did: the INBOX summary and warnings for the run summary."""

    summary: FolderSummary
    warnings: tuple[str, ...] = ()
    deleted: int = 0


def maildrop_keys(
    source: MailDropSource, listing: Sequence[MaildropEntry]
) -> tuple[dict[int, str], tuple[str, ...]]:
    """The archive key of each message (by number), and the warnings to report.

    The key is the UIDL. Without UIDL for every message, or with a UIDL that
    is listed twice, every message gets a fingerprint key instead (one ``TOP
    n 0`` each): ``"top0 <size> <sha256 of the header>"``, with ``" #2"``,
    ``" #3"``... for further messages that look the same.

    :raises SourceError: when a TOP fails.
    """
    uidls = [e.uidl for e in listing]
    if all(u is not None for u in uidls) and len(set(uidls)) == len(uidls):
        return {e.number: e.uidl for e in listing if e.uidl is not None}, ()
    reason = (
        "has no UIDL"
        if all(u is None for u in uidls)
        else "gave UIDLs that are missing or not unique"
    )
    warning = (
        f"The POP3 server {reason}: messages are recognised by a fingerprint of their "
        "headers (TOP n 0) and size, which is less reliable: identical copies count as "
        "one, and a header the server rewrites makes a message look new."
    )
    log.warning("pop3.fingerprint_fallback", reason=reason, messages=len(listing))
    keys: dict[int, str] = {}
    seen: Counter[str] = Counter()
    for entry in listing:
        digest = hashlib.sha256(source.headers(entry.number)).hexdigest()
        base = f"{_FINGERPRINT_PREFIX}{entry.size} {digest}"
        seen[base] += 1
        keys[entry.number] = base if seen[base] == 1 else f"{base} #{seen[base]}"
    return keys, (warning,)


def sync_maildrop(
    source: MailDropSource,
    archive: AccountArchive,
    options: POP3Options,
    *,
    clock: Clock = utcnow,
    progress: Progress | None = None,
    heartbeat: Heartbeat = _no_heartbeat,
) -> MaildropResult:
    """Bring the archive of a POP3 account up to date with ``source``, then delete as configured.

    A message that cannot be retrieved intact (a size mismatch, a refused
    RETR) is recorded in the summary's ``error`` and the others go on; the
    deletion step is then skipped for the whole run.

    :raises SourceError: when the connection is lost (``SourceUnavailable``,
        after committing what was retrieved whole), or LIST, UIDL, TOP, DELE
        or QUIT fail. Nothing is recorded as deleted then.
    :raises ArchiveError: when the archive fails; nothing is deleted then.
    """
    progress = progress or _NoProgress()
    started = time.monotonic()
    listing = source.listing()
    keys, warnings = maildrop_keys(source, listing)
    seen = archive.pop3_seen()

    listed = set(keys.values())
    vanished = {u for u, row in seen.items() if row.deleted_at is None} - listed
    gone = archive.mark_pop3_deleted(vanished, clock()) if vanished else 0
    if gone:
        log.info("pop3.vanished", count=gone)
    back = {u for u in listed if u in seen and seen[u].deleted_at is not None}
    if back:
        log.warning("pop3.back_on_server", count=archive.mark_pop3_on_server(back))

    errors = _reused_uidls(archive.name, listing, keys, seen)
    wanted = [e for e in listing if keys[e.number] not in seen]
    new, size, failed = _download(
        source, archive, wanted, keys, options, progress=progress, heartbeat=heartbeat
    )
    errors += failed
    deleted = 0
    if errors:
        if options.deletes:
            log.warning("pop3.dele_skipped", reason="the download had errors")
    elif options.deletes:
        deleted, problems = _delete_due(
            source, archive, listing, keys, options, clock=clock, heartbeat=heartbeat
        )
        errors.extend(problems)
    archive.record_pop3_sync(clock())
    summary = FolderSummary(
        folder=FOLDER,
        new=new,
        bytes=size,
        expunged=gone + deleted,
        seconds=round(time.monotonic() - started, 3),
        error="; ".join(errors) or None,
    )
    log.info(
        "folder.synced",
        folder=FOLDER,
        new=new,
        bytes=size,
        deleted=deleted,
        vanished=gone,
        on_server=len(listing),
        duration_ms=int(summary.seconds * 1000),
    )
    return MaildropResult(summary=summary, warnings=warnings, deleted=deleted)


def _reused_uidls(
    account: str,
    listing: Sequence[MaildropEntry],
    keys: dict[int, str],
    seen: dict[str, POP3Seen],
) -> list[str]:
    """Errors for listed messages whose size differs from what was archived under their UIDL."""
    errors = []
    for entry in listing:
        row = seen.get(keys[entry.number])
        if row is not None and row.size is not None and row.size != entry.size:
            log.error(
                "pop3.uidl_reused", number=entry.number, uidl=keys[entry.number], size=entry.size
            )
            errors.append(
                f"Account {account!r}: message {entry.number} (UIDL {keys[entry.number]}) has "
                f"{entry.size} bytes, but the message archived under this UIDL had {row.size}: "
                "the server seems to reuse UIDLs, so this message is neither archived nor "
                "deleted. Save it with another client, or ask the server's administrator."
            )
    return errors


def _download(
    source: MailDropSource,
    archive: AccountArchive,
    wanted: Sequence[MaildropEntry],
    keys: dict[int, str],
    options: POP3Options,
    *,
    progress: Progress,
    heartbeat: Heartbeat,
) -> tuple[int, int, list[str]]:
    """RETR ``wanted`` one by one, committing bounded batches; returns (new, bytes, errors)."""
    errors: list[str] = []
    new = size = 0
    batch: list[RemoteMessage] = []
    pending = 0

    def commit() -> None:
        nonlocal new, size, batch, pending
        if batch:
            new += archive.archive_pop3(batch)
            size += pending
            heartbeat()
        batch, pending = [], 0

    # POP3 LIST gave every size: the whole download is known before the first RETR.
    progress.planned(len(wanted), sum(e.size for e in wanted))
    progress.folder_started(FOLDER, len(wanted), sum(e.size for e in wanted))
    for entry in wanted:
        try:
            message = source.retrieve(entry)
        except SourceError as exc:
            if exc.transient:
                commit()  # keep what arrived whole; the retry fetches only the rest
                raise
            log.warning("message.skipped", number=entry.number, uidl=entry.uidl, error=exc.message)
            errors.append(exc.message)
            continue
        batch.append(replace(message, uidl=keys[entry.number]))
        pending += len(message.raw)
        progress.advanced(1, len(message.raw))
        if len(batch) >= options.batch_messages or pending >= options.batch_bytes:
            commit()
    commit()
    return new, size, errors


def _due(row: POP3Seen | None, options: POP3Options, cutoff: datetime) -> bool:
    if row is None or row.deleted_at is not None or row.sha256 is None:
        return False
    if options.delete_after_archive:
        return True
    return options.delete_after_days is not None and row.seen_at <= cutoff


def _delete_due(
    source: MailDropSource,
    archive: AccountArchive,
    listing: Sequence[MaildropEntry],
    keys: dict[int, str],
    options: POP3Options,
    *,
    clock: Clock,
    heartbeat: Heartbeat,
) -> tuple[int, list[str]]:
    """DELE every due message whose archive copy verifies, then QUIT; returns (deleted, problems).

    :raises SourceError: when DELE or QUIT fails (nothing is recorded as deleted).
    """
    seen = archive.pop3_seen()  # now with this run's messages
    cutoff = clock() - timedelta(days=options.delete_after_days or 0)
    due = [(entry, keys[entry.number]) for entry in listing]
    due = [(entry, key) for entry, key in due if _due(seen.get(key), options, cutoff)]
    # Legal holds protect server copies too, also what they cannot see yet (syncer.sync.holds).
    pks = [pk for _entry, key in due if (pk := seen[key].message_pk) is not None]
    guard = protection(archive.store, pks) if due else Protection()
    problems: list[str] = []
    marked: list[str] = []
    for entry, key in due:
        row = seen[key]
        assert row.sha256 is not None
        held = guard.reason(row.message_pk)
        if held is not None:
            log.info("pop3.dele_held", number=entry.number, uidl=key, reason=held)
            continue
        problem = verify_copy(archive.store, archive.name, entry, key, row.sha256, row.size)
        if problem is not None:
            log.error("pop3.dele_refused", number=entry.number, uidl=key, reason=problem)
            problems.append(problem)
            continue
        source.delete(entry.number)
        marked.append(key)
        if len(marked) % 200 == 0:
            heartbeat()
    if not marked:
        return 0, problems
    source.quit()
    deleted = archive.mark_pop3_deleted(marked, clock())
    _audit_deleted(archive, options, [(key, seen[key].sha256 or "") for key in marked])
    return deleted, problems


def _audit_deleted(
    archive: AccountArchive, options: POP3Options, removed: list[tuple[str, str]]
) -> None:
    """The ``pop3.deleted`` audit event: every server-side deletion is accounted for,
    as retention's expunges are (``retention.expunged``)."""
    rule = (
        "delete_after_archive"
        if options.delete_after_archive
        else f"delete_after_days = {options.delete_after_days}"
    )
    archive.store.audit(
        "pop3.deleted",
        actor=None,
        subject=archive.name,
        details={
            "account": archive.name,
            "folder": FOLDER,
            "rule": rule,
            "uidls": [uidl for uidl, _sha in removed],
            "sha256": sorted({sha for _uidl, sha in removed}),
        },
    )


def verify_copy(
    store: ArchiveStore,
    account: str,
    entry: MaildropEntry,
    key: str,
    sha256: str,
    archived_size: int | None,
) -> str | None:
    """None when the archive copy of ``entry`` is safe to rely on, else why not."""
    what = f"Account {account!r}: message {entry.number} (UIDL {key}) is left on the server"
    if archived_size is not None and archived_size != entry.size:
        return (
            f"{what}: LIST now says {entry.size} bytes, but {archived_size} were archived "
            "under this UIDL."
        )
    try:
        raw = store.get_raw(sha256)
    except ArchiveError as exc:
        return f"{what}: its archive copy does not verify ({exc.message})."
    if len(raw) != entry.size:
        return f"{what}: its archive copy has {len(raw)} bytes, LIST says {entry.size}."
    return None
