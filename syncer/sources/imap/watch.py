"""A watching IMAP connection: one long-lived session that says *which* folder changed.

Why this exists: a daemon that polls every 15 minutes leaves a window in which
mail can arrive and be deleted unseen. Servers can push instead:

* NOTIFY (:rfc:`5465`): one connection watches every personal folder. After
  ``NOTIFY SET (selected (...)) (personal (MessageNew MessageExpunge FlagChange
  MailboxName SubscriptionChange))`` the server sends ``* STATUS folder (...)``
  for new mail, expunges and -- once CONDSTORE is enabled -- flag changes in any
  folder, and ``* LIST`` when folders are created, renamed, deleted or
  (un)subscribed. Without CONDSTORE a flag change in a folder that is not
  selected is not reported at all, so INBOX is then EXAMINEd on the watching
  connection and its flag changes arrive as the selected folder's ``FETCH``.
* IDLE (:rfc:`2177`) only: one connection per folder, EXAMINEd; ``EXISTS``,
  ``EXPUNGE``/``VANISHED`` and ``FETCH`` say that folder changed.

Either way the connection then sits in IDLE (with NOTIFY too: Dovecot flushes
some notifications, folder renames among them, only at a command boundary or
in IDLE), re-issued every :data:`IDLE_REFRESH` seconds, before the 29 minutes
after which :rfc:`2177` lets a server drop an idle client. Nothing else is
sent while idle; TCP keepalive (kernel probes, not IMAP commands) notices a
peer that vanished without closing the connection.

The watcher only says what changed; the sync pipeline fetches it (on another
connection), so the events are deliberately coarse: a folder name, or None for
"the folder list changed". Waiting is done with ``select()`` on a buffer of
our own (:class:`_SocketReader`), so a timeout never loses half a response.

Public API (private to ``syncer.sources``, used by the daemon through
:func:`syncer.sync.runner.open_watcher`): :class:`WatchEvent`,
:class:`IMAPWatcher`, :func:`wait_any`, :data:`IDLE_REFRESH`.

Errors: every library exception is mapped by
:func:`syncer.sources.imap.errors.map_errors`; a lost connection, a ``* BYE``
(server shutdown) and ``[NOTIFICATIONOVERFLOW]`` all raise ``SourceUnavailable``,
upon which the caller reconnects and syncs everything once.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from syncer.oauth.sasl import TokenProvider
from syncer.sources.folder_names import FolderNaming
from syncer.sources.imap.connection import (
    CommandFailed,
    astring,
    open_client,
    run_commands,
    ssl_context,
)
from syncer.sources.imap.errors import map_errors
from syncer.sources.imap.listing import Namespaces, name_to_str, parse_namespace, parse_status
from syncer.sources.imap.parser import (
    ConnectionClosed,
    FramingError,
    Response,
    ResponseError,
    parse_completion,
    read_response,
)
from syncer.sources.wording import ErrorContext

log = structlog.get_logger(__name__)

#: Seconds between re-issued IDLE commands: :rfc:`2177` lets a server log out a client
#: idle for 30 minutes and asks clients to re-issue IDLE at least every 29; one minute less
#: leaves room for a slow round trip.
IDLE_REFRESH = 28 * 60.0

#: What a NOTIFY connection asks for (:rfc:`5465` section 6). FlagChange for folders that
#: are not selected is reported only with CONDSTORE enabled (as a STATUS HIGHESTMODSEQ).
NOTIFY_SET = (
    b"NOTIFY SET (selected (MessageNew MessageExpunge FlagChange)) "
    b"(personal (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange))"
)

Mode = Literal["notify", "idle", "none"]

# TCP keepalive: first probe after a minute of silence, then every 15 s, gone after 4.
_KEEPALIVE = (60, 15, 4)


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """Something changed on the server.

    :param folder: the folder's wire name (as in ``FolderStatus.name``), or None when
        the folder list itself changed (created, renamed, deleted, subscribed).
    :param display_name: the folder's name as people see it (None with ``folder``):
        :mod:`syncer.sources.folder_names`, what ``include``/``exclude`` match.
    :param reason: ``status`` (NOTIFY), ``exists``, ``expunge``, ``flags``, ``folders``.
    """

    folder: str | None
    display_name: str | None
    reason: str


class _SocketReader:
    """A :class:`~syncer.sources.imap.parser.LineSource` over the raw socket with a buffer
    of our own: :meth:`fill` may time out without losing bytes, and ``select()`` on the
    socket plus :meth:`buffered` tells whether a response is waiting."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self._sock = sock
        self._timeout = timeout
        self._buf = bytearray()

    def fileno(self) -> int:
        return self._sock.fileno()

    def set_timeout(self, timeout: float) -> None:
        self._timeout = timeout
        self._sock.settimeout(timeout)

    def buffered(self) -> bool:
        """Bytes already read (by us or decrypted by TLS) that no response consumed yet."""
        tls_pending = isinstance(self._sock, ssl.SSLSocket) and self._sock.pending() > 0
        return bool(self._buf) or tls_pending

    def fill(self, timeout: float) -> bool:
        """Read once, waiting at most ``timeout`` s; False when nothing came.

        :raises ConnectionClosed: at EOF.
        """
        self._sock.settimeout(timeout)
        try:
            data = self._sock.recv(65536)
        except (TimeoutError, BlockingIOError, ssl.SSLWantReadError):
            return False
        finally:
            self._sock.settimeout(self._timeout)
        if not data:
            raise ConnectionClosed("the server closed the connection")
        self._buf += data
        return True

    def readline(self) -> bytes:
        while (end := self._buf.find(b"\n")) < 0:
            if not self.fill(self._timeout):
                raise TimeoutError("no complete line from the server")
        line = bytes(self._buf[: end + 1])
        del self._buf[: end + 1]
        return line

    def read(self, size: int) -> bytes:
        while len(self._buf) < size:
            if not self.fill(self._timeout):
                raise TimeoutError("a literal stopped arriving")
        data = bytes(self._buf[:size])
        del self._buf[:size]
        return data


class IMAPWatcher:
    """One watching connection (see the module docstring).

    ``IMAPWatcher(...)`` stores settings; :meth:`connect` logs in, arms NOTIFY or
    EXAMINEs ``folder``, and enters IDLE. Then :meth:`poll` (or :func:`wait_any`) hands
    out :class:`WatchEvent` values; :meth:`close` leaves IDLE and logs out.

    :param folder: the folder to IDLE on when NOTIFY is not used, by its shown name
        (``Archive/2024``).
    :param notify: use NOTIFY where the server offers it (False: IDLE on ``folder``).
    :param idle_refresh: seconds between re-issued IDLE commands.
    """

    # Allowed (PLR0913): connection parameters as in IMAPSettings; built by syncer.connect only.
    def __init__(  # noqa: PLR0913
        self,
        host: str,
        port: int,
        security: str,
        username: str,
        password: str,
        *,
        tls_verify: bool = True,
        ca_file: str | None = None,
        timeout: float = 60.0,
        account: str = "",
        oauth2: TokenProvider | None = None,
        sasl_mechanism: str = "auto",
        folder: str = "INBOX",
        notify: bool = True,
        idle_refresh: float = IDLE_REFRESH,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.username, self.account = username, account
        self._password = password
        self.tls_verify, self.ca_file, self.timeout = tls_verify, ca_file, timeout
        self._oauth2, self.sasl_mechanism = oauth2, sasl_mechanism
        self.folder, self.notify, self.idle_refresh = folder, notify, idle_refresh
        self._clock = clock
        self._client: Any = None
        self._reader: _SocketReader | None = None
        self._idle_tag: bytes | None = None
        self._idle_since = 0.0
        self.capabilities: frozenset[str] = frozenset()
        self.mode: Mode = "none"
        self.selected: str | None = None  # wire name of the EXAMINEd folder, if any
        self.refreshes = 0  # IDLE commands re-issued (for tests and logs)
        self.naming = FolderNaming()  # the server's, once connected

    # -- life cycle ---------------------------------------------------------------------------

    def connect(self) -> IMAPWatcher:
        """Log in and start watching. ``mode`` is ``none`` (and the connection closed)
        when the server offers neither NOTIFY nor IDLE.

        :raises SourceError: (and subclasses) when connecting, logging in or arming fails.
        """
        with self._map_errors():
            context = (
                ssl_context(self.ca_file, self.tls_verify) if self.security != "plain" else None
            )
            self._client, self.capabilities = open_client(
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
            caps = self.capabilities
            if self.notify and "NOTIFY" in caps:
                self.mode = "notify"
            elif "IDLE" in caps:
                self.mode = "idle"
            else:
                self.close()
                return self
            sock = self._client._imap.sock
            _keepalive(sock)
            self._reader = _SocketReader(sock, self.timeout)
            self._arm()
            self._start_idle()
        log.debug("imap.watch.started", mode=self.mode, folder=self.selected)
        return self

    def _learn_naming(self) -> None:
        """NAMESPACE, so events carry the names people see (``Archive/2024``, not
        ``INBOX.Archive.2024``) and ``folder`` (a shown name) finds its wire name."""
        found: list[Namespaces] = []

        def on(response: Response, _index: int) -> None:
            if response.text[:12].upper().startswith(b"* NAMESPACE "):
                found.append(parse_namespace(response))

        if "NAMESPACE" in self.capabilities:
            self._run([[b"NAMESPACE"]], on)
        self.naming = (found[0] if found else Namespaces.default()).naming()

    def _arm(self) -> None:
        """NAMESPACE; then ENABLE CONDSTORE and NOTIFY SET, or EXAMINE the watched folder."""
        self._learn_naming()
        caps = self.capabilities
        commands: list[list[bytes]] = []
        if self.mode == "notify":
            if "CONDSTORE" in caps or "QRESYNC" in caps:
                commands.append([b"ENABLE CONDSTORE"])
            else:  # flag changes are reported for the selected folder only
                commands.append([b"EXAMINE INBOX"])
                self.selected = "INBOX"
            commands.append([NOTIFY_SET])
        else:
            wire = self.naming.wire(self.folder)
            commands.append([b"EXAMINE ", astring(wire)])
            self.selected = wire
        self._run(commands)

    def _run(
        self,
        commands: Sequence[Sequence[bytes]],
        on: Callable[[Response, int], None] | None = None,
    ) -> None:
        """Run commands outside IDLE; any NO/BAD is a :class:`CommandFailed`."""
        for parts, done in zip(
            commands,
            run_commands(self._client._imap, commands, on, reader=self._reader),
            strict=True,
        ):
            if done.status != "OK":
                raise CommandFailed(b"".join(parts).decode("utf-8", "replace")[:60], done)

    def close(self) -> None:
        """Leave IDLE, LOGOUT and close the socket; never raises."""
        client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(Exception):
            if self._idle_tag is not None and self._reader is not None:
                self._reader.set_timeout(min(self.timeout, 5.0))  # leave quickly
                self._stop_idle([])
        self._reader = None
        try:
            client.logout()
        except Exception:
            with contextlib.suppress(Exception):
                client.shutdown()

    def __enter__(self) -> IMAPWatcher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- waiting ------------------------------------------------------------------------------

    def fileno(self) -> int:
        if self._reader is None:
            raise ConnectionClosed("the watcher is not connected")
        return self._reader.fileno()

    def refresh_due_in(self) -> float:
        """Seconds until IDLE must be re-issued (0 when overdue)."""
        return max(0.0, self._idle_since + self.idle_refresh - self._clock())

    def poll(self) -> list[WatchEvent]:
        """What arrived so far (never waits for the network), re-issuing IDLE when due.

        :raises SourceUnavailable: when the connection is lost, the server says BYE or
            stops notifying (``[NOTIFICATIONOVERFLOW]``).
        :raises SourceError: when the server refuses IDLE.
        """
        with self._map_errors():
            if self._reader is None:
                raise ConnectionClosed("the watcher is not connected")
            events: list[WatchEvent] = []
            while self._reader.buffered() or _readable(self._reader, 0):
                response = read_response(self._reader)
                if response.text[:1] == b"*":
                    events.extend(self._events(response))
                elif response.text[:1] == b"+":
                    continue  # an IDLE continuation repeated by the server
                else:
                    raise FramingError(f"unexpected response {response.text[:80]!r}")
            if self.refresh_due_in() <= 0:
                self._stop_idle(events)
                self._start_idle()
                self.refreshes += 1
                log.debug("imap.watch.refreshed", folder=self.selected, mode=self.mode)
            return events

    def _start_idle(self) -> None:
        assert self._reader is not None
        imap = self._client._imap
        tag = imap._new_tag()
        imap.send(tag + b" IDLE\r\n")
        while True:
            response = read_response(self._reader)
            if response.text[:1] == b"+":
                break
            if response.text[:1] == b"*":
                continue  # answered by the catch-up sync the caller runs after connecting
            _, _, rest = response.text.partition(b" ")
            raise CommandFailed("IDLE", parse_completion(rest))
        self._idle_tag = tag
        self._idle_since = self._clock()

    def _stop_idle(self, events: list[WatchEvent]) -> None:
        """DONE, then read up to IDLE's completion, keeping the events seen meanwhile."""
        assert self._reader is not None and self._idle_tag is not None
        tag, self._idle_tag = self._idle_tag, None
        self._client._imap.send(b"DONE\r\n")
        while True:
            response = read_response(self._reader)
            if response.text[:1] == b"*":
                events.extend(self._events(response))
                continue
            got, _, rest = response.text.partition(b" ")
            if got == tag:
                completion = parse_completion(rest)
                if completion.status != "OK":
                    raise CommandFailed("IDLE", completion)
                return

    def _events(self, response: Response) -> Iterator[WatchEvent]:
        """The events one untagged response stands for (most stand for none)."""
        text = response.text
        words = text.split(b" ", 3)
        kind = words[1].upper() if len(words) > 1 else b""
        if kind == b"BYE":
            raise ConnectionClosed(f"the server said {text[2:].decode('utf-8', 'replace')!r}")
        if kind == b"OK" and b"[NOTIFICATIONOVERFLOW]" in text.upper():
            # RFC 5465 5.8: the server stopped notifying; start over (and sync everything).
            raise ConnectionClosed("the server stopped notifying (NOTIFICATIONOVERFLOW)")
        if kind == b"STATUS":
            try:
                raw, _items = parse_status(response)
            except ResponseError as exc:
                log.warning("imap.watch.unreadable", error=str(exc))
                yield WatchEvent(None, None, "folders")  # unknown folder: look at all
                return
            yield WatchEvent(name_to_str(raw), self.naming.shown(name_to_str(raw)), "status")
        elif kind == b"LIST":
            yield WatchEvent(None, None, "folders")
        elif self.selected is not None and (
            kind == b"VANISHED" or (len(words) > 2 and words[1].isdigit())
        ):
            what = words[2].upper() if kind != b"VANISHED" else b"EXPUNGE"
            reason = {b"EXISTS": "exists", b"EXPUNGE": "expunge", b"FETCH": "flags"}.get(what)
            if reason is not None:
                yield WatchEvent(self.selected, self.naming.shown(self.selected), reason)

    # -- errors -------------------------------------------------------------------------------

    def _map_errors(self) -> contextlib.AbstractContextManager[None]:
        label = self.account or f"{self.username}@{self.host}"
        context = ErrorContext(
            label=label,
            account=self.account or None,
            host=self.host,
            port=self.port,
            timeout=self.timeout,
            drop=self._drop,
        )
        return map_errors(context, self.selected if self.mode == "idle" else None)

    def _drop(self) -> None:
        client, self._client = self._client, None
        self._reader = None
        self._idle_tag = None
        if client is not None:
            with contextlib.suppress(Exception):
                client.shutdown()


def wait_any(watchers: Sequence[IMAPWatcher], timeout: float) -> list[WatchEvent]:
    """Wait up to ``timeout`` seconds (less when an IDLE is due for renewal) for any of
    ``watchers`` to report, and return what all of them have.

    :raises SourceError: from the first watcher whose connection failed.
    """
    if watchers and not any(w._reader is not None and w._reader.buffered() for w in watchers):
        wait = min([timeout, *(w.refresh_due_in() for w in watchers)])
        live = [w for w in watchers if w._reader is not None]
        if live and wait > 0:
            select.select(live, [], [], wait)
    events: list[WatchEvent] = []
    for watcher in watchers:
        events.extend(watcher.poll())
    return events


def _readable(reader: _SocketReader, timeout: float) -> bool:
    ready, _, _ = select.select([reader], [], [], timeout)
    return bool(ready) and reader.fill(timeout)


def _keepalive(sock: socket.socket) -> None:
    """Let the kernel probe a silent peer, so a vanished server is noticed without
    sending IMAP commands. Options missing on this platform are skipped."""
    idle, interval, count = _KEEPALIVE
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (
            ("TCP_KEEPIDLE", idle),
            ("TCP_KEEPINTVL", interval),
            ("TCP_KEEPCNT", count),
        ):
            option = getattr(socket, name, None)
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
