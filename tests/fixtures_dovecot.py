"""Dovecot fixtures: real IMAP/POP3 servers on loopback for integration tests.

Two session-scoped servers start on first use (about 50 ms each) and share one
throwaway CA:

- ``dovecot``: everything Debian's Dovecot 2.3 offers (CONDSTORE, QRESYNC,
  LIST-STATUS, SPECIAL-USE, ACL, ...).
- ``dovecot_fallback``: advertises the same list minus
  :data:`~tests.servers.dovecot.HIDDEN_IN_FALLBACK`, so clients take their
  plain RFC 3501 paths.

``imap_server`` is parametrized over both (ids ``full`` and ``fallback``).
``mail_user`` gives each test a fresh, empty login on ``imap_server``, removed
with its mail afterwards; ``dovecot_user`` does the same on ``dovecot`` only
(POP3 tests, or tests that do not care about capabilities). ``make_dovecot``
starts a private server with other options (``apop=True``, ...) for one test.

Every test that uses one of these fixtures is marked ``integration``
automatically, so ``pytest -m "not integration"`` runs offline. Without the
``dovecot`` binary those tests fail, naming the Debian packages to install;
``SYNCER_SKIP_SERVER_TESTS=1`` turns the failure into a skip.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers.dovecot import (
    FALLBACK_CAPABILITIES,
    DovecotError,
    DovecotNotInstalled,
    DovecotServer,
    MailUser,
    find_binaries,
)
from tests.servers.gmail import GmailProxy
from tests.servers.tls import TLSFiles, make_tls_files

SKIP_ENV = "SYNCER_SKIP_SERVER_TESTS"

#: Fixtures whose users need a real server; tests using them get the integration mark.
SERVER_FIXTURES = frozenset(
    {"dovecot", "dovecot_fallback", "imap_server", "mail_user", "dovecot_user", "make_dovecot"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def require_dovecot() -> None:
    """Fail (or, with SYNCER_SKIP_SERVER_TESTS=1, skip) when Dovecot is not installed."""
    try:
        find_binaries()
    except DovecotNotInstalled as exc:
        if os.environ.get(SKIP_ENV) == "1":
            pytest.skip(f"{exc} ({SKIP_ENV}=1)")
        pytest.fail(f"{exc}\nOr set {SKIP_ENV}=1 to skip the server tests.", pytrace=False)


def _start(tls: TLSFiles, name: str, **options: object) -> DovecotServer:
    require_dovecot()
    # Not pytest's tmp_path: its 0700 parents would lock out Dovecot's unprivileged
    # processes, and its long paths would strain the 108-byte UNIX socket limit.
    base = Path(tempfile.mkdtemp(prefix=f"syncer-{name}-"))
    server = DovecotServer(base, tls=tls, **options)  # type: ignore[arg-type]
    try:
        server.start()
    except DovecotError as exc:
        # Same as a missing port in vdirsyncer's suite: nothing after this can pass.
        pytest.exit(f"could not start Dovecot for the tests:\n{exc}", returncode=3)
    return server


def _shutdown(server: DovecotServer) -> None:
    server.stop()
    shutil.rmtree(server.base_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A throwaway CA and a server certificate for ``localhost`` (no IP address)."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def dovecot(tls_files: TLSFiles) -> Iterator[DovecotServer]:
    """Dovecot with its full capability list."""
    server = _start(tls_files, "dovecot")
    yield server
    _shutdown(server)


@pytest.fixture(scope="session")
def dovecot_fallback(tls_files: TLSFiles) -> Iterator[DovecotServer]:
    """Dovecot advertising no CONDSTORE, QRESYNC, LIST-STATUS or OBJECTID."""
    server = _start(tls_files, "dovecot-fallback", capabilities=FALLBACK_CAPABILITIES)
    yield server
    _shutdown(server)


@pytest.fixture(scope="session")
def gmail_dovecot(tls_files: TLSFiles) -> Iterator[DovecotServer]:
    """Dovecot with the ``virtual`` plugin: the storage of the Gmail double
    (tests/servers/gmail.py)."""
    server = _start(tls_files, "gmail", virtual=True)
    yield server
    _shutdown(server)


@pytest.fixture(scope="session")
def gmail_proxy(gmail_dovecot: DovecotServer) -> Iterator[GmailProxy]:
    """The X-GM-EXT-1 proxy in front of ``gmail_dovecot``: the Gmail double."""
    with GmailProxy(gmail_dovecot.host, gmail_dovecot.ports.imap) as proxy:
        yield proxy


@pytest.fixture(scope="session", params=["full", "fallback"])
def imap_server(request: pytest.FixtureRequest) -> DovecotServer:
    """Each test runs once against ``dovecot`` and once against ``dovecot_fallback``."""
    name = "dovecot" if request.param == "full" else "dovecot_fallback"
    server: DovecotServer = request.getfixturevalue(name)
    return server


def _fresh_user(server: DovecotServer) -> Iterator[MailUser]:
    user = server.add_user()
    yield user
    server.remove_user(user.name)


@pytest.fixture
def mail_user(imap_server: DovecotServer) -> Iterator[MailUser]:
    """A new login with an empty mailbox on ``imap_server``, deleted after the test."""
    yield from _fresh_user(imap_server)


@pytest.fixture
def dovecot_user(dovecot: DovecotServer) -> Iterator[MailUser]:
    """A new login with an empty mailbox on ``dovecot`` (full capabilities)."""
    yield from _fresh_user(dovecot)


@pytest.fixture
def make_dovecot(tls_files: TLSFiles) -> Iterator[Callable[..., DovecotServer]]:
    """Factory for a private server with other options, e.g. ``make_dovecot(apop=True)``.

    Servers it starts are stopped after the test.
    """
    started: list[DovecotServer] = []

    def make(**options: object) -> DovecotServer:
        server = _start(tls_files, "dovecot-private", **options)
        started.append(server)
        return server

    yield make
    for server in started:
        _shutdown(server)
