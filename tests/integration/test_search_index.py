"""The full-text index on SQLite and PostgreSQL: what it finds, and that it stays current.

One small archive per backend (module-scoped: normalizing it once is most of
the cost) holds messages in English, German, Korean, Japanese and Chinese and
attachments generated here (PDF with fpdf2, docx, xlsx, pptx, HTML). Every
search goes through :func:`~syncer.archive.search.index.text_match`, the
condition the query language compiles field terms and free words into.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import cast

import pytest
from sqlalchemy import Connection, select, text

from syncer.archive.engine import downgrade, upgrade
from syncer.archive.models import attachment_texts, messages
from syncer.archive.search.index import relevance, remove_messages, text_match
from syncer.archive.store import ArchiveStore
from syncer.model import RemoteMessage
from syncer.sync.normalize import normalize_pending
from tests.servers.postgres import PostgresServer


def _pdf(lines: list[str]) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    for line in lines:
        pdf.cell(text=line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _docx(paragraph: str, cell: str) -> bytes:
    import docx

    document = docx.Document()
    document.add_paragraph(paragraph)
    document.add_table(rows=1, cols=1).cell(0, 0).text = cell
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _xlsx(value: str) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    book.active["B2"] = value
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _pptx(title: str) -> bytes:
    import pptx

    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[0])
    slide.shapes.title.text = title
    buffer = io.BytesIO()
    deck.save(buffer)
    return buffer.getvalue()


_OOXML = "application/vnd.openxmlformats-officedocument."


def _mail(
    name: str,
    subject: str,
    body: str,
    *,
    sender: str = "Alice Example <alice@example.com>",
    files: tuple[tuple[str, str, bytes], ...] = (),
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "Bob <bob@example.org>"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{name}@search.test>"
    msg.set_content(body)
    for filename, ctype, data in files:
        maintype, subtype = ctype.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def corpus() -> dict[str, bytes]:
    """The messages of the module's archive, by name."""
    return {
        "invoice": _mail(
            "invoice",
            "Invoice 2019-03 for ACME",
            "Please pay the attached invoice by Friday.",
            sender="Jürgen Müller <juergen@acme.example>",
        ),
        "reinvoiced": _mail("reinvoiced", "Billing", "We reinvoiced the customer last week."),
        "invoicing": _mail("invoicing", "Schedule", "Invoicing starts on Monday."),
        "cafe": _mail("cafe", "Café crème", "Straße und Übermut."),
        "korean": _mail("korean", "안내", "메일을 보냈습니다. 확인 부탁드립니다."),
        "japanese": _mail("japanese", "予定", "東京タワーに行きました。明日は会議があります。"),
        "chinese": _mail("chinese", "会议", "我们明天在北京开会讨论合同。"),
        "pdf": _mail(
            "pdf",
            "Documents",
            "See attached.",
            files=(("terms-2019.pdf", "application/pdf", _pdf(["Quarterly renewal terms"])),),
        ),
        "docx": _mail(
            "docx",
            "Memo",
            "Attached.",
            files=(
                (
                    "memo.docx",
                    _OOXML + "wordprocessingml.document",
                    _docx("Confidential merger memorandum", "Zebrafish"),
                ),
            ),
        ),
        "office": _mail(
            "office",
            "Figures",
            "Two files.",
            files=(
                ("sheet.xlsx", _OOXML + "spreadsheetml.sheet", _xlsx("Spreadsheet walrus")),
                ("deck.pptx", _OOXML + "presentationml.presentation", _pptx("Slide pelican")),
                ("report.html", "text/html", b"<p>Hidden <b>narwhal</b> report</p>"),
            ),
        ),
    }


@dataclass
class Archive:
    store: ArchiveStore
    ids: dict[str, int]

    def find(self, scope: str, query: str, *, prefix: bool = False) -> set[str]:
        names = {pk: name for name, pk in self.ids.items()}
        dialect = self.store.engine.dialect.name
        with self.store.engine.connect() as conn:
            found = conn.execute(
                select(messages.c.id).where(text_match(dialect, scope, query, prefix=prefix))  # type: ignore[arg-type]
            ).scalars()
            return {names.get(pk, str(pk)) for pk in found}


def archive(store: ArchiveStore, raws: dict[str, bytes]) -> dict[str, int]:
    """Archive and normalize ``raws``; their message ids by name."""
    store.ensure_account("work", "imap")
    batch = [
        RemoteMessage(folder="INBOX", uid=uid, raw=raw, flags=())
        for uid, raw in enumerate(raws.values(), 1)
    ]
    store.archive_batch("work", "INBOX", 1, batch, None)
    normalize_pending(store, workers=1)
    with store.engine.connect() as conn:
        rows = conn.execute(select(messages.c.id, messages.c.message_id_header)).all()
    by_header = {header: pk for pk, header in rows}
    return {name: by_header[f"<{name}@search.test>"] for name in raws}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]
)
def searchable(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Archive]:
    server: PostgresServer | None = None
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres_server")
        name = server.create_database()
        url = server.url(name)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('search') / 'archive.db'}"
    store = ArchiveStore.open(url, migrate=True)
    try:
        yield Archive(store, archive(store, corpus()))
    finally:
        store.close()
        if server is not None:
            server.drop_database(name)


def test_latin_words_keep_word_semantics_and_prefixes(searchable: Archive) -> None:
    assert searchable.find("all", "invoice") == {"invoice"}
    assert searchable.find("all", "INVOICE") == {"invoice"}
    assert searchable.find("all", "invoic", prefix=True) == {"invoice", "invoicing"}
    assert searchable.find("all", "reinvoiced") == {"reinvoiced"}
    assert searchable.find("all", "invoic") == set()


def test_phrases_need_their_words_in_order(searchable: Archive) -> None:
    assert searchable.find("all", "pay the attached invoice") == {"invoice"}
    assert searchable.find("all", "invoice attached") == set()
    assert searchable.find("all", "attached inv", prefix=True) == {"invoice"}
    # Punctuation between words does not matter, as in the text it was indexed from.
    assert searchable.find("subject", "invoice 2019/03") == {"invoice"}


def test_case_and_diacritics_are_ignored(searchable: Archive) -> None:
    assert searchable.find("all", "cafe") == {"cafe"}
    assert searchable.find("all", "CAFÉ CRÈME") == {"cafe"}
    assert searchable.find("all", "strasse") == {"cafe"}
    assert searchable.find("all", "ubermut") == {"cafe"}


def test_korean_words_are_found_with_their_particles(searchable: Archive) -> None:
    assert searchable.find("all", "메일") == {"korean"}
    assert searchable.find("all", "메일을") == {"korean"}
    assert searchable.find("body", "확인") == {"korean"}
    assert searchable.find("all", "메일 확인") == set()


def test_japanese_and_chinese_words_are_found_inside_sentences(searchable: Archive) -> None:
    assert searchable.find("all", "タワー") == {"japanese"}
    assert searchable.find("all", "東京タワー") == {"japanese"}
    assert searchable.find("all", "会議") == {"japanese"}
    assert searchable.find("all", "北京") == {"chinese"}
    assert searchable.find("all", "合同") == {"chinese"}
    assert searchable.find("all", "京") == {"japanese", "chinese"}
    assert searchable.find("subject", "会议") == {"chinese"}
    assert searchable.find("all", "京都") == set()


def test_each_scope_searches_its_field(searchable: Archive) -> None:
    assert searchable.find("subject", "invoice") == {"invoice"}
    assert searchable.find("body", "invoice") == {"invoice"}
    assert searchable.find("subject", "friday") == set()
    assert searchable.find("addresses", "juergen@acme.example") == {"invoice"}
    assert searchable.find("addresses", "Jürgen Müller") == {"invoice"}
    assert searchable.find("body", "juergen") == set()
    assert searchable.find("attachments", "terms-2019.pdf") == {"pdf"}
    assert searchable.find("attachments", "memo") == {"docx"}


def test_attachment_text_is_searchable(searchable: Archive) -> None:
    assert searchable.find("attachments", "quarterly renewal terms") == {"pdf"}
    assert searchable.find("all", "renewal") == {"pdf"}
    assert searchable.find("attachments", "confidential merger memorandum") == {"docx"}
    assert searchable.find("attachments", "zebrafish") == {"docx"}
    assert searchable.find("attachments", "spreadsheet walrus") == {"office"}
    assert searchable.find("attachments", "slide pelican") == {"office"}
    assert searchable.find("attachments", "hidden narwhal report") == {"office"}
    assert searchable.find("body", "renewal") == set()


def test_user_text_cannot_change_the_query(searchable: Archive) -> None:
    for hostile in ("x' OR 1=1 --", '" OR "a', "NEAR(a b)", "subject:*", "a) OR (b", "'; DROP"):
        assert searchable.find("all", hostile) == set()
        assert searchable.find("addresses", hostile, prefix=True) == set()
    assert searchable.find("all", "!!!") == set()
    assert searchable.find("all", "invoice") == {"invoice"}


def test_relevance_ranks_subject_matches_first(searchable: Archive) -> None:
    dialect = searchable.store.engine.dialect.name
    score = relevance(dialect, ["invoice", "attached"])
    with searchable.store.engine.connect() as conn:
        ranked = conn.execute(
            select(messages.c.id, score).where(score > 0).order_by(score.desc(), messages.c.id)
        ).all()
    names = {pk: name for name, pk in searchable.ids.items()}
    assert names[ranked[0][0]] == "invoice"
    assert {names[pk] for pk, _ in ranked} == {"invoice", "pdf", "docx"}


def _index_rows(conn: Connection) -> list[tuple[object, ...]]:
    if conn.dialect.name == "sqlite":
        query = "SELECT rowid, subject, addresses, body, attachments FROM search_fts ORDER BY rowid"
    else:
        query = (
            "SELECT message_pk, chunk, doc::text, subject::text FROM search_chunks"
            " ORDER BY message_pk, chunk"
        )
    return [tuple(row) for row in conn.execute(text(query))]


def test_a_rebuild_equals_what_normalization_indexed(searchable: Archive) -> None:
    store = searchable.store
    with store.engine.connect() as conn:
        incremental = _index_rows(conn)
    assert len(incremental) == len(searchable.ids)

    counts = store.rebuild_index()

    assert counts.indexed == len(searchable.ids)
    with store.engine.connect() as conn:
        assert _index_rows(conn) == incremental
    assert store.index_status().rebuild_at is None
    assert store.index_missing().indexed == 0


def test_remove_messages_leaves_nothing_behind(archive_store: ArchiveStore) -> None:
    raws = {name: raw for name, raw in corpus().items() if name in ("pdf", "docx")}
    ids = archive(archive_store, raws)
    found = Archive(archive_store, ids)
    assert found.find("all", "renewal") == {"pdf"}

    with archive_store.engine.begin() as conn:
        remove_messages(conn, [ids["pdf"]])

    assert found.find("all", "renewal") == set()
    assert found.find("attachments", "terms") == set()
    assert found.find("all", "zebrafish") == {"docx"}
    with archive_store.engine.connect() as conn:
        left = conn.execute(
            select(attachment_texts.c.part_path).where(attachment_texts.c.message_pk == ids["pdf"])
        ).all()
        assert left == []
        assert (
            all(cast(int, row[0]) // 256 != ids["pdf"] for row in _index_rows(conn))
            if (conn.dialect.name == "sqlite")
            else all(row[0] != ids["pdf"] for row in _index_rows(conn))
        )
        if conn.dialect.name == "sqlite":
            # Not one of its words is left in the index's vocabulary.
            conn.execute(
                text("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, search_fts, row)")
            )
            words = set(conn.execute(text("SELECT term FROM temp.vocab")).scalars())
            assert "renewal" not in words and "quarterly" not in words
            assert "zebrafish" in words
    status = archive_store.index_status()
    assert status.indexed == 1 and status.normalized == 2


@pytest.mark.parametrize("searchable", ["postgresql"], indirect=True)  # SQLite has no such index
@pytest.mark.parametrize("query", ["from:juergen", "filename:terms-2019"])
def test_postgresql_serves_substring_terms_from_trigram_indexes(
    searchable: Archive, query: str
) -> None:
    from syncer.archive.search.compile import compile_query
    from syncer.query import parse

    assert searchable.store.engine.dialect.name == "postgresql"
    statement = select(messages.c.id).where(compile_query(parse(query), "postgresql"))
    with searchable.store.engine.connect() as conn:
        compiled = statement.compile(dialect=conn.dialect)
        # The tables are tiny here: make the planner choose as it would on a real archive.
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        conn.exec_driver_sql("SET LOCAL enable_indexscan = off")
        plan = "\n".join(
            row[0] for row in conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params)
        )
        found = conn.execute(statement).scalars().all()
    assert "_trgm" in plan
    assert {pk for name, pk in searchable.ids.items() if name in ("invoice", "pdf")} >= set(found)
    assert len(found) == 1


@pytest.mark.parametrize("searchable", ["postgresql"], indirect=True)  # 0005 changes nothing else
def test_an_index_upgraded_to_0005_answers_as_a_fresh_one(searchable: Archive) -> None:
    """Migration 0005 fills the subject's own vector from the rows indexed under 0004."""
    store = searchable.store
    with store.engine.connect() as conn:
        indexed = _index_rows(conn)

    downgrade(store.engine, "0004")  # the subject column goes
    upgrade(store.engine)  # and comes back from search_chunks.doc

    with store.engine.connect() as conn:
        assert _index_rows(conn) == indexed
    assert searchable.find("subject", "invoice 2019/03") == {"invoice"}
    assert searchable.find("subject", "friday") == set()


@pytest.mark.parametrize("searchable", ["postgresql"], indirect=True)  # SQLite: see probe
def test_postgresql_reads_newest_first_from_an_index_and_subjects_from_their_own_vector(
    searchable: Archive,
) -> None:
    from syncer.archive.search.compile import compile_query
    from syncer.query import parse

    statement = (
        select(messages.c.id)
        .where(compile_query(parse("subject:invoice"), "postgresql", probe=True))
        .order_by(messages.c.date.desc().nulls_last(), messages.c.id.desc())  # as search() does
        .limit(50)
    )
    with searchable.store.engine.connect() as conn:
        compiled = statement.compile(dialect=conn.dialect)
        # The tables are tiny here: make the planner choose as it would on a real archive.
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        conn.exec_driver_sql("SET LOCAL enable_sort = off")
        plan = "\n".join(
            row[0] for row in conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params)
        )
    assert "ix_messages_date_newest" in plan
    assert "(subject @@" in plan and "doc @@" not in plan
