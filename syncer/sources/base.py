"""The interfaces the sync pipelines see: folder-based sources (IMAP, memory) and
POP3 maildrops.

Every method raises ``syncer.errors.SourceError`` subclasses only:
``SourceAuthError`` for refused credentials, ``SourceUnavailable`` for network
trouble and timeouts (transient: worth a retry), ``ProtocolViolation`` for
answers the protocol does not allow. Library exceptions never escape an adapter.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from syncer.model import (
    FlagState,
    FolderStatus,
    HeaderFingerprint,
    MaildropEntry,
    MessageIdentity,
    RemoteMessage,
    SelectedFolder,
)


class FolderSource(Protocol):
    """A mail store made of folders whose messages have UIDs (IMAP semantics).

    ``capabilities`` is read after login and upper-cased (``CONDSTORE``,
    ``QRESYNC``, ``LIST-STATUS``, ``OBJECTID``, ``X-GM-EXT-1``, ...).
    """

    @property
    def capabilities(self) -> frozenset[str]: ...

    def list_folders(self, *, with_status: bool = True) -> list[FolderStatus]:
        """List the folders of the configured namespaces, with STATUS where asked.

        Uses LIST-STATUS where offered, else one STATUS per selectable folder.

        :raises SourceError:
        """
        ...

    def select(
        self,
        folder: str,
        *,
        qresync: tuple[int, int] | None = None,
    ) -> SelectedFolder:
        """Select ``folder`` read-only (EXAMINE).

        :param qresync: ``(uidvalidity, modseq)`` known to the archive; when the
            server has QRESYNC, the answer carries VANISHED (EARLIER) UIDs and the
            flags changed since ``modseq``.
        :raises SourceError:
        """
        ...

    def fetch_messages(
        self,
        uids: Iterable[int] | None = None,
        *,
        start_uid: int | None = None,
        batch_bytes: int = 32 * 1024 * 1024,
        batch_count: int = 500,
    ) -> Iterator[list[RemoteMessage]]:
        """Fetch full messages of the selected folder in bounded batches.

        Either ``uids`` (an explicit set) or ``start_uid`` (``start_uid:*``).
        Uses ``BODY.PEEK[]`` so ``\\Seen`` is never set. Batches are bounded by
        count and by the sum of RFC822.SIZE, so memory stays bounded.

        :raises SourceError:
        """
        ...

    def flags_since(self, modseq: int) -> list[FlagState]:
        """``UID FETCH 1:* (FLAGS) (CHANGEDSINCE modseq)``; needs CONDSTORE."""
        ...

    def all_flags(self) -> list[FlagState]:
        """The flags of every message in the selected folder (the fallback)."""
        ...

    def uids(self) -> list[int]:
        """``UID SEARCH ALL`` on the selected folder."""
        ...

    def identities(self) -> list[MessageIdentity]:
        """The stable id (RFC 8474 EMAILID, Gmail X-GM-MSGID), flags, INTERNALDATE,
        MODSEQ and labels of every message in the selected folder, without bodies;
        empty when the server offers no stable id.

        Lets the pipeline link a message it already archived from another folder
        instead of downloading its body again.
        """
        ...

    def fingerprints(self, uids: Iterable[int] | None = None) -> list[HeaderFingerprint]:
        """Size, INTERNALDATE and the SHA-256 of the header of each message.

        Used after a UIDVALIDITY reset to find bodies the archive already holds.
        """
        ...

    def expunge(self, folder: str, uidvalidity: int, uids: Iterable[int]) -> list[int]:
        """Remove exactly these messages from the server (``UID EXPUNGE``, UIDPLUS only);
        returns the UIDs now gone. Leaves no folder selected.

        :raises SourceError: ``ExpungeUnsupported`` without UIDPLUS, ``UIDValidityChanged``
            when the folder's UIDVALIDITY differs.
        """
        ...

    def close(self) -> None:
        """Log out and close the connection; never raises."""
        ...


class MailDropSource(Protocol):
    """A POP3 maildrop: one list of messages, numbered per session (:rfc:`1939`).

    Terminology: a message *number* is valid for the session only; the *uidl*
    is the server's stable id for the message across sessions (absent on
    servers without UIDL). Deletion is two-phase: :meth:`delete` only marks a
    message, and the server removes marked messages when :meth:`quit`
    succeeds. A session that ends any other way (:meth:`close`, a dropped
    connection, a crash) deletes nothing.

    ``capabilities`` are the CAPA names read after login, upper-cased (``UIDL``,
    ``TOP``, ``PIPELINING``, ...); empty when the server has no CAPA.
    """

    @property
    def capabilities(self) -> frozenset[str]: ...

    def listing(self) -> list[MaildropEntry]:
        """LIST and UIDL: every message with its number, size and uidl (None without UIDL).

        :raises SourceError:
        """
        ...

    def headers(self, number: int) -> bytes:
        """The header block of message ``number`` (``TOP number 0``).

        :raises SourceError:
        """
        ...

    def retrieve(self, entry: MaildropEntry) -> RemoteMessage:
        """RETR one message, checked against the size LIST gave for it.

        :returns: a message for folder ``INBOX`` with ``uid`` 0 and ``uidl`` set.
        :raises ProtocolViolation: when the bytes are not as many as LIST said
            (the session stays usable).
        :raises SourceError:
        """
        ...

    def delete(self, number: int) -> None:
        """Mark message ``number`` for deletion (DELE); nothing is removed before :meth:`quit`.

        :raises SourceError:
        """
        ...

    def quit(self) -> None:
        """QUIT: the server removes the marked messages and the session ends.

        :raises SourceError: when QUIT is refused or the connection drops; the
            marked messages must then be taken as not deleted.
        """
        ...

    def close(self) -> None:
        """End the session without deleting anything that :meth:`quit` did not; never raises."""
        ...
