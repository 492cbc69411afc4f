"""Property: SQLite and PostgreSQL select the same messages for any query (and search() too).

One generated archive (tests/corpus.py, small profile: German, Korean and
Japanese text, threads, attachments; some entries expunged, a folder reset, a
POP3 account with a deletion) is built twice through the real store API, once
per backend. Hypothesis then writes queries from the archive's own words,
addresses, folders, dates and sizes (and some it does not hold), with AND, OR,
NOT and parentheses, and both backends must return the same ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from syncer.archive.models import addresses, attachments, folders, messages
from syncer.archive.store import ArchiveStore
from syncer.model import FolderStatus, RemoteMessage
from syncer.query import And, Field, Not, Or, Query, Text, format_query
from syncer.query.fields import IS_VALUES
from syncer.sync.normalize import normalize_pending
from tests.corpus import generate
from tests.servers.postgres import PostgresServer

pytestmark = pytest.mark.integration

COUNT = 80


def _build(store: ArchiveStore) -> None:
    corpus = list(generate(COUNT, seed=7, size_profile="small"))
    store.ensure_account("work", "imap")
    names = sorted({m.folder for m in corpus})
    store.upsert_folders("work", [FolderStatus(n, n, "/") for n in names])
    for name in names:
        batch = [
            RemoteMessage(
                folder=name, uid=i + 1, raw=m.raw, flags=m.flags, internaldate=m.internaldate
            )
            for i, m in enumerate(corpus)
            if m.folder == name
        ]
        store.archive_batch("work", name, 1, batch, None)
        store.mark_gone("work", name, 1, [b.uid for b in batch if b.uid % 7 == 3], None)
    store.close_uidvalidity("work", names[-1], 1)
    store.ensure_account("home", "pop3")
    pop = [m.raw for m in corpus[:4]]
    store.archive_pop3(
        "home",
        [
            RemoteMessage(folder="INBOX", uid=0, raw=raw, uidl=f"u{i}", size=len(raw))
            for i, raw in enumerate(pop)
        ],
    )
    store.mark_pop3_deleted("home", ["u0", "u1"], datetime(2025, 1, 1, tzinfo=UTC))
    assert normalize_pending(store, workers=1).failed == 0


@dataclass
class Vocabulary:
    """Values the archive holds, for queries that find something."""

    words: list[str]
    addresses: list[str]
    folders: list[str]
    filenames: list[str]
    days: list[str]
    sizes: list[int]
    threads: list[str]
    message_ids: list[str]


def _vocabulary(store: ArchiveStore) -> Vocabulary:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(
                messages.c.subject,
                messages.c.date,
                messages.c.size,
                messages.c.thread_key,
                messages.c.message_id_header,
            )
        ).all()
        people = conn.execute(select(addresses.c.address, addresses.c.display_name)).all()
        files = conn.execute(select(attachments.c.filename)).scalars().all()
        names = conn.execute(select(folders.c.display_name)).scalars().all()
    words = sorted({w for r in rows for w in (r.subject or "").split() if len(w) > 2})
    spaceless = sorted(
        {w[i : i + 2] for w in words for i in range(len(w) - 1) if ord(w[i]) > 0x3000}
    )
    return Vocabulary(
        words=words + spaceless[:40],
        addresses=sorted(
            {part for a, d in people for part in ((a or "").split("@") + (d or "").split()) if part}
        ),
        folders=sorted(set(names)),
        filenames=sorted({f for f in files if f}),
        days=sorted({f"{r.date:%Y-%m-%d}" for r in rows if r.date}),
        sizes=sorted(r.size for r in rows),
        threads=sorted({r.thread_key for r in rows if r.thread_key}),
        message_ids=sorted({r.message_id_header for r in rows if r.message_id_header}),
    )


@dataclass
class Twins:
    sqlite: ArchiveStore
    postgresql: ArchiveStore
    vocabulary: Vocabulary


@pytest.fixture(scope="module")
def twins(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Twins]:
    name = postgres_server.create_database()
    lite = ArchiveStore.open(
        f"sqlite:///{tmp_path_factory.mktemp('twins') / 'archive.db'}", migrate=True
    )
    pg = ArchiveStore.open(postgres_server.url(name), migrate=True)
    try:
        _build(lite)
        _build(pg)
        yield Twins(lite, pg, _vocabulary(lite))
    finally:
        lite.close()
        pg.close()
        postgres_server.drop_database(name)


def _mangle(draw: st.DrawFn, value: str) -> str:
    """The value as a user might type it: any case, or a part of it."""
    how = draw(st.sampled_from(["same", "upper", "lower", "swap", "part"]))
    if how == "part" and len(value) > 3:
        start = draw(st.integers(0, len(value) - 2))
        part = value[start : start + draw(st.integers(2, 6))]
        return part if part.strip() else value
    return {"upper": value.upper(), "lower": value.lower(), "swap": value.swapcase()}.get(
        how, value
    )


@st.composite
def _terms(draw: st.DrawFn, v: Vocabulary) -> Query:
    kind = draw(st.sampled_from(["text", "address", "where", "flag", "is", "date", "size", "id"]))
    if kind == "text":
        value = draw(st.sampled_from(v.words) | st.text(min_size=1, max_size=5).filter(str.strip))
        field = draw(st.sampled_from(["", "subject", "body"]))
        prefix = draw(st.booleans())
        return Field(field, value, prefix) if field else Text(value, prefix)
    if kind == "address":
        return Field(
            draw(st.sampled_from(["from", "to", "cc"])),
            _mangle(draw, draw(st.sampled_from(v.addresses))),
        )
    if kind == "where":
        choice = draw(st.sampled_from(["folder", "account", "filename", "has"]))
        if choice == "folder":
            return Field("folder", _mangle(draw, draw(st.sampled_from(v.folders))))
        if choice == "account":
            return Field("account", draw(st.sampled_from(["work", "home", "nobody"])))
        if choice == "filename" and v.filenames:
            return Field("filename", _mangle(draw, draw(st.sampled_from(v.filenames))))
        return Field("has", "attachment")
    if kind == "flag":
        return Field("flag", draw(st.sampled_from(["seen", "flagged", "answered", "$label1", "x"])))
    if kind == "is":
        return Field("is", draw(st.sampled_from(IS_VALUES)))
    if kind == "date":
        day = draw(st.sampled_from(v.days))
        shifted = datetime.fromisoformat(day) + timedelta(days=draw(st.integers(-1, 1)))
        return Field(draw(st.sampled_from(["before", "after", "on"])), f"{shifted:%Y-%m-%d}")
    if kind == "size":
        size = draw(st.sampled_from(v.sizes)) + draw(st.integers(-1, 1))
        unit = draw(st.sampled_from(["", "k"]))
        value = f"{max(0, size // 1024)}k" if unit else str(max(0, size))
        return Field(draw(st.sampled_from(["larger", "smaller"])), value)
    which = draw(st.sampled_from(["thread", "message-id"]))
    if which == "thread":
        return Field("thread", draw(st.sampled_from(v.threads)))
    return Field("message-id", draw(st.sampled_from(v.message_ids)).strip("<>"))


def _queries(v: Vocabulary) -> st.SearchStrategy[Query]:
    return st.recursive(
        _terms(v),
        lambda inner: (
            st.builds(Not, inner)
            | st.builds(And, st.lists(inner, min_size=2, max_size=3).map(tuple))
            | st.builds(Or, st.lists(inner, min_size=2, max_size=3).map(tuple))
        ),
        max_leaves=5,
    )


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_sqlite_and_postgresql_select_the_same_messages(twins: Twins, data: st.DataObject) -> None:
    query = format_query(data.draw(_queries(twins.vocabulary)))

    def ids(store: ArchiveStore) -> list[str]:
        # messages.id differs between the archives (hash order of inserts is the same, but
        # say so explicitly): compare by SHA-256.
        found = [pk for batch in store.select_message_ids(query, batch_size=50) for pk in batch]
        with store.engine.connect() as conn:
            shas = conn.execute(select(messages.c.sha256).where(messages.c.id.in_(found)))
            return sorted(shas.scalars())

    assert ids(twins.sqlite) == ids(twins.postgresql), query
    # search() writes the query for a newest-first walk on SQLite: the same messages.
    found = sorted(pk for batch in twins.sqlite.select_message_ids(query) for pk in batch)
    assert sorted(hit.id for hit in twins.sqlite.search(query, limit=1000)) == found, query
    # On PostgreSQL search() writes its full-text terms as EXISTS (for the same walk).
    found = sorted(pk for batch in twins.postgresql.select_message_ids(query) for pk in batch)
    assert sorted(hit.id for hit in twins.postgresql.search(query, limit=1000)) == found, query


def test_the_generated_archive_is_varied(twins: Twins) -> None:
    """The property above means something only if queries can find things."""
    v = twins.vocabulary
    assert len(v.words) > 20 and len(v.addresses) > 5 and len(v.folders) >= 3
    assert any(ord(ch) > 0x3000 for w in v.words for ch in w)  # CJK to search for
    for query in ("is:gone", "is:live", "has:attachment", "flag:seen", f"on:{v.days[0]}"):
        assert twins.sqlite.count_messages(query) > 0, query
