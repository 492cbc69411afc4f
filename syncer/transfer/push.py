"""``syncer push`` / ``syncer restore``: archived mail into an IMAP account, exactly as it was.

Why it is built this way: a migration must survive being killed and run
again, and must never leave a message twice on the new server. The archive
says what to copy (:meth:`~syncer.archive.store.ArchiveStore.placements`: each
message in each folder, with flags and INTERNALDATE), :mod:`syncer.transfer.push_folders`
where it goes, :class:`~syncer.sources.imap.target.IMAPTarget` appends it, and
``push_log`` remembers what arrived: (target account, target folder, message)
with the target UID (from APPENDUID where the server has UIDPLUS).

Idempotence, including the window between an APPEND completing and its
``push_log`` row committing (a crash there leaves a message on the target the
log does not know):

* Messages in ``push_log`` for their target folder are never considered again.
* Before appending into a folder that already exists, the messages there
  whose UIDs the log does not hold are fingerprinted (size and SHA-256 of the
  header block, which carries the Message-ID; one UID SEARCH and one
  pipelined FETCH): a message to push whose fingerprint is there is recorded
  with that UID instead of appended. A server may store a message with other
  bytes than were sent (Cyrus turns raw 8-bit header bytes into ``X``), so a
  message is also recognised by Message-ID, INTERNALDATE (push sets it) and a
  size within 2 %. After a crash that is exactly the crash
  window (plus mail others put there); a folder the log fully accounts for
  costs no FETCH, and a folder created by this run not even the SEARCH.
  (Without UIDPLUS the log has no UIDs, and the whole folder is fingerprinted.)
* ``push_log`` rows commit once per APPEND batch, right after its answers.

Throughput: each batch (up to 200 messages or 8 MB) is one MULTIAPPEND, or one
round of pipelined APPENDs (LITERAL+); the next batch's bytes are read and
decompressed from the archive on another thread while the current one is on
the wire; and folders are pushed over two connections at once (``connections``).

Bytes: the archived bytes go out unchanged, except that a message with bare
LF line ends (an mbox import) is sent with CRLF, as IMAP requires
(:rfc:`3501#section-4.3`); its fingerprint is taken over what is sent. Messages
with raw 8-bit header bytes are read back after their folder (with APPENDUID);
those the server stored with other bytes count as ``altered`` ("stored
altered"), not ``appended``.

By default ``push`` copies what is still on the source server (entries not
expunged); ``--include-gone`` (and ``restore``, always) also what the archive
kept after the server deleted it. Only the personal namespace is pushed, empty
folders included (unless a query narrows the push); the folders and messages of
other users' and shared namespaces are counted in the summary
(``skipped_namespaces``), or with ``include_shared`` pushed below
:data:`SHARED_FOLDER` (issue 20 #8).
Flag changes in the archive after a message was pushed are not carried over.

Gmail labels (:mod:`syncer.transfer.labels`): to a server without X-GM-EXT-1,
a labelled message goes to one folder per label (not once per source label
folder plus All Mail); to Gmail, it is appended once (to All Mail) and labelled
with ``UID STORE +X-GM-LABELS`` right after its batch. (A crash between the
APPEND and the STORE leaves that batch unlabelled: not repaired by a re-run.)
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from syncer.errors import UsageError
from syncer.model import HeaderFingerprint, header_end, header_message_id
from syncer.transfer.labels import LABEL_FOLDER, label_placements, one_per_message
from syncer.transfer.push_folders import SourceFolder, TargetLayout, map_folders, readable

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore, FolderRecord
    from syncer.archive.store_transfer import Placement
    from syncer.sources.imap.target import IMAPTarget

__all__ = [
    "FolderPush",
    "PushOptions",
    "PushSummary",
    "SkippedNamespace",
    "check_source",
    "push_archive",
]

log = structlog.get_logger(__name__)

#: One APPEND round: at most this many messages, or about this many bytes.
BATCH_MESSAGES = 200
BATCH_BYTES = 8 * 1024 * 1024
_BARE_LF = re.compile(rb"(?<!\r)\n")


@dataclass(frozen=True, slots=True)
class PushOptions:
    """What ``syncer push`` was asked to do."""

    source: str
    target: str
    query: str = ""
    maps: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)
    dry_run: bool = False
    include_gone: bool = False
    #: Also push folders of other users' and shared namespaces, below :data:`SHARED_FOLDER`.
    include_shared: bool = False


#: The target folder that ``--include-shared`` puts other users' and shared folders below,
#: each with its whole source name as levels (``Shared/shared/bob/Projects``).
SHARED_FOLDER = "Shared"


@dataclass
class SkippedNamespace:
    """Folders of a namespace other than the personal one that push left out."""

    folders: int = 0
    messages: int = 0


@dataclass
class FolderPush:
    """One target folder's outcome.

    :ivar appended: sent with APPEND now and stored byte for byte; ``altered``: sent
        with APPEND now and stored with other bytes (Cyrus replaces raw 8-bit header
        bytes with ``X``); ``found``: already on the target (a crashed run's, or there
        before), recorded without appending; ``logged``: pushed by an earlier run;
        ``failed``: refused by the server.
    """

    target: str
    display: str = ""
    sources: list[str] = field(default_factory=list)
    created: bool = False
    #: An empty source folder, created on the target with nothing to copy.
    empty: bool = False
    appended: int = 0
    altered: int = 0
    found: int = 0
    logged: int = 0
    failed: int = 0
    bytes: int = 0
    pending: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class PushSummary:
    """What one push did, per target folder."""

    source: str
    target: str
    dry_run: bool
    folders: dict[str, FolderPush] = field(default_factory=dict)
    seconds: float = 0.0
    #: Namespace kind ("other", "shared") -> what was left out (without --include-shared).
    skipped_namespaces: dict[str, SkippedNamespace] = field(default_factory=dict)

    def skipped(self, namespace: str) -> SkippedNamespace:
        """The count of what was left out of ``namespace`` (created at first use)."""
        return self.skipped_namespaces.setdefault(namespace, SkippedNamespace())

    def count_skipped(self, namespace: str | None) -> None:
        """One message of ``namespace`` left out (None: not a namespace's, not counted)."""
        if namespace is not None:
            self.skipped(namespace).messages += 1

    @property
    def empty_created(self) -> int:
        """Empty folders created (or, in a dry run, to be created)."""
        return sum(1 for f in self.folders.values() if f.empty and f.created)

    @property
    def appended(self) -> int:
        return sum(f.appended for f in self.folders.values())

    @property
    def altered(self) -> int:
        return sum(f.altered for f in self.folders.values())

    @property
    def failed(self) -> int:
        return sum(f.failed for f in self.folders.values())

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.folders.values())


def _sendable(raw: bytes) -> bytes:
    """CRLF line ends (IMAP literals must have them); other bytes unchanged."""
    if b"\n" not in raw or raw.count(b"\n") == raw.count(b"\r\n"):
        return raw
    return _BARE_LF.sub(b"\r\n", raw)


def _fingerprint(raw: bytes) -> tuple[int, str]:
    return len(raw), hashlib.sha256(memoryview(raw)[: header_end(raw)]).hexdigest()


def _second(when: datetime | None) -> int | None:
    return None if when is None else int(when.timestamp())


def _near(size: int, sent: int) -> bool:
    """Sizes close enough for a server's rewrite of the same message (a few header bytes
    replaced, line ends changed): within 2 %, at least 512 bytes."""
    return abs(size - sent) <= max(512, sent // 50)


class _OnTarget:
    """The target folder's messages push_log does not account for, to recognise what a
    crashed run appended: by bytes (size and SHA-256 of the header block), else by
    Message-ID, INTERNALDATE (push sets it) and a size window, for servers that store a
    message with other bytes than were sent (issue 20 #9). Each UID is taken once.
    """

    def __init__(self, fingerprints: Sequence[HeaderFingerprint]) -> None:
        self.by_bytes: dict[tuple[int, str], list[int]] = defaultdict(list)
        self.by_id: dict[str, list[tuple[int, int, int | None]]] = defaultdict(list)
        self.taken: set[int] = set()
        for fp in fingerprints:
            self.by_bytes[(fp.size, fp.header_sha256)].append(fp.uid)
            if fp.message_id:
                self.by_id[fp.message_id].append((fp.uid, fp.size, _second(fp.internaldate)))

    def __bool__(self) -> bool:
        return bool(self.by_bytes)

    def take(self, raw: bytes, when: datetime | None) -> int | None:
        """The UID of ``raw`` (to be appended with INTERNALDATE ``when``) on the target."""
        for uid in self.by_bytes.get(_fingerprint(raw), ()):
            if uid not in self.taken:
                self.taken.add(uid)
                return uid
        message_id = header_message_id(raw)
        if message_id is None:
            return None
        date = _second(when)
        for uid, size, stored in self.by_id.get(message_id, ()):
            if uid not in self.taken and _near(size, len(raw)) and date in (None, stored):
                self.taken.add(uid)
                return uid
        return None


def _may_be_altered(raw: bytes) -> bool:
    """Raw 8-bit bytes in the header block: what servers are known to rewrite on APPEND
    (Cyrus stores them as ``X``), so these are read back after their folder."""
    return not raw[: header_end(raw)].isascii()


def _batches(items: Sequence[Placement]) -> list[list[Placement]]:
    batches: list[list[Placement]] = []
    current: list[Placement] = []
    size = 0
    for item in items:
        if current and (len(current) >= BATCH_MESSAGES or size + item.size > BATCH_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append(item)
        size += item.size
    if current:
        batches.append(current)
    return batches


class _Pusher:
    def __init__(
        self,
        store: ArchiveStore,
        target: IMAPTarget,
        options: PushOptions,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.store = store
        self.target = target
        self.options = options
        self.progress = progress
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="push-read")
        self.existing: set[str] = set()  # target folders that exist (shared by connections)
        self.gmail = False  # the target has X-GM-EXT-1: labels go by STORE (see plan)

    def plan(self, summary: PushSummary) -> dict[str, list[Placement]]:
        """Target folder -> placements to copy (push_log not yet consulted)."""
        options = self.options
        records = self.store.folders(options.source)
        if not records:
            raise UsageError(f"Account {options.source!r} has nothing in the archive to push.")
        others = {r.name: r.namespace for r in records.values() if r.namespace != "personal"}
        mapping, layout = self._mapping(records, others, summary)
        self.gmail = "X-GM-EXT-1" in self.target.capabilities

        def destination_of(placement: Placement) -> str | None:
            if not placement.folder.startswith(LABEL_FOLDER):
                return mapping.get(placement.folder)
            if placement.folder not in mapping:
                label = SourceFolder(
                    placement.folder, placement.display_name, "/", placement.special_use
                )
                mapping.update(map_folders([label], layout, options.maps))
            return mapping[placement.folder]

        groups: dict[str, dict[int, Placement]] = defaultdict(dict)
        holding: set[str] = set()  # source folders with something to copy
        labelled = False  # a Gmail source: its folders are labels, made from the messages
        for ids in self.store.transfer_message_ids(options.query, account=options.source):
            placements = self.store.placements(ids, account=options.source)
            labelled |= _note_sources(placements, holding, include_gone=options.include_gone)
            # Gmail labels: to Gmail, one copy in All Mail labelled by STORE; elsewhere a
            # folder per label (syncer.transfer.labels).
            placements = one_per_message(placements) if self.gmail else label_placements(placements)
            for placement in placements:
                if placement.gone and not options.include_gone:
                    continue
                destination = destination_of(placement)
                if destination is None:
                    summary.count_skipped(others.get(placement.folder))
                    continue
                groups[destination].setdefault(placement.message_pk, placement)
                row = summary.folders.get(destination)
                if row is None:
                    row = FolderPush(destination, readable(destination))
                    summary.folders[destination] = row
                if placement.folder not in row.sources:
                    row.sources.append(placement.folder)
        if not options.query and not labelled:
            empty = [r for r in records.values() if r.name not in holding]
            self._plan_empty(summary, empty, mapping, groups)
        return {name: list(items.values()) for name, items in groups.items()}

    def _mapping(
        self, records: dict[str, FolderRecord], others: dict[str, str], summary: PushSummary
    ) -> tuple[dict[str, str], TargetLayout]:
        """Source folder -> target folder, and the target's layout.

        Only the personal namespace, unless ``include_shared``: other users' and shared
        folders are counted as skipped, so the summary says what was left out.
        """
        personal = [r for r in records.values() if r.namespace == "personal"]
        prefix, delimiter = self.target.personal_namespace()
        listed = self.target.list_folders()
        roles = {f.special_use.lower(): f.name for f in listed if f.special_use}
        self.existing.update(f.name for f in listed)
        layout = TargetLayout(prefix=prefix, delimiter=delimiter or "/", roles=roles)
        maps = self.options.maps
        mapping = map_folders(
            [SourceFolder(r.name, r.display_name, r.delimiter, r.special_use) for r in personal],
            layout,
            maps,
        )
        if self.options.include_shared:
            mapping.update(map_folders(_below_shared(records, others), layout, maps))
            return mapping, layout
        for name, kind in others.items():
            if records[name].selectable and not records[name].deleted:
                summary.skipped(kind).folders += 1
        return mapping, layout

    def _plan_empty(
        self,
        summary: PushSummary,
        records: Iterable[FolderRecord],
        mapping: dict[str, str],
        groups: dict[str, dict[int, Placement]],
    ) -> None:
        """Rows for source folders with nothing to copy whose target folder does not
        exist: push creates them, so the folder layout arrives whole (issue 20 #8).
        Not with a query (which selects messages, not folders), nor from Gmail (whose
        label folders are made from the messages' labels)."""
        for record in records:
            destination = mapping.get(record.name)
            if (
                destination is None
                or record.deleted
                or not record.selectable
                or destination in groups
                or destination in self.existing
                or destination in summary.folders
            ):
                continue
            summary.folders[destination] = FolderPush(
                destination, readable(destination), [record.name], created=True, empty=True
            )

    def _present(self, folder: str, logged: dict[int, int | None]) -> _OnTarget:
        """The target folder's messages push_log does not account for."""
        known = {uid for uid in logged.values() if uid is not None}
        return _OnTarget(self.target.fingerprints(folder, known))

    # Allowed (C901): one folder's push, its labels and its crash recovery read best together.
    def push_folder(  # noqa: C901
        self, row: FolderPush, todo: list[Placement], logged: dict[int, int | None]
    ) -> None:
        from syncer.sources.imap.target import AppendItem

        folder = row.target
        present = _OnTarget(())
        resumed = folder in self.existing
        # What this run appended to a folder that existed: key -> [(message id, UID)],
        # checked at the end against APPENDs of a killed run that landed late.
        mine: dict[tuple[int, str], list[tuple[int, int]]] = defaultdict(list)
        accounted = {uid for uid in logged.values() if uid is not None}
        # Appended messages a server may have stored altered: UID -> what was sent.
        suspects: dict[int, tuple[int, str]] = {}
        uidvalidity: int | None = None
        if resumed:
            present = self._present(folder, logged)
        else:
            self.target.create_folder(folder)
            self.existing.add(folder)
            row.created = True
        batches = _batches(todo)
        loading: Future[dict[str, bytes]] | None = None
        for index, batch in enumerate(batches):
            if loading is None:
                loading = self.pool.submit(self.store.raw_messages, [p.sha256 for p in batch])
            raws = loading.result()
            loading = None
            if index + 1 < len(batches):  # read the next batch while this one is sent
                following = [p.sha256 for p in batches[index + 1]]
                loading = self.pool.submit(self.store.raw_messages, following)
            records: list[tuple[str, int, int | None]] = []
            sending: list[tuple[Placement, bytes]] = []
            for placement in batch:
                raw = _sendable(raws[placement.sha256])
                uid = present.take(raw, placement.internaldate) if present else None
                if uid is not None:
                    records.append((folder, placement.message_pk, uid))
                    row.found += 1
                    continue
                sending.append((placement, raw))
            results = self.target.append(
                folder,
                [AppendItem(raw, p.flags, p.internaldate) for p, raw in sending],
            )
            for (placement, raw), result in zip(sending, results, strict=True):
                if result.ok:
                    records.append((folder, placement.message_pk, result.uid))
                    row.appended += 1
                    row.bytes += len(raw)
                    if result.uid is not None and _may_be_altered(raw):
                        suspects[result.uid] = _fingerprint(raw)
                    if resumed and result.uid is not None:
                        mine[_fingerprint(raw)].append((placement.message_pk, result.uid))
                        uidvalidity = result.uidvalidity
                else:
                    row.failed += 1
                    row.errors.append(f"message {placement.sha256[:12]}: {result.error}")
                    log.warning(
                        "push.append_failed",
                        folder=folder,
                        sha256=placement.sha256,
                        answer=result.error,
                    )
            if self.gmail:
                self.target.add_labels(
                    folder,
                    {
                        result.uid: placement.labels
                        for (placement, _raw), result in zip(sending, results, strict=True)
                        if result.ok and result.uid is not None and placement.labels
                    },
                )
            self.store.record_pushed(self.options.target, records)
            accounted.update(uid for _, _, uid in records if uid is not None)
            if self.progress is not None:
                self.progress(len(batch))
        if mine and uidvalidity is not None:
            self._drop_late_twins(row, mine, accounted, uidvalidity)
        if suspects:
            self._count_altered(row, suspects)

    def _count_altered(self, row: FolderPush, suspects: dict[int, tuple[int, str]]) -> None:
        """Read back the appended messages a server may have rewritten; those stored with
        other bytes count as ``altered``, not ``appended`` (one EXAMINE and one FETCH of
        their headers, only for messages with raw 8-bit header bytes)."""
        stored = self.target.fingerprints(row.target, only=suspects)
        altered = sum(1 for fp in stored if (fp.size, fp.header_sha256) != suspects[fp.uid])
        if altered:
            row.appended -= altered
            row.altered += altered
            log.info("push.stored_altered", folder=row.target, count=altered)

    def _drop_late_twins(
        self,
        row: FolderPush,
        mine: dict[tuple[int, str], list[tuple[int, int]]],
        accounted: set[int],
        uidvalidity: int,
    ) -> None:
        """Remove this run's copies of messages a killed run's APPEND delivered meanwhile.

        A run killed with APPENDs fully sent leaves the server storing them after
        the client is gone; a re-run started at once may fingerprint the folder
        before they land and append the same messages again. So once a folder
        that existed is done, the messages nobody accounts for are fingerprinted
        again, and where one is a twin of a message this run appended, this run's
        copy (its UID from APPENDUID) is expunged -- exactly that UID, with UID
        EXPUNGE -- and the log points at the twin. Nothing else is ever removed.
        """
        folder = row.target
        twins: list[int] = []
        relog: list[tuple[str, int, int | None]] = []
        for fp in self.target.fingerprints(folder, accounted):
            copies = mine.get((fp.size, fp.header_sha256))
            if copies:
                pk, uid = copies.pop()
                twins.append(uid)
                relog.append((folder, pk, fp.uid))
        if not twins:
            return
        self.target.remove(folder, uidvalidity, twins)
        self.store.record_pushed(self.options.target, relog)
        row.appended -= len(twins)
        row.found += len(twins)
        log.warning("push.twins_removed", folder=folder, count=len(twins))


def _note_sources(
    placements: Sequence[Placement], holding: set[str], *, include_gone: bool
) -> bool:
    """Add the source folders of ``placements`` that have something to copy to
    ``holding``; True when one of them carries Gmail labels."""
    holding.update(p.folder for p in placements if include_gone or not p.gone)
    return any(p.labels is not None for p in placements)


def _below_shared(records: dict[str, FolderRecord], others: dict[str, str]) -> list[SourceFolder]:
    """Other users' and shared folders as if they were personal ones below
    :data:`SHARED_FOLDER`, their whole names as levels (``--include-shared``)."""
    folders = []
    for name in others:
        record = records[name]
        delimiter = record.delimiter or "/"
        display = SHARED_FOLDER + delimiter + record.display_name
        folders.append(SourceFolder(name, display, delimiter, None))
    return folders


def push_archive(
    store: ArchiveStore,
    target: IMAPTarget,
    options: PushOptions,
    *,
    progress: Callable[[int], None] | None = None,
    on_plan: Callable[[int], None] | None = None,
    connect: Callable[[], IMAPTarget] | None = None,
    connections: int = 1,
) -> PushSummary:
    """Copy the archived messages of ``options.source`` into ``target``.

    :param progress: called with the number of messages just handled (from any thread).
    :param on_plan: called once with the number of messages to handle.
    :param connect: opens another connection to the target, for ``connections`` > 1:
        folders are then pushed in parallel, each folder by one connection (so each
        keeps its order), the biggest first.
    :raises UsageError: when the source account has nothing archived.
    :raises SourceError: when the target server fails (a re-run resumes).
    """
    started = time.monotonic()
    summary = PushSummary(options.source, options.target, options.dry_run)
    pusher = _Pusher(store, target, options, progress)
    try:
        groups = pusher.plan(summary)
        pushed = store.pushed(options.target)
        work: list[tuple[FolderPush, list[Placement], dict[int, int | None]]] = []
        for name in sorted(groups, key=lambda n: (n.upper() != "INBOX", n)):
            row = summary.folders[name]
            logged = pushed.get(name, {})
            todo = [p for p in groups[name] if p.message_pk not in logged]
            row.logged = len(groups[name]) - len(todo)
            row.pending = len(todo)
            row.created = name not in pusher.existing
            if todo:
                work.append((row, todo, logged))
        if on_plan is not None:
            on_plan(sum(len(todo) for _, todo, _ in work))
        if not options.dry_run:
            for row in summary.folders.values():
                if row.empty:
                    target.create_folder(row.target)
                    pusher.existing.add(row.target)
            _run(pusher, work, connect, connections)
    finally:
        pusher.pool.shutdown(wait=True, cancel_futures=True)
    summary.seconds = time.monotonic() - started
    log.info(
        "push.completed",
        source=options.source,
        target=options.target,
        appended=summary.appended,
        altered=summary.altered,
        empty_created=summary.empty_created,
        failed=summary.failed,
        bytes=summary.bytes,
        seconds=round(summary.seconds, 3),
        dry_run=options.dry_run,
    )
    if summary.failed and not options.dry_run:
        log.warning("push.incomplete", failed=summary.failed)
    for kind, skipped in summary.skipped_namespaces.items():
        log.info(
            "push.namespace_skipped", namespace=kind, folders=skipped.folders,
            messages=skipped.messages,
        )  # fmt: skip
    return summary


def _run(
    pusher: _Pusher,
    work: list[tuple[FolderPush, list[Placement], dict[int, int | None]]],
    connect: Callable[[], IMAPTarget] | None,
    connections: int,
) -> None:
    """Push every folder of ``work``, on up to ``connections`` connections at once.

    Why parallel: the server does most of the work of an APPEND (parsing, writing,
    indexing), and each IMAP connection is served by one server process, so two
    connections keep two cores of the server busy.
    """
    queue = sorted(work, key=lambda item: -sum(p.size for p in item[1]))
    lock = threading.Lock()
    failures: list[BaseException] = []

    def worker(current: _Pusher) -> None:
        while True:
            with lock:
                if not queue or failures:
                    return
                row, todo, logged = queue.pop(0)
            try:
                with structlog.contextvars.bound_contextvars(folder=row.target):
                    current.push_folder(row, todo, logged)
                    row.pending = 0
                    log.info(
                        "push.folder_done",
                        appended=row.appended,
                        found=row.found,
                        logged=row.logged,
                        failed=row.failed,
                    )
            except BaseException as exc:
                with lock:
                    failures.append(exc)
                return

    extra: list[_Pusher] = []
    threads: list[threading.Thread] = []
    try:
        if connect is not None:
            for _ in range(min(connections, len(queue)) - 1):
                helper = _Pusher(pusher.store, connect(), pusher.options, pusher.progress)
                helper.existing = pusher.existing
                extra.append(helper)
        for helper in extra:
            thread = threading.Thread(target=worker, args=(helper,), name="push-connection")
            thread.start()
            threads.append(thread)
        worker(pusher)
    finally:
        for thread in threads:
            thread.join()
        for helper in extra:
            helper.pool.shutdown(wait=True, cancel_futures=True)
            helper.target.close()
    if failures:
        raise failures[0]


def check_source(store: ArchiveStore, account: str) -> None:
    """:raises UsageError: when the archive has no account ``account``."""
    if store.account_protocol(account) is None:
        raise UsageError(f"Account {account!r} is not in the archive; nothing to push from it.")
