"""The archive's normalization side: what awaits it, storing its results, the message view.

Why this module exists: normalization (:mod:`syncer.mime.normalize`) derives
columns and rows from the raw bytes; this module reads the bytes it needs and
writes what it derived, one transaction per batch, and serves ``syncer show``.
:class:`~syncer.archive.store.ArchiveStore` inherits :class:`StoreNormalize`.

Which messages await normalization: those whose ``normalizer_version`` is NULL
(never normalized, or marked by :meth:`StoreNormalize.mark_for_normalization`
for a rebuild) or older than :data:`~syncer.mime.parsed.NORMALIZER_VERSION`. The
marker is written in the same transaction as the derived rows, so the work is
resumable at any point: whatever was not committed is still awaiting.

Threads: the normalizer gives each message a key from its thread's root
Message-ID. :meth:`StoreNormalize.save_normalized` then joins threads the
archive can see: a message whose References or In-Reply-To name an archived,
normalized message takes that message's key, and messages that had rooted a
thread at this message (or at its root) are moved to the same key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    Update,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)

from syncer.archive.models import (
    accounts,
    addresses,
    attachment_texts,
    attachments,
    blobs,
    entries,
    folders,
    message_texts,
    messages,
    utcnow,
)
from syncer.archive.search.document import IndexRow
from syncer.archive.search.document import clean as _clean
from syncer.archive.store_base import StoreCore, chunks, execute_many, labels_tuple
from syncer.archive.views import AddressView, AttachmentView, MessageDetail, PlacementView
from syncer.errors import ArchiveError
from syncer.mime.parsed import NORMALIZER_VERSION, ROLES, NormalizedMessage, thread_key_of

__all__ = ["Pending", "StoreNormalize", "awaiting_normalization"]

#: Characters of the text shown by message_detail (``text_excerpt``).
_EXCERPT = 1000
_HEX = frozenset("0123456789abcdef")


class Pending(NamedTuple):
    """A message awaiting normalization."""

    message_pk: int
    sha256: str
    size: int


def awaiting_normalization(version: int = NORMALIZER_VERSION) -> ColumnElement[bool]:
    """The condition on ``messages`` for a row that awaits normalization."""
    column = messages.c.normalizer_version
    return or_(column.is_(None), column < version)


def _since(since: datetime | None) -> ColumnElement[bool] | None:
    if since is None:
        return None
    return func.coalesce(messages.c.date, messages.c.first_seen_at) >= since


def _clip(value: str | None, limit: int) -> str | None:
    return _clean(value[:limit]) if value is not None else None


class StoreNormalize(StoreCore):
    """Normalization backlog, results and the message view (see :class:`ArchiveStore`)."""

    # ------------------------------------------------------------------ the backlog

    def normalization_backlog(
        self, *, since: datetime | None = None, version: int = NORMALIZER_VERSION
    ) -> int:
        """How many messages await normalization (dated, or else archived, since ``since``)."""
        query = select(func.count()).select_from(messages).where(awaiting_normalization(version))
        window = _since(since)
        if window is not None:
            query = query.where(window)
        with self._read("counting messages awaiting normalization") as conn:
            return int(conn.execute(query).scalar_one())

    def pending_normalization(
        self,
        limit: int,
        *,
        since: datetime | None = None,
        after: int = 0,
        version: int = NORMALIZER_VERSION,
    ) -> list[Pending]:
        """Up to ``limit`` messages awaiting normalization, by id, with ids above ``after``.

        :param since: only messages dated (or, undated, archived) at or after this.
        :param after: the last id of the previous batch (keyset paging: a message
            that cannot be saved is not handed out again in the same walk).
        """
        query = (
            select(messages.c.id, messages.c.sha256, messages.c.size)
            .where(awaiting_normalization(version), messages.c.id > after)
            .order_by(messages.c.id)
            .limit(limit)
        )
        window = _since(since)
        if window is not None:
            query = query.where(window)
        with self._read("listing messages awaiting normalization") as conn:
            return [Pending(pk, sha, size) for pk, sha, size in conn.execute(query)]

    def mark_for_normalization(self, *, since: datetime | None = None) -> int:
        """Mark messages (all, or those since ``since``) as awaiting normalization again.

        Their derived rows stay until the new ones replace them, so the archive
        is never without them; a rebuild interrupted half-way is finished by
        the next ``syncer normalize`` (or sync).

        :returns: how many messages were marked.
        """
        stmt = update(messages).values(normalizer_version=None)
        window = _since(since)
        if window is not None:
            stmt = stmt.where(window)
        with self._write("marking messages for normalization") as conn:
            return int(conn.execute(stmt).rowcount)

    def load_raw(self, items: Sequence[Pending]) -> list[bytes]:
        """The raw bytes of each message, in order, verified against their SHA-256.

        :raises BlobCorrupt: when stored bytes no longer match their address.
        """
        shas = list(dict.fromkeys(item.sha256 for item in items))
        data: dict[str, bytes | None] = {}
        with self._read("reading messages to normalize") as conn:
            for part in chunks(shas, self._caps.max_params):
                data.update(_blob_rows(conn, part))
        missing = [sha for sha in shas if sha not in data]
        if missing:
            raise ArchiveError(f"Message blob {missing[0]} is missing from the archive.")
        # Each stored copy is dropped as soon as it is decompressed: a batch is never
        # held compressed and raw at once (the normalize stage's memory bound).
        raws = {sha: self._blobs.load(sha, data.pop(sha)) for sha in shas}
        return [raws[item.sha256] for item in items]

    # ------------------------------------------------------------------ results

    def save_normalized(
        self,
        results: Sequence[tuple[int, NormalizedMessage]],
        index_rows: Mapping[int, Sequence[IndexRow]] | None = None,
    ) -> None:
        """Store what normalization derived for each ``(message id, result)``, in one transaction.

        Idempotent: a message's addresses, attachments and text are replaced,
        never added to. Unknown message ids are ignored. The search index is
        updated in the same transaction: from ``index_rows`` (by message id,
        made by :func:`~syncer.archive.search.document.index_document` in a
        worker process) where given for
        every message, else from the rows just stored
        (:func:`~syncer.archive.search.index.index_messages`).
        """
        from syncer.archive.search.index import index_messages, insert_rows  # not on every open

        if not results:
            return
        ordered = sorted(results, key=lambda item: item[0])  # one lock order for every writer
        pks = [pk for pk, _ in ordered]
        now = utcnow()
        with self._write(f"saving {len(ordered)} normalized messages") as conn:
            execute_many(
                conn, _UPDATE_MESSAGE, [_message_row(pk, result, now) for pk, result in ordered]
            )
            for table in (addresses, attachments, attachment_texts, message_texts):
                for part in chunks(pks, self._caps.max_params):
                    conn.execute(delete(table).where(table.c.message_pk.in_(part)))
            address_rows = [
                {
                    "message_pk": pk,
                    "role": a.role,
                    "position": a.position,
                    "display_name": _clean(a.display_name),
                    "address": _clean(a.address),
                    "domain": _clean(a.domain),
                }
                for pk, result in ordered
                for a in result.addresses
            ]
            execute_many(conn, _INSERT[addresses.name], address_rows)
            attachment_rows = [
                {
                    "message_pk": pk,
                    "part_path": a.part_path,
                    "filename": _clean(a.filename),
                    "safe_filename": _clean(a.safe_filename),
                    "content_type": a.content_type,
                    "disposition": _clip(a.disposition, 32),
                    "size": a.size,
                    "sha256": a.sha256,
                    "inline": a.inline,
                    "content_id": _clean(a.content_id),
                }
                for pk, result in ordered
                for a in result.attachments
                if len(a.part_path) <= 64
            ]
            execute_many(conn, _INSERT[attachments.name], attachment_rows)
            text_rows = [
                {"message_pk": pk, "text": _clean(result.text)}
                for pk, result in ordered
                if result.text
            ]
            execute_many(conn, _INSERT[message_texts.name], text_rows)
            extracted_rows = [
                {
                    "message_pk": pk,
                    "part_path": t.part_path,
                    "text": _clean(t.text),
                    "note": _clean(t.note),
                }
                for pk, result in ordered
                for t in result.attachment_texts
                if len(t.part_path) <= 64
            ]
            execute_many(conn, _INSERT[attachment_texts.name], extracted_rows)
            self._join_threads(conn, ordered)
            # The search index follows the rows it is built from, in the same transaction.
            if index_rows is not None and all(pk in index_rows for pk in pks):
                existing: set[int] = set()
                for part in chunks(pks, self._caps.max_params):
                    existing.update(
                        conn.execute(select(messages.c.id).where(messages.c.id.in_(part))).scalars()
                    )
                insert_rows(conn, [(pk, index_rows[pk]) for pk in pks if pk in existing])
            else:
                index_messages(conn, pks)

    # Allowed (C901): the threading rules (References, In-Reply-To, subject) read best together.
    def _join_threads(  # noqa: C901
        self, conn: Connection, ordered: Sequence[tuple[int, NormalizedMessage]]
    ) -> None:
        refs = {
            ref
            for _, result in ordered
            for ref in (*result.references, result.in_reply_to)
            if ref is not None
        }
        known: dict[str, str] = {}
        for part in chunks(sorted(refs), self._caps.max_params):
            query = select(messages.c.message_id_header, messages.c.thread_key).where(
                messages.c.message_id_header.in_(part),
                messages.c.thread_key.is_not(None),
                messages.c.normalizer_version.is_not(None),
            )
            for message_id, key in conn.execute(query):
                known.setdefault(message_id, key)
        moves: dict[str, str] = {}  # old key -> new key

        def resolve(key: str) -> str:
            seen = {key}
            while key in moves and moves[key] not in seen:
                key = moves[key]
                seen.add(key)
            return key

        changed: list[dict[str, Any]] = []
        for pk, result in ordered:
            candidate = result.thread_key
            if candidate is None:
                continue
            final = candidate
            for ref in (*result.references, result.in_reply_to):
                if ref is not None and ref in known:
                    final = resolve(known[ref])
                    break
            if final != candidate:
                changed.append({"b_pk": pk, "b_key": final})
                moves[candidate] = final
            if result.message_id is not None:
                own = thread_key_of(result.message_id)
                if own != final:
                    moves[own] = final
                known[result.message_id] = final
        if changed:
            conn.execute(
                update(messages)
                .where(messages.c.id == bindparam("b_pk"))
                .values(thread_key=bindparam("b_key")),
                changed,
            )
        moves = {old: resolve(old) for old in moves}
        moves = {old: new for old, new in moves.items() if old != new}
        if moves:
            conn.execute(
                update(messages)
                .where(messages.c.thread_key == bindparam("b_old"))
                .values(thread_key=bindparam("b_new")),
                [{"b_old": old, "b_new": new} for old, new in sorted(moves.items())],
            )

    # ------------------------------------------------------------------ the message view

    def find_message(self, ref: str) -> int:
        """The id of the message ``ref`` names: its id, or a SHA-256 prefix of 8+ hex digits.

        :raises ArchiveError: when no message, or more than one, matches.
        """
        text = ref.strip().lower()
        with self._read(f"looking up message {ref!r}") as conn:
            # Message ids are 32-bit; longer digit strings can only be SHA-256 prefixes.
            if text.isdigit() and int(text) < 2**31:
                found = conn.execute(
                    select(messages.c.id).where(messages.c.id == int(text))
                ).scalar()
                if found is not None or len(text) < 8:
                    if found is None:
                        raise ArchiveError(f"No message with id {ref} in the archive.")
                    return int(found)
            if len(text) < 8 or not set(text) <= _HEX:
                raise ArchiveError(
                    f"{ref!r} is neither a message id nor a SHA-256 prefix of 8 or more hex digits."
                )
            rows = conn.execute(
                select(messages.c.id, messages.c.sha256)
                .where(messages.c.sha256.startswith(text))
                .order_by(messages.c.id)
                .limit(6)
            ).all()
        if not rows:
            raise ArchiveError(f"No message whose SHA-256 starts with {text} in the archive.")
        if len(rows) > 1:
            listed = ", ".join(f"{pk} ({sha[:12]})" for pk, sha in rows[:5])
            raise ArchiveError(
                f"SHA-256 prefix {text} matches several messages: {listed}.",
                hint="Give more hex digits, or the message id.",
            )
        return int(rows[0].id)

    def message_detail(self, message_pk: int) -> MessageDetail:
        """Everything the archive knows of one message: headers, addresses (in role order),
        attachments, verdicts, where it is, and the first characters of its text.

        :raises ArchiveError: when there is no such message.
        """
        with self._read(f"reading message {message_pk}") as conn:
            row = conn.execute(select(messages).where(messages.c.id == message_pk)).one_or_none()
            if row is None:
                raise ArchiveError(f"No message with id {message_pk} in the archive.")
            address_rows = conn.execute(
                select(addresses)
                .where(addresses.c.message_pk == message_pk)
                .order_by(addresses.c.id)
            ).all()
            attachment_rows = conn.execute(
                select(attachments)
                .where(attachments.c.message_pk == message_pk)
                .order_by(attachments.c.id)
            ).all()
            text_row = conn.execute(
                select(
                    func.length(message_texts.c.text),
                    func.substr(message_texts.c.text, 1, _EXCERPT),
                ).where(message_texts.c.message_pk == message_pk)
            ).one_or_none()
            entry_rows = conn.execute(
                select(
                    accounts.c.name.label("account"),
                    folders.c.name.label("folder"),
                    folders.c.display_name,
                    entries.c.uidvalidity,
                    entries.c.uid,
                    entries.c.flags,
                    entries.c.labels,
                    entries.c.internaldate,
                    entries.c.gone_at,
                    entries.c.superseded_at,
                )
                .join(folders, folders.c.id == entries.c.folder_id)
                .join(accounts, accounts.c.id == folders.c.account_id)
                .where(entries.c.message_pk == message_pk)
                .order_by(entries.c.id)
            ).all()
        return MessageDetail(
            id=row.id,
            sha256=row.sha256,
            size=row.size,
            first_seen_at=row.first_seen_at,
            parse_status=row.parse_status,
            parse_error=row.parse_error,
            parse_defects=tuple((row.parse_defects or "").split()),
            normalizer_version=row.normalizer_version,
            normalized_at=row.normalized_at,
            message_id=row.message_id_header,
            in_reply_to=row.in_reply_to,
            references=tuple((row.references_header or "").split()),
            subject=row.subject,
            date=row.date,
            date_raw=row.date_raw,
            date_status=row.date_status,
            list_id=row.list_id,
            auto_submitted=row.auto_submitted,
            precedence=row.precedence,
            thread_key=row.thread_key,
            addresses=_address_views(address_rows),
            attachments=tuple(
                AttachmentView(
                    index,
                    a.part_path,
                    a.filename,
                    a.safe_filename,
                    a.content_type,
                    a.disposition,
                    a.size,
                    a.sha256,
                    a.inline,
                    a.content_id,
                )
                for index, a in enumerate(attachment_rows, 1)
            ),
            spf=row.spf,
            dkim=row.dkim,
            dmarc=row.dmarc,
            dkim_verified=row.dkim_verified,
            authentication_results=row.auth_results,
            signed=row.signed,
            encrypted=row.encrypted,
            security=row.security,
            suspicious=row.suspicious,
            risk_note=row.risk_note,
            placements=tuple(
                PlacementView(
                    e.account,
                    e.display_name or e.folder,
                    e.uidvalidity,
                    e.uid,
                    tuple(e.flags.split()),
                    e.internaldate,
                    e.gone_at is not None or e.superseded_at is not None,
                    labels_tuple(e.labels) or (),
                )
                for e in entry_rows
            ),
            text_length=int(text_row[0]) if text_row is not None else 0,
            text_excerpt=text_row[1] if text_row is not None else "",
        )


def _blob_rows(conn: Connection, shas: Sequence[str]) -> dict[str, bytes | None]:
    """The stored data of these blobs, by SHA-256. On SQLite as plain SQL: the stage reads
    a few messages at a time, and building and compiling the select each time cost
    about as much as SQLite's own reading (10-20 us per message)."""
    if conn.dialect.name == "sqlite":
        marks = ", ".join("?" * len(shas))
        sql = f"SELECT sha256, data FROM {blobs.name} WHERE sha256 IN ({marks})"
        result = conn.exec_driver_sql(sql, tuple(shas))
    else:
        result = conn.execute(select(blobs.c.sha256, blobs.c.data).where(blobs.c.sha256.in_(shas)))
    return {sha: data for sha, data in result}


def _address_views(rows: Sequence[Any]) -> tuple[AddressView, ...]:
    """Addresses in :data:`ROLES` order (as stored within a role), the domain as people read it."""
    views: list[AddressView] = []
    for role in ROLES:
        for a in rows:
            if a.role != role:
                continue
            display = a.address
            if a.address and a.domain and "@" in a.address:
                display = f"{a.address.rsplit('@', 1)[0]}@{a.domain}"
            views.append(AddressView(role, a.display_name, a.address, display))
    return tuple(views)


#: The messages columns save_normalized writes (each bound as ``b_<name>``).
_MESSAGE_FIELDS = (
    "message_id_header",
    "subject",
    "date",
    "sender",
    "thread_key",
    "parse_status",
    "parse_error",
    "auth_results",
    "date_raw",
    "date_status",
    "in_reply_to",
    "references_header",
    "list_id",
    "auto_submitted",
    "precedence",
    "has_attachments",
    "signed",
    "encrypted",
    "security",
    "suspicious",
    "risk_note",
    "spf",
    "dkim",
    "dmarc",
    "dkim_verified",
    "parse_defects",
    "normalizer_version",
    "normalized_at",
)


def _update_message() -> Update:
    values: dict[str, Any] = {name: bindparam(f"b_{name}") for name in _MESSAGE_FIELDS}
    # The ingest found the Message-ID with a regex; keep it when the parser found none.
    values["message_id_header"] = func.coalesce(
        bindparam("b_message_id_header"), messages.c.message_id_header
    )
    return update(messages).where(messages.c.id == bindparam("b_pk")).values(values)


#: The statements of save_normalized, made once (execute_many caches their compiled form).
_UPDATE_MESSAGE = _update_message()
_INSERT = {
    table.name: table.insert()
    for table in (addresses, attachments, attachment_texts, message_texts)
}


def _message_row(pk: int, n: NormalizedMessage, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {
        "message_id_header": n.message_id,
        "subject": n.subject,
        "date": n.date,
        "sender": n.sender,
        "thread_key": n.thread_key,
        "parse_status": n.status,
        "parse_error": n.error,
        "auth_results": _clip(n.auth.raw, 4000),
        "date_raw": _clip(n.date_raw, 1000),
        "date_status": n.date_status,
        "in_reply_to": n.in_reply_to,
        "references_header": " ".join(n.references) or None,
        "list_id": _clip(n.list_id, 255),
        "auto_submitted": _clip(n.auto_submitted, 64),
        "precedence": _clip(n.precedence, 32),
        "has_attachments": n.has_attachments,
        "signed": n.signed,
        "encrypted": n.encrypted,
        "security": _clip(n.security, 64),
        "suspicious": n.suspicious,
        "risk_note": n.risk_note,
        "spf": _clip(n.auth.spf, 16),
        "dkim": _clip(n.auth.dkim, 16),
        "dmarc": _clip(n.auth.dmarc, 16),
        "dkim_verified": n.dkim_verified,
        "parse_defects": " ".join(n.defects) or None,
        "normalizer_version": n.version,
        "normalized_at": now,
    }
    row = {
        f"b_{name}": _clean(value) if isinstance(value, str) else value
        for name, value in values.items()
    }
    row["b_pk"] = pk
    return row
