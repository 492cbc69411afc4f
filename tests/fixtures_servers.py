"""Cyrus and Courier fixtures: the other two real IMAP servers, next to Dovecot.

Session-scoped, started on first use (well under a second each) with the session's
throwaway CA (``tls_files`` from :mod:`tests.fixtures_dovecot`):

- ``cyrus_debian``: Cyrus IMAP 3.6 with Debian's namespace (``INBOX.``, ``.``, ``user.``).
- ``cyrus_upstream``: Cyrus with upstream's (``/``, ``Other Users/``, ``Shared Folders/``,
  conversations on).
- ``courier``: Courier-IMAP 5 (``INBOX.``, ``.``; no CONDSTORE, QRESYNC, OBJECTID).

``any_server`` is parametrized over Dovecot and these three (ids ``dovecot``,
``cyrus-debian``, ``cyrus-upstream``, ``courier``); ``any_user`` gives each test a fresh
login on it. Tests using them are marked ``integration``. When a server is not installed
(see :mod:`tests.servers.debs`; ``make deps`` installs it as root) the test fails naming
the packages; ``SYNCER_SKIP_SERVER_TESTS=1`` turns that into a skip.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.fixtures_dovecot import SKIP_ENV
from tests.servers.courier import CourierServer
from tests.servers.cyrus import CyrusServer
from tests.servers.debs import ServerNotInstalled
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.imap_helpers import ServerError
from tests.servers.tls import TLSFiles

AnyServer = DovecotServer | CyrusServer | CourierServer
_S = TypeVar("_S", CyrusServer, CourierServer)

#: Fixture ids of every real IMAP server in the suite.
SERVER_IDS = ("dovecot", "cyrus-debian", "cyrus-upstream", "courier")

SERVER_FIXTURES = frozenset({"cyrus_debian", "cyrus_upstream", "courier", "any_server", "any_user"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def _start(server: _S) -> _S:
    try:
        server.start()
    except ServerNotInstalled as exc:
        shutil.rmtree(server.base_dir, ignore_errors=True)
        if os.environ.get(SKIP_ENV) == "1":
            pytest.skip(f"{exc} ({SKIP_ENV}=1)")
        pytest.fail(f"{exc}\nOr set {SKIP_ENV}=1 to skip the server tests.", pytrace=False)
    except ServerError as exc:
        pytest.exit(f"could not start {type(server).__name__} for the tests:\n{exc}", returncode=3)
    return server


def _base(name: str) -> Path:
    # Not tmp_path: the cyrus user and uid 9000 must reach it. tmpfs where there is one:
    # Cyrus fsyncs every APPEND, which costs 0.15 s on disk and nothing on tmpfs.
    shm = Path("/dev/shm")
    where = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix=f"syncer-{name}-", dir=where))


def _shutdown(server: CyrusServer | CourierServer) -> None:
    server.stop()
    shutil.rmtree(server.base_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def cyrus_debian(tls_files: TLSFiles) -> Iterator[CyrusServer]:
    """Cyrus with Debian's namespace defaults."""
    server = _start(CyrusServer(_base("cyrus-deb"), layout="debian", tls=tls_files))
    yield server
    _shutdown(server)


@pytest.fixture(scope="session")
def cyrus_upstream(tls_files: TLSFiles) -> Iterator[CyrusServer]:
    """Cyrus with upstream's namespace defaults and conversations."""
    server = _start(CyrusServer(_base("cyrus-up"), layout="upstream", tls=tls_files))
    yield server
    _shutdown(server)


@pytest.fixture(scope="session")
def courier(tls_files: TLSFiles) -> Iterator[CourierServer]:
    """Courier-IMAP with Debian's capability list."""
    server = _start(CourierServer(_base("courier"), tls=tls_files))
    yield server
    _shutdown(server)


@pytest.fixture(scope="session", params=SERVER_IDS)
def any_server(request: pytest.FixtureRequest) -> AnyServer:
    """Each test runs against Dovecot, both Cyrus layouts and Courier."""
    server: AnyServer = request.getfixturevalue(request.param.replace("-", "_"))
    return server


@pytest.fixture
def any_user(any_server: AnyServer) -> Iterator[MailUser]:
    """A new login with an empty mailbox on ``any_server``, removed after the test."""
    user = any_server.add_user()
    yield user
    any_server.remove_user(user.name)
