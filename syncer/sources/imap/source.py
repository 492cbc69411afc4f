"""IMAP adapter: :class:`IMAPSource` implements ``FolderSource`` for any IMAP4rev1 server.

Why it is built this way: imapclient is kept for what it does well and what
is easy to get wrong -- TCP/TLS set-up, STARTTLS, LOGIN, CAPABILITY, LOGOUT --
and every command after login goes through one small runner of our own
(:mod:`._imap_session`) that writes on imapclient's imaplib connection
(``client._imap``: its tag counter, ``send()``, ``readline()``, ``read(n)``)
and reads the answer with :mod:`._imap_fetch`. That gives one framing layer
for everything (literals anywhere, pipelining, no per-line debug formatting),
the QRESYNC/VANISHED answers imapclient does not understand
(:mod:`._imap_qresync`), and above all the lean bulk download: a body literal
is read with one ``read(N)`` instead of going through imapclient's
byte-by-byte parser (5-6x faster on loopback, tests/bench/bench_imap_fetch.py).
The imapclient session stays usable afterwards (tags come from
``_new_tag()``, completed tags are removed, ``state`` follows EXAMINE).

Public API::

    source = IMAPSource.open("imap.example.com", 993, "tls", "me", secret, account="work")
    try:
        for folder in source.list_folders():       # FolderStatus, with STATUS
            ...
        sel = source.select("INBOX", qresync=(cursor.uidvalidity, cursor.highestmodseq))
        for batch in source.fetch_messages(start_uid=cursor.uidnext):
            ...                                    # list[RemoteMessage], bounded
        source.flags_since(modseq); source.all_flags(); source.uids(); source.fingerprints()
    finally:
        source.close()

``IMAPSource(...)`` only stores its settings; :meth:`IMAPSource.connect` (or
the classmethod :meth:`IMAPSource.open`, which is construct + connect) opens
the connection, logs in and reads the capabilities *after* login. Every other
method connects on first use if needed, and after a lost connection the next
call connects afresh (the selected folder is then gone: select again).

Behaviour worth knowing:

* Folder names are the wire form (modified UTF-7) in ``FolderStatus.name``
  and decoded in ``display_name``; ``include``/``exclude`` globs match the
  display name (``fnmatchcase``; ``*`` crosses the hierarchy delimiter).
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
* Gmail (X-GM-EXT-1): X-GM-MSGID is fetched as ``emailid`` and X-GM-LABELS is
  requested and parsed, but ``RemoteMessage`` has no field to carry labels, so
  they are dropped. This path is untested here: there is no Gmail on loopback.

Errors: every library exception is translated in :meth:`IMAPSource._map_errors`
(one place, :mod:`._imap_errors`) into ``SourceAuthError``,
``SourceUnavailable`` (transient), ``ProtocolViolation`` or ``SourceError``.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Literal

import structlog

from syncer.errors import SourceError
from syncer.model import FlagState, FolderStatus, HeaderFingerprint, RemoteMessage, SelectedFolder
from syncer.oauth.sasl import TokenProvider
from syncer.sources.imap.connection import (
    Arg,
    CommandFailed,
    astring,
    open_client,
    run_commands,
    ssl_context,
)
from syncer.sources.imap.errors import ErrorContext, map_errors
from syncer.sources.imap.listing import (
    KINDS,
    ListCollector,
    ListEntry,
    Namespaces,
    display_name,
    folder_status,
    list_commands,
    mailbox_id_command,
    matches_globs,
    parse_namespace,
    parse_search,
    parse_status,
    parse_status_or_warn,
    status_items,
    valid_object_id,
)
from syncer.sources.imap.parser import (
    Completion,
    FetchItem,
    LineSource,
    Response,
    ResponseError,
    ThrottledReader,
    compress_uids,
    is_fetch,
    parse_fetch,
    plan_batches,
)
from syncer.sources.imap.qresync import SelectReader

__all__ = ["IMAPSource", "Security"]

log = structlog.get_logger(__name__)

Security = Literal["tls", "starttls", "plain"]

_EXISTS_TAIL = re.compile(rb"\* (\d+) EXISTS\Z", re.IGNORECASE)

#: Fingerprint FETCHes carry only headers; keep each command's answer moderate.
_FINGERPRINT_CHUNK = 5000


class IMAPSource:
    """A ``FolderSource`` over IMAP; see the module docstring.

    :param host: server name; with TLS it is also the name the certificate must carry.
    :param security: ``"tls"`` (implicit TLS, port 993), ``"starttls"`` or
        ``"plain"`` (no TLS; the config layer only allows it with allow_insecure).
    :param tls_verify: False disables certificate and host name checks (explicit opt-out).
    :param ca_file: PEM file of CAs to trust instead of the system store.
    :param timeout: seconds for connecting and for each socket read.
    :param namespaces: which namespaces ``list_folders`` covers: any of
        ``personal``, ``other`` (other users' folders), ``shared`` (public).
    :param include: display-name globs to keep (empty: all).
    :param exclude: display-name globs to drop (wins over include).
    :param subscribed_only: list only subscribed folders.
    :param account: the account's name, used in error messages.
    :param max_bytes_per_second: cap on the body download rate (None: no cap).
    :param oauth2: sign in with OAuth2 access tokens from this provider (XOAUTH2 or
        OAUTHBEARER, ``sasl_mechanism`` or what the server offers) instead of the password.
    """

    def __init__(
        self,
        host: str,
        port: int,
        security: Security,
        username: str,
        password: str,
        *,
        tls_verify: bool = True,
        ca_file: str | None = None,
        timeout: float = 60.0,
        namespaces: Sequence[str] = ("personal",),
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        subscribed_only: bool = False,
        account: str = "",
        max_bytes_per_second: float | None = None,
        oauth2: TokenProvider | None = None,
        sasl_mechanism: str = "auto",
    ) -> None:
        if security not in ("tls", "starttls", "plain"):
            raise ValueError(f"security must be 'tls', 'starttls' or 'plain', not {security!r}")
        unknown = [n for n in namespaces if n not in KINDS]
        if unknown:
            raise ValueError(f"unknown namespace kinds {unknown}; choose from {list(KINDS)}")
        self.host = host
        self.port = port
        self.security: Security = security
        self.username = username
        self._password = password
        self.tls_verify = tls_verify
        self.ca_file = ca_file
        self.timeout = timeout
        self.namespaces = tuple(namespaces)
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self.subscribed_only = subscribed_only
        self.account = account
        self.max_bytes_per_second = max_bytes_per_second
        self._oauth2 = oauth2
        self.sasl_mechanism = sasl_mechanism
        self._client: Any = None  # imapclient.IMAPClient (untyped library)
        self._capabilities: frozenset[str] = frozenset()
        self._namespace_info: Namespaces | None = None
        self._selected: str | None = None
        self._exists: int | None = None
        self._qresync_enabled = False
        self._qresync_broken = False

    def __repr__(self) -> str:  # never shows the password
        return (
            f"IMAPSource(account={self.account!r}, host={self.host!r}, port={self.port}, "
            f"security={self.security!r}, username={self.username!r})"
        )

    # -- connection ------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        host: str,
        port: int,
        security: Security,
        username: str,
        password: str,
        *,
        tls_verify: bool = True,
        ca_file: str | None = None,
        timeout: float = 60.0,
        namespaces: Sequence[str] = ("personal",),
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        subscribed_only: bool = False,
        account: str = "",
        max_bytes_per_second: float | None = None,
        oauth2: TokenProvider | None = None,
        sasl_mechanism: str = "auto",
    ) -> IMAPSource:
        """Construct with the same arguments as the constructor, then :meth:`connect`.

        :raises SourceError: (and subclasses) when connecting or logging in fails.
        """
        source = cls(
            host,
            port,
            security,
            username,
            password,
            tls_verify=tls_verify,
            ca_file=ca_file,
            timeout=timeout,
            namespaces=namespaces,
            include=include,
            exclude=exclude,
            subscribed_only=subscribed_only,
            account=account,
            max_bytes_per_second=max_bytes_per_second,
            oauth2=oauth2,
            sasl_mechanism=sasl_mechanism,
        )
        source.connect()
        return source

    def connect(self) -> IMAPSource:
        """Connect, secure the connection, log in, read capabilities; idempotent.

        :raises SourceAuthError: when the login is refused.
        :raises SourceUnavailable: network trouble, timeouts, TLS failures.
        :raises SourceError: when STARTTLS is asked for but not offered.
        """
        if self._client is not None:
            return self
        with self._map_errors():
            context = None
            if self.security != "plain":
                context = ssl_context(self.ca_file, self.tls_verify)
                if not self.tls_verify:
                    log.warning("imap.tls.unverified", host=self.host, port=self.port)
            client, capabilities = open_client(
                self.host,
                self.port,
                self.security,
                self.username,
                self._password,
                context=context,
                timeout=self.timeout,
                oauth2=self._oauth2,
                mechanism=self.sasl_mechanism,
            )
        self._client = client
        self._capabilities = capabilities
        self._namespace_info = None
        self._selected = None
        self._exists = None
        self._qresync_enabled = False
        self._qresync_broken = False
        log.info(
            "imap.connected",
            host=self.host,
            port=self.port,
            security=self.security,
            capabilities=len(capabilities),
        )
        return self

    @property
    def capabilities(self) -> frozenset[str]:
        """Upper-cased capabilities read after login (empty before :meth:`connect`)."""
        return self._capabilities

    def close(self) -> None:
        """LOGOUT and close the socket; never raises."""
        client, self._client = self._client, None
        self._selected = None
        if client is None:
            return
        try:
            client.logout()
        except Exception:
            with contextlib.suppress(Exception):
                client.shutdown()
        log.debug("imap.closed", host=self.host, port=self.port)

    def __enter__(self) -> IMAPSource:
        return self.connect()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _drop(self) -> None:
        """Forget a connection whose stream can no longer be trusted."""
        client, self._client = self._client, None
        self._selected = None
        self._exists = None
        if client is not None:
            with contextlib.suppress(Exception):
                client.shutdown()

    @property
    def _label(self) -> str:
        return self.account or f"{self.username}@{self.host}"

    # -- error mapping ----------------------------------------------------------------------

    def _map_errors(self, folder: str | None = None) -> contextlib.AbstractContextManager[None]:
        """The one place library exceptions become ``SourceError`` subclasses
        (see :func:`syncer.sources.imap.errors.map_errors`)."""
        return map_errors(
            ErrorContext(
                label=self._label,
                account=self.account or None,
                host=self.host,
                port=self.port,
                timeout=self.timeout,
                drop=self._drop,
            ),
            folder,
        )

    # -- the command runner -----------------------------------------------------------------

    def _imap(self) -> Any:
        """imaplib's connection object, connecting first if needed."""
        if self._client is None:
            self.connect()
        return self._client._imap

    def _run(
        self,
        commands: Sequence[Sequence[Arg]],
        on_untagged: Callable[[Response, int], None] | None = None,
        *,
        reader: LineSource | None = None,
    ) -> list[Completion]:
        """:func:`run_commands` on this connection; drops the connection when the
        stream may be out of step (anything but a malformed-but-framed response)."""
        imap = self._imap()
        try:
            return run_commands(
                imap,
                commands,
                on_untagged,
                reader=reader,
                literal_plus="LITERAL+" in self._capabilities,
                track=self._track,
            )
        except ResponseError:
            raise
        except BaseException:
            self._drop()
            raise

    def _run_ok(
        self,
        name: str,
        commands: Sequence[Sequence[Arg]],
        on_untagged: Callable[[Response, int], None] | None = None,
    ) -> list[Completion]:
        """:meth:`_run`, raising :class:`CommandFailed` on the first NO/BAD."""
        completions = self._run(commands, on_untagged)
        self._ok(name, completions)
        return completions

    @staticmethod
    def _ok(name: str, completions: Sequence[Completion], *, allow: str | None = None) -> None:
        for completion in completions:
            if completion.status != "OK" and completion.code != allow:
                raise CommandFailed(name, completion)

    def _track(self, response: Response) -> None:
        """Follow the message count of the selected folder (skips empty-folder commands)."""
        text = response.text
        if text.endswith(b"EXISTS"):
            m = _EXISTS_TAIL.match(text)
            if m is not None:
                self._exists = int(m.group(1))
        elif text.endswith(b"EXPUNGE") and self._exists:
            self._exists -= 1

    def _require_selected(self) -> str:
        if self._client is None or self._selected is None:
            raise SourceError(
                f"Account {self._label!r}: no folder is selected; call select() first.",
                account=self.account or None,
            )
        return self._selected

    # -- folders ----------------------------------------------------------------------------

    def _get_namespaces(self) -> Namespaces:
        if self._namespace_info is not None:
            return self._namespace_info
        found: list[Namespaces] = []

        def on(response: Response, _index: int) -> None:
            if response.text[:12].upper().startswith(b"* NAMESPACE "):
                found.append(parse_namespace(response))

        self._imap()
        if "NAMESPACE" in self._capabilities:
            self._run_ok("NAMESPACE", [[b"NAMESPACE"]], on)
        self._namespace_info = found[0] if found else Namespaces.default()
        return self._namespace_info

    def list_folders(self, *, with_status: bool = True) -> list[FolderStatus]:
        """LIST the configured namespaces, with STATUS (LIST-STATUS where offered).

        Non-selectable folders (``\\Noselect``, ``\\NonExistent``) are returned with
        ``selectable=False`` and no status. A folder whose STATUS fails (deleted
        between LIST and STATUS) is returned without status, with a warning.

        :raises SourceError:
        """
        with self._map_errors():
            namespaces = self._get_namespaces()
            caps = self._capabilities
            extended = "LIST-EXTENDED" in caps
            list_status = with_status and "LIST-STATUS" in caps
            patterns = [prefix + "*" for prefix in namespaces.prefixes(self.namespaces)]
            if "personal" in self.namespaces and "*" not in patterns:
                patterns.append("INBOX")  # personal prefix like "INBOX." misses INBOX itself
            patterns = list(dict.fromkeys(patterns))
            if not patterns:
                return []

            collected = ListCollector()
            commands = list_commands(
                patterns, caps, subscribed_only=self.subscribed_only, list_status=list_status
            )
            self._run_ok("LIST", commands, collected)

            kept: list[tuple[ListEntry, str, str]] = []
            for raw, entry in collected.entries.items():
                kind = namespaces.classify(entry.name)
                if kind not in self.namespaces:
                    continue
                if self.subscribed_only and not extended and raw not in collected.subscribed:
                    continue
                shown = display_name(raw)
                if not matches_globs(shown, self.include, self.exclude):
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
        items = b" (" + status_items(self._capabilities) + b")"

        def on(response: Response, _index: int) -> None:
            if response.text[:9].upper().startswith(b"* STATUS "):
                parsed = parse_status_or_warn(response)
                if parsed is not None:
                    statuses[parsed[0]] = parsed[1]

        completions = self._run([[b"STATUS ", astring(e.name), items] for e in entries], on)
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

        self._run([mailbox_id_command(e.name) for e in wanted], on)

    # -- select -----------------------------------------------------------------------------

    def select(self, folder: str, *, qresync: tuple[int, int] | None = None) -> SelectedFolder:
        """EXAMINE ``folder`` (read-only), with QRESYNC or CONDSTORE where offered.

        :param qresync: ``(uidvalidity, modseq)`` from the archive; with QRESYNC the
            answer carries ``vanished`` and ``changed`` and ``qresync=True``.
        :raises SourceError: e.g. when the folder does not exist.
        """
        with self._map_errors(folder):
            self._imap()
            caps = self._capabilities
            condstore = "CONDSTORE" in caps or "QRESYNC" in caps
            use_qresync = (
                "QRESYNC" in caps
                and not self._qresync_broken
                and qresync is not None
                and qresync[0] > 0
                and qresync[1] > 0
            )
            commands: list[list[Arg]] = []
            if use_qresync and not self._qresync_enabled:
                # ENABLE is only valid outside a selected folder (RFC 5161). CLOSE after
                # EXAMINE never expunges (RFC 3501 6.4.2), so it is safe without UNSELECT.
                if self._selected is not None:
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

            self._selected = None
            imap = self._imap()
            completions = self._run(commands, on)
            if examine_index:
                self._qresync_enabled = b"QRESYNC" in enabled and all(
                    c.status == "OK" for c in completions[:examine_index]
                )
                if not self._qresync_enabled:
                    # Advertised but not enabled: the EXAMINE answer cannot be trusted
                    # either way, so select again without QRESYNC.
                    self._qresync_broken = True
                    imap.state = "AUTH"
                    log.warning("imap.qresync.unavailable", folder=folder)
                    return self.select(folder)
            done = completions[examine_index]
            if done.status != "OK":
                imap.state = "AUTH"  # a failed EXAMINE leaves no folder selected
                self._exists = None
                raise CommandFailed("EXAMINE", done)
            # Keep imaplib's view in step, so imapclient calls remain legal afterwards.
            imap.state = "SELECTED"
            imap.is_readonly = True
            self._selected = folder
            if reader.uidnext is None:
                reader.uidnext = self._status_uidnext(folder)
            selected, distrust = reader.result(
                folder, qresync=qresync if use_qresync else None, condstore=condstore
            )
            self._exists = selected.exists
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

        self._run_ok("STATUS", [[b"STATUS ", astring(folder), b" (UIDNEXT)"]], on)
        for values in found.values():
            uidnext = values.get("UIDNEXT")
            if isinstance(uidnext, int):
                return uidnext
        raise ResponseError(f"neither EXAMINE nor STATUS told the UIDNEXT of {folder!r}")

    # -- messages ---------------------------------------------------------------------------

    def _body_items(self, section: bytes) -> bytes:
        items = [b"UID", b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", section]
        caps = self._capabilities
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
    ) -> list[Completion]:
        """``UID FETCH`` each set (pipelined); every FETCH response goes to ``on_item``.

        Responses without a UID (unsolicited flag updates by sequence number) are
        skipped: every response to a UID FETCH carries the UID (RFC 3501 6.4.8).
        """

        def on(response: Response, _index: int) -> None:
            if is_fetch(response.text):
                item = parse_fetch(response)
                if item.uid is not None:
                    on_item(item)

        commands = [[b"UID FETCH ", s, b" (", items, b")", modifiers] for s in uid_sets]
        return self._run(commands, on, reader=reader)

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
        if self.max_bytes_per_second:
            with self._map_errors(folder):
                reader = ThrottledReader(self._imap(), self.max_bytes_per_second)
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
        if wanted is None and self._exists == 0:
            return []
        sizes: dict[int, int] = {}

        def on_item(item: FetchItem) -> None:
            if item.uid is not None and item.size is not None:
                sizes[item.uid] = item.size

        sets = compress_uids(wanted) if wanted is not None else [b"%d:*" % first]
        self._ok("UID FETCH", self._fetch(sets, b"UID RFC822.SIZE", on_item))
        # "n:*" also returns the last message when n is above every UID (RFC 3501 6.4.8).
        return sorted(
            (uid, size)
            for uid, size in sizes.items()
            if uid >= first and (wanted is None or uid in wanted)
        )

    def _fetch_batch(
        self, folder: str, batch: Sequence[tuple[int, int]], reader: LineSource | None
    ) -> list[RemoteMessage]:
        got: dict[int, FetchItem] = {}

        def on_item(item: FetchItem) -> None:
            assert item.uid is not None
            previous = got.get(item.uid)
            if previous is None:
                got[item.uid] = item
            else:
                previous.merge(item)

        completions = self._fetch(
            compress_uids(uid for uid, _ in batch),
            self._body_items(b"BODY.PEEK[]"),
            on_item,
            reader=reader,
        )
        # Dovecot: "OK [EXPUNGEISSUED]" with BODY[] NIL; a NO with that code is the same.
        self._ok("UID FETCH", completions, allow="EXPUNGEISSUED")
        messages: list[RemoteMessage] = []
        missing: list[int] = []
        for uid, _size in batch:
            item = got.get(uid)
            body = item.sections.get("") if item is not None else None
            if item is None or body is None:
                missing.append(uid)
                continue
            emailid = item.emailid
            if emailid is None and item.gm_msgid is not None:
                emailid = str(item.gm_msgid)
            messages.append(
                RemoteMessage(
                    folder=folder,
                    uid=uid,
                    raw=body,
                    flags=item.flags or (),
                    internaldate=item.internaldate,
                    size=item.size if item.size is not None else len(body),
                    modseq=item.modseq,
                    emailid=emailid,
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
        found: list[Response] = []

        def on(response: Response, _index: int) -> None:
            if response.text[:9].upper().startswith((b"* SEARCH", b"* ESEARCH")):
                found.append(response)

        # NOOP first: it lets the server report the expunge (RFC 5530 EXPUNGEISSUED).
        commands: list[list[Arg]] = [[b"NOOP"]]
        commands.extend([b"UID SEARCH UID ", s] for s in compress_uids(missing))
        self._ok("NOOP / UID SEARCH", self._run(commands, on))
        still = parse_search(found) & set(missing)
        if still:
            shown = ", ".join(str(u) for u in sorted(still)[:20])
            more = f" and {len(still) - 20} more" if len(still) > 20 else ""
            raise SourceError(
                f"Account {self._label!r}: {self.host}:{self.port} did not return the "
                f"message body of UID {shown}{more} in folder {folder!r}, though the "
                "message still exists.",
                account=self.account or None,
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
        if not {"CONDSTORE", "QRESYNC"} & self._capabilities:
            raise SourceError(
                f"Account {self._label!r}: {self.host}:{self.port} has no CONDSTORE; "
                "flags_since() cannot be used.",
                account=self.account or None,
                folder=folder,
            )
        return self._flags(folder, b"UID FLAGS", b" (CHANGEDSINCE %d)" % modseq)

    def all_flags(self) -> list[FlagState]:
        """``UID FETCH 1:* (UID FLAGS)`` (with MODSEQ where CONDSTORE is offered)."""
        folder = self._require_selected()
        items = b"UID FLAGS"
        if {"CONDSTORE", "QRESYNC"} & self._capabilities:
            items += b" MODSEQ"
        return self._flags(folder, items, b"")

    def _flags(self, folder: str, items: bytes, modifiers: bytes) -> list[FlagState]:
        if self._exists == 0:
            return []
        states: dict[int, FlagState] = {}

        def on_item(item: FetchItem) -> None:
            assert item.uid is not None
            if item.flags is None:
                return
            states[item.uid] = FlagState(item.uid, item.flags, item.modseq)

        with self._map_errors(folder):
            self._ok("UID FETCH", self._fetch([b"1:*"], items, on_item, modifiers=modifiers))
        return [states[uid] for uid in sorted(states)]

    def uids(self) -> list[int]:
        """``UID SEARCH ALL`` (``RETURN (ALL)`` with ESEARCH, for a short answer)."""
        folder = self._require_selected()
        if self._exists == 0:
            return []
        found: list[Response] = []

        def on(response: Response, _index: int) -> None:
            if response.text[:9].upper().startswith((b"* SEARCH", b"* ESEARCH")):
                found.append(response)

        esearch = "ESEARCH" in self._capabilities
        command = b"UID SEARCH RETURN (ALL) ALL" if esearch else b"UID SEARCH ALL"
        with self._map_errors(folder):
            self._run_ok("UID SEARCH", [[command]], on)
            return sorted(parse_search(found))

    def expunge(self, folder: str, uidvalidity: int, uids: Iterable[int]) -> list[int]:
        """Remove exactly ``uids`` from ``folder`` (``\\Deleted`` + ``UID EXPUNGE``, UIDPLUS
        only; see :mod:`._imap_expunge`) and return the UIDs now gone.

        :raises ExpungeUnsupported: without UIDPLUS (never a blanket EXPUNGE).
        :raises UIDValidityChanged: when the folder's UIDVALIDITY differs.
        :raises SourceError:
        """
        from syncer.sources.imap.expunge import expunge_uids

        return expunge_uids(self, folder, uidvalidity, uids)

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
        if (wanted is not None and not wanted) or (wanted is None and self._exists == 0):
            return []
        found: dict[int, FetchItem] = {}
        hashes: dict[int, str] = {}

        def on_item(item: FetchItem) -> None:
            assert item.uid is not None
            header = item.sections.pop("HEADER", None)
            if header is not None:
                hashes[item.uid] = hashlib.sha256(header).hexdigest()
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
            completions = self._fetch(sets, self._body_items(b"BODY.PEEK[HEADER]"), on_item)
            self._ok("UID FETCH", completions, allow="EXPUNGEISSUED")
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
                    emailid=item.emailid
                    if item.emailid is not None or item.gm_msgid is None
                    else str(item.gm_msgid),
                )
            )
        return out
