"""One incremental sync of one account: from a FolderSource into the archive.

The algorithm (docs/architecture.md, "One message, from server to outbox"):

1. One LIST (with STATUS) tells which folders changed; a folder whose
   UIDVALIDITY, UIDNEXT, MESSAGES and HIGHESTMODSEQ equal the stored cursor is
   not selected. Without CONDSTORE a flag change leaves no trace in STATUS, so
   such folders are selected for a FLAGS listing every run (mbsync and
   offlineimap do the same); no body is fetched for them.
2. A changed folder is EXAMINEd (with QRESYNC parameters where offered), then:
   expunges (VANISHED, else UID SEARCH ALL against the archive's live UIDs),
   flag changes (QRESYNC answer, CHANGEDSINCE, else a full listing diffed by
   the store), then new messages from the stored UIDNEXT in bounded batches.
3. Every batch commits in one transaction with the folder's new cursor, so a
   crash loses at most the batch in flight and a re-run neither skips nor
   duplicates (the store's inserts are idempotent on (folder, uidvalidity, uid)).

The cursor's HIGHESTMODSEQ is advanced only after the flag changes it covers
are committed, and UIDNEXT only past messages whose batch is committed.

The pipeline sees only ``FolderSource`` and ``ArchiveStore``; it never imports
a protocol library or SQLAlchemy.
"""

from __future__ import annotations

import fnmatch
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import structlog

from syncer.errors import SourceError
from syncer.model import (
    FolderCursor,
    FolderStatus,
    FolderSummary,
    HeaderFingerprint,
    SelectedFolder,
)
from syncer.sync.renames import match_renames

if TYPE_CHECKING:
    from syncer.archive.account import AccountArchive
    from syncer.archive.store import FolderRecord, Generation, Link, Move
    from syncer.sources.base import FolderSource

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Progress(Protocol):
    """What a progress display needs to know (the CLI passes a
    :class:`syncer.progress.ProgressReporter`).

    ``planned`` comes first, once per folder that will download, from the listing (LIST-STATUS
    or STATUS, with STATUS=SIZE where offered; POP3 LIST), so the display has the whole
    run's total before the first byte; ``size`` is None where the server does not say.
    """

    def planned(self, messages: int, size: int | None) -> None: ...

    def folder_started(self, folder: str, messages: int, size: int) -> None: ...

    def advanced(self, messages: int, size: int) -> None: ...


class _NoProgress:
    def planned(self, messages: int, size: int | None) -> None:
        pass

    def folder_started(self, folder: str, messages: int, size: int) -> None:
        pass

    def advanced(self, messages: int, size: int) -> None:
        pass


@dataclass(frozen=True, slots=True)
class SyncOptions:
    """Per-account knobs, taken from the account's configuration by the caller."""

    include: Sequence[str] = ("*",)
    exclude: Sequence[str] = ()
    #: SPECIAL-USE attributes of folders to leave out (``\\Junk``), whatever their names.
    exclude_special_use: Sequence[str] = ()
    only: Sequence[str] = ()
    full_scan_days: float = 7.0
    batch_messages: int = 500
    batch_bytes: int = 32 * 1024 * 1024
    #: Bytes this run may download (what is left of the account's daily budget); None: no cap.
    max_bytes: int | None = None

    def in_scope(self, display_name: str) -> bool:
        """Include/exclude from the config, narrowed by ``--folder`` globs."""
        return self.exclusion(display_name) is None

    def exclusion(self, display_name: str) -> str | None:
        """Why a folder is not archived (for the dry run), or None when it is."""
        if not any(fnmatch.fnmatchcase(display_name, p) for p in self.include):
            return f"not in include {list(self.include)}"
        for pattern in self.exclude:
            if fnmatch.fnmatchcase(display_name, pattern):
                return f"exclude {pattern!r}"
        if self.only and not any(fnmatch.fnmatchcase(display_name, p) for p in self.only):
            return f"not in --folder {list(self.only)}"
        return None


class Heartbeat(Protocol):
    def __call__(self) -> None: ...


def _no_heartbeat() -> None:
    pass


class _BudgetSpent(Exception):
    """The run's byte budget is used up; raised after a batch is committed."""


class _Budget:
    """Counts the bytes of committed batches (through ``Progress.advanced``, called once
    per committed batch) and stops the run at the next heartbeat once ``limit`` is
    reached: a run overshoots its budget by at most one batch, and the folder's cursor
    already records where the next run resumes."""

    def __init__(self, inner: Progress, heartbeat: Heartbeat, limit: int | None) -> None:
        self.inner, self.beat, self.limit = inner, heartbeat, limit
        self.used = 0
        self.folder_messages = self.folder_bytes = 0

    def folder_started(self, folder: str, messages: int, size: int) -> None:
        self.folder_messages = self.folder_bytes = 0
        self.inner.folder_started(folder, messages, size)

    def planned(self, messages: int, size: int | None) -> None:
        self.inner.planned(messages, size)

    def advanced(self, messages: int, size: int) -> None:
        self.used += size
        self.folder_messages += messages
        self.folder_bytes += size
        self.inner.advanced(messages, size)

    def heartbeat(self) -> None:
        self.beat()
        if self.limit is not None and self.used >= self.limit:
            raise _BudgetSpent


def sync_folders(
    source: FolderSource,
    archive: AccountArchive,
    options: SyncOptions,
    *,
    clock: Clock = utcnow,
    progress: Progress | None = None,
    heartbeat: Heartbeat = _no_heartbeat,
) -> list[FolderSummary]:
    """Bring the archive of one account (``archive``) up to date with ``source``.

    A failure in one folder is recorded in its summary and the next folder is
    tried; a lost connection (``SourceUnavailable``) ends the run, since every
    following folder would fail the same way (the caller may retry).

    :raises SourceError: when listing folders fails, or the connection is lost.
    """
    budget = _Budget(progress or _NoProgress(), heartbeat, options.max_bytes)
    if options.max_bytes is not None and options.max_bytes <= 0:
        return []
    listed = source.list_folders(with_status=True)
    _warn_unmatched_patterns(options, [f.display_name for f in listed])
    remote = [
        f
        for f in listed
        if options.in_scope(f.display_name) and f.special_use not in options.exclude_special_use
    ]
    known = archive.folders()
    # Only folders whose listing differs from the archive's record: usually none, so a
    # no-change re-sync writes nothing here.
    archive.upsert_folders(
        [f for f in remote if f.name not in known or not known[f.name].is_current(f)]
    )
    renamed_from = _record_vanished_folders(archive, options, known, remote)
    for status in remote:
        record = known.get(status.name)
        share = planned_download(status, record.cursor if record and not record.deleted else None)
        if share is not None:
            budget.planned(*share)
    events = _folder_events(archive, known, remote)
    # Gmail: All Mail (SPECIAL-USE \All) first, so every body is archived from there once
    # and each label folder after it only links what All Mail brought (by X-GM-MSGID).
    remote.sort(key=lambda f: f.special_use != "\\All")

    summaries: list[FolderSummary] = []
    for status in remote:
        if not status.selectable:
            continue
        record = known.get(status.name)
        flog = log.bind(folder=status.display_name)
        started = time.monotonic()
        try:
            summary = _sync_folder(
                source,
                archive,
                status,
                record.cursor if record and not record.deleted else None,
                options,
                clock=clock,
                progress=budget,
                heartbeat=budget.heartbeat,
                reuse_from=renamed_from.get(status.name, ()),
                unstable=record is not None and record.uidvalidity_unstable,
                flog=flog,
            )
        except _BudgetSpent:
            flog.warning("sync.budget_spent", downloaded=budget.used, limit=options.max_bytes)
            summaries.append(
                FolderSummary(
                    folder=status.display_name,
                    new=budget.folder_messages,
                    bytes=budget.folder_bytes,
                    seconds=round(time.monotonic() - started, 3),
                    stopped="budget",
                )
            )
            break
        except SourceError as exc:
            if exc.transient:
                raise
            flog.warning("folder.failed", error=exc.message)
            summary = FolderSummary(folder=status.display_name, error=exc.message)
        summary = replace(summary, seconds=round(time.monotonic() - started, 3))
        if status.name in events:
            change, old_name = events.pop(status.name)
            summary = replace(summary, change=change, renamed_from=old_name, skipped=False)
        if not summary.skipped:
            flog.info(
                "folder.synced",
                new=summary.new,
                flags_changed=summary.flags_changed,
                expunged=summary.expunged,
                bytes=summary.bytes,
                reused=summary.reused,
                duration_ms=int(summary.seconds * 1000),
            )
        summaries.append(summary)
    summaries.extend(
        FolderSummary(folder=name, change=change) for name, (change, _old) in events.items()
    )
    return summaries


def _folder_events(
    archive: AccountArchive,
    before: dict[str, FolderRecord],
    remote: list[FolderStatus],
) -> dict[str, tuple[str, str | None]]:
    """Folder name -> (change, old name) for the summary: created, deleted and renamed
    folders of this run, from the archive's folder records before and after it.

    Nothing on an account's first sync (every folder would be "created"), and no extra
    query when the listing matches the archive. Keys are display names for deleted
    folders (they get a summary of their own) and wire names for listed ones.
    """
    listed = {f.name for f in remote}
    appeared = [f for f in remote if f.name not in before or before[f.name].deleted]
    vanished = any(not r.deleted and n not in listed for n, r in before.items())
    if not before or not (appeared or vanished):
        return {}
    after = archive.folders()
    events: dict[str, tuple[str, str | None]] = {}
    renamed_into: dict[str, str] = {}
    for name, record in after.items():
        was = before.get(name)
        if record.deleted and was is not None and not was.deleted:
            if record.renamed_to is not None:
                renamed_into[record.renamed_to] = record.display_name
            else:
                events[record.display_name] = ("deleted", None)
    for status in appeared:
        if not status.selectable:
            continue  # an implicit parent: its children say what happened
        if status.name in renamed_into:
            events[status.name] = ("renamed", renamed_into[status.name])
        else:
            events[status.name] = ("created", None)
    return events


def _warn_unmatched_patterns(options: SyncOptions, names: Sequence[str]) -> None:
    """Warn about each ``--folder`` glob and configured include that matches no folder.

    ``--folder 'Archive/*'`` against a server that names it ``INBOX.Archive.2024``
    (Courier, Debian's Cyrus) synced nothing and said nothing (issue 20 #5).
    """
    for pattern in dict.fromkeys((*options.only, *options.include)):
        if pattern != "*" and not any(fnmatch.fnmatchcase(n, pattern) for n in names):
            log.warning(
                "sync.folder_pattern.unmatched",
                pattern=pattern,
                folders=len(names),
                example=names[0] if names else None,
            )


def _record_vanished_folders(
    archive: AccountArchive,
    options: SyncOptions,
    known: dict[str, FolderRecord],
    remote: list[FolderStatus],
) -> dict[str, tuple[str, ...]]:
    """Record folders the server no longer lists as deleted or renamed.

    A folder that disappeared is taken as renamed into a new one only on evidence
    (:func:`syncer.sync.renames.match_renames`: MAILBOXID, or UIDVALIDITY, UIDNEXT and
    MESSAGES all equal, matched one to one). Nothing is deleted from the archive.

    :returns: new folder name → old folder names whose bodies it may reuse (the renamed
        folder's, or those of :func:`_reuse_candidates`).
    """
    remote_by_name = {f.name: f for f in remote}
    appeared = [f for f in remote if f.name not in known or known[f.name].deleted]
    vanished = {
        name: record
        for name, record in known.items()
        # Narrowed out by --folder or the config: not evidence of deletion.
        if not record.deleted
        and name not in remote_by_name
        and options.in_scope(record.display_name)
        and record.special_use not in options.exclude_special_use
    }
    renames = match_renames(vanished, appeared)
    renamed: dict[str, tuple[str, ...]] = {}
    for name, record in vanished.items():
        new_name = renames.get(name)
        if new_name is not None:
            archive.mark_folder_renamed(name, new_name)
            renamed[new_name] = (name,)
            log.info("folder.renamed", folder=record.display_name, to=new_name)
        else:
            archive.mark_folder_deleted(name)
            log.info("folder.deleted", folder=record.display_name)
    for new_name, old_names in _reuse_candidates(vanished, renames, appeared).items():
        renamed.setdefault(new_name, old_names)
    return renamed


def _reuse_candidates(
    vanished: dict[str, FolderRecord], renames: dict[str, str], appeared: list[FolderStatus]
) -> dict[str, tuple[str, ...]]:
    """New folder -> the folders that vanished unmatched in the same run, for body reuse.

    Courier gives a renamed folder a new UIDVALIDITY, so its rename is recorded as a
    delete plus a new folder; reusing bodies by header fingerprint (size and SHA-256 of
    the header, as after a UIDVALIDITY reset) still saves the download. Reuse claims
    nothing about the folders: a body is linked only when its fingerprint matches.
    It costs a header FETCH of each new folder, only in a run where folders vanished.
    """
    leftover = tuple(name for name in vanished if name not in renames)
    if not leftover:
        return {}
    matched = set(renames.values())
    return {f.name: leftover for f in appeared if f.name not in matched}


def planned_download(
    status: FolderStatus, cursor: FolderCursor | None
) -> tuple[int, int | None] | None:
    """What the listing says a folder will download: (messages, bytes or None), or None when
    the listing cannot say (no STATUS) or there is nothing new.

    A new folder (or a new UIDVALIDITY) downloads all its messages, STATUS=SIZE giving the
    bytes; otherwise at most the UIDs between the stored UIDNEXT and the server's (an
    upper bound: some may have been expunged since), bytes unknown. The dry run
    (:mod:`syncer.sync.preview`) reports the same numbers.
    """
    if not status.selectable or status.messages is None:
        return None
    if cursor is None or status.uidvalidity != cursor.uidvalidity:
        return (status.messages, status.size) if status.messages else None
    if status.uidnext is None or status.uidnext <= cursor.uidnext:
        return None
    return min(status.uidnext - cursor.uidnext, status.messages), None


# A cursor whose MESSAGES is this marks a download that has not finished: a
# STATUS never reports it, so the folder is selected again, and the re-run
# fetches only the UIDs the archive does not hold yet.
_INCOMPLETE = -1


def _unchanged(status: FolderStatus, cursor: FolderCursor) -> bool:
    """True when STATUS proves nothing changed since ``cursor`` (needs a MODSEQ)."""
    return (
        status.uidvalidity == cursor.uidvalidity
        and status.uidnext == cursor.uidnext
        and status.messages == cursor.messages
        and status.highestmodseq is not None
        and status.highestmodseq == cursor.highestmodseq
    )


# Allowed (PLR0913): one folder's sync state, passed explicitly.
def _sync_folder(  # noqa: PLR0913
    source: FolderSource,
    archive: AccountArchive,
    status: FolderStatus,
    cursor: FolderCursor | None,
    options: SyncOptions,
    *,
    clock: Clock,
    progress: Progress,
    heartbeat: Heartbeat,
    reuse_from: tuple[str, ...],
    unstable: bool = False,
    flog: structlog.stdlib.BoundLogger,
) -> FolderSummary:
    now = clock()
    if unstable and cursor is not None and status.uidvalidity == cursor.uidvalidity:
        archive.set_uidvalidity_stable(status.name)
        flog.info("folder.uidvalidity_stable", uidvalidity=cursor.uidvalidity)
    scan_due = cursor is not None and (
        cursor.last_full_scan is None
        or now - cursor.last_full_scan >= timedelta(days=options.full_scan_days)
    )
    if cursor is not None and not scan_due and _unchanged(status, cursor):
        return FolderSummary(folder=status.display_name, skipped=True)

    qresync = None
    if (
        cursor is not None
        and cursor.highestmodseq
        and status.uidvalidity == cursor.uidvalidity
        and "QRESYNC" in source.capabilities
    ):
        qresync = (cursor.uidvalidity, cursor.highestmodseq)
    sel = source.select(status.name, qresync=qresync)

    if cursor is None or sel.uidvalidity != cursor.uidvalidity:
        fingerprints = None
        if cursor is not None:
            generation = archive.generation(status.name, cursor.uidvalidity)
            if generation.others and sel.uidvalidity not in generation.others:
                # Reset before: perhaps a server that resets on every run (issue 20 #7).
                fingerprints = source.fingerprints() if sel.exists else []
                moved = _move_unstable(
                    source,
                    archive,
                    status,
                    sel,
                    cursor,
                    generation,
                    fingerprints,
                    options,
                    clock=clock,
                    progress=progress,
                    heartbeat=heartbeat,
                    flog=flog,
                )
                if moved is not None:
                    return moved
            closed = archive.close_uidvalidity(status.name, cursor.uidvalidity)
            # Nothing superseded (an empty folder): nothing to warn about.
            (flog.warning if closed else flog.info)(
                "folder.uidvalidity_changed",
                old=cursor.uidvalidity,
                new=sel.uidvalidity,
                superseded=closed,
            )
            reuse_from = (status.name,)
        return _download_folder(
            source,
            archive,
            status,
            sel,
            options,
            clock=clock,
            progress=progress,
            heartbeat=heartbeat,
            reuse_from=reuse_from,
            fingerprints=fingerprints,
        )

    expunged, flags_changed = _reconcile(
        source, archive, status, sel, cursor, full_scan=scan_due, flog=flog
    )
    start, pending = cursor.uidnext, None
    if cursor.messages == _INCOMPLETE:
        # An earlier run stopped mid-download: fetch only what is not archived yet.
        have = archive.live_uids(status.name, sel.uidvalidity)
        pending = [u for u in source.uids() if u not in have]
        start = min(pending, default=cursor.uidnext)
    reused = 0
    if sel.uidnext > start and sel.exists:
        reused, pending = _link_known(source, archive, status.name, sel, start, pending)
    new, size, reached = _fetch_new(
        source,
        archive,
        status,
        sel,
        start,
        options,
        progress=progress,
        heartbeat=heartbeat,
        uids=pending,
    )
    _finish(archive, status.name, sel, max(reached, cursor.uidnext), clock, full_scan=scan_due)
    return FolderSummary(
        folder=status.display_name,
        new=new,
        bytes=size,
        flags_changed=flags_changed,
        expunged=expunged,
        reused=reused,
    )


# Allowed (PLR0913): one folder's sync state, passed explicitly.
def _move_unstable(  # noqa: PLR0913
    source: FolderSource,
    archive: AccountArchive,
    status: FolderStatus,
    sel: SelectedFolder,
    cursor: FolderCursor,
    generation: Generation,
    fingerprints: list[HeaderFingerprint],
    options: SyncOptions,
    *,
    clock: Clock,
    progress: Progress,
    heartbeat: Heartbeat,
    flog: structlog.stdlib.BoundLogger,
) -> FolderSummary | None:
    """A second UIDVALIDITY change with the same messages: move the entries, add none.

    Courier gives a folder that lost its ``courierimapuiddb`` a new UIDVALIDITY in
    every read-only session (issue 20 #7); an ordinary reset per run added a superseded
    generation of entries each time (271 per run for one folder) and a warning. So when
    the folder was reset before and every live entry is still there by header
    fingerprint, the entries move to the new UIDVALIDITY and UIDs (one superseded
    generation stays, the one before the first reset); messages that are new are
    downloaded. The first time, one warning says what happens and how to fix the server.

    :returns: the folder's summary, or None when the contents differ (an ordinary reset).
    """
    headers = generation.headers
    if not headers or len(set(headers.values())) < len(headers):
        # Nothing to move (an ordinary reset costs nothing), or two entries share a
        # fingerprint: moving could swap their bodies.
        return None
    by_key: dict[tuple[int, str], list[HeaderFingerprint]] = defaultdict(list)
    for fp in fingerprints:
        by_key[(fp.size, fp.header_sha256)].append(fp)
    moves: list[Move] = []
    for uid, (size, header) in sorted(headers.items()):
        matches = by_key.get((size, header)) if header else None
        if not matches:
            return None
        fp = matches.pop(0)
        moves.append((uid, fp.uid, fp.flags, fp.internaldate, fp.modseq))
    moved = {new_uid for _old, new_uid, *_rest in moves}
    first = archive.move_generation(
        status.name,
        cursor.uidvalidity,
        moves,
        FolderCursor(
            uidvalidity=sel.uidvalidity, uidnext=1, highestmodseq=None, messages=_INCOMPLETE
        ),
    )
    (flog.warning if first else flog.info)(
        "folder.uidvalidity_unstable" if first else "folder.uidvalidity_moved",
        old=cursor.uidvalidity,
        new=sel.uidvalidity,
        moved=len(moves),
        **({"hint": UNSTABLE_HINT} if first else {}),
    )
    new, size, reached = _fetch_new(
        source,
        archive,
        status,
        sel,
        1,
        options,
        progress=progress,
        heartbeat=heartbeat,
        uids=[fp.uid for fp in fingerprints if fp.uid not in moved],
    )
    _finish(archive, status.name, sel, reached, clock, full_scan=True)
    return FolderSummary(folder=status.display_name, new=new, bytes=size)


#: What the warning of :func:`_move_unstable` tells the user to do about the server.
UNSTABLE_HINT = (
    "The server gives this folder a new UIDVALIDITY on every session although its "
    "messages stay the same; syncer moves the archived entries to the new value instead "
    "of adding copies, and says this once. Other clients will download the folder again "
    "every time. On Courier-IMAP the folder's courierimapuiddb file is missing or cannot "
    "be written: check that the mail user owns the maildir folder and can write to it, "
    "then open the folder read-write once (SELECT it with any mail client) so that "
    "Courier writes the file again."
)


def _link_known(
    source: FolderSource,
    archive: AccountArchive,
    folder: str,
    sel: SelectedFolder,
    start_uid: int,
    pending: list[int] | None,
) -> tuple[int, list[int] | None]:
    """Link messages from ``start_uid`` that the archive has by EMAILID / X-GM-MSGID.

    One ``UID FETCH 1:* (X-GM-MSGID ...)`` (no bodies) per folder: a Gmail label
    folder repeats messages of All Mail, which is synced first, so its bodies are
    never downloaded twice (Gmail caps downloads at about 2.5 GB a day).

    :returns: (entries linked, the UIDs still to download, or ``pending`` unchanged
        when the server has no stable ids).
    """
    if not {"X-GM-EXT-1", "OBJECTID"} & source.capabilities:
        return 0, pending
    wanted = None if pending is None else set(pending)
    idents = [
        i for i in source.identities() if i.uid >= start_uid and (wanted is None or i.uid in wanted)
    ]
    if not idents:
        return 0, pending
    have = archive.live_uids(folder, sel.uidvalidity)
    idents = [i for i in idents if i.uid not in have]
    known = archive.emailid_index()
    links: list[Link] = [
        (i.uid, known[i.emailid], i.flags, i.internaldate, i.modseq, i.emailid)
        for i in idents
        if i.emailid in known
    ]
    linked = 0
    if links:
        # Linked entries may sit above the stored UIDNEXT: mark the folder incomplete
        # first, so a crash before the rest is fetched re-lists it (see _INCOMPLETE).
        archive.set_cursor(
            folder,
            FolderCursor(
                uidvalidity=sel.uidvalidity,
                uidnext=start_uid,
                highestmodseq=None,
                messages=_INCOMPLETE,
            ),
        )
        labels = {i.uid: i.labels for i in idents if i.labels is not None}
        linked = archive.link_existing(folder, sel.uidvalidity, links, labels=labels)
    done = {link[0] for link in links}
    return linked, [i.uid for i in idents if i.uid not in done]


def _reconcile(
    source: FolderSource,
    archive: AccountArchive,
    status: FolderStatus,
    sel: SelectedFolder,
    cursor: FolderCursor,
    *,
    full_scan: bool,
    flog: structlog.stdlib.BoundLogger,
) -> tuple[int, int]:
    """Apply expunges and flag changes to existing entries; returns (expunged, flags_changed).

    Commits them together with the new HIGHESTMODSEQ (UIDNEXT unchanged).
    """
    modseq_sane = (
        sel.highestmodseq is not None
        and cursor.highestmodseq is not None
        and sel.highestmodseq >= cursor.highestmodseq
    )
    if cursor.highestmodseq and sel.highestmodseq and sel.highestmodseq < cursor.highestmodseq:
        flog.warning(
            "folder.modseq_backwards", stored=cursor.highestmodseq, server=sel.highestmodseq
        )
    use_qresync = sel.qresync and modseq_sane and not full_scan
    # Every live entry counts, not only those below the cursor's UIDNEXT: an interrupted
    # re-listing (UIDVALIDITY reset, rename) leaves linked entries above it.
    live = archive.live_uids(status.name, sel.uidvalidity)
    gone = sorted(live & sel.vanished if use_qresync else live - set(source.uids()))
    new_cursor = replace(cursor, highestmodseq=sel.highestmodseq)
    expunged = archive.mark_gone(status.name, sel.uidvalidity, gone, None) if gone else 0

    # Changes for UIDs the archive does not hold yet are ignored by the store: those
    # messages are fetched below with their current flags.
    if use_qresync:
        changes = list(sel.changed)
    elif modseq_sane and not full_scan and sel.highestmodseq == cursor.highestmodseq:
        changes = []
    elif modseq_sane and not full_scan and "CONDSTORE" in source.capabilities:
        assert cursor.highestmodseq is not None
        changes = source.flags_since(cursor.highestmodseq)
    else:
        changes = source.all_flags()
    flags_changed = archive.update_flags(status.name, sel.uidvalidity, changes, new_cursor)
    return expunged, flags_changed


# Allowed (PLR0913): one folder's sync state, passed explicitly.
def _fetch_new(  # noqa: PLR0913
    source: FolderSource,
    archive: AccountArchive,
    status: FolderStatus,
    sel: SelectedFolder,
    start_uid: int,
    options: SyncOptions,
    *,
    progress: Progress,
    heartbeat: Heartbeat,
    uids: Sequence[int] | None = None,
) -> tuple[int, int, int]:
    """Download messages from ``start_uid`` (or exactly ``uids``).

    :returns: (entries added, bytes, the UIDNEXT reached).
    """
    if uids is None and (sel.exists == 0 or sel.uidnext <= start_uid):
        # Nothing arrived; `UID FETCH n:*` would still return the last message.
        return 0, 0, start_uid
    if uids is not None and not uids:
        return 0, 0, start_uid
    new = size = 0
    uidnext = start_uid
    expected = len(uids) if uids is not None else max(sel.uidnext - start_uid, 0)
    progress.folder_started(status.display_name, expected, 0)
    batches = source.fetch_messages(
        uids,
        start_uid=None if uids is not None else start_uid,
        batch_bytes=options.batch_bytes,
        batch_count=options.batch_messages,
    )
    for fetched in batches:
        batch = [m for m in fetched if m.uid >= start_uid]
        # Hold one batch at a time: the loop variables would otherwise keep this batch's
        # bodies alive while the source downloads the next one (twice the memory).
        del fetched
        if not batch:
            continue
        uidnext = max(uidnext, max(m.uid for m in batch) + 1)
        cursor = FolderCursor(
            uidvalidity=sel.uidvalidity,
            uidnext=uidnext if uids is None else start_uid,
            highestmodseq=sel.highestmodseq,
            messages=_INCOMPLETE,
        )
        new += archive.archive_batch(status.name, sel.uidvalidity, batch, cursor)
        batch_bytes = sum(len(m.raw) for m in batch)
        size += batch_bytes
        progress.advanced(len(batch), batch_bytes)
        heartbeat()
        del batch
    return new, size, uidnext


# Allowed (PLR0913): one folder's sync state, passed explicitly.
def _download_folder(  # noqa: PLR0913
    source: FolderSource,
    archive: AccountArchive,
    status: FolderStatus,
    sel: SelectedFolder,
    options: SyncOptions,
    *,
    clock: Clock,
    progress: Progress,
    heartbeat: Heartbeat,
    reuse_from: tuple[str, ...],
    fingerprints: list[HeaderFingerprint] | None = None,
) -> FolderSummary:
    """First sync of a folder, or a re-listing after UIDVALIDITY changed or a rename.

    When the archive already holds bodies from this folder (``reuse_from``),
    a cheap fingerprint FETCH finds them (or ``fingerprints``, already fetched), so
    only messages it does not recognise are downloaded: by EMAILID / X-GM-MSGID
    where the server has them, else by size and the SHA-256 of the header.
    """
    reused = 0
    to_fetch: list[int] | None = None  # None: every UID from 1
    if reuse_from and sel.exists:
        if fingerprints is None:
            fingerprints = source.fingerprints()
        by_emailid = archive.emailid_index() if any(fp.emailid for fp in fingerprints) else {}
        by_header = {
            key: sha for name in reuse_from for key, sha in archive.header_index(name).items()
        }
        links = []
        missing: list[int] = []
        for fp in fingerprints:
            sha = (by_emailid.get(fp.emailid) if fp.emailid else None) or by_header.get(
                (fp.size, fp.header_sha256)
            )
            if sha is None:
                missing.append(fp.uid)
            else:
                links.append((fp.uid, sha, fp.flags, fp.internaldate, fp.modseq, fp.emailid))
        if links:
            reused = archive.link_existing(status.name, sel.uidvalidity, links)
        archive.set_cursor(
            status.name,
            FolderCursor(
                uidvalidity=sel.uidvalidity, uidnext=1, highestmodseq=None, messages=_INCOMPLETE
            ),
        )
        to_fetch = missing
    elif sel.exists:
        reused, to_fetch = _link_known(source, archive, status.name, sel, 1, None)
    new, size, reached = _fetch_new(
        source,
        archive,
        status,
        sel,
        1,
        options,
        progress=progress,
        heartbeat=heartbeat,
        uids=to_fetch,
    )
    _finish(archive, status.name, sel, reached, clock, full_scan=True)
    return FolderSummary(folder=status.display_name, new=new, bytes=size, reused=reused)


def _finish(
    archive: AccountArchive,
    folder: str,
    sel: SelectedFolder,
    floor_uidnext: int,
    clock: Clock,
    *,
    full_scan: bool,
) -> None:
    """Record the folder as complete up to what SELECT reported."""
    archive.set_cursor(
        folder,
        FolderCursor(
            uidvalidity=sel.uidvalidity,
            uidnext=max(sel.uidnext, floor_uidnext),
            highestmodseq=sel.highestmodseq,
            messages=sel.exists,
        ),
    )
    if full_scan:
        archive.record_full_scan(folder, clock())
