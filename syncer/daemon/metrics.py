"""Prometheus metrics and a health check for ``syncer run`` (``[metrics] listen``).

Public API: :class:`Metrics` (a :class:`~syncer.daemon.jobs.JobObserver` that
counts what the jobs of this process did) and :func:`serve`, a small HTTP
server in a daemon thread answering ``GET /metrics`` (Prometheus text format)
and ``GET /healthz`` (200 ``ok`` while the scheduler runs; 503 with the reason once
stopping, or while an account's push connection has been down longer than its poll
interval).

Metrics (each worker reports what it did itself; sum them across workers):

- ``syncer_messages_archived_total{account}``, ``syncer_bytes_archived_total{account}``
- ``syncer_sync_duration_seconds{account}`` (histogram)
- ``syncer_sync_failures_total{account}``
- ``syncer_last_run_timestamp{job}`` (Unix time the job last ended, skipped runs included)
- ``syncer_push_connected{account}`` (1 while the account's push connection is up)
- ``syncer_push_delay_seconds{account}`` (histogram: from a message's INTERNALDATE to its
  commit, for messages archived by push-triggered syncs; INTERNALDATE has whole seconds)
- read from the archive at each scrape, the same on every worker:
  ``syncer_outbox_depth`` (messages waiting in the outbox),
  ``syncer_lease_holder{lease,holder}`` (1 per lease held and not expired),
  ``syncer_last_success_timestamp{account}`` (Unix time its last successful sync ended,
  by any worker: alert when it grows old), ``syncer_archive_messages``,
  ``syncer_archive_raw_bytes``, ``syncer_archive_stored_bytes``,
  ``syncer_normalization_backlog`` (messages awaiting normalization) and
  ``syncer_oauth2_token_expiry_timestamp{account}`` (when the stored access token expires).

``syncer run --once --metrics-file PATH`` writes the same text for node_exporter's
textfile collector (:func:`write_textfile`).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from syncer.daemon.jobs import JobObserver, Outcome
from syncer.errors import SyncerError

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.config.schema import Config
    from syncer.model import RunSummary

log = structlog.get_logger(__name__)

# Seconds from INTERNALDATE (whole seconds) to commit, for push-triggered syncs.
_DELAY_BUCKETS = (0.5, 1, 1.5, 2, 3, 5, 10, 30, 60, 300, 900, 3600)

# Seconds: from a no-change re-sync (tens of ms) to a first sync of a large mailbox.
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600)


class _ArchiveCollector(Collector):
    """Outbox depth, lease holders and the alerting gauges, read from the archive when
    scraped."""

    def __init__(self, store: ArchiveStore, config: Callable[[], Config | None]) -> None:
        self._store = store
        self._config = config

    def collect(self) -> Iterator[Metric]:
        try:
            depth = self._store.outbox_depth()
            leases = self._store.leases()
            alerting = list(self._alerting())
        except SyncerError as exc:
            log.warning("metrics.archive_unreadable", error=exc.message)
            return
        yield from alerting
        yield GaugeMetricFamily(
            "syncer_outbox_depth", "Messages in the outbox not sent yet.", value=depth
        )
        holders = GaugeMetricFamily(
            "syncer_lease_holder",
            "1 for each lease held and not expired, labelled with its holder.",
            labels=["lease", "holder"],
        )
        for lease in leases:
            if not lease.expired:
                holders.add_metric([lease.name, lease.holder], 1)
        yield holders

    def _alerting(self) -> Iterator[Metric]:
        last = GaugeMetricFamily(
            "syncer_last_success_timestamp",
            "Unix time at which the account's last successful sync ended (any worker).",
            labels=["account"],
        )
        for account, when in sorted(self._store.last_successes().items()):
            last.add_metric([account], when.timestamp())
        yield last
        totals = self._store.status().totals
        for name, value, text in (
            ("syncer_archive_messages", totals.messages, "Messages in the archive."),
            ("syncer_archive_raw_bytes", totals.raw_bytes, "Raw bytes of the archived messages."),
            ("syncer_archive_stored_bytes", totals.stored_bytes, "Bytes stored (compressed)."),
        ):
            yield GaugeMetricFamily(name, text, value=value)
        yield GaugeMetricFamily(
            "syncer_normalization_backlog",
            "Messages awaiting normalization.",
            value=self._store.normalization_backlog(),
        )
        config = self._config()
        if config is not None:
            yield _token_expiry(config)


def _token_expiry(config: Config) -> Metric:
    """When each OAuth2 account's stored access token expires (a refresh renews it; a
    refresh token that stopped working shows as an expiry in the past)."""
    from syncer.config.tokens import stored_tokens

    family = GaugeMetricFamily(
        "syncer_oauth2_token_expiry_timestamp",
        "Unix time at which the account's stored OAuth2 access token expires.",
        labels=["account"],
    )
    for account in config.accounts:
        oauth2 = account.oauth2
        if oauth2 is None or oauth2.token_command is not None:
            continue
        try:
            provider = stored_tokens(
                oauth2, kind="account", name=account.name, protocol=account.protocol
            )
            expires = provider.status().expires_at
        except SyncerError as exc:
            log.warning("metrics.token_unreadable", account=account.name, error=exc.message)
            continue
        if expires is not None:
            family.add_metric([account.name], expires)
    return family


class Metrics(JobObserver):
    """The metrics of one ``syncer run`` process, in their own registry."""

    def __init__(self, store: ArchiveStore, config: Config | None = None) -> None:
        self.config = config
        # The *_created series double the output and say only when this process started.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        labels = ["account"]
        self.messages = Counter(
            "syncer_messages_archived_total",
            "Messages archived (new entries).",
            labels,
            registry=self.registry,
        )
        self.bytes = Counter(
            "syncer_bytes_archived_total",
            "Raw bytes of the messages archived.",
            labels,
            registry=self.registry,
        )
        self.duration = Histogram(
            "syncer_sync_duration_seconds",
            "Duration of sync runs.",
            labels,
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.failures = Counter(
            "syncer_sync_failures_total", "Sync runs that failed.", labels, registry=self.registry
        )
        self.last_run = Gauge(
            "syncer_last_run_timestamp",
            "Unix time at which the job last ended in this worker.",
            ["job"],
            registry=self.registry,
        )
        self.push_connected_gauge = Gauge(
            "syncer_push_connected",
            "1 while the account's push connection (NOTIFY or IDLE) is up in this worker.",
            labels,
            registry=self.registry,
        )
        self.push_delay = Histogram(
            "syncer_push_delay_seconds",
            "From a message's INTERNALDATE to its commit, for push-triggered syncs.",
            labels,
            buckets=_DELAY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_ArchiveCollector(store, lambda: self.config))

    def watch(self, accounts: list[str]) -> None:
        """Create the per-account series at 0, so they exist before the first run."""
        for account in accounts:
            for counter in (self.messages, self.bytes, self.failures):
                counter.labels(account=account)

    def sync_finished(self, summary: RunSummary, outcome: Outcome) -> None:
        account = summary.account
        self.messages.labels(account=account).inc(summary.new)
        self.bytes.labels(account=account).inc(summary.bytes)
        self.duration.labels(account=account).observe(summary.seconds)
        if outcome == "failed":
            self.failures.labels(account=account).inc()

    def job_finished(self, job_id: str, outcome: Outcome) -> None:
        self.last_run.labels(job=job_id).set(time.time())

    def push_connected(self, account: str, connected: bool) -> None:
        self.push_connected_gauge.labels(account=account).set(1 if connected else 0)

    def push_delays(self, account: str, seconds: list[float]) -> None:
        histogram = self.push_delay.labels(account=account)
        for value in seconds:
            histogram.observe(value)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def write_textfile(self, path: str) -> None:
        """The metrics in node_exporter's textfile format, replaced atomically (the
        collector must never read half a file)."""
        import os

        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "wb") as out:
            out.write(self.render())
        os.replace(temporary, path)


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def serve(
    address: tuple[str, int], metrics: Metrics, healthy: Callable[[], tuple[bool, str]]
) -> ThreadingHTTPServer:
    """Serve ``/metrics`` and ``/healthz`` on ``address`` from a daemon thread.

    ``problem()`` says what is wrong (the body of a 503), or None when healthy.

    Stop it with ``server.shutdown(); server.server_close()``.

    :raises OSError: when the address cannot be bound (in use, not local).
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, metrics.render(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok, reason = healthy()
                self._reply(200 if ok else 503, reason.encode() + b"\n")
            else:
                self._reply(404, b"not found: try /metrics or /healthz\n")

        def _reply(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per scrape would drown the job events

    server_class = _IPv6Server if ":" in address[0] else ThreadingHTTPServer
    server = server_class(address, Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    return server
