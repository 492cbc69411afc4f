"""The interface the sync pipeline sees for a folder-based mail source (IMAP, memory).

Every method raises ``syncer.errors.SourceError`` subclasses only:
``SourceAuthError`` for refused credentials, ``SourceUnavailable`` for network
trouble and timeouts (transient: worth a retry), ``ProtocolViolation`` for
answers the protocol does not allow. Library exceptions never escape an adapter.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from syncer.model import FlagState, FolderStatus, HeaderFingerprint, RemoteMessage, SelectedFolder


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

    def fingerprints(self, uids: Iterable[int] | None = None) -> list[HeaderFingerprint]:
        """Size, INTERNALDATE and the SHA-256 of the header of each message.

        Used after a UIDVALIDITY reset to find bodies the archive already holds.
        """
        ...

    def close(self) -> None:
        """Log out and close the connection; never raises."""
        ...
