"""A Gmail-shaped IMAP server for tests, built from real parts.

Gmail cannot be reached from the tests, so this double puts the parts of Gmail's
IMAP that syncer depends on together out of a real Dovecot and a small proxy:

* **Storage** (real Dovecot, ``DovecotServer(virtual=True)``): every message lives
  once in ``[Gmail]/All Mail`` (SPECIAL-USE ``\\All``); a label is a keyword
  ``gl_NAME`` on it; each label folder ``Labels/NAME`` is a Dovecot ``virtual``
  mailbox, a saved search ``KEYWORD gl_NAME`` over All Mail. So, as at Gmail, a
  message appears in All Mail and in one folder per label, each folder with its own
  UIDs, and adding or removing a label changes the folders it appears in.
* **X-GM-EXT-1** (:class:`GmailProxy`, a loopback proxy in front of that Dovecot):
  adds ``X-GM-EXT-1`` to every CAPABILITY and removes ``QRESYNC`` (Gmail has
  CONDSTORE only, so label changes arrive through ``CHANGEDSINCE``); answers
  ``X-GM-MSGID`` and ``X-GM-THRID`` from Dovecot's ``X-GUID`` (the message's GUID,
  which a virtual folder passes through from All Mail: stable per message across
  folders); answers
  ``X-GM-LABELS`` from the ``gl_`` keywords (and hides them from ``FLAGS``); turns
  ``STORE +X-GM-LABELS``/``-X-GM-LABELS`` into keyword STOREs.
* **Limits**: :meth:`GmailProxy.throttle_next_fetches` makes the next body FETCHes
  answer ``NO [THROTTLED]`` (they never reach Dovecot); ``cut_after_body_bytes``
  drops the connection in the middle of a body once that many body bytes passed.
* **Accounting**: ``body_bytes`` and ``bodies`` (X-GM-MSGID -> times served) count
  every ``BODY[]`` literal served, which is how a test proves each body went once.

What the double does NOT model (a test passing here says nothing about these):
label folders at the top level (they are ``Labels/NAME`` here), nested labels,
labels with spaces or non-ASCII names, the system labels ``\\Inbox``, ``\\Sent``,
``\\Important``, ``\\Starred`` in X-GM-LABELS, INBOX being a label, threads
(``X-GM-THRID`` equals ``X-GM-MSGID``), ``X-GM-RAW`` search, ``STORE X-GM-LABELS``
without ``+``/``-``, Gmail's own bandwidth accounting and its timing (the proxy
throttles only when told), OAuth2, TLS (the proxy speaks plain IMAP), CONDSTORE
MODSEQ changes for label changes on virtual folders beyond what Dovecot does,
and Gmail's per-account connection limit.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
from collections import deque

from tests.servers.dovecot import MAIL_GID, MAIL_UID, DovecotServer
from tests.servers.proxy import _close_pair, _LoopbackProxy

ALL_MAIL = "[Gmail]/All Mail"
LABEL_PREFIX = "Labels/"
KEYWORD_PREFIX = "gl_"

_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")
_CAPABILITY = re.compile(rb"(\[CAPABILITY [^\]]*)\]|^(\* CAPABILITY [^\r\n]*)", re.IGNORECASE)
_FETCH_CMD = re.compile(
    rb"^(\S+) ((?:UID )?FETCH) (\S+) \((.*?)\)((?: \([A-Z-]+ [^()]*\))?)\r\n$", re.IGNORECASE
)
_STORE_LABELS = re.compile(
    rb"^(\S+) ((?:UID )?STORE) (\S+) ([+-])X-GM-LABELS(\.SILENT)? \((.*)\)\r\n$", re.IGNORECASE
)
_FETCH_RESP = re.compile(rb"^\* \d+ FETCH ", re.IGNORECASE)
_XGUID = re.compile(rb"X-GUID (\"[^\"]*\"|\S+?)(?=[ )])")
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_BODY_LITERAL = re.compile(rb"BODY\[\] \{(\d+)\}\r\n$", re.IGNORECASE)


def label_keyword(label: str) -> str:
    """The Dovecot keyword that carries a label (labels are plain atoms here)."""
    return KEYWORD_PREFIX + label


def gm_msgid(guid: bytes) -> int:
    """A 63-bit number from Dovecot's GUID: stable per message, like X-GM-MSGID."""
    return int(hashlib.sha256(guid.strip(b'"')).hexdigest()[:15], 16)


def define_label(server: DovecotServer, user: str, label: str) -> None:
    """Make ``Labels/<label>`` a saved search over All Mail for messages with the label."""
    root = server.home(user) / "virtual"
    folder = root / label
    folder.mkdir(parents=True, exist_ok=True)
    definition = folder / "dovecot-virtual"
    definition.write_text(f"{ALL_MAIL}\n  KEYWORD {label_keyword(label)}\n")
    for path in (root, folder, definition):
        os.chown(path, MAIL_UID, MAIL_GID)


class GmailProxy(_LoopbackProxy):
    """The X-GM-EXT-1 front of the double; see the module docstring."""

    def __init__(self, target_host: str, target_port: int) -> None:
        super().__init__(target_host, target_port)
        self.lock = threading.Lock()
        self.body_bytes = 0
        self.bodies: dict[int, int] = {}
        self.throttle_fetches = 0
        self.throttle_after = 0
        self.throttled = 0
        self.cut_after_body_bytes: int | None = None
        #: Cut every connection (not only the next) after ``cut_after_body_bytes``.
        self.cut_repeatedly = False
        self.cuts = 0

    def throttle_next_fetches(self, count: int = 1, *, after: int = 0) -> None:
        """Let ``after`` body FETCHes through, then answer ``count`` with ``NO [THROTTLED]``."""
        self.throttle_fetches, self.throttle_after = count, after

    def reset_counts(self) -> None:
        with self.lock:
            self.body_bytes = 0
            self.bodies = {}
            self.cuts = self.throttled = 0

    def _start_session(self, client: socket.socket, upstream: socket.socket) -> None:
        session = _GmailSession(self, client, upstream)
        threading.Thread(target=session.client_to_server, daemon=True).start()
        threading.Thread(target=session.server_to_client, daemon=True).start()


class _Wants:
    """What the client asked a FETCH (or STORE) for, so the answer can be rewritten."""

    def __init__(self, msgid: bool, thrid: bool, labels: bool, flags: bool) -> None:
        self.msgid, self.thrid, self.labels, self.flags = msgid, thrid, labels, flags


_PLAIN = _Wants(False, False, False, True)


class _GmailSession:
    def __init__(self, proxy: GmailProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.pending: deque[tuple[bytes, _Wants]] = deque()
        self.throttled_tags: set[bytes] = set()
        self.lock = threading.Lock()
        self.served = 0

    def _close(self) -> None:
        _close_pair(self.client, self.upstream)

    # -- client to server -----------------------------------------------------------------

    def client_to_server(self) -> None:
        buffer = b""
        raw_left = 0
        try:
            while True:
                data = self.client.recv(65536)
                if not data:
                    break
                buffer += data
                while buffer:
                    if raw_left:
                        chunk, buffer = buffer[:raw_left], buffer[raw_left:]
                        raw_left -= len(chunk)
                        self.upstream.sendall(chunk)
                        continue
                    end = buffer.find(b"\r\n")
                    if end < 0:
                        break
                    line, buffer = buffer[: end + 2], buffer[end + 2 :]
                    literal = _LITERAL.search(line)
                    if literal:
                        raw_left = int(literal.group(1))
                    self.upstream.sendall(self._command(line))
        except OSError:
            pass
        finally:
            self._close()

    def _command(self, line: bytes) -> bytes:
        store = _STORE_LABELS.match(line)
        if store:
            tag, cmd, uids, sign, silent, labels = store.groups()
            keywords = b" ".join(
                label_keyword(label.strip(b'"').decode()).encode() for label in labels.split()
            )
            with self.lock:
                self.pending.append((tag, _Wants(False, False, True, False)))
            return b"%s %s %s %sFLAGS%s (%s)\r\n" % (tag, cmd, uids, sign, silent or b"", keywords)
        fetch = _FETCH_CMD.match(line)
        if not fetch:
            return line
        tag, cmd, uids, items, modifiers = fetch.groups()
        names = items.upper().split()
        wants = _Wants(
            b"X-GM-MSGID" in names,
            b"X-GM-THRID" in names,
            b"X-GM-LABELS" in names,
            b"FLAGS" in names,
        )
        kept = [
            item
            for item in items.split()
            if item.upper() not in (b"X-GM-MSGID", b"X-GM-THRID", b"X-GM-LABELS")
        ]
        if (wants.labels and not wants.flags) or b"BODY.PEEK[]" in names or b"BODY[]" in names:
            kept.append(b"FLAGS")  # the labels are keywords; bodies are counted per GUID
        if wants.msgid or wants.thrid or b"BODY.PEEK[]" in names:
            kept.append(b"X-GUID")
        with self.lock:
            self.pending.append((tag, wants))
        if b"BODY.PEEK[]" in names and self.proxy.throttle_fetches > 0:
            if self.proxy.throttle_after > 0:
                self.proxy.throttle_after -= 1
                return b"%s %s %s (%s)%s\r\n" % (tag, cmd, uids, b" ".join(kept), modifiers)
            self.proxy.throttle_fetches -= 1
            self.throttled_tags.add(tag)
            return tag + b" NOOP\r\n"  # never reaches Dovecot as a FETCH
        return b"%s %s %s (%s)%s\r\n" % (tag, cmd, uids, b" ".join(kept), modifiers)

    # -- server to client -----------------------------------------------------------------

    def server_to_client(self) -> None:
        buffer = b""
        try:
            while True:
                data = self.upstream.recv(65536)
                if not data:
                    break
                buffer += data
                while True:
                    response, buffer = _split_response(buffer)
                    if response is None:
                        break
                    self._answer(response)
        except OSError:
            pass
        finally:
            self._close()

    def _answer(self, response: list[bytes]) -> None:
        first = response[0]
        if _FETCH_RESP.match(first):
            self._send(self._fetch_response(response))
            return
        tag = first.split(b" ", 1)[0]
        if tag != b"*" and tag != b"+":
            with self.lock:
                if self.pending and self.pending[0][0] == tag:
                    self.pending.popleft()
            if tag in self.throttled_tags:
                self.throttled_tags.discard(tag)
                self.proxy.throttled += 1
                self._send(
                    [tag + b" NO [THROTTLED] Account exceeded command or bandwidth limits.\r\n"]
                )
                return
        self._send([_CAPABILITY.sub(_add_capability, part) for part in response])

    def _fetch_response(self, response: list[bytes]) -> list[bytes]:
        with self.lock:
            wants = self.pending[0][1] if self.pending else _PLAIN
        guid = None
        body_size = 0
        for part in response[::2]:
            found = _XGUID.search(part)
            if found:
                guid = found.group(1)
            body = _BODY_LITERAL.search(part)
            if body:
                body_size = int(body.group(1))
        msgid = gm_msgid(guid) if guid is not None else None
        if body_size and msgid is not None:
            with self.proxy.lock:
                self.proxy.body_bytes += body_size
                self.proxy.bodies[msgid] = self.proxy.bodies.get(msgid, 0) + 1
        out = []
        for index, part in enumerate(response):
            if index % 2 == 0:  # text between literals
                part = _XGUID.sub(lambda m: _gm_ids(m.group(1), wants), part)
                part = _FLAGS.sub(lambda m: _flags_and_labels(m.group(1), wants), part)
                part = re.sub(rb"  +", b" ", part).replace(b"( ", b"(").replace(b" )", b")")
            out.append(part)
        return out

    def _send(self, parts: list[bytes]) -> None:
        limit = self.proxy.cut_after_body_bytes
        data = b"".join(parts)
        if limit is not None and self.served + len(data) > limit and len(parts) > 1:
            self.client.sendall(data[: max(limit - self.served, 0)])
            self.proxy.cuts += 1
            if not self.proxy.cut_repeatedly:
                self.proxy.cut_after_body_bytes = None
            raise OSError("cut by the Gmail double")
        if len(parts) > 1:
            self.served += len(data)
        self.client.sendall(data)


def _split_response(buffer: bytes) -> tuple[list[bytes] | None, bytes]:
    """One whole response (text parts alternating with literals) from the front of
    ``buffer``, or None when it is not all there yet."""
    parts: list[bytes] = []
    pos = 0
    while True:
        end = buffer.find(b"\r\n", pos)
        if end < 0:
            return None, buffer
        line = buffer[pos : end + 2]
        literal = _LITERAL.search(line)
        if not literal:
            parts.append(line)
            return parts, buffer[end + 2 :]
        size = int(literal.group(1))
        if len(buffer) < end + 2 + size:
            return None, buffer
        parts.append(line)
        parts.append(buffer[end + 2 : end + 2 + size])
        pos = end + 2 + size


def _add_capability(match: re.Match[bytes]) -> bytes:
    """X-GM-EXT-1 added; QRESYNC removed, as Gmail offers CONDSTORE but not QRESYNC."""
    if match.group(1) is not None:
        return _no_qresync(match.group(1)) + b" X-GM-EXT-1]"
    return _no_qresync(match.group(2)) + b" X-GM-EXT-1"


def _no_qresync(capabilities: bytes) -> bytes:
    return re.sub(rb" QRESYNC(?=[ \]]|$)", b"", capabilities, flags=re.IGNORECASE)


def _gm_ids(guid: bytes, wants: _Wants) -> bytes:
    number = gm_msgid(guid)
    items = []
    if wants.msgid:
        items.append(b"X-GM-MSGID %d" % number)
    if wants.thrid:
        items.append(b"X-GM-THRID %d" % number)
    return b" ".join(items)


def _flags_and_labels(flags: bytes, wants: _Wants) -> bytes:
    prefix = KEYWORD_PREFIX.encode()
    plain = [f for f in flags.split() if not f.startswith(prefix)]
    labels = [f[len(prefix) :] for f in flags.split() if f.startswith(prefix)]
    items = []
    if wants.flags:
        items.append(b"FLAGS (" + b" ".join(plain) + b")")
    if wants.labels:
        items.append(b"X-GM-LABELS (" + b" ".join(labels) + b")")
    return b" ".join(items)
