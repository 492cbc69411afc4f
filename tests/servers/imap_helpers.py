"""IMAP helpers shared by the test servers: "another mail client" acting on a mailbox.

Every server class in :mod:`tests.servers` (Dovecot, Cyrus, Courier) logs in as the
user over IMAP to append, flag, expunge, rename and inspect, so those helpers are
the same code for all of them. Folder arguments are names in the personal namespace
with ``/`` as separator (``Archive/2024``); :meth:`ImapHelpers.wire_name` turns them
into the server's own name (``INBOX.Archive.2024`` on Courier and Debian's Cyrus).
A name that already is a wire name (it starts with the personal prefix) passes through.

Public API: :class:`ImapHelpers`, :class:`IMAPPorts`, :class:`ServerError`, :func:`uid_set`,
:data:`Flag`, :data:`TLSMode`.
"""

from __future__ import annotations

import contextlib
import re
import ssl
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Literal, Protocol

from imapclient import IMAPClient

from tests.servers.tls import TLSFiles

TLSMode = Literal["none", "starttls", "tls"]
Flag = str | bytes


class ServerError(RuntimeError):
    """A test server could not be started, or a helper failed."""


class IMAPPorts(Protocol):
    """The ports every test server listens on for IMAP."""

    @property
    def imap(self) -> int: ...

    @property
    def imaps(self) -> int: ...


def _as_str(flag: Flag) -> str:
    return flag.decode("ascii") if isinstance(flag, bytes) else flag


def uid_set(uids: Iterable[int]) -> str:
    """Compress UIDs into ranges (``1:500,502``): servers reject very long argument lists."""
    ordered = sorted(set(uids))
    parts: list[str] = []
    start = prev = None
    for uid in ordered:
        if prev is not None and uid == prev + 1:
            prev = uid
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = uid
    if start is not None:
        parts.append(str(start) if start == prev else f"{start}:{prev}")
    return ",".join(parts)


class ImapHelpers:
    """Mixin: IMAP helpers for a server with ``host``, ``ports``, ``tls`` and ``password()``.

    :attr:`personal_prefix` and :attr:`separator` describe the personal namespace;
    Dovecot's (``""`` and ``/``) make :meth:`wire_name` the identity.
    """

    host: str
    personal_prefix = ""
    separator = "/"

    @property
    def ports(self) -> IMAPPorts:
        raise NotImplementedError

    @property
    def tls(self) -> TLSFiles:
        raise NotImplementedError

    def password(self, user: str) -> str:
        raise NotImplementedError

    def wire_name(self, folder: str) -> str:
        """The server's name of personal *folder* (``a/b`` -> ``INBOX.a.b``)."""
        if folder.upper() == "INBOX" or (
            self.personal_prefix and folder.startswith(self.personal_prefix)
        ):
            return folder
        return self.personal_prefix + folder.replace("/", self.separator)

    def personal_name(self, wire: str) -> str:
        """The inverse of :meth:`wire_name`: ``INBOX.a.b`` -> ``a/b``."""
        if wire.upper() == "INBOX" or not wire.startswith(self.personal_prefix):
            return wire
        return wire[len(self.personal_prefix) :].replace(self.separator, "/")

    # -- clients ------------------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only this server's test CA."""
        return self.tls.client_context()

    def imap_client(self, user: str, tls: TLSMode = "none") -> IMAPClient:
        """A logged-in :class:`IMAPClient` for *user*, connected to ``localhost``."""
        if tls == "tls":
            client = IMAPClient(
                self.host,
                port=self.ports.imaps,
                ssl=True,
                ssl_context=self.ssl_context(),
                timeout=30,
            )
        else:
            client = IMAPClient(self.host, port=self.ports.imap, ssl=False, timeout=30)
            if tls == "starttls":
                client.starttls(self.ssl_context())
            elif tls != "none":
                raise ValueError(f"tls must be 'none', 'starttls' or 'tls', not {tls!r}")
        client.login(user, self.password(user))
        return client

    @contextlib.contextmanager
    def session(self, user: str) -> Iterator[IMAPClient]:
        """A short-lived plaintext IMAP session for *user*, logged out afterwards."""
        client = self.imap_client(user)
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    # -- "another mail client" helpers ----------------------------------------------------------

    def create_folder(self, user: str, folder: str) -> None:
        with self.session(user) as client:
            client.create_folder(self.wire_name(folder))

    def delete_folder(self, user: str, folder: str) -> None:
        with self.session(user) as client:
            client.delete_folder(self.wire_name(folder))

    def rename_folder(self, user: str, old: str, new: str) -> None:
        with self.session(user) as client:
            client.rename_folder(self.wire_name(old), self.wire_name(new))

    def folders(self, user: str) -> list[str]:
        """Every folder name LIST returns for *user*, shared and public ones included."""
        with self.session(user) as client:
            return [name for _flags, _sep, name in client.list_folders()]

    def append(
        self,
        user: str,
        folder: str,
        raw: bytes,
        flags: Sequence[Flag] = (),
        internaldate: datetime | None = None,
    ) -> int:
        """APPEND *raw* to *folder* (created if missing) and return the new UID."""
        with self.session(user) as client:
            if not client.folder_exists(self.wire_name(folder)):
                client.create_folder(self.wire_name(folder))
            response = client.append(
                self.wire_name(folder), raw, flags=tuple(flags), msg_time=internaldate
            )
        match = re.search(rb"APPENDUID \d+ (\d+)", response)
        if match is None:
            raise ServerError(f"APPEND answered without APPENDUID: {response!r}")
        return int(match.group(1))

    def uids(self, user: str, folder: str) -> list[int]:
        with self.session(user) as client:
            client.select_folder(self.wire_name(folder), readonly=True)
            return sorted(client.search("ALL"))

    def flags(self, user: str, folder: str) -> dict[int, frozenset[str]]:
        """UID -> flags (``\\Recent`` left out: it depends on who looked first)."""
        with self.session(user) as client:
            client.select_folder(self.wire_name(folder), readonly=True)
            uids = sorted(client.search("ALL"))
            fetched: dict[int, tuple[bytes, ...]] = {}
            # imapclient sends UID lists verbatim; chunks stay under the server's length limit.
            for start in range(0, len(uids), 1000):
                fetched.update(client.get_flags(uids[start : start + 1000]))
        return {
            uid: frozenset(_as_str(f) for f in flags if f.lower() != b"\\recent")
            for uid, flags in fetched.items()
        }

    def fetch_raw(self, user: str, folder: str, uid: int) -> bytes:
        with self.session(user) as client:
            client.select_folder(self.wire_name(folder), readonly=True)
            data = client.fetch([uid], ["BODY.PEEK[]"])
        if uid not in data:
            raise ServerError(f"no UID {uid} in {folder!r} of {user}")
        body = data[uid][b"BODY[]"]
        assert isinstance(body, bytes)
        return body

    def set_flags(self, user: str, folder: str, uids: Iterable[int], flags: Sequence[Flag]) -> None:
        self._store(user, folder, uids, "set", flags)

    def add_flags(self, user: str, folder: str, uids: Iterable[int], flags: Sequence[Flag]) -> None:
        self._store(user, folder, uids, "add", flags)

    def remove_flags(
        self, user: str, folder: str, uids: Iterable[int], flags: Sequence[Flag]
    ) -> None:
        self._store(user, folder, uids, "remove", flags)

    def _store(
        self, user: str, folder: str, uids: Iterable[int], how: str, flags: Sequence[Flag]
    ) -> None:
        # A range string ("1:500,502") keeps big UID sets under the servers' argument limits;
        # imapclient passes strings through unchanged.
        uids_text = uid_set(uids)
        if not uids_text:
            return
        with self.session(user) as client:
            client.select_folder(self.wire_name(folder))
            store = {
                "set": client.set_flags,
                "add": client.add_flags,
                "remove": client.remove_flags,
            }[how]
            store(uids_text, list(flags), silent=True)

    def expunge(self, user: str, folder: str, uids: Iterable[int]) -> None:
        """Delete *uids* for good (``\\Deleted`` + UID EXPUNGE, :rfc:`4315`)."""
        uids_text = uid_set(uids)
        if not uids_text:
            return
        with self.session(user) as client:
            client.select_folder(self.wire_name(folder))
            client.add_flags(uids_text, [b"\\Deleted"], silent=True)
            client.uid_expunge(uids_text)

    def uidvalidity(self, user: str, folder: str) -> int:
        with self.session(user) as client:
            status = client.folder_status(self.wire_name(folder), [b"UIDVALIDITY"])
        return int(status[b"UIDVALIDITY"])

    def recreate_folder(self, user: str, folder: str) -> None:
        """Copy *folder* out, delete it and create it again with the same messages.

        Flags and INTERNALDATEs survive; UIDs, UIDVALIDITY and any MAILBOXID are new,
        as after a restore from backup.
        """
        wire = self.wire_name(folder)
        with self.session(user) as client:
            client.select_folder(wire, readonly=True)
            uids = sorted(client.search("ALL"))
            data = client.fetch(uids, ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"]) if uids else {}
            client.close_folder()  # CLOSE: Courier has no UNSELECT
            client.delete_folder(wire)
            client.create_folder(wire)
            for uid in uids:
                item = data[uid]
                flags = [f for f in item[b"FLAGS"] if f.lower() != b"\\recent"]
                client.append(wire, item[b"BODY[]"], flags=flags, msg_time=item[b"INTERNALDATE"])
