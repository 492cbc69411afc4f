"""SMTP fixtures: one real aiosmtpd server (three listeners) for the session.

* ``smtp_server_session`` (session): :class:`~tests.servers.smtp.SMTPTestServer`
  with STARTTLS, implicit TLS and plain listeners, AUTH PLAIN/LOGIN/CRAM-MD5.
* ``smtp_server`` (function): the same server with its record and scripted
  replies cleared before and after the test.

Helpers for relay tests: :func:`smtp_entry`, :func:`relay_config` (a validated
configuration sending through the test server), :func:`make_mail`,
:func:`archive_mail` (archive and normalize, returning the new message ids).

aiosmtpd is a Python package (a dev dependency), so there is nothing to skip:
the server always runs.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from syncer.archive.store import ArchiveStore
from syncer.config.schema import Config, parse_config
from tests.servers.smtp import SMTPTestServer


@pytest.fixture(scope="session")
def smtp_server_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SMTPTestServer]:
    directory: Path = tmp_path_factory.mktemp("smtp")
    with SMTPTestServer(directory) as server:
        yield server


@pytest.fixture
def smtp_server(smtp_server_session: SMTPTestServer) -> Iterator[SMTPTestServer]:
    smtp_server_session.reset()
    yield smtp_server_session
    smtp_server_session.reset()


# --------------------------------------------------------------------------- relay helpers


def smtp_entry(
    server: SMTPTestServer, listener: str = "plain", *, name: str = "out", **extra: Any
) -> dict[str, Any]:
    """An ``[[smtp]]`` table for one listener of the test server (dialled as localhost)."""
    entry: dict[str, Any] = {
        "name": name,
        "host": "localhost",
        "port": server.ports[listener],
        "security": listener,
        "ca_file": str(server.tls.ca),
        "timeout": 10,
    }
    entry.update(extra)
    return entry


def relay_config(
    server: SMTPTestServer,
    *,
    digests: Sequence[dict[str, Any]] = (),
    forwards: Sequence[dict[str, Any]] = (),
    smtp: Sequence[dict[str, Any]] | None = None,
    outbox: dict[str, Any] | None = None,
) -> Config:
    """A validated configuration with the test server as ``[[smtp]]`` "out"."""
    data: dict[str, Any] = {
        "smtp": list(smtp) if smtp is not None else [smtp_entry(server)],
        "digests": list(digests),
        "forwards": list(forwards),
    }
    if outbox is not None:
        data["outbox"] = outbox
    return parse_config(data)


def make_mail(
    subject: str,
    *,
    sender: str = "boss@example.com",
    body: str = "Hello.",
    to: str = "me@example.com",
) -> bytes:
    """A small RFC 5322 message with a unique Message-ID (CRLF line ends)."""
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Date: Fri, 27 Nov 2026 07:00:00 +0000\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.com>\r\n\r\n{body}\r\n"
    ).encode()


def archive_mail(
    store: ArchiveStore, raws: Sequence[bytes], *, normalize: bool = True
) -> list[int]:
    """Archive ``raws`` into work/INBOX (normalized unless told not to); their message ids."""
    from syncer.model import RemoteMessage
    from syncer.sync.normalize import normalize_pending

    store.ensure_account("work", "imap")
    before = store.highest_message_pk()
    batch = [
        RemoteMessage(folder="INBOX", uid=before + 1 + i, raw=raw) for i, raw in enumerate(raws)
    ]
    store.archive_batch("work", "INBOX", 1, batch, None)
    if normalize:
        normalize_pending(store, workers=1)
    return [store.find_message(hashlib.sha256(raw).hexdigest()) for raw in raws]
