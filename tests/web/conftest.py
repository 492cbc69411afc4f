"""Fixtures of the web archive tests: an archive with users, and clients of the app.

``web_archive`` is per test on ``archive_url`` (SQLite, and PostgreSQL marked
``integration``); ``client(name)`` is a Starlette ``TestClient`` of the real app
over it, signed in as ``name`` through the sign-in form (or anonymous).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from syncer.archive.store import ArchiveStore
from syncer.config.schema import parse_config
from syncer.web.app import create_app
from tests.web.corpus import PASSWORD, WebArchive, build_archive

#: The canary of the hostile corpus in tests that run no browser: nothing listens there.
NO_CANARY = "http://127.0.0.1:9"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]
)
def web_archive(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebArchive]:
    """One archive per module and database: building it (normalizing, hashing passwords)
    is most of a test's time. Tests only add to it (holds, audit events, lockouts of
    their own users), so they do not depend on each other's order."""
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres_server")
        name = server.create_database()
        try:
            yield build_archive(server.url(name), NO_CANARY)
        finally:
            server.drop_database(name)
        return
    path = tmp_path_factory.mktemp("web") / "archive.db"
    yield build_archive(f"sqlite:///{path}", NO_CANARY)


@pytest.fixture
def web_store(web_archive: WebArchive) -> Iterator[ArchiveStore]:
    store = ArchiveStore.open(web_archive.url)
    try:
        yield store
    finally:
        store.close()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


@pytest.fixture
def client(web_archive: WebArchive, web_store: ArchiveStore) -> Iterator[Callable[..., TestClient]]:
    config = parse_config({"archive": {"url": web_archive.url}})
    app = create_app(config, web_store, secret="test-secret")
    made: list[TestClient] = []

    def make(name: str | None = None) -> TestClient:
        http = TestClient(app, follow_redirects=False)
        made.append(http)
        if name is not None:
            token = csrf_of(http.get("/login").text)
            done = http.post("/login", data={"name": name, "password": PASSWORD, "csrf": token})
            assert done.status_code == 303, done.text
        return http

    yield make
    for http in made:
        http.close()
