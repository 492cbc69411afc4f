"""An IMAP session: log in with imapclient, then run commands on its connection ourselves.

Why this exists: imapclient does the parts that are easy to get wrong (TCP,
implicit TLS, STARTTLS, LOGIN, CAPABILITY, LOGOUT). After login every command
goes through :func:`run_commands`, which writes on imapclient's imaplib
connection -- tags from ``_new_tag()``, bytes through ``send()`` -- and reads
the answer with :mod:`syncer.sources.imap.parser`. One runner for every
command means literals work anywhere, commands can be pipelined (one round
trip for a hundred STATUS commands), and bodies are never scanned byte by byte.
Completed tags are removed from imaplib's bookkeeping, so the imapclient
session stays usable afterwards.

This module raises library and private exceptions only; ``IMAPSource._map_errors``
turns them into ``SourceError`` subclasses, in one place.

Public API (private to ``syncer.sources``): :func:`ssl_context`, :func:`open_client`,
:func:`oauth2_login`,
:func:`run_commands`, :class:`Literal`, :data:`Arg`, :func:`astring`,
:class:`CommandFailed`, :class:`StartTLSNotOffered`, :func:`arm`, :func:`disarm`.
"""

from __future__ import annotations

import contextlib
import re
import ssl
from collections.abc import Callable, Sequence
from typing import Any

from imapclient import IMAPClient, imap4, tls
from imapclient.exceptions import LoginError

from syncer.oauth.sasl import (
    BearerRefused,
    Exchange,
    TokenProvider,
    choose_mechanism,
    initial_response,
    sign_in,
)
from syncer.protocols.errors import CommandRefused, NotOffered
from syncer.sources.deadline import Guard, LineTooLong, read_exact, read_line
from syncer.sources.imap.parser import (
    DEFAULT_MAX_LITERAL,
    Completion,
    ConnectionClosed,
    FramingError,
    LineSource,
    Response,
    ResponseError,
    parse_completion,
    quote,
    read_response,
)


class CommandFailed(CommandRefused):
    """A command was answered NO or BAD."""

    def __init__(self, command: str, completion: Completion) -> None:
        code = f"[{completion.code}] " if completion.code else ""
        super().__init__(f"{command}: {completion.status} {code}{completion.text}")
        self.command = command
        self.completion = completion


class StartTLSNotOffered(NotOffered):
    """``security = "starttls"`` but the server's greeting has no STARTTLS."""


class Literal(bytes):
    """A command argument that must travel as an IMAP literal."""


#: A piece of a command: plain bytes (sent as they are) or a :class:`Literal`.
Arg = bytes


def astring(name: str) -> Arg:
    """A folder name as a quoted string, or a literal when it cannot be quoted (8-bit, CR, LF)."""
    try:
        return quote(name)
    except ValueError:
        return Literal(name.encode("utf-8", "surrogateescape"))


def ssl_context(ca_file: str | None, verify: bool) -> ssl.SSLContext:
    """TLS 1.2 or later; certificate and host name checked unless ``verify`` is False."""
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class _GreetingCapabilities:
    """imaplib asks ``CAPABILITY`` right after the greeting, even when the greeting
    carried the list (``* OK [CAPABILITY ...]``, as Dovecot's does: RFC 3501 7.1
    makes the two equivalent). Taking it from the greeting saves a round trip on
    every connection; a greeting without it is still answered by the command.
    """

    untagged_responses: dict[str, list[Any]]
    capabilities: tuple[str, ...]
    _encoding: str

    def _get_capabilities(self) -> None:
        # Popped, as imaplib's own path does: a later CAPABILITY code (the LOGIN
        # answer's) must not be confused with this pre-login list.
        greeted = self.untagged_responses.pop("CAPABILITY", None)
        if greeted and isinstance(greeted[-1], bytes):
            self.capabilities = tuple(str(greeted[-1], self._encoding).upper().split())
            return
        super()._get_capabilities()  # type: ignore[misc]  # imaplib.IMAP4's


class _Guarded:
    """imaplib's reads, under an overall deadline per answer (:mod:`syncer.sources.deadline`).

    imaplib reads every line and literal through ``readline()`` and ``read(n)``,
    the greeting and LOGIN included, and so does :func:`run_commands`; replacing
    the two here puts the whole session under :class:`Guard`: the greeting is
    armed as the socket opens, LOGIN by :func:`open_client`, every pipelined
    exchange by :func:`run_commands`. Unarmed, only the per-read timeout applies.
    An endless line is a framing error that says so, not imaplib's "got more
    than 1000000 bytes" (which the error mapping would word as a refused command).
    """

    sock: Any
    file: Any
    _timeout: float | None
    guard: Guard

    def open(self, host: str = "", port: int = 143, timeout: float | None = None) -> None:
        self.guard = Guard(self._timeout or 60.0)
        self.guard.arm("the greeting")
        super().open(host, port, timeout)  # type: ignore[misc]  # imaplib.IMAP4's

    def readline(self) -> bytes:
        try:
            return read_line(self.file, self.sock, self.guard)
        except LineTooLong as exc:
            raise FramingError(str(exc)) from None

    def read(self, size: int) -> bytes:
        return read_exact(self.file, self.sock, self.guard, size)


class _PlainIMAP4(_Guarded, _GreetingCapabilities, imap4.IMAP4WithTimeout):  # type: ignore[misc]
    pass


class _TLSIMAP4(_Guarded, _GreetingCapabilities, tls.IMAP4_TLS):  # type: ignore[misc]
    pass


def arm(imap: Any, what: str, expected_bytes: int = 0, rate: float | None = None) -> None:
    """Start the deadline for the answer to ``what`` on imaplib connection ``imap``
    (a no-op on connections that are not ours, e.g. in tests)."""
    guard = getattr(imap, "guard", None)
    if isinstance(guard, Guard):
        guard.arm(what, expected_bytes, rate)


def disarm(imap: Any) -> None:
    guard = getattr(imap, "guard", None)
    if isinstance(guard, Guard):
        guard.disarm()


class _Client(IMAPClient):  # type: ignore[misc]  # imapclient has no type hints
    """IMAPClient on imaplib connections that read capabilities from the greeting."""

    def _create_IMAP4(self) -> Any:  # imapclient's name
        timeout = getattr(self._timeout, "connect", None)
        if self.ssl:
            return _TLSIMAP4(self.host, self.port, self.ssl_context, timeout)
        return _PlainIMAP4(self.host, self.port, timeout)


# Allowed (PLR0913): imaplib/imapclient's connection parameters and the exchange's keyword options.
def open_client(  # noqa: PLR0913
    host: str,
    port: int,
    security: str,
    username: str,
    password: str,
    *,
    context: ssl.SSLContext | None,
    timeout: float,
    oauth2: TokenProvider | None = None,
    mechanism: str = "auto",
) -> tuple[Any, frozenset[str]]:
    """A logged-in ``IMAPClient`` and its post-login capabilities.

    :param oauth2: sign in with OAuth2 access tokens from this provider instead of
        ``password`` (:func:`oauth2_login`); ``mechanism`` as in
        :func:`syncer.oauth.sasl.choose_mechanism`.
    :raises StartTLSNotOffered: for ``starttls`` against a server without it.
    :raises BearerRefused: when the server refuses the token, also after a refresh.
    :raises Exception: whatever imapclient, imaplib, ssl and socket raise.
    """
    client = _Client(host, port=port, ssl=security == "tls", ssl_context=context, timeout=timeout)
    try:
        # imapclient sets imaplib's debug level to 5, which formats every line with
        # repr() for its logger; that costs time on big answers and we never want it.
        client._imap.debug = 0
        client.folder_encode = False
        if security == "starttls":
            if "STARTTLS" not in client._imap.capabilities:
                raise StartTLSNotOffered(f"{host}:{port} does not offer STARTTLS")
            arm(client._imap, "STARTTLS")
            client.starttls(context)
        arm(client._imap, "LOGIN")
        if oauth2 is not None:
            oauth2_login(client, host, port, username, oauth2, mechanism)
        else:
            client.login(username, password)
        capabilities = read_capabilities(client)
        disarm(client._imap)
        return client, capabilities
    except BaseException:
        with contextlib.suppress(Exception):
            client.shutdown()
        raise


#: A refusal that means "later" (Dovecot: "[UNAVAILABLE] Temporary authentication failure"):
#: left to the error mapping as transient, not answered with a token refresh.
_LATER = re.compile(r"\[UNAVAILABLE\]|temporar|try again", re.IGNORECASE)


def oauth2_login(
    client: Any, host: str, port: int, username: str, tokens: TokenProvider, wanted: str
) -> None:
    """AUTHENTICATE with XOAUTH2 or OAUTHBEARER (what the greeting's ``AUTH=`` offers),
    once more with a refreshed token when the first is refused.

    :raises NoMechanism: when ``wanted`` is auto and neither mechanism is offered.
    :raises BearerRefused: when the refreshed token is refused as well.
    """
    offered = [c[5:] for c in client._imap.capabilities if c.upper().startswith("AUTH=")]
    mechanism = choose_mechanism(offered, wanted)

    def attempt(token: str) -> None:
        exchange = Exchange(mechanism, initial_response(mechanism, username, token, host, port))
        try:
            client.sasl_login(mechanism, exchange)
        except LoginError as exc:
            if _LATER.search(str(exc)):
                raise
            raise BearerRefused(mechanism, exchange.error or str(exc)) from exc

    sign_in(tokens, attempt)


def read_capabilities(client: Any) -> frozenset[str]:
    """The post-login CAPABILITY list (servers often extend it after login).

    Dovecot puts it in the LOGIN answer (``OK [CAPABILITY ...]``); otherwise ask.
    imapclient's and imaplib's caches are overwritten so their own checks agree
    (imapclient may have cached the pre-TLS list while checking for STARTTLS).
    """
    imap = client._imap
    pending = imap.untagged_responses.pop("CAPABILITY", None)
    if pending and pending[-1]:
        raw = pending[-1]
    else:
        typ, data = imap.capability()
        if typ != "OK" or not data or data[-1] is None:
            raise ResponseError("no CAPABILITY answer after login")
        raw = data[-1]
    if isinstance(raw, str):
        raw = raw.encode("ascii")
    words = tuple(raw.upper().split())
    client._cached_capabilities = words
    imap.capabilities = tuple(w.decode("ascii", "replace") for w in words)
    return frozenset(w.decode("ascii", "replace") for w in words)


# Allowed (PLR0913): imaplib/imapclient's connection parameters and the exchange's keyword options.
def run_commands(  # noqa: PLR0913
    imap: Any,
    commands: Sequence[Sequence[Arg]],
    on_untagged: Callable[[Response, int], None] | None,
    *,
    reader: LineSource | None = None,
    literal_plus: bool = False,
    track: Callable[[Response], None] | None = None,
    expected_bytes: int = 0,
    rate: float | None = None,
    max_literal: int = DEFAULT_MAX_LITERAL,
) -> list[Completion]:
    """Send ``commands`` pipelined on imaplib connection ``imap``; read until all complete.

    ``on_untagged(response, index)`` sees every untagged response with the index of
    the oldest command still running (the one it belongs to, for commands the
    server runs in order); ``track`` sees them first. A ``ResponseError`` from
    ``on_untagged`` is re-raised once every command has completed, so the stream
    is still in step. Any other exception leaves the stream out of step: the
    caller must drop the connection.

    :param reader: where to read from instead of ``imap`` (a :class:`ThrottledReader`).
    :param literal_plus: the server has LITERAL+ (RFC 7888): literals need no round trip.
    :param expected_bytes: what the answers should carry; with ``rate`` (a configured
        throttle) it sets the exchange's deadline (:func:`syncer.sources.deadline.allowance`).
    :param max_literal: the most literal bytes one response may carry; more is a
        :class:`FramingError` before anything is read (a hostile length cannot make
        us allocate it).
    """
    exchange = _Exchange(reader if reader is not None else imap, on_untagged, track)
    exchange.max_literal = max_literal
    tags: list[bytes] = []
    arm(imap, _command_name(commands), expected_bytes, rate)
    try:
        for index, parts in enumerate(commands):
            tag = imap._new_tag()
            tags.append(tag)
            exchange.pending[tag] = index
            _send(imap, exchange, tag, parts, literal_plus)
        while exchange.pending:
            if exchange.step():
                raise FramingError("unexpected continuation request")
    finally:
        disarm(imap)
        for tag in tags:
            imap.tagged_commands.pop(tag, None)
    if exchange.error is not None:
        raise exchange.error
    return [exchange.completions[i] for i in range(len(commands))]


def _command_name(commands: Sequence[Sequence[Arg]]) -> str:
    """``UID FETCH``, ``STATUS``, ...: the first command's name, for a deadline's error."""
    if not commands or not commands[0]:
        return "a command"
    return b" ".join(bytes(commands[0][0]).split()[:2]).decode("ascii", "replace")


def _send(
    imap: Any, exchange: _Exchange, tag: bytes, parts: Sequence[Arg], literal_plus: bool
) -> None:
    out = [tag, b" "]
    for part in parts:
        if not isinstance(part, Literal):
            out.append(part)
            continue
        if literal_plus:
            out.append(b"{%d+}\r\n" % len(part))
            out.append(bytes(part))
            continue
        out.append(b"{%d}\r\n" % len(part))
        imap.send(b"".join(out))
        out = []
        while tag in exchange.pending and not exchange.step():
            pass  # wait for "+ go ahead" (or the command's own NO/BAD)
        if tag not in exchange.pending:
            return  # refused before the literal; its completion is recorded
        out.append(bytes(part))
    out.append(b"\r\n")
    imap.send(b"".join(out))


class _Exchange:
    """Commands in flight on one connection and what has come back for them."""

    __slots__ = ("completions", "error", "max_literal", "on_untagged", "pending", "src", "track")

    def __init__(
        self,
        src: LineSource,
        on_untagged: Callable[[Response, int], None] | None,
        track: Callable[[Response], None] | None,
    ) -> None:
        self.src = src
        self.on_untagged = on_untagged
        self.track = track
        self.pending: dict[bytes, int] = {}
        self.completions: dict[int, Completion] = {}
        self.error: ResponseError | None = None
        self.max_literal = DEFAULT_MAX_LITERAL

    def step(self) -> bool:
        """Read one response; True when it was a continuation request (``+``)."""
        response = read_response(self.src, self.max_literal)
        text = response.text
        if text[:2] == b"* ":
            if text[2:5].upper() == b"BYE" and text[5:6] in (b" ", b""):
                said = text[2:].decode("utf-8", "replace")
                raise ConnectionClosed(f"the server said {said!r}")
            if self.track is not None:
                self.track(response)
            if self.on_untagged is not None and self.error is None:
                try:
                    self.on_untagged(response, min(self.pending.values(), default=0))
                except ResponseError as exc:
                    self.error = exc  # keep reading: the stream stays in step
            return False
        if text[:1] == b"+":
            return True
        tag, _, rest = text.partition(b" ")
        index = self.pending.pop(tag, None)
        if index is None:
            raise FramingError(f"unexpected response {text[:80]!r}")
        self.completions[index] = parse_completion(rest)
        return False
