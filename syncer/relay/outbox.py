"""Sending what digests and forwards queued: the outbox flush, retries, and the lease.

Why this module exists: it joins the archive's outbox
(:mod:`syncer.archive.store_relay`) with the SMTP adapter
(:mod:`syncer.smtp.client`), which never meet otherwise. One flush runs at a
time (the lease ``outbox``); each due row is

1. claimed: ``pending`` -> ``sending``, its attempt counted (before any SMTP);
2. sent through its ``[[smtp]]`` server (one connection per server per flush);
3. marked ``sent``; or ``failed`` with the server's reply when refused for good
   (5xx); or back to ``pending`` with ``next_attempt_at`` doubled from
   ``[outbox] retry_first`` up to ``retry_max`` when it failed for now (4xx, no
   connection, a certificate or login problem -- which may be fixed meanwhile),
   until ``max_attempts``, when it fails.

A server that cannot be reached (or refuses our login or certificate) is not
tried again in the same flush: its other due rows are deferred with the same
error.

Crashes: a row is in ``sending`` only while a flush holds the lease. A flush
that finds rows in ``sending`` (its predecessor died) puts them back to
``pending`` and sends them again: the server may have taken the message before
the crash, so a receiver can get it twice -- at most twice, with the same bytes
and the same Message-ID, which lets it drop the copy. A crash between queueing
and sending loses nothing: the row waits, pending, for the next flush.

Public API: :func:`flush_outbox`, :class:`FlushResult`; the SMTP adapter comes from
:func:`syncer.connect.smtp_settings`, the lease from :func:`syncer.sync.runner.job_lease`
with :data:`LEASE`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from syncer.errors import ConfigError, RelayRejected, SyncerError

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.archive.store_relay import OutboxRow
    from syncer.config.relay import OutboxConfig
    from syncer.config.schema import Config, SMTPConfig
    from syncer.smtp.client import SMTPRelay

log = structlog.get_logger(__name__)

#: The lease one flush holds (and the forward rules are applied under).
LEASE = "outbox"
#: Rows read from the outbox at a time.
_PAGE = 50


@dataclass
class FlushResult:
    """What one flush did, by outbox row id."""

    sent: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: Sent messages whose bodies were let go ([outbox] keep_sent).
    pruned: int = 0

    @property
    def ok(self) -> bool:
        return not (self.deferred or self.failed)


def _find_server(config: Config, name: str) -> SMTPConfig:
    for server in config.smtp:
        if server.name == name:
            return server
    known = ", ".join(s.name for s in config.smtp) or "none"
    raise ConfigError(
        f"No [[smtp]] named {name!r} in {config.path} (configured: {known}).",
        hint="Queued mail names its server; add it back, or drop the message with "
        "`syncer outbox drop ID`.",
    )


class _Relays:
    """One SMTP connection per server for the length of a flush, and the servers found down."""

    def __init__(self, config: Config, connect: Callable[[SMTPConfig], SMTPRelay]) -> None:
        self._config = config
        self._connect = connect
        self._open: dict[str, SMTPRelay] = {}
        self.down: dict[str, SyncerError] = {}

    def get(self, name: str) -> SMTPRelay:
        """A connected relay for the server ``name``.

        :raises SyncerError: (the same one for the rest of the flush) when it cannot be had.
        """
        if name in self.down:
            raise self.down[name]
        relay = self._open.get(name)
        try:
            if relay is None:
                relay = self._connect(_find_server(self._config, name))
                self._open[name] = relay
            if not relay.connected:
                relay.connect()
        except SyncerError as exc:  # unreachable, TLS, login, no password or token ...
            self.down[name] = exc
            raise
        return relay

    def close(self) -> None:
        for relay in self._open.values():
            relay.close()
        self._open.clear()


def flush_outbox(
    store: ArchiveStore,
    config: Config,
    *,
    now: Callable[[], datetime] | None = None,
    only: Collection[int] | None = None,
    connect: Callable[[SMTPConfig], SMTPRelay] | None = None,
    heartbeat: Callable[[], None] | None = None,
) -> FlushResult:
    """Send every due row of the outbox (see the module docstring). The caller holds
    the lease :data:`LEASE`.

    :param only: send only these row ids (others stay as they are).
    :param connect: builds the (unconnected) relay for a server; default
        :func:`syncer.connect.smtp_relay`.
    :param heartbeat: called between messages (lease renewal; may raise to stop).
    """
    from syncer.connect import smtp_relay

    clock = now or (lambda: datetime.now(UTC))
    result = FlushResult(recovered=store.outbox_recover())
    if result.recovered:
        log.warning(
            "outbox.recovered",
            ids=result.recovered,
            reason="a previous flush stopped while sending; these are sent again with the "
            "same Message-ID, and a receiver may get one of them twice",
        )
    relays = _Relays(config, connect or smtp_relay)
    settings = config.outbox
    after = 0
    try:
        while rows := store.outbox_due(clock(), after=after, limit=_PAGE):
            for row in rows:
                after = row.id
                if only is not None and row.id not in only:
                    continue
                if heartbeat is not None:
                    heartbeat()
                if not store.outbox_claim(row.id):
                    continue  # dropped or taken meanwhile
                _send_one(store, relays, row, result, settings, clock)
    finally:
        relays.close()
    result.pruned = store.outbox_prune(clock() - timedelta(seconds=settings.keep_sent))
    log.info(
        "outbox.flushed",
        sent=len(result.sent),
        deferred=len(result.deferred),
        failed=len(result.failed),
        pruned=result.pruned,
    )
    return result


def _send_one(
    store: ArchiveStore,
    relays: _Relays,
    row: OutboxRow,
    result: FlushResult,
    settings: OutboxConfig,
    clock: Callable[[], datetime],
) -> None:
    bound = log.bind(outbox_id=row.id, key=row.idem_key, smtp=row.smtp)
    attempts = row.attempts + 1
    try:
        relay = relays.get(row.smtp)
        delivery = relay.send(row.envelope_from, row.recipients, row.body)
    except RelayRejected as exc:
        store.outbox_failed(row.id, exc.message)
        result.failed.append(row.id)
        result.errors.append(f"outbox {row.id}: {exc.message}")
        bound.warning("relay.rejected", error=exc.message)
    except SyncerError as exc:  # for now (4xx, no connection) or the server's set-up
        retry_at = None
        if attempts < settings.max_attempts:
            retry_at = clock() + timedelta(seconds=settings.delay(attempts))
        store.outbox_deferred(row.id, exc.message, retry_at=retry_at)
        (result.deferred if retry_at else result.failed).append(row.id)
        result.errors.append(f"outbox {row.id}: {exc.message}")
        bound.warning(
            "relay.deferred" if retry_at else "relay.gave_up",
            error=exc.message,
            attempts=attempts,
            retry_at=retry_at.isoformat() if retry_at else None,
        )
    except BaseException:
        # Not an SMTP answer (a bug, a stop): the message was not taken; let it wait.
        store.outbox_deferred(row.id, "interrupted before it was sent", retry_at=clock())
        raise
    else:
        note = None
        if delivery.refused:
            note = "refused recipients: " + "; ".join(
                f"<{rcpt}>: {reply}" for rcpt, reply in delivery.refused.items()
            )
            bound.warning("relay.partly_refused", refused=delivery.refused)
        store.outbox_sent(row.id, note=note)
        result.sent.append(row.id)
        bound.info("relay.sent", message_id=row.message_id, reply=delivery.reply)
