"""IMAP adapter: :class:`IMAPSource` implements ``FolderSource`` for any IMAP4rev1 server.

Why it is built this way: imapclient is kept for what it does well and what
is easy to get wrong -- TCP/TLS set-up, STARTTLS, LOGIN, CAPABILITY, LOGOUT --
and every command after login goes through one small runner of our own
(:mod:`syncer.sources.imap.connection`, driven through the public
:class:`~syncer.sources.imap.session.IMAPSession`) that writes on imapclient's
imaplib connection (``client._imap``: its tag counter, ``send()``,
``readline()``, ``read(n)``) and reads the answer with
:mod:`syncer.sources.imap.parser`. That gives one framing layer
for everything (literals anywhere, pipelining, no per-line debug formatting),
the QRESYNC/VANISHED answers imapclient does not understand
(:mod:`syncer.sources.imap.qresync`), and above all the lean bulk download: a body literal
is read with one ``read(N)`` instead of going through imapclient's
byte-by-byte parser (5-6x faster on loopback, tests/bench/bench_imap_fetch.py).
The imapclient session stays usable afterwards (tags come from
``_new_tag()``, completed tags are removed, ``state`` follows EXAMINE).

Public API::

    settings = IMAPSettings("imap.example.com", 993, "tls", "me", secret, account="work")
    source = IMAPSource.open(settings)
    try:
        for folder in source.list_folders():       # FolderStatus, with STATUS
            ...
        sel = source.select("INBOX", qresync=(cursor.uidvalidity, cursor.highestmodseq))
        for batch in source.fetch_messages(start_uid=cursor.uidnext):
            ...                                    # list[RemoteMessage], bounded
        source.flags_since(modseq); source.all_flags(); source.uids(); source.fingerprints()
    finally:
        source.close()

``IMAPSource(settings)`` only stores its settings; :meth:`IMAPSource.connect` (or
the classmethod :meth:`IMAPSource.open`, which is construct + connect) opens
the connection, logs in and reads the capabilities *after* login. Every other
method connects on first use if needed, and after a lost connection the next
call connects afresh (the selected folder is then gone: select again).

Behaviour worth knowing:

* Folder names are the wire form (modified UTF-7) in ``FolderStatus.name``;
  ``display_name`` is the name people see (:mod:`syncer.sources.folder_names`:
  personal prefix such as ``INBOX.`` off, ``/`` between levels, decoded), and
  ``include``/``exclude`` globs match it (``fnmatchcase``; ``*`` crosses ``/``).
* Flags are sorted, ``\\Recent`` removed; INTERNALDATE is an aware UTC datetime.
* ``BODY.PEEK[]`` / ``BODY.PEEK[HEADER]`` only, so ``\\Seen`` is never set, and
  folders are opened with EXAMINE (read-only).
* UID sets are compressed into ranges and split above 8,000 bytes (Dovecot
  answers "Too long argument" to long lists).
* A requested UID whose body does not come back: if a ``NOOP`` + ``UID SEARCH``
  shows it was expunged meanwhile (Dovecot answers ``BODY[] NIL`` with
  ``OK [EXPUNGEISSUED]``), it is skipped with a warning
  (``imap.fetch.expunged``); if it still exists, :class:`SourceError` names the
  folder and the UIDs -- a message that exists is never skipped silently.
* ``max_bytes_per_second`` throttles the body download (reads are paced).
* Gmail (X-GM-EXT-1): X-GM-MSGID is fetched as ``emailid`` and X-GM-LABELS as
  ``labels`` (with bodies, fingerprints and flag listings, so CONDSTORE keeps them
  current like flags); :meth:`IMAPSource.identities` lists the ids of a folder without
  bodies so the pipeline can link messages it already has. Tested against a
  Gmail-shaped double (tests/servers/gmail.py), not against Gmail.

Errors: every library exception is translated in :meth:`IMAPSession.map_errors`
(the table shared with POP3 and SMTP, :mod:`syncer.protocols.errors`, in the
words of :mod:`syncer.sources.imap.errors`) into ``SourceAuthError``,
``SourceUnavailable`` (transient), ``ProtocolViolation`` or ``SourceError``.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType

import structlog

from syncer.errors import SourceError
from syncer.model import (
    FlagState,
    FolderStatus,
    HeaderFingerprint,
    MessageIdentity,
    RemoteMessage,
    SelectedFolder,
    header_message_id,
)
from syncer.sources.imap.batch import BatchGuard
from syncer.sources.imap.connection import Arg, CommandFailed, astring
from syncer.sources.imap.expunge import expunge_uids
from syncer.sources.imap.listing import (
    ListCollector,
    ListEntry,
    display_name,
    folder_status,
    list_commands,
    mailbox_id_command,
    matches_globs,
    parse_search,
    parse_status,
    parse_status_or_warn,
    status_items,
    valid_object_id,
)
from syncer.sources.imap.parser import (
    DEFAULT_MAX_LITERAL,
    MAX_ANSWER_UIDS,
    Completion,
    FetchItem,
    LineSource,
    Response,
    ResponseError,
    compress_uids,
    is_fetch,
    parse_fetch,
    plan_batches,
)
from syncer.sources.imap.qresync import SelectReader
from syncer.sources.imap.session import IMAPSession, check_ok
from syncer.sources.imap.settings import IMAPSettings, Security

__all__ = ["IMAPSettings", "IMAPSource", "Security"]

log = structlog.get_logger(__name__)

#: Fingerprint FETCHes carry only headers; keep each command's answer moderate.
_FINGERPRINT_CHUNK = 5000

#: A header block is hashed and dropped as it arrives; this bounds one (a message
#: without an empty line is all header).
_MAX_HEADER_LITERAL = 32 * 1024 * 1024


def _search_collector(into: set[int]) -> Callable[[Response, int], None]:
    """An ``on_untagged`` that parses SEARCH/ESEARCH answers as they arrive, into ``into``
    (capped: :func:`parse_search`), so no answer is held as text."""

    def on(response: Response, _index: int) -> None:
        if response.text[:9].upper().startswith((b"* SEARCH", b"* ESEARCH")):
            parse_search([response], into=into)

    return on


def _emailid(item: FetchItem) -> str | None:
    """EMAILID (:rfc:`8474`) where sent, else Gmail's X-GM-MSGID as text."""
    if item.emailid is not None or item.gm_msgid is None:
        return item.emailid
    return str(item.gm_msgid)


def _labels(item: FetchItem) -> tuple[str, ...] | None:
    """Gmail's labels, sorted and without duplicates; None when not sent."""
    if item.gm_labels is None:
        return None
    return tuple(sorted(set(item.gm_labels)))


class IMAPSource:
    """A ``FolderSource`` over IMAP; see the module docstring.

    :param settings: where and how to connect, and what :meth:`list_folders`
        covers (:class:`IMAPSettings`).
    """

    def __init__(self, settings: IMAPSettings) -> None:
        self.settings = settings
        #: The connection, shared with :class:`IMAPTarget` and :func:`expunge_uids`.
        self.session = IMAPSession(settings)

    def __repr__(self) -> str:  # never shows the password
        s = self.settings
        return (
            f"IMAPSource(account={s.account!r}, host={s.host!r}, port={s.port}, "
            f"security={s.security!r}, username={s.username!r})"
        )

    # -- connection ------------------------------------------------------------------------

    @classmethod
    def open(cls, settings: IMAPSettings) -> IMAPSource:
        """Construct, then :meth:`connect`.

        :raises SourceError: (and subclasses) when connecting or logging in fails.
        """
        return cls(settings).connect()

    def connect(self) -> IMAPSource:
        """Connect, secure the connection, log in, read capabilities; idempotent.

        :raises SourceAuthError: when the login is refused.
        :raises SourceUnavailable: network trouble, timeouts, TLS failures.
        :raises SourceError: when STARTTLS is asked for but not offered, or the
            certificate does not verify.
        """
        self.session.connect()
        return self

    @property
    def capabilities(self) -> frozenset[str]:
        """Upper-cased capabilities read after login (empty before :meth:`connect`)."""
        return self.session.capabilities

    def close(self) -> None:
        """LOGOUT and close the socket; never raises."""
        self.session.close()

    def __enter__(self) -> IMAPSource:
        return self.connect()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def _label(self) -> str:
        return self.settings.label

    @property
    def _server(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def _map_errors(self, folder: str | None = None) -> contextlib.AbstractContextManager[None]:
        """The one place library exceptions become ``SourceError`` subclasses
        (:meth:`IMAPSession.map_errors`)."""
        return self.session.map_errors(folder)

    def _require_selected(self) -> str:
        session = self.session
        if not session.connected or session.selected is None:
            raise SourceError(
                f"Account {self._label!r}: no folder is selected; call select() first.",
                account=self.settings.account or None,
            )
        return session.selected

    # -- folders ----------------------------------------------------------------------------

    def list_folders(self, *, with_status: bool = True) -> list[FolderStatus]:
        """LIST the configured namespaces, with STATUS (LIST-STATUS where offered).

        Non-selectable folders (``\\Noselect``, ``\\NonExistent``) are returned with
        ``selectable=False`` and no status. A folder whose STATUS fails (deleted
        between LIST and STATUS) is returned without status, with a warning.

        :raises SourceError:
        """
        with self._map_errors():
            namespaces = self.session.namespaces()
            caps = self.capabilities
            extended = "LIST-EXTENDED" in caps
            list_status = with_status and "LIST-STATUS" in caps
            patterns = [prefix + "*" for prefix in namespaces.prefixes(self.settings.namespaces)]
            if "personal" in self.settings.namespaces and "*" not in patterns:
                patterns.append("INBOX")  # personal prefix like "INBOX." misses INBOX itself
            patterns = list(dict.fromkeys(patterns))
            if not patterns:
                return []

            collected = ListCollector()
            commands = list_commands(
                patterns,
                caps,
                subscribed_only=self.settings.subscribed_only,
                list_status=list_status,
            )
            self.session.run_ok("LIST", commands, collected)

            naming = namespaces.naming()
            kept: list[tuple[ListEntry, str, str]] = []
            for raw, entry in collected.entries.items():
                kind = namespaces.classify(entry.name)
                if kind not in self.settings.namespaces:
                    continue
                if (
                    self.settings.subscribed_only
                    and not extended
                    and raw not in collected.subscribed
                ):
                    continue
                shown = naming.shown(entry.name, entry.delimiter)
                if not matches_globs(shown, self.settings.include, self.settings.exclude):
                    continue
                kept.append((entry, kind, shown))

            if with_status and not list_status:
                self._status_each([e for e, _, _ in kept if e.selectable], collected.statuses)
            if with_status and "OBJECTID" in caps:
                self._mailbox_ids([e for e, _, _ in kept if e.selectable], collected.statuses)

            folders = [
                folder_status(entry, kind, shown, collected.statuses.get(entry.raw_name))
                for entry, kind, shown in kept
            ]
        log.debug("imap.folders.listed", count=len(folders), list_status=list_status)
        return folders

    def _status_each(
        self, entries: Sequence[ListEntry], statuses: dict[bytes, dict[str, int | str]]
    ) -> None:
        """One STATUS per folder, all pipelined: one round trip however many folders."""
        if not entries:
            return
        items = b" (" + status_items(self.capabilities) + b")"

        def on(response: Response, _index: int) -> None:
            if response.text[:9].upper().startswith(b"* STATUS "):
                parsed = parse_status_or_warn(response)
                if parsed is not None:
                    statuses[parsed[0]] = parsed[1]

        completions = self.session.run([[b"STATUS ", astring(e.name), items] for e in entries], on)
        for entry, completion in zip(entries, completions, strict=True):
            if completion.status != "OK":
                statuses.pop(entry.raw_name, None)
                log.warning(
                    "imap.status.failed",
                    folder=entry.name,
                    answer=f"{completion.status} {completion.text}",
                )

    def _mailbox_ids(
        self, entries: Sequence[ListEntry], statuses: dict[bytes, dict[str, int | str]]
    ) -> None:
        """Add each folder's MAILBOXID (RFC 8474), asked alone and pipelined.

        Cyrus 3.6 sends garbage for MAILBOXID asked next to a counter, so it gets a
        STATUS of its own; an id that is not RFC 8474 syntax is dropped with a warning.
        Folders whose counters are missing get no id either: no status, no folder.
        """
        wanted = [e for e in entries if e.raw_name in statuses]
        if not wanted:
            return

        def on(response: Response, _index: int) -> None:
            if not response.text[:9].upper().startswith(b"* STATUS "):
                return
            parsed = parse_status_or_warn(response)
            if parsed is None or parsed[0] not in statuses:
                return
            value = parsed[1].get("MAILBOXID")
            if valid_object_id(value) is not None:
                statuses[parsed[0]]["MAILBOXID"] = value  # type: ignore[assignment]
            else:
                log.warning("imap.mailboxid.invalid", folder=display_name(parsed[0]))

        self.session.run([mailbox_id_command(e.name) for e in wanted], on)

    # -- select -----------------------------------------------------------------------------

    # Allowed (C901): EXAMINE with QRESYNC, CONDSTORE or neither, and each part of the answer.
    def select(self, folder: str, *, qresync: tuple[int, int] | None = None) -> SelectedFolder:  # noqa: C901
        """EXAMINE ``folder`` (read-only), with QRESYNC or CONDSTORE where offered.

        :param qresync: ``(uidvalidity, modseq)`` from the archive; with QRESYNC the
            answer carries ``vanished`` and ``changed`` and ``qresync=True``.
        :raises SourceError: e.g. when the folder does not exist.
        """
        session = self.session
        with self._map_errors(folder):
            session.connect()
            caps = self.capabilities
            condstore = "CONDSTORE" in caps or "QRESYNC" in caps
            use_qresync = (
                "QRESYNC" in caps
                and not session.qresync_broken
                and qresync is not None
                and qresync[0] > 0
                and qresync[1] > 0
            )
            commands: list[list[Arg]] = []
            if use_qresync and not session.qresync_enabled:
                # ENABLE is only valid outside a selected folder (RFC 5161). CLOSE after
                # EXAMINE never expunges (RFC 3501 6.4.2), so it is safe without UNSELECT.
                if session.selected is not None:
                    commands.append([b"UNSELECT" if "UNSELECT" in caps else b"CLOSE"])
                commands.append([b"ENABLE QRESYNC"])
            params = b""
            if use_qresync:
                assert qresync is not None
                params = b" (QRESYNC (%d %d))" % qresync
            elif condstore:
                params = b" (CONDSTORE)"
            examine_index = len(commands)
            commands.append([b"EXAMINE ", astring(folder), params])

            reader = SelectReader()
            enabled: list[bytes] = []

            def on(response: Response, index: int) -> None:
                if index == examine_index:
                    reader.feed(response)
                elif response.text[:10].upper().startswith(b"* ENABLED"):
                    enabled.extend(response.text[10:].upper().split())

            session.selected = None
            completions = session.run(commands, on)
            if examine_index:
                session.qresync_enabled = b"QRESYNC" in enabled and all(
                    c.status == "OK" for c in completions[:examine_index]
                )
                if not session.qresync_enabled:
                    # Advertised but not enabled: the EXAMINE answer cannot be trusted
                    # either way, so select again without QRESYNC.
                    session.qresync_broken = True
                    session.left()
                    log.warning("imap.qresync.unavailable", folder=folder)
                    return self.select(folder)
            done = completions[examine_index]
            if done.status != "OK":
                session.left()  # a failed EXAMINE leaves no folder selected
                raise CommandFailed("EXAMINE", done)
            # Keep imaplib's view in step, so imapclient calls remain legal afterwards.
            session.entered(folder, readonly=True)
            if reader.uidnext is None:
                reader.uidnext = self._status_uidnext(folder)
            selected, distrust = reader.result(
                folder, qresync=qresync if use_qresync else None, condstore=condstore
            )
            session.exists = selected.exists
        if distrust is not None:
            log.warning("imap.qresync.distrusted", folder=folder, reason=distrust)
        log.debug(
            "imap.folder.selected",
            folder=folder,
            exists=selected.exists,
            uidvalidity=selected.uidvalidity,
            uidnext=selected.uidnext,
            highestmodseq=selected.highestmodseq,
            qresync=selected.qresync,
            vanished=len(selected.vanished),
            changed=len(selected.changed),
        )
        return selected

    def _status_uidnext(self, folder: str) -> int:
        """UIDNEXT by STATUS, for servers whose EXAMINE answer leaves it out."""
        found: dict[bytes, dict[str, int | str]] = {}

        def on(response: Response, _index: int) -> None:
            if response.text[:9].upper().startswith(b"* STATUS "):
                name, values = parse_status(response)
                found[name] = values

        self.session.run_ok("STATUS", [[b"STATUS ", astring(folder), b" (UIDNEXT)"]], on)
        for values in found.values():
            uidnext = values.get("UIDNEXT")
            if isinstance(uidnext, int):
                return uidnext
        raise ResponseError(f"neither EXAMINE nor STATUS told the UIDNEXT of {folder!r}")

    # -- messages ---------------------------------------------------------------------------

    def _body_items(self, section: bytes) -> bytes:
        items = [b"UID", b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", section]
        caps = self.capabilities
        if "CONDSTORE" in caps or "QRESYNC" in caps:
            items.append(b"MODSEQ")
        if "OBJECTID" in caps:
            items.append(b"EMAILID")
        if "X-GM-EXT-1" in caps:
            items.extend([b"X-GM-MSGID", b"X-GM-LABELS"])
        return b" ".join(items)

    def _fetch(
        self,
        uid_sets: Sequence[bytes],
        items: bytes,
        on_item: Callable[[FetchItem], None],
        *,
        modifiers: bytes = b"",
        reader: LineSource | None = None,
        expected_bytes: int | None = None,
        max_literal: int = DEFAULT_MAX_LITERAL,
    ) -> list[Completion]:
        """``UID FETCH`` each set (pipelined); every FETCH response goes to ``on_item``.

        Responses without a UID (unsolicited flag updates by sequence number) are
        skipped: every response to a UID FETCH carries the UID (RFC 3501 6.4.8).
        Listings (no ``expected_bytes``) are allowed about 100 bytes per message the
        folder holds before their deadline.
        """

        def on(response: Response, _index: int) -> None:
            if is_fetch(response.text):
                item = parse_fetch(response)
                if item.uid is not None:
                    on_item(item)

        if expected_bytes is None:
            expected_bytes = (self.session.exists or 0) * 100
        commands = [[b"UID FETCH ", s, b" (", items, b")", modifiers] for s in uid_sets]
        return self.session.run(
            commands, on, reader=reader, expected_bytes=expected_bytes, max_literal=max_literal
        )

    def fetch_messages(
        self,
        uids: Iterable[int] | None = None,
        *,
        start_uid: int | None = None,
        batch_bytes: int = 32 * 1024 * 1024,
        batch_count: int = 500,
    ) -> Iterator[list[RemoteMessage]]:
        """Full messages of the selected folder in batches bounded by count and size.

        A cheap ``UID FETCH set (UID RFC822.SIZE)`` plans the batches (a message
        larger than ``batch_bytes`` is a batch of its own); then each batch is one
        ``UID FETCH`` of ``BODY.PEEK[]`` read through the lean path. With neither
        ``uids`` nor ``start_uid``, every message is fetched. Batches come in UID
        order; empty batches are not yielded. UIDs that do not exist when the batches
        are planned are not there to fetch and are left out.

        :raises SourceError: naming the folder and UIDs when the server does not
            return a body for a message that still exists.
        """
        folder = self._require_selected()
        if batch_count < 1 or batch_bytes < 1:
            raise ValueError("batch_count and batch_bytes must be positive")
        wanted = None if uids is None else set(uids)
        if wanted is not None and not wanted:
            return
        first = max(start_uid or 1, 1)
        with self._map_errors(folder):
            plan = self._plan(wanted, first)
        reader: LineSource | None = None
        if self.settings.max_bytes_per_second:
            with self._map_errors(folder):
                reader = self.session.throttled_reader(self.settings.max_bytes_per_second)
        for batch in plan_batches(plan, batch_bytes, batch_count):
            with self._map_errors(folder):
                messages = self._fetch_batch(folder, batch, reader)
            if messages:
                yield messages
            # Let the consumer's batch go before the next download: holding it here
            # would keep two batches of bodies in memory.
            del messages

    def _plan(self, wanted: set[int] | None, first: int) -> list[tuple[int, int]]:
        """(uid, RFC822.SIZE) of the messages to fetch, in UID order."""
        if wanted is None and self.session.exists == 0:
            return []
        sizes: dict[int, int] = {}

        def on_item(item: FetchItem) -> None:
            uid = item.uid
            if uid is None or item.size is None or uid < first:
                return
            if wanted is not None and uid not in wanted:
                return  # not asked for: not kept
            sizes[uid] = item.size
            if len(sizes) > MAX_ANSWER_UIDS:
                raise ResponseError(f"the listing names more than {MAX_ANSWER_UIDS:,} messages")

        sets = compress_uids(wanted) if wanted is not None else [b"%d:*" % first]
        check_ok("UID FETCH", self._fetch(sets, b"UID RFC822.SIZE", on_item))
        # "n:*" also returns the last message when n is above every UID (RFC 3501 6.4.8).
        return sorted(
            (uid, size)
            for uid, size in sizes.items()
            if uid >= first and (wanted is None or uid in wanted)
        )

    def _fetch_batch(
        self, folder: str, batch: Sequence[tuple[int, int]], reader: LineSource | None
    ) -> list[RemoteMessage]:
        guard = BatchGuard(dict(batch))
        completions = self._fetch(
            compress_uids(uid for uid, _ in batch),
            self._body_items(b"BODY.PEEK[]"),
            guard.take,
            reader=reader,
            expected_bytes=guard.expected_bytes,
            max_literal=guard.max_literal,
        )
        # Dovecot: "OK [EXPUNGEISSUED]" with BODY[] NIL; a NO with that code is the same.
        check_ok("UID FETCH", completions, allow="EXPUNGEISSUED")
        guard.report(folder)
        got = guard.got
        messages: list[RemoteMessage] = []
        missing: list[int] = []
        for uid, _size in batch:
            item = got.get(uid)
            body = item.sections.get("") if item is not None else None
            if item is None or body is None:
                missing.append(uid)
                continue
            messages.append(
                RemoteMessage(
                    folder=folder,
                    uid=uid,
                    raw=body,
                    flags=item.flags or (),
                    internaldate=item.internaldate,
                    size=item.size if item.size is not None else len(body),
                    modseq=item.modseq,
                    emailid=_emailid(item),
                    labels=_labels(item),
                )
            )
        if missing:
            self._check_expunged(folder, missing)
        log.debug(
            "imap.fetch.batch",
            folder=folder,
            messages=len(messages),
            bytes=sum(len(m.raw) for m in messages),
        )
        return messages

    def _check_expunged(self, folder: str, missing: Sequence[int]) -> None:
        """Skip (with a warning) UIDs that are gone; raise for those that still exist."""
        found: set[int] = set()
        on = _search_collector(found)
        # NOOP first: it lets the server report the expunge (RFC 5530 EXPUNGEISSUED).
        commands: list[list[Arg]] = [[b"NOOP"]]
        commands.extend([b"UID SEARCH UID ", s] for s in compress_uids(missing))
        check_ok("NOOP / UID SEARCH", self.session.run(commands, on))
        still = found & set(missing)
        if still:
            shown = ", ".join(str(u) for u in sorted(still)[:20])
            more = f" and {len(still) - 20} more" if len(still) > 20 else ""
            raise SourceError(
                f"Account {self._label!r}: {self._server} did not return the "
                f"message body of UID {shown}{more} in folder {folder!r}, though the "
                "message still exists.",
                account=self.settings.account or None,
                folder=folder,
                hint="Run the sync again; if it keeps failing, the server log may say why.",
            )
        gone = sorted(set(missing))
        log.warning("imap.fetch.expunged", folder=folder, count=len(gone), uids=gone[:20])

    def flags_since(self, modseq: int) -> list[FlagState]:
        """``UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE modseq)``; needs CONDSTORE.

        :raises SourceError: when the server has no CONDSTORE.
        """
        folder = self._require_selected()
        if not {"CONDSTORE", "QRESYNC"} & self.capabilities:
            raise SourceError(
                f"Account {self._label!r}: {self._server} has no CONDSTORE; "
                "flags_since() cannot be used.",
                account=self.settings.account or None,
                folder=folder,
            )
        return self._flags(folder, b"UID FLAGS" + self._label_item, b" (CHANGEDSINCE %d)" % modseq)

    def all_flags(self) -> list[FlagState]:
        """``UID FETCH 1:* (UID FLAGS)`` (with MODSEQ where CONDSTORE is offered)."""
        folder = self._require_selected()
        items = b"UID FLAGS"
        if {"CONDSTORE", "QRESYNC"} & self.capabilities:
            items += b" MODSEQ"
        return self._flags(folder, items + self._label_item, b"")

    @property
    def _label_item(self) -> bytes:
        """Gmail's labels change MODSEQ like flags do: list them wherever flags are listed."""
        return b" X-GM-LABELS" if "X-GM-EXT-1" in self.capabilities else b""

    def identities(self) -> list[MessageIdentity]:
        """One ``UID FETCH 1:*`` of ``X-GM-MSGID`` (Gmail) or ``EMAILID`` (:rfc:`8474`),
        with flags, INTERNALDATE, MODSEQ and labels; empty where neither id is offered.

        This is how the pipeline recognises a message it already archived from
        another folder (Gmail's label folders repeat All Mail) before fetching a body.
        """
        folder = self._require_selected()
        caps = self.capabilities
        item = b"X-GM-MSGID" if "X-GM-EXT-1" in caps else b"EMAILID" if "OBJECTID" in caps else b""
        if not item or self.session.exists == 0:
            return []
        items = b"UID FLAGS INTERNALDATE " + item + self._label_item
        if {"CONDSTORE", "QRESYNC"} & caps:
            items += b" MODSEQ"
        found: dict[int, MessageIdentity] = {}

        def on_item(fetched: FetchItem) -> None:
            assert fetched.uid is not None
            emailid = _emailid(fetched)
            if emailid is None:
                return
            found[fetched.uid] = MessageIdentity(
                uid=fetched.uid,
                emailid=emailid,
                flags=fetched.flags or (),
                internaldate=fetched.internaldate,
                modseq=fetched.modseq,
                labels=_labels(fetched),
            )
            if len(found) > MAX_ANSWER_UIDS:
                raise ResponseError(f"the listing names more than {MAX_ANSWER_UIDS:,} messages")

        with self._map_errors(folder):
            check_ok("UID FETCH", self._fetch([b"1:*"], items, on_item))
        return [found[uid] for uid in sorted(found)]

    def _flags(self, folder: str, items: bytes, modifiers: bytes) -> list[FlagState]:
        if self.session.exists == 0:
            return []
        states: dict[int, FlagState] = {}

        def on_item(item: FetchItem) -> None:
            assert item.uid is not None
            if item.flags is None:
                return
            states[item.uid] = FlagState(item.uid, item.flags, item.modseq, _labels(item))
            if len(states) > MAX_ANSWER_UIDS:
                raise ResponseError(f"the listing names more than {MAX_ANSWER_UIDS:,} messages")

        with self._map_errors(folder):
            check_ok("UID FETCH", self._fetch([b"1:*"], items, on_item, modifiers=modifiers))
        return [states[uid] for uid in sorted(states)]

    def uids(self) -> list[int]:
        """``UID SEARCH ALL`` (``RETURN (ALL)`` with ESEARCH, for a short answer)."""
        folder = self._require_selected()
        if self.session.exists == 0:
            return []
        found: set[int] = set()
        esearch = "ESEARCH" in self.capabilities
        command = b"UID SEARCH RETURN (ALL) ALL" if esearch else b"UID SEARCH ALL"
        with self._map_errors(folder):
            self.session.run_ok("UID SEARCH", [[command]], _search_collector(found))
            return sorted(found)

    def expunge(self, folder: str, uidvalidity: int, uids: Iterable[int]) -> list[int]:
        """Remove exactly ``uids`` from ``folder`` (``\\Deleted`` + ``UID EXPUNGE``, UIDPLUS
        only; see :mod:`syncer.sources.imap.expunge`) and return the UIDs now gone.

        :raises ExpungeUnsupported: without UIDPLUS (never a blanket EXPUNGE).
        :raises UIDValidityChanged: when the folder's UIDVALIDITY differs.
        :raises SourceError:
        """
        return expunge_uids(self.session, folder, uidvalidity, uids)

    def fingerprints(self, uids: Iterable[int] | None = None) -> list[HeaderFingerprint]:
        """Size, INTERNALDATE, flags and the SHA-256 of ``BODY.PEEK[HEADER]`` per message.

        Dovecot's ``BODY[HEADER]`` is the raw ``BODY[]`` up to and including the first
        empty line: through the first CRLF CRLF, just ``CRLF`` when the message starts
        with an empty line, the whole message when it has none. The archive cuts the
        same block from a stored message (``syncer.model.header_end``), so the
        hashes match (tests/integration/test_imap_source.py). Headers are hashed as
        they arrive and not kept. UIDs that do not exist are left out.
        """
        folder = self._require_selected()
        wanted = None if uids is None else set(uids)
        if (wanted is not None and not wanted) or (wanted is None and self.session.exists == 0):
            return []
        found: dict[int, FetchItem] = {}
        hashes: dict[int, str] = {}
        ids: dict[int, str | None] = {}

        def on_item(item: FetchItem) -> None:
            assert item.uid is not None
            header = item.sections.pop("HEADER", None)
            if header is not None:
                hashes[item.uid] = hashlib.sha256(header).hexdigest()
                ids[item.uid] = header_message_id(header, len(header))
            previous = found.get(item.uid)
            if previous is None:
                found[item.uid] = item
            else:
                previous.merge(item)

        if wanted is None:
            sets = [b"1:*"]
        else:
            ordered = sorted(wanted)
            sets = [
                s
                for i in range(0, len(ordered), _FINGERPRINT_CHUNK)
                for s in compress_uids(ordered[i : i + _FINGERPRINT_CHUNK])
            ]
        with self._map_errors(folder):
            completions = self._fetch(
                sets,
                self._body_items(b"BODY.PEEK[HEADER]"),
                on_item,
                max_literal=_MAX_HEADER_LITERAL,
            )
            check_ok("UID FETCH", completions, allow="EXPUNGEISSUED")
        out: list[HeaderFingerprint] = []
        for uid in sorted(found):
            item = found[uid]
            sha = hashes.get(uid)
            if sha is None or (wanted is not None and uid not in wanted):
                continue
            out.append(
                HeaderFingerprint(
                    uid=uid,
                    size=item.size or 0,
                    internaldate=item.internaldate,
                    header_sha256=sha,
                    flags=item.flags or (),
                    modseq=item.modseq,
                    emailid=_emailid(item),
                    labels=_labels(item),
                    message_id=ids.get(uid),
                )
            )
        return out
