"""One logged-in IMAP connection with a public interface: :class:`IMAPSession`.

Why this exists: three parts of the IMAP adapter talk to the same connection --
:class:`~syncer.sources.imap.source.IMAPSource` (sync),
:class:`~syncer.sources.imap.target.IMAPTarget` (push) and
:func:`~syncer.sources.imap.expunge.expunge_uids` (retention) -- and each needs
the same few things: connect on first use, run pipelined commands through
:func:`~syncer.sources.imap.connection.run_commands`, map errors in one place,
forget a connection whose stream can no longer be trusted, and keep imaplib's
idea of the selected folder in step with what was really sent. This class is
those things and nothing more, so none of them reaches into another's private
members.

Public API::

    session = IMAPSession(settings)          # stores the settings only
    session.connect()                        # TLS, login, capabilities (idempotent)
    with session.map_errors("INBOX"):
        completions = session.run([[b"NOOP"]])
        check_ok("NOOP", completions)
    session.close()

State that follows the server: :attr:`IMAPSession.selected` (the folder the
adapter reads from, or None), :attr:`IMAPSession.exists` (its message count,
followed through EXISTS and EXPUNGE responses), and whether QRESYNC is enabled
on this connection. :meth:`entered` and :meth:`left` record a SELECT/EXAMINE
or UNSELECT that was sent.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from syncer.sources.imap.connection import (
    Arg,
    CommandFailed,
    arm,
    open_client,
    run_commands,
    ssl_context,
)
from syncer.sources.imap.errors import map_errors
from syncer.sources.imap.listing import Namespaces, parse_namespace
from syncer.sources.imap.parser import (
    DEFAULT_MAX_LITERAL,
    Completion,
    LineSource,
    Response,
    ResponseError,
    ThrottledReader,
)
from syncer.sources.imap.settings import IMAPSettings
from syncer.sources.wording import ErrorContext

__all__ = ["IMAPSession", "check_ok"]

log = structlog.get_logger(__name__)

_EXISTS_TAIL = re.compile(rb"\* (\d+) EXISTS\Z", re.IGNORECASE)


def check_ok(name: str, completions: Sequence[Completion], *, allow: str | None = None) -> None:
    """Raise :class:`CommandFailed` for the first completion that is not OK.

    :param allow: a response code accepted as success (``EXPUNGEISSUED``).
    """
    for completion in completions:
        if completion.status != "OK" and completion.code != allow:
            raise CommandFailed(name, completion)


class IMAPSession:
    """A connection to one IMAP server, opened on first use; see the module docstring.

    :param settings: where and how to connect (:class:`IMAPSettings`).
    """

    def __init__(self, settings: IMAPSettings) -> None:
        self.settings = settings
        self._client: Any = None  # imapclient.IMAPClient (untyped library)
        self._capabilities: frozenset[str] = frozenset()
        self._namespaces: Namespaces | None = None
        #: The folder selected for reading (None: none, or one the adapter must not read).
        self.selected: str | None = None
        #: Message count of the selected folder, followed through EXISTS/EXPUNGE.
        self.exists: int | None = None
        #: QRESYNC is enabled on this connection (RFC 7162 ENABLE); or it failed to be.
        self.qresync_enabled = False
        self.qresync_broken = False

    def __repr__(self) -> str:  # never shows the password
        s = self.settings
        return (
            f"IMAPSession(account={s.account!r}, host={s.host!r}, port={s.port}, "
            f"security={s.security!r}, username={s.username!r})"
        )

    # -- connection ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def client(self) -> Any:
        """The imapclient session underneath (None when not connected); it stays usable."""
        return self._client

    @property
    def capabilities(self) -> frozenset[str]:
        """Upper-cased capabilities read after login (empty before :meth:`connect`)."""
        return self._capabilities

    def connect(self) -> IMAPSession:
        """Connect, secure the connection, log in, read capabilities; idempotent.

        :raises SourceAuthError: when the login is refused.
        :raises SourceUnavailable: network trouble, timeouts, TLS failures.
        :raises SourceError: when STARTTLS is asked for but not offered.
        """
        if self._client is not None:
            return self
        s = self.settings
        with self.map_errors():
            context = None
            if s.security != "plain":
                context = ssl_context(s.ca_file, s.tls_verify)
                if not s.tls_verify:
                    log.warning("imap.tls.unverified", host=s.host, port=s.port)
            client, capabilities = open_client(
                s.host,
                s.port,
                s.security,
                s.username,
                s.password,
                context=context,
                timeout=s.timeout,
                oauth2=s.oauth2,
                mechanism=s.sasl_mechanism,
            )
        self._client = client
        self._capabilities = capabilities
        self._namespaces = None
        self.selected = None
        self.exists = None
        self.qresync_enabled = False
        self.qresync_broken = False
        log.info(
            "imap.connected",
            host=s.host,
            port=s.port,
            security=s.security,
            capabilities=len(capabilities),
        )
        return self

    def close(self) -> None:
        """LOGOUT and close the socket; never raises."""
        client, self._client = self._client, None
        self.selected = None
        if client is None:
            return
        try:
            arm(client._imap, "LOGOUT")
            client.logout()
        except Exception:
            with contextlib.suppress(Exception):
                client.shutdown()
        log.debug("imap.closed", host=self.settings.host, port=self.settings.port)

    def drop(self) -> None:
        """Forget a connection whose stream can no longer be trusted (no LOGOUT)."""
        client, self._client = self._client, None
        self.selected = None
        self.exists = None
        if client is not None:
            with contextlib.suppress(Exception):
                client.shutdown()

    @property
    def label(self) -> str:
        """How messages name the account: its name, or user@host."""
        return self.settings.label

    def map_errors(self, folder: str | None = None) -> contextlib.AbstractContextManager[None]:
        """The one place library exceptions become ``SourceError`` subclasses
        (the shared table, :mod:`syncer.protocols.errors`, in the words of
        :mod:`syncer.sources.imap.errors`); ``folder`` is named in the message."""
        s = self.settings
        return map_errors(
            ErrorContext(
                label=s.label,
                account=s.account or None,
                host=s.host,
                port=s.port,
                timeout=s.timeout,
                drop=self.drop,
            ),
            folder,
        )

    # -- commands ---------------------------------------------------------------------------

    def _imap(self) -> Any:
        """imaplib's connection object, connecting first if needed."""
        if self._client is None:
            self.connect()
        return self._client._imap

    def run(
        self,
        commands: Sequence[Sequence[Arg]],
        on_untagged: Callable[[Response, int], None] | None = None,
        *,
        reader: LineSource | None = None,
        expected_bytes: int = 0,
        max_literal: int = DEFAULT_MAX_LITERAL,
    ) -> list[Completion]:
        """Send ``commands`` pipelined and read their answers (:func:`run_commands`),
        connecting first if needed. Drops the connection when the stream may be out
        of step (anything but a malformed-but-framed response).

        :param on_untagged: called with each untagged response and its command's index.
        :param reader: reads instead of the connection (a throttled reader).
        :param expected_bytes: what the answers should carry; the exchange's deadline
            allows for it at the configured throttle rate (:mod:`syncer.sources.deadline`).
        :param max_literal: the most literal bytes one response may carry.
        """
        imap = self._imap()
        try:
            return run_commands(
                imap,
                commands,
                on_untagged,
                reader=reader,
                literal_plus="LITERAL+" in self._capabilities,
                track=self._track,
                expected_bytes=expected_bytes,
                rate=self.settings.max_bytes_per_second,
                max_literal=max_literal,
            )
        except ResponseError:
            raise
        except BaseException:
            self.drop()
            raise

    def run_ok(
        self,
        name: str,
        commands: Sequence[Sequence[Arg]],
        on_untagged: Callable[[Response, int], None] | None = None,
    ) -> list[Completion]:
        """:meth:`run`, raising :class:`CommandFailed` on the first NO/BAD."""
        completions = self.run(commands, on_untagged)
        check_ok(name, completions)
        return completions

    def throttled_reader(self, bytes_per_second: float) -> LineSource:
        """A reader of this connection that paces reads to ``bytes_per_second``."""
        return ThrottledReader(self._imap(), bytes_per_second)

    def _track(self, response: Response) -> None:
        """Follow the message count of the selected folder (skips empty-folder commands)."""
        text = response.text
        if text.endswith(b"EXISTS"):
            m = _EXISTS_TAIL.match(text)
            if m is not None:
                self.exists = int(m.group(1))
        elif text.endswith(b"EXPUNGE") and self.exists:
            self.exists -= 1

    # -- the selected folder ----------------------------------------------------------------

    def entered(self, folder: str | None, *, readonly: bool, exists: int | None = None) -> None:
        """Record a SELECT or EXAMINE the server accepted, in imaplib's view too (so
        imapclient calls stay legal). ``folder`` None: selected on the server, but
        not for the adapter to read from (retention's read-write SELECT)."""
        imap = self._imap()
        imap.state = "SELECTED"
        imap.is_readonly = readonly
        self.selected = folder
        self.exists = exists

    def left(self) -> None:
        """Record that no folder is selected any more (UNSELECT, or a refused SELECT)."""
        if self._client is not None:
            self._client._imap.state = "AUTH"
        self.selected = None
        self.exists = None

    def namespaces(self) -> Namespaces:
        """The server's namespaces (NAMESPACE where offered, else the default); cached
        for the connection.

        :raises CommandFailed: (raise it inside :meth:`map_errors`).
        """
        if self._namespaces is not None:
            return self._namespaces
        found: list[Namespaces] = []

        def on(response: Response, _index: int) -> None:
            if response.text[:12].upper().startswith(b"* NAMESPACE "):
                found.append(parse_namespace(response))

        self._imap()
        if "NAMESPACE" in self._capabilities:
            self.run_ok("NAMESPACE", [[b"NAMESPACE"]], on)
        self._namespaces = found[0] if found else Namespaces.default()
        return self._namespaces
