r"""In-memory mail stores: :class:`MemorySource` (a ``FolderSource`` with IMAP semantics)
and :class:`MemoryMaildrop` (a POP3 maildrop whose sessions are ``MailDropSource``\ s).

It exists so the sync pipeline can be exercised by property tests (hypothesis
state machines) at thousands of steps per second, and it is also what a
mutation of "the server" looks like in those tests: append, set flags,
expunge, rename, delete, reset UIDVALIDITY. It models the parts of RFC 9051,
RFC 7162 (CONDSTORE/QRESYNC) that the pipeline relies on: UIDs grow, MODSEQ
grows with every change, UIDNEXT never goes back.

Both pass the same contract suites as Dovecot (tests/contract/), so what the
pipelines are tested against here is what they meet on a real server.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from syncer.errors import ProtocolViolation, SourceError, SourceUnavailable, UIDValidityChanged
from syncer.model import (
    FlagState,
    FolderStatus,
    HeaderFingerprint,
    MaildropEntry,
    MessageIdentity,
    RemoteMessage,
    SelectedFolder,
    header_end,
    header_message_id,
)
from syncer.sources.folder_names import FolderNaming

ALL_CAPABILITIES = frozenset({"IMAP4REV1", "CONDSTORE", "QRESYNC", "LIST-STATUS", "UIDPLUS"})
BASIC_CAPABILITIES = frozenset({"IMAP4REV1", "UIDPLUS"})


@dataclass
class _Message:
    raw: bytes
    flags: tuple[str, ...]
    internaldate: datetime
    modseq: int
    emailid: str


@dataclass
class _Folder:
    uidvalidity: int
    uidnext: int = 1
    highestmodseq: int = 1
    messages: dict[int, _Message] = field(default_factory=dict)
    expunged: dict[int, int] = field(default_factory=dict)  # uid -> modseq of the expunge


class MemorySource:
    """A mailbox held in memory. ``capabilities`` decides which paths the pipeline takes."""

    def __init__(
        self, capabilities: Iterable[str] = ALL_CAPABILITIES, naming: FolderNaming | None = None
    ) -> None:
        """:param naming: how folder names are spelt on this "server": ``FolderNaming("INBOX.",
        ".")`` makes it a Courier-style one (names given to its methods are wire names)."""
        self._caps = frozenset(c.upper() for c in capabilities)
        self.naming = naming or FolderNaming()
        self._folders: dict[str, _Folder] = {}
        self._next_validity = 1000
        self._next_emailid = 0
        self._selected: str | None = None
        self.bodies_fetched = 0
        self.selects = 0

    # -- the "other client" side: how tests change the server ---------------------------

    def create_folder(self, name: str) -> None:
        if name not in self._folders:
            self._folders[name] = _Folder(uidvalidity=self._new_validity())

    def append(
        self,
        folder: str,
        raw: bytes,
        flags: Iterable[str] = (),
        internaldate: datetime | None = None,
    ) -> int:
        self.create_folder(folder)
        f = self._folders[folder]
        uid = f.uidnext
        f.uidnext += 1
        f.highestmodseq += 1
        self._next_emailid += 1
        f.messages[uid] = _Message(
            raw,
            _norm(flags),
            internaldate or datetime(2024, 1, 1, tzinfo=UTC),
            f.highestmodseq,
            f"M{self._next_emailid:08d}",
        )
        return uid

    def set_flags(self, folder: str, uid: int, flags: Iterable[str]) -> None:
        f = self._folders[folder]
        msg = f.messages[uid]
        new = _norm(flags)
        if new != msg.flags:
            f.highestmodseq += 1
            msg.flags, msg.modseq = new, f.highestmodseq

    def remove(self, folder: str, uid: int) -> None:
        """Another client expunged ``uid`` (the FolderSource's own is :meth:`expunge`)."""
        f = self._folders[folder]
        if f.messages.pop(uid, None) is not None:
            f.highestmodseq += 1
            f.expunged[uid] = f.highestmodseq

    def rename_folder(self, old: str, new: str) -> None:
        self._folders[new] = self._folders.pop(old)

    def delete_folder(self, name: str) -> None:
        del self._folders[name]

    def reset_uidvalidity(self, folder: str) -> None:
        """Renumber every message under a new UIDVALIDITY, as a server rebuild would."""
        old = self._folders[folder]
        fresh = _Folder(uidvalidity=self._new_validity())
        for uid in sorted(old.messages):
            m = old.messages[uid]
            fresh.highestmodseq += 1
            fresh.messages[fresh.uidnext] = _Message(
                m.raw, m.flags, m.internaldate, fresh.highestmodseq, m.emailid
            )
            fresh.uidnext += 1
        self._folders[folder] = fresh

    def contents(self, folder: str) -> dict[int, tuple[bytes, tuple[str, ...]]]:
        return {u: (m.raw, m.flags) for u, m in self._folders[folder].messages.items()}

    def folder_names(self) -> list[str]:
        return sorted(self._folders)

    def uidvalidity(self, folder: str) -> int:
        return self._folders[folder].uidvalidity

    # -- FolderSource ----------------------------------------------------------------

    @property
    def capabilities(self) -> frozenset[str]:
        return self._caps

    def list_folders(self, *, with_status: bool = True) -> list[FolderStatus]:
        out = []
        for name in sorted(self._folders):
            f = self._folders[name]
            out.append(
                FolderStatus(
                    name=name,
                    display_name=self.naming.shown(name),
                    delimiter=self.naming.delimiter,
                    namespace="personal",
                    uidvalidity=f.uidvalidity if with_status else None,
                    uidnext=f.uidnext if with_status else None,
                    messages=len(f.messages) if with_status else None,
                    size=sum(len(m.raw) for m in f.messages.values()) if with_status else None,
                    highestmodseq=(
                        f.highestmodseq if with_status and "CONDSTORE" in self._caps else None
                    ),
                )
            )
        return out

    def select(self, folder: str, *, qresync: tuple[int, int] | None = None) -> SelectedFolder:
        self._selected = None  # a failed EXAMINE leaves no folder selected (RFC 3501 6.3.2)
        f = self._folder(folder)
        self._selected = folder
        self.selects += 1
        condstore = "CONDSTORE" in self._caps
        use_qresync = (
            qresync is not None and "QRESYNC" in self._caps and qresync[0] == f.uidvalidity
        )
        vanished: frozenset[int] = frozenset()
        changed: tuple[FlagState, ...] = ()
        if use_qresync and qresync is not None:
            since = qresync[1]
            vanished = frozenset(u for u, ms in f.expunged.items() if ms > since)
            changed = tuple(
                FlagState(u, m.flags, m.modseq)
                for u, m in sorted(f.messages.items())
                if m.modseq > since
            )
        return SelectedFolder(
            name=folder,
            uidvalidity=f.uidvalidity,
            uidnext=f.uidnext,
            exists=len(f.messages),
            highestmodseq=f.highestmodseq if condstore else None,
            qresync=use_qresync,
            vanished=vanished,
            changed=changed,
        )

    def fetch_messages(
        self,
        uids: Iterable[int] | None = None,
        *,
        start_uid: int | None = None,
        batch_bytes: int = 32 * 1024 * 1024,
        batch_count: int = 500,
    ) -> Iterator[list[RemoteMessage]]:
        name, f = self._current()
        if uids is not None:
            wanted = sorted(u for u in set(uids) if u in f.messages)
        else:
            # `n:*` also matches the highest UID when n is above every UID (RFC 3501
            # 6.4.8); like the IMAP adapter, the cheap planning step drops it, so no
            # body below ``start_uid`` is ever downloaded.
            start = start_uid or 1
            wanted = sorted(u for u in f.messages if u >= start)
        batch: list[RemoteMessage] = []
        size = 0
        for uid in wanted:
            m = f.messages[uid]
            if batch and (len(batch) >= batch_count or size + len(m.raw) > batch_bytes):
                yield batch
                batch, size = [], 0
            self.bodies_fetched += 1
            batch.append(
                RemoteMessage(
                    folder=name,
                    uid=uid,
                    raw=m.raw,
                    flags=m.flags,
                    internaldate=m.internaldate,
                    size=len(m.raw),
                    modseq=self._modseq(m),
                    emailid=self._emailid(m),
                )
            )
            size += len(m.raw)
        if batch:
            yield batch

    def flags_since(self, modseq: int) -> list[FlagState]:
        """:raises SourceError: without CONDSTORE, as the IMAP adapter."""
        name, f = self._current()
        if "CONDSTORE" not in self._caps:
            raise SourceError("No CONDSTORE: flags_since() cannot be used.", folder=name)
        return [
            FlagState(u, m.flags, m.modseq)
            for u, m in sorted(f.messages.items())
            if m.modseq > modseq
        ]

    def all_flags(self) -> list[FlagState]:
        _, f = self._current()
        return [FlagState(u, m.flags, self._modseq(m)) for u, m in sorted(f.messages.items())]

    def uids(self) -> list[int]:
        _, f = self._current()
        return sorted(f.messages)

    def identities(self) -> list[MessageIdentity]:
        _, f = self._current()
        if "OBJECTID" not in self._caps:
            return []
        return [
            MessageIdentity(uid, m.emailid, m.flags, m.internaldate, m.modseq)
            for uid, m in sorted(f.messages.items())
        ]

    def fingerprints(self, uids: Iterable[int] | None = None) -> list[HeaderFingerprint]:
        _, f = self._current()
        chosen = sorted(f.messages) if uids is None else sorted(set(uids) & set(f.messages))
        out = []
        for uid in chosen:
            m = f.messages[uid]
            out.append(
                HeaderFingerprint(
                    uid=uid,
                    size=len(m.raw),
                    internaldate=m.internaldate,
                    header_sha256=hashlib.sha256(m.raw[: header_end(m.raw)]).hexdigest(),
                    flags=m.flags,
                    modseq=self._modseq(m),
                    emailid=self._emailid(m),
                    message_id=header_message_id(m.raw),
                )
            )
        return out

    def expunge(self, folder: str, uidvalidity: int, uids: Iterable[int]) -> list[int]:
        """Remove exactly ``uids`` (UIDPLUS semantics, as the IMAP adapter); leaves no
        folder selected. Returns the UIDs now gone (those that existed).

        :raises UIDValidityChanged: when the folder's UIDVALIDITY is not ``uidvalidity``.
        :raises SourceError: without UIDPLUS, or for a folder that does not exist.
        """
        f = self._folder(folder)
        self._selected = None
        if "UIDPLUS" not in self._caps:
            raise SourceError(f"No UIDPLUS: nothing removed from {folder!r}.", folder=folder)
        if f.uidvalidity != uidvalidity:
            raise UIDValidityChanged(
                f"Folder {folder!r} now has UIDVALIDITY {f.uidvalidity}, not {uidvalidity}.",
                folder=folder,
            )
        gone = sorted(u for u in set(uids) if u in f.messages)
        for uid in gone:
            self.remove(folder, uid)
        return gone

    def close(self) -> None:
        self._selected = None

    # -- internals -------------------------------------------------------------------

    def _modseq(self, message: _Message) -> int | None:
        """MODSEQ is fetched only where the server has CONDSTORE (RFC 7162)."""
        return message.modseq if "CONDSTORE" in self._caps else None

    def _emailid(self, message: _Message) -> str | None:
        """RFC 8474: EMAILID names the message for as long as it exists, across folders."""
        return message.emailid if "OBJECTID" in self._caps else None

    def _new_validity(self) -> int:
        self._next_validity += 1
        return self._next_validity

    def _folder(self, name: str) -> _Folder:
        try:
            return self._folders[name]
        except KeyError:
            raise SourceError(f"Folder {name!r} does not exist.", folder=name) from None

    def _current(self) -> tuple[str, _Folder]:
        if self._selected is None:
            raise SourceError("No folder selected.")
        return self._selected, self._folder(self._selected)


def _norm(flags: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({f for f in flags if f.lower() != "\\recent"}))


class MemoryMaildrop:
    """A POP3 mailbox in memory; ``uidl=False`` makes its sessions refuse UIDL.

    Each :meth:`session` sees a snapshot numbered 1..n; DELE only marks, and a
    successful QUIT removes what was marked; a session that ends any other way
    removes nothing (:rfc:`1939#section-6`).
    """

    def __init__(self, *, uidl: bool = True) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.uidl = uidl
        self._ids = itertools.count(1)

    def deliver(self, *raws: bytes) -> list[str]:
        """New mail arrives; returns the UIDLs the server gives it."""
        uidls = [f"uidl-{next(self._ids):04d}" for _ in raws]
        self.messages += zip(uidls, raws, strict=True)
        return uidls

    def raws(self) -> list[bytes]:
        return [raw for _uidl, raw in self.messages]

    def session(
        self,
        *,
        truncate: frozenset[int] = frozenset(),
        lose_connection_at_retr: int | None = None,
        refuse_quit: bool = False,
    ) -> MaildropSession:
        """A logged-in session, with faults to inject: messages whose RETR comes back
        short, the n-th RETR losing the connection, a QUIT that fails."""
        return MaildropSession(
            self,
            list(self.messages),
            truncate=truncate,
            lose_connection_at_retr=lose_connection_at_retr,
            refuse_quit=refuse_quit,
        )


@dataclass
class MaildropSession:
    """One POP3 session on a :class:`MemoryMaildrop`: a ``MailDropSource``."""

    drop: MemoryMaildrop
    snapshot: list[tuple[str, bytes]]
    truncate: frozenset[int] = frozenset()
    lose_connection_at_retr: int | None = None
    refuse_quit: bool = False
    retrieved: list[int] = field(default_factory=list)
    marked: set[int] = field(default_factory=set)
    quit_ok: bool = False
    tops: int = 0

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset({"TOP", "UIDL"} if self.drop.uidl else {"TOP"})

    def listing(self) -> list[MaildropEntry]:
        return [
            MaildropEntry(n, len(raw), uidl if self.drop.uidl else None)
            for n, (uidl, raw) in enumerate(self.snapshot, start=1)
        ]

    def headers(self, number: int) -> bytes:
        self.tops += 1
        raw = self.snapshot[number - 1][1]
        return raw[: header_end(raw)]

    def retrieve(self, entry: MaildropEntry) -> RemoteMessage:
        if self.lose_connection_at_retr == len(self.retrieved) + 1:
            raise SourceUnavailable("the connection was lost during RETR")
        self.retrieved.append(entry.number)
        raw = self.snapshot[entry.number - 1][1]
        if entry.number in self.truncate:
            raise ProtocolViolation(
                f"message {entry.number} (UIDL {entry.uidl}) came back with {len(raw) // 2} "
                f"bytes, LIST said {len(raw)}."
            )
        return RemoteMessage(folder="INBOX", uid=0, raw=raw, size=len(raw), uidl=entry.uidl)

    def delete(self, number: int) -> None:
        self.marked.add(number)

    def quit(self) -> None:
        if self.refuse_quit:
            raise SourceUnavailable("the connection was lost during QUIT")
        gone = {self.snapshot[n - 1][0] for n in self.marked}
        self.drop.messages = [m for m in self.drop.messages if m[0] not in gone]
        self.quit_ok = True

    def close(self) -> None:
        pass
