"""Digests: a summary of what was archived since the previous run, queued for sending.

Why this module exists: it joins the archive (what matched, where each digest
left off) with the pure renderer (:mod:`syncer.relay.render`) and the outbox.
One run of a digest:

1. reads its cursor (``job_state`` kind ``digest``): the highest
   ``messages.id`` the previous run covered. A digest's first run covers the
   messages archived in the 24 hours before it;
2. closes the period at the *horizon*: the newest message, or just before the
   first one still awaiting normalization (the query reads normalized fields;
   such a message goes in the next period rather than being missed);
3. selects the matching ids in the period (``ArchiveStore.select_message_ids``
   with ``after_pk``), counts them and lists the first ``max_items``;
4. renders one message (text and HTML) and queues it with the idempotency key
   ``digest:<name>:<after>-<horizon>`` in the same transaction that moves the
   cursor to the horizon, on the condition that the cursor is still where step
   1 read it -- so a period is covered exactly once, even when two processes
   run the digest at the same moment.

An empty period moves the cursor and queues nothing, unless ``send_empty``.
A period is "successful" once queued: sending is the outbox's job (and its
retries, or ``syncer outbox retry``, the way to resend).

Public API: :func:`run_digest`, :class:`DigestRun`, :func:`digest_config`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from syncer.errors import ConfigError

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.config.relay import DigestConfig
    from syncer.config.schema import Config
    from syncer.relay.render import Rendered

log = structlog.get_logger(__name__)

#: How far back a digest's first run looks.
FIRST_PERIOD = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class DigestRun:
    """What one run of a digest did (or, with ``dry_run``, would do).

    :ivar after: the cursor the period starts after (exclusive; None: the beginning).
    :ivar until: the horizon, the last message id the period covers.
    :ivar queued: whether a message went into the outbox.
    """

    name: str
    after: int | None
    until: int
    count: int
    listed: int
    queued: bool
    message_id: str | None
    rendered: Rendered | None


def digest_config(config: Config, name: str) -> DigestConfig:
    """The ``[[digests]]`` entry called ``name``; the error lists the configured ones."""
    for digest in config.digests:
        if digest.name == name:
            return digest
    known = ", ".join(d.name for d in config.digests) or "none"
    raise ConfigError(
        f"No digest named {name!r} in {config.path}. These are the configured digests: {known}."
    )


def run_digest(
    store: ArchiveStore,
    digest: DigestConfig,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
) -> DigestRun:
    """One period of ``digest``: select, render, queue (see the module docstring).

    :param dry_run: render the message but queue nothing and leave the cursor.
    :raises ArchiveError: when another run covered the period meanwhile.
    :raises QuerySyntaxError: for a query the parser refuses.
    """
    from syncer.archive.store_relay import QueuedMessage
    from syncer.config.relay import address_of
    from syncer.relay.render import DigestContent, digest_message, render_digest

    now = now or datetime.now(UTC)
    state = store.job_cursor("digest", digest.name)
    expect = state.cursor_pk if state else None
    after = expect if state else store.last_message_before(now - FIRST_PERIOD)
    since = state.cursor_at if state else now - FIRST_PERIOD
    until = max(store.relay_horizon(after), after or 0)
    shown: list[int] = []
    count = 0
    for batch in store.select_message_ids(digest.query, after_pk=after, now=now):
        inside = [pk for pk in batch if pk <= until]
        count += len(inside)
        shown.extend(inside[: max(digest.max_items - len(shown), 0)])
        if len(inside) < len(batch):
            break
    bound = log.bind(digest=digest.name, after=after, until=until, count=count)
    if not count and not digest.send_empty:
        if not dry_run and until != expect:
            store.set_job_cursor("digest", digest.name, until)
        bound.info("digest.empty")
        return DigestRun(digest.name, after, until, 0, 0, False, None, None)
    items = tuple(store.digest_items(shown))
    content = DigestContent(
        name=digest.name, query=digest.query, count=count, items=items, since=since, until=now
    )
    rendered = render_digest(content, subject=digest.subject)
    composed = digest_message(
        rendered, name=digest.name, sender=digest.from_, to=digest.to, now=now
    )
    if dry_run:
        return DigestRun(digest.name, after, until, count, len(items), False, None, rendered)
    period = f"{after or 0}-{until}"
    if until == (after or 0):  # nothing archived at all (send_empty): one per run
        period += f"@{now.strftime('%Y%m%dT%H%M%SZ')}"
    queued = store.queue_outgoing(
        [
            QueuedMessage(
                idem_key=f"digest:{digest.name}:{period}",
                kind="digest",
                smtp=digest.smtp,
                envelope_from=digest.sender,
                recipients=tuple(address_of(to) for to in digest.to),
                body=composed.data,
                message_id=composed.message_id,
            )
        ],
        kind="digest",
        name=digest.name,
        cursor_pk=until,
        expect=expect,
    )
    bound.info("digest.queued", listed=len(items), message_id=composed.message_id)
    return DigestRun(
        digest.name, after, until, count, len(items), bool(queued), composed.message_id, rendered
    )
